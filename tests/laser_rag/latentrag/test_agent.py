"""The LatentRAG loop: teacher-forced latents equal cached step-by-step inference, the step cap, decoding, timings."""

from __future__ import annotations

import pytest
import torch

from laser_rag.latentrag import LatentRAG, decode_latents
from laser_rag.latentrag import sequence as S
from laser_rag.latentrag.config import ANSWER, QUERY

QUESTION = "Which river flows through the capital of France?"


@pytest.fixture
def always_query(tiny_model, monkeypatch):
    monkeypatch.setattr(tiny_model, "action_logits", lambda hidden: torch.tensor([1.0, 0.0]))
    return tiny_model


def test_teacher_forced_pass_equals_cached_inference(always_query, documents):
    model = always_query
    agent = LatentRAG(model, search=lambda vector, k: documents[:k])
    trace, steps = agent.trace(QUESTION, max_retrievals=2)
    assert trace.actions == [QUERY, QUERY, ANSWER] and len(steps) == 2
    sequence = S.teacher_forced(model, QUESTION, [[(h.title, h.text) for h in documents]] * 2, "x")
    n = len(sequence.ids) - len(sequence.answer_targets)  # everything before the answer's own tokens
    assert trace.ids[:n] == sequence.ids[:n]
    with torch.no_grad():
        hidden = model.decoder()(inputs_embeds=model.embed(torch.tensor([sequence.ids])), use_cache=False)
        hidden = hidden.last_hidden_state[0]
        for block, states in zip(sequence.thought_positions, trace.thought_states, strict=True):
            torch.testing.assert_close(hidden[block], states, atol=1e-5, rtol=0)
        for block, states, vector in zip(sequence.query_positions, trace.query_states, trace.query_vectors,
                                         strict=True):
            torch.testing.assert_close(hidden[block], states, atol=1e-5, rtol=0)
            torch.testing.assert_close(model.latent_query_vectors(hidden[block][None])[0], vector, atol=1e-5, rtol=0)


def test_the_loop_stops_at_the_step_cap(always_query, documents):
    searched = []
    agent = LatentRAG(always_query, search=lambda vector, k: searched.append(vector) or documents[:k])
    answer = agent.ask(QUESTION)
    cap = always_query.config.max_retrievals
    assert len(answer.steps) == cap == len(searched)
    assert all(v.shape == (32,) for v in searched)
    assert set(answer.timings) == {"prefill_ms", "thought_ms", "subquery_ms", "retrieval_ms", "answer_ms",
                                   "total_ms"}
    # question, then per retrieval thought + subquery + documents, the final thought, <answer>, answer tokens
    assert answer.forward_passes >= 1 + 3 * cap + 2
    assert answer.forward_passes <= 1 + 3 * cap + 2 + always_query.config.max_answer_tokens - 1
    assert [h.id for h in answer.hits] == ["0", "1", "2"]  # each document once, in order
    assert len(LatentRAG(always_query, search=lambda v, k: documents[:k]).ask(QUESTION, max_retrievals=1).steps) == 1


def test_answer_action_retrieves_nothing(tiny_model, documents, monkeypatch):
    monkeypatch.setattr(tiny_model, "action_logits", lambda hidden: torch.tensor([0.0, 1.0]))
    answer = LatentRAG(tiny_model, search=lambda v, k: pytest.fail("searched")).ask(QUESTION)
    assert answer.steps == [] and answer.hits == [] and answer.timings["retrieval_ms"] == 0.0


def test_batched_and_sequential_latent_decoding_agree(always_query, documents):
    trace, _ = LatentRAG(always_query, search=lambda v, k: documents[:k]).trace(QUESTION, max_retrievals=2)
    blocks = [("thought", s) for s in trace.thought_states] + [("query", s) for s in trace.query_states]
    batched = decode_latents(always_query, blocks)
    sequential = [decode_latents(always_query, [block])[0] for block in blocks]
    assert batched == sequential and len(batched) == 5


def test_decoding_fills_the_steps(always_query, documents):
    answer = LatentRAG(always_query, search=lambda v, k: documents[:k], decode=True).ask(QUESTION, max_retrievals=1)
    assert answer.steps[0].thought is not None and answer.steps[0].subquery is not None
    assert answer.final_thought is not None and "decode_ms" in answer.timings


def test_bad_input(tiny_model, documents):
    agent = LatentRAG(tiny_model, search=lambda v, k: documents[:k])
    with pytest.raises(ValueError, match="empty"):
        agent.ask("  ")
    with pytest.raises(ValueError, match="one of them"):
        LatentRAG(tiny_model)
