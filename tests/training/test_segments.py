"""laser_rag_training.segments: reasoning segments located in real SmolLM2 tokens, truncation, padding, step mapping."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from laser_rag.config import RELEASED_PRESET, THINK_SUFFIX, LaSERConfig
from laser_rag.latent import hidden_states
from laser_rag_training.segments import (
    explicit_inputs,
    gather_segment_states,
    join_segments,
    split_segments,
    step_to_segment,
)

QUERY = "Are more people today related to Genghis Khan than Julius Caesar?"
SEGMENTS = [
    "How many kids did Julius Caesar have?",
    "Genghis Khan had sixteen children (by several wives)",
    "Julius Caesar had three children.",
    'Caesar was called "Divus Iulius"',
]


def test_split_segments():
    assert split_segments("1. Find X.\n2. Compare with Y.\n3) Answer.") == ["1. Find X.", "2. Compare with Y.",
                                                                             "3) Answer."]
    assert split_segments("first line\n\nsecond line\n") == ["first line", "second line"]
    assert split_segments("A is B. So C is 4.5 m. Dr. No? Yes!") == ["A is B.", "So C is 4.5 m.", "Dr.", "No?",
                                                                      "Yes!"]
    assert split_segments("  ") == []


def test_join_segments_offsets():
    text, ends = join_segments(["ab ", "", " cd"], separator=" | ")
    assert text == "ab | cd" and ends == [2, 7]
    assert [text[e - 1] for e in ends] == ["b", "d"]


@pytest.mark.parametrize(("k", "m", "expected"), [
    (3, 6, [1, 3, 5]),  # M >= K: each step ends its own third of the reasoning
    (3, 3, [0, 1, 2]),
    (3, 4, [1, 2, 3]),
    (1, 5, [4]),  # a single step aligns with the conclusion
    (3, 2, [0, 1, 1]),  # M < K: steps share segments, the last step still maps to the last segment
    (3, 1, [0, 0, 0]),
    (3, 0, []),  # M = 0: no trajectory target
])
def test_step_to_segment(k, m, expected):
    assert step_to_segment(k, m) == expected


def test_step_to_segment_is_in_range_and_ends_at_the_last_segment():
    for k in range(1, 8):
        for m in range(1, 20):
            j = step_to_segment(k, m)
            assert len(j) == k and j == sorted(j) and 0 <= j[0] and j[-1] == m - 1


def _ends_segment(tokenizer, ids, position, segment, separator):
    """The prompt read up to ``position`` ends with ``segment`` (plus at most a merged piece of the separator),
    and one token earlier it did not yet."""
    text = tokenizer.decode(ids[:position + 1])
    before = tokenizer.decode(ids[:position])
    return (any(text.endswith(segment + separator[:n]) for n in range(len(separator) + 1))
            and not before.endswith(segment))


@pytest.mark.parametrize("separator", ["\n", " ", ". ", "\n\n\n"])
def test_every_position_decodes_to_the_end_of_its_segment(encoder, separator):
    # " ": the separator is glued to the next word (" Julius"); ". ": SmolLM2 merges ")" and "." into one token
    # ")."; "\n\n\n": newlines merge into "\n\n". No separator has to survive as a token of its own.
    tokenizer, config = encoder.tokenizer, LaSERConfig()
    x = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=256, separator=separator)
    assert len(x.segment_ends) == len(SEGMENTS)
    assert x.segment_ends == sorted(set(x.segment_ends))
    for position, segment in zip(x.segment_ends, SEGMENTS):
        assert _ends_segment(tokenizer, x.ids, position, segment, separator), (separator, segment)
    merged = [tokenizer.decode([x.ids[p]]) for p in x.segment_ends]
    if separator == ". ":
        assert ")." in merged  # the trap is really exercised


def test_on_real_rationales(encoder, shared_data):
    from laser_rag_datasets.shared import strategyqa_records

    tokenizer, config = encoder.tokenizer, LaSERConfig()
    for record in strategyqa_records("train")[:40]:
        segments = [s.strip() for s in (*record["decomposition"], *record["facts"]) if s.strip()]
        x = explicit_inputs(tokenizer, config, record["question"], segments, max_length=512)
        assert len(x.segment_ends) == len(segments)
        for position, segment in zip(x.segment_ends, segments):
            assert _ends_segment(tokenizer, x.ids, position, segment, "\n"), segment


def test_ids_match_the_encoder_and_truncation_drops_cut_segments(encoder):
    tokenizer = encoder.tokenizer
    for append_eos in (False, True):
        config = dataclasses.replace(encoder.config, append_eos=append_eos, max_length=512)
        full = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=512)
        rationale = join_segments(SEGMENTS)[0]

        def encoder_ids(**changes):  # what the encoder itself reads as this explicit input
            return encoder.with_config(append_eos=append_eos, **changes).tokenize([QUERY], "explicit",
                                                                                  rationales=[rationale])[0][0]

        assert full.ids == encoder_ids()
        # cut in the middle of the third segment: two segments survive, M = 2
        budget = full.segment_ends[1] + 3 + int(append_eos)
        cut = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=budget)
        assert len(cut.ids) == budget
        assert cut.segment_ends == full.segment_ends[:2]
        assert (cut.ids[-1] == tokenizer.eos_token_id) == append_eos
        assert cut.ids == encoder_ids(max_length=budget)
        # a budget that leaves no segment end: M = 0
        none = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=full.segment_ends[0] + int(append_eos))
        assert none.segment_ends == []


def test_gather_segment_states_shifts_for_left_padding():
    width = 5
    hidden = torch.arange(width, dtype=torch.float)[None, :, None].expand(3, width, 2).clone()  # value = column
    states, valid = gather_segment_states(hidden, lengths=[3, 5, 4], segment_ends=[[0, 2], [1, 2, 4], []],
                                          num_steps=3)
    assert valid.tolist() == [True, True, False]
    assert states[0, :, 0].tolist() == [2.0, 4.0, 4.0]  # shift 2; steps -> segments [0, 1, 1]
    assert states[1, :, 0].tolist() == [1.0, 2.0, 4.0]  # no shift; steps -> segments [0, 1, 2]
    assert states[2].abs().sum() == 0


def test_gathered_states_equal_unpadded_ones(encoder):
    config = LaSERConfig()
    inputs = [explicit_inputs(encoder.tokenizer, config, QUERY, SEGMENTS, 256),
              explicit_inputs(encoder.tokenizer, config, "Is the sky blue?", ["Rayleigh scattering.", "Yes."], 256)]
    ids, mask = encoder.pad([x.ids for x in inputs])
    with torch.inference_mode():
        batched, valid = gather_segment_states(hidden_states(encoder.model, ids, mask), [len(x.ids) for x in inputs],
                                               [x.segment_ends for x in inputs], 3)
        for row, x in enumerate(inputs):
            alone = hidden_states(encoder.model, torch.tensor([x.ids]), torch.ones(1, len(x.ids), dtype=torch.long))
            expected = alone[0, [x.segment_ends[j] for j in step_to_segment(3, len(x.segment_ends))]]
            torch.testing.assert_close(batched[row], expected, atol=2e-4, rtol=1e-4)
    assert valid.all()


def test_separator_states_and_teacher_eos(encoder):
    """The authors' teacher: states at the separator after each segment (the last segment at its own end), EOS
    appended on request whatever the config says."""
    tokenizer, config = encoder.tokenizer, LaSERConfig()
    ends = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=256, separator="\n\n")
    seps = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=256, separator="\n\n", at_separator=True)
    assert seps.ids == ends.ids and seps.segment_ends[-1] == ends.segment_ends[-1]
    for position, segment in zip(seps.segment_ends[:-1], SEGMENTS):
        assert tokenizer.decode(seps.ids[:position + 1]).endswith(segment + "\n\n")
        assert "\n" in tokenizer.decode([seps.ids[position]])
    plain = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=256)
    eos = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=256, append_eos=True)
    assert not config.append_eos and eos.ids == plain.ids + [tokenizer.eos_token_id]
    assert eos.segment_ends == plain.segment_ends


def test_a_chat_templated_backbone_wraps_the_student_and_the_teacher_alike(encoder):
    """Training from a released checkpoint (`RELEASED_PRESET`: chat template, think suffix) on SmolLM2's own chat
    template: the teacher's explicit view is the student's wrapped query followed by the rationale, and a cut keeps
    the wrapper's closing part whole and drops the segments cut off."""
    released = encoder.with_config(**RELEASED_PRESET)
    tokenizer, config = released.tokenizer, released.config
    rationale = join_segments(SEGMENTS)[0]
    student = released.render(QUERY, "query")
    assert student.startswith("<|im_start|>system\n") and "<|im_start|>user\n" in student
    assert student.endswith("<|im_start|>assistant\n" + THINK_SUFFIX)
    (student_ids,), _ = released.tokenize([QUERY], "query")
    assert tokenizer.decode(student_ids) == student

    x = explicit_inputs(tokenizer, config, QUERY, SEGMENTS, max_length=512)
    assert tokenizer.decode(x.ids) == student + rationale  # the released format's "{query}{rationale}"
    assert x.ids == released.tokenize([QUERY], "explicit", rationales=[rationale])[0][0]
    assert len(x.segment_ends) == len(SEGMENTS)
    for position, segment in zip(x.segment_ends, SEGMENTS):
        assert _ends_segment(tokenizer, x.ids, position, segment, "\n"), segment

    tail = "<|im_end|>\n"  # an explicit template with a closing part after the rationale: a cut never loses it
    closed = dataclasses.replace(config, explicit_template="{query}{rationale}" + tail)
    full = explicit_inputs(tokenizer, closed, QUERY, SEGMENTS, max_length=512)
    budget = full.segment_ends[1] + 3 + len(tokenizer(tail, add_special_tokens=False)["input_ids"])
    cut = explicit_inputs(tokenizer, closed, QUERY, SEGMENTS, max_length=budget)
    assert len(cut.ids) == budget and tokenizer.decode(cut.ids).endswith(tail)
    assert cut.segment_ends == full.segment_ends[:2]


