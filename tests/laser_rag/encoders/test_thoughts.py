"""`LaSEREncoder.thoughts` on the real default model (SmolLM2-135M, K=3): each latent step's top tokens come from the
rollout that makes the vector, are its softmax distribution, and do not depend on the batch."""

from __future__ import annotations

import numpy as np
import pytest

from laser_rag.errors import InvalidInputError
from laser_rag.thoughts import Thoughts

QUERIES = ["who founded the university of kansas?", "Why?"]
DOCUMENTS = ["Rayleigh scattering favours short wavelengths.", "Kansas University, 1865."]


@pytest.mark.parametrize("kind", ["query", "document"])
def test_thoughts_come_from_the_rollout_that_makes_the_vector(encoder, kind):
    texts = QUERIES if kind == "query" else DOCUMENTS
    found = encoder.thoughts(texts, kind, top_k=4)
    encode = encoder.encode_queries if kind == "query" else encoder.encode_documents
    np.testing.assert_array_equal(np.stack([t.vector for t in found]), encode(texts))  # exactly: the same pass
    assert [t.text for t in found] == texts and {t.kind for t in found} == {kind}
    for thought in found:
        assert len(thought.steps) == encoder.num_thinking_steps
        for step in thought.steps:
            assert len(step) == 4 and all(isinstance(token, str) for token, _ in step)
            probabilities = [p for _, p in step]
            assert probabilities == sorted(probabilities, reverse=True)
            assert 0 < sum(probabilities) <= 1 + 1e-6
    assert found[0].coverage == [sum(p for _, p in step) for step in found[0].steps]


def test_probabilities_are_the_softmax_over_the_vocabulary(encoder):
    # top_k = the whole vocabulary: each step lists every token once and its probabilities sum to one
    (thought,) = encoder.thoughts(QUERIES[1:], top_k=10**6, num_thinking_steps=2)
    vocabulary = encoder.model.get_output_embeddings().weight.shape[0]
    assert len(thought.steps) == 2
    for step in thought.steps:
        assert len(step) == vocabulary
        assert sum(p for _, p in step) == pytest.approx(1.0, abs=1e-4)


def test_a_texts_thoughts_do_not_depend_on_its_batch_mates(encoder):
    together = encoder.thoughts(QUERIES, top_k=5)
    for text, batched in zip(QUERIES, together):
        alone = encoder.thoughts(text, top_k=5)
        assert isinstance(alone, Thoughts)
        # fp32 rounding of the padded batch only (see test_laser's batch-mates test); ties may swap near-equal tokens
        np.testing.assert_allclose([[p for _, p in s] for s in alone.steps],
                                   [[p for _, p in s] for s in batched.steps], atol=1e-4)
        assert [s[0][0] for s in alone.steps] == [s[0][0] for s in batched.steps]


def test_format_and_json_views(encoder):
    thought = encoder.thoughts(QUERIES[0], top_k=3)
    lines = thought.format_thoughts().splitlines()
    assert len(lines) == encoder.num_thinking_steps and lines[0].startswith('step 1: "')
    assert lines[0].count(", ") == 2 and "…" not in lines[0]
    assert thought.format_thoughts(top_k=1).splitlines()[1].endswith(", …")
    data = thought.as_dict()
    assert data["kind"] == "query" and data["steps"][0][0]["token"] == thought.steps[0][0][0]


def test_encoders_without_latent_steps_and_bad_input_are_refused(encoder, minilm):
    with pytest.raises(InvalidInputError, match="single-pass"):
        minilm.thoughts(["why?"])
    with pytest.raises(InvalidInputError, match="num_thinking_steps"):
        encoder.thoughts(["why?"], num_thinking_steps=0)
    with pytest.raises(InvalidInputError, match="kind"):
        encoder.thoughts(["why?"], kind="explicit")
    with pytest.raises(InvalidInputError, match="top_k"):
        encoder.thoughts(["why?"], top_k=0)
    with pytest.raises(InvalidInputError, match="queries only"):
        encoder.thoughts(["a passage"], "document", instruction="Retrieve passages")
    assert encoder.thoughts([]) == []
