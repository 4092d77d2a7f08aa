"""The token layout of a LatentRAG sequence, written once for inference and teacher-forced training.

::

    <prompt + question>\\n <think_1..m> <query_1..n> <information> Doc 1 .. </information>\\n  (x retrievals)
    <think_1..m> <answer> answer tokens <eos>

Text pieces are tokenized separately (never across a piece boundary), so the ids a step appends at inference are
the ids the teacher-forced pass reads. `<query>` itself never enters the sequence: the subquery block follows the
thought block directly; the `<answer>` action does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from laser_rag.latentrag.config import ANSWER, DECODE_QUERY_PROMPT, DECODE_THOUGHT_PROMPT, PROMPT, QUERY

#: (title, text) of one retrieved document.
DocumentText = tuple[str, str]


def text_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prompt_ids(tokenizer, question: str) -> list[int]:
    question = " ".join(question.split())
    if not question:
        raise ValueError("the question is empty")
    return text_ids(tokenizer, f"{PROMPT}{question}\n")


def documents_text(documents: Sequence[DocumentText], chars: int) -> str:
    """``<information> Doc 1 title: text Doc 2 ... </information>`` with each text cut to ``chars`` characters."""
    parts = []
    for number, (title, text) in enumerate(documents, start=1):
        text = " ".join(text.split())
        text = text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " ..."
        heading = f"{title}: " if title else ""
        parts.append(f"Doc {number} {heading}{text}")
    return " <information> " + " ".join(parts) + " </information>\n"


def answer_target_ids(tokenizer, answer: str) -> list[int]:
    return text_ids(tokenizer, " ".join(answer.split())) + [tokenizer.eos_token_id]


def decode_prompt_ids(tokenizer, kind: str) -> list[int]:
    return text_ids(tokenizer, DECODE_THOUGHT_PROMPT if kind == "thought" else DECODE_QUERY_PROMPT)


@dataclass
class TeacherForcedSequence:
    """One trajectory as a single causal sequence, with the positions every loss reads."""

    ids: list[int] = field(default_factory=list)
    #: Positions of each thought block (retrievals + 1 blocks); its last position predicts the action.
    thought_positions: list[list[int]] = field(default_factory=list)
    #: The action taken after each thought block (`QUERY` ... `ANSWER`).
    actions: list[int] = field(default_factory=list)
    #: Positions of each subquery block (one per retrieval).
    query_positions: list[list[int]] = field(default_factory=list)
    #: Positions whose next token is an answer token, and those tokens (the answer ends with EOS).
    answer_positions: list[int] = field(default_factory=list)
    answer_targets: list[int] = field(default_factory=list)

    def extend(self, ids: Sequence[int]) -> list[int]:
        start = len(self.ids)
        self.ids.extend(ids)
        return list(range(start, len(self.ids)))


def teacher_forced(model, question: str, step_documents: Sequence[Sequence[DocumentText]],
                   answer: str) -> TeacherForcedSequence:
    """The sequence of a trajectory that retrieves ``len(step_documents)`` times (each step's documents given) and
    then answers ``answer``. ``model`` is a `LatentRAGModel` (for its tokenizer and special ids)."""
    tokenizer, config = model.tokenizer, model.config
    if len(step_documents) > config.max_retrievals:
        raise ValueError(f"{len(step_documents)} retrievals exceed the cap of {config.max_retrievals}")
    sequence = TeacherForcedSequence()
    sequence.extend(prompt_ids(tokenizer, question))
    for documents in step_documents:
        sequence.thought_positions.append(sequence.extend(model.thought_ids()))
        sequence.actions.append(QUERY)
        sequence.query_positions.append(sequence.extend(model.query_ids()))
        sequence.extend(text_ids(tokenizer, documents_text(documents, config.document_chars)))
    sequence.thought_positions.append(sequence.extend(model.thought_ids()))
    sequence.actions.append(ANSWER)
    action = sequence.extend([model.action_id(ANSWER)])
    targets = answer_target_ids(tokenizer, answer)
    answer_positions = sequence.extend(targets[:-1])
    sequence.answer_positions = action + answer_positions
    sequence.answer_targets = targets
    return sequence