@pytest.mark.parametrize(("max_length", "append_eos"), [(512, False), (96, False), (96, True), (48, False)])
def test_without_a_chat_template_the_teacher_reads_the_plain_prompt(encoder, shared_data, max_length, append_eos):
    """The default backbone's format (no chat template): on the training data's own examples, the explicit view is
    exactly the plain prompt ``Instruct: ...\\nQuery: <query>\\n<rationale>`` tokenised with special tokens and cut
    from the end (room kept for EOS), and the segments kept are the ones whose end token survived the cut."""
    from laser_rag_training.data import hotpotqa_examples, strategyqa_examples

    tokenizer, config = encoder.tokenizer, LaSERConfig()
    eos = [tokenizer.eos_token_id] if append_eos else []
    cuts = 0
    for example in [*strategyqa_examples("train")[:40], *hotpotqa_examples("train")[:40]]:
        rationale = join_segments(example.segments)[0]
        prompt = f"Instruct: {config.query_instruction}\nQuery: {example.query}\n{rationale}"
        plain = tokenizer(prompt, truncation=True, max_length=max_length - len(eos))["input_ids"]
        x = explicit_inputs(tokenizer, config, example.query, example.segments, max_length, append_eos=append_eos)
        assert x.ids == plain + eos
        whole = explicit_inputs(tokenizer, config, example.query, example.segments, 4096)
        assert x.segment_ends == [p for p in whole.segment_ends if p < len(plain)]
        cuts += len(x.segment_ends) < len(whole.segment_ends)
    assert (cuts > 0) == (max_length < 512)  # the short budgets really cut
