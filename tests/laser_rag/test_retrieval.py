"""A retriever = a collection + an encoder + an optional query rewriter; the modes are presets of these parts."""

from __future__ import annotations

import numpy as np
import pytest

from laser_rag.config import CONFIG_NAME
from laser_rag.errors import CollectionMismatchError, CollectionNotFoundError, GenerationError
from laser_rag.llm import GenerationConfig
from laser_rag.modes import RetrievalMode
from laser_rag.retrieval import (
    REWRITE_PROMPT,
    QueryRewriter,
    RetrievalOptions,
    Retriever,
    encoder_for,
    open_retriever,
    rewriter_for,
)
from laser_rag.store import VectorCollection, connect

QUERY = "What does the await expression do?"


class Scripted:
    """An LLM that writes a fixed rationale and records its prompts and token budgets."""

    name = "scripted"

    def __init__(self, reply: str = "The await expression suspends the coroutine until the awaitable is done."):
        self.reply, self.calls = reply, []

    def generate(self, messages, *, max_new_tokens=None):
        self.calls.append((messages, max_new_tokens))
        return self.reply


@pytest.fixture(scope="module")
def laser(encoder, short_passages):
    collection = VectorCollection.open(connect(":memory:"), "pydoc-laser-k3", encoder)
    collection.index(short_passages, encoder)
    return Retriever(collection, encoder, mode="laser", options=RetrievalOptions(k=4))


@pytest.fixture(scope="module")
def scifact_pool(shared_data):
    """Eight SciFact validation claims, their cited abstracts and 16 other abstracts (relevance from the qrels)."""
    from laser_rag_datasets.shared import shared_dataset

    data = shared_dataset("scifact", "validation", data_dir=shared_data)
    qids = sorted(data.queries)[:8]
    relevant = {doc_id for qid in qids for doc_id in data.qrels[qid]}
    pool = [d for d in data.corpus if d.id in relevant] + [d for d in data.corpus if d.id not in relevant][:16]
    return [(data.queries[qid], set(data.qrels[qid])) for qid in qids], pool


@pytest.fixture(scope="module")
def minilm_client(minilm, scifact_pool):
    client = connect(":memory:")
    open_retriever("basic", "scifact", encoder=minilm, client=client, create=True).index(scifact_pool[1])
    return client


def test_laser_mode_hits_and_timings(laser, short_passages):
    result = laser.retrieve(QUERY)
    assert result.mode == RetrievalMode.LASER == "laser" and result.rationale is None
    assert len(result.hits) == 4 and {h.id for h in result.hits} <= {d.id for d in short_passages}
    assert result.timings["rewrite_ms"] == 0.0
    assert result.timings["encode_ms"] > 0 and result.timings["search_ms"] > 0
    assert len(laser.retrieve(QUERY, k=2).hits) == 2


def test_k_can_change_per_query(laser, encoder):
    three = laser.retrieve(QUERY, k=12)
    one = laser.retrieve(QUERY, k=12, num_thinking_steps=1)
    vector = encoder.encode_queries([QUERY], num_thinking_steps=1)[0]
    expected = laser.collection.search(vector, k=12)
    assert [h.id for h in one.hits] == [h.id for h in expected]
    assert not np.allclose([h.score for h in one.hits], [h.score for h in three.hits])


def test_instruction_passes_through(laser, encoder):
    instruction = "Given a question about Python, retrieve the language reference section that answers it"
    result = laser.retrieve(QUERY, k=5, instruction=instruction)
    vector = encoder.encode_queries([QUERY], instruction=instruction)[0]
    assert [(h.id, round(h.score, 4)) for h in result.hits] == \
        [(h.id, round(h.score, 4)) for h in laser.collection.search(vector, k=5)]


def test_thoughts_come_with_the_hits_of_the_same_vector(laser, encoder):
    plain = laser.retrieve(QUERY, k=5)
    result = laser.retrieve(QUERY, k=5, thoughts=3)
    assert plain.thoughts is None
    # the same vector (scores to float32 rounding: the embedded engine's numpy dot depends on memory alignment)
    assert [h.id for h in result.hits] == [h.id for h in plain.hits]
    np.testing.assert_allclose([h.score for h in result.hits], [h.score for h in plain.hits], atol=1e-6)
    assert len(result.thoughts.steps) == encoder.num_thinking_steps and len(result.thoughts.steps[0]) == 3
    np.testing.assert_array_equal(result.thoughts.vector, encoder.encode_queries([QUERY])[0])
    one = laser.retrieve(QUERY, thoughts=2, num_thinking_steps=1)
    assert len(one.thoughts.steps) == 1


async def test_aretrieve(laser):
    result = await laser.aretrieve(QUERY, k=3)
    assert [h.id for h in result.hits] == [h.id for h in laser.retrieve(QUERY, k=3).hits]


def test_basic_encoder_is_single_pass(encoder):
    from laser_rag.encoders import BUILTIN_CHECKPOINTS, load_encoder

    basic = encoder_for("basic")
    assert basic.num_thinking_steps == 1 and basic.fingerprint != encoder.fingerprint
    assert basic.label == "basic"
    if not (BUILTIN_CHECKPOINTS["basic"] / CONFIG_NAME).is_file():  # the fallback: the backbone, one pass
        from laser_rag import backbones

        assert basic.model is load_encoder(backbones.DEFAULT_BASE, num_thinking_steps=1).model
    assert encoder_for("rewrite") is basic  # rewrite reads with the basic encoder, loaded once


def test_a_chosen_source_keeps_the_presets_k(encoder, minilm):
    single = encoder_for("basic", "builtin:laser")  # a LaSER checkpoint chosen for basic runs one pass
    assert single.num_thinking_steps == 1 and single.model is encoder_for("laser").model
    assert encoder_for("laser", "builtin:laser").num_thinking_steps == encoder_for("laser").num_thinking_steps
    assert encoder_for("basic", "all-minilm-l6-v2") is minilm


def test_the_mode_name_defaults_from_the_parts(laser):
    assert Retriever(laser.collection, laser.encoder).mode == laser.encoder.label
    assert Retriever(laser.collection, laser.encoder, QueryRewriter(Scripted())).mode == "rewrite"
    assert "pydoc-laser-k3" in repr(laser)


def test_basic_mode_with_minilm_finds_cited_abstracts(minilm, minilm_client, scifact_pool):
    retriever = open_retriever("basic", "scifact", encoder=encoder_for("basic", "all-minilm-l6-v2"),
                               client=minilm_client)
    assert retriever.collection.name == "scifact-all-minilm-l6-v2" and retriever.rewriter is None
    claims, _ = scifact_pool
    found = sum(any(h.id in relevant for h in retriever.retrieve(claim, k=3).hits) for claim, relevant in claims)
    assert found >= 6  # SciFact's own qrels define relevance


def test_rewrite_mode_reasons_then_searches_the_basic_collection(minilm, minilm_client, local_llm, scifact_pool):
    retriever = open_retriever("rewrite", "scifact", encoder=minilm, client=minilm_client,
                               llm=QueryRewriter(local_llm, max_new_tokens=8),
                               options=RetrievalOptions(k=3))
    assert retriever.collection.name == "scifact-all-minilm-l6-v2" and retriever.rewriter.max_new_tokens == 8
    claim = scifact_pool[0][0][0]
    result = retriever.retrieve(claim)
    assert result.mode == "rewrite" and result.rationale
    assert result.timings["rewrite_ms"] > 0 and len(result.hits) == 3
    vector = minilm.encode_explicit([claim], [result.rationale])[0]
    assert [h.id for h in result.hits] == [h.id for h in retriever.collection.search(vector, k=3)]


def test_the_rewriter_owns_its_prompt_and_budget(minilm, minilm_client):
    llm = Scripted()
    rewriter = QueryRewriter(llm, max_new_tokens=5)
    assert rewriter.rewrite(QUERY) == llm.reply
    messages, budget = llm.calls[-1]
    assert budget == 5 and messages == [{"role": "user", "content": REWRITE_PROMPT.format(query=QUERY)}]
    assert QueryRewriter(llm).max_new_tokens == 64  # GenerationConfig.rewrite_max_new_tokens
    custom = QueryRewriter(llm, prompt="Explain: {query}")
    custom.rewrite("x")
    assert llm.calls[-1][0][0]["content"] == "Explain: x"
    retriever = open_retriever("rewrite", "scifact", encoder=minilm, client=minilm_client, llm=llm)
    assert isinstance(retriever.rewriter, QueryRewriter) and retriever.rewriter.llm is llm
    assert retriever.retrieve(QUERY, k=2).rationale == llm.reply
    with pytest.raises(ValueError, match="{query}"):
        QueryRewriter(llm, prompt="no field")
    with pytest.raises(GenerationError, match="empty rationale"):
        QueryRewriter(Scripted(reply="  ")).rewrite(QUERY)


def test_errors(laser, minilm, minilm_client):
    with pytest.raises(ValueError, match="empty"):
        laser.retrieve("  ")
    basic = open_retriever("basic", "scifact", encoder=minilm, client=minilm_client)
    with pytest.raises(ValueError, match="LaSER encoder"):
        basic.retrieve(QUERY, num_thinking_steps=3)
    with pytest.raises(ValueError, match="single-pass"):
        basic.retrieve(QUERY, thoughts=3)
    rewriting = Retriever(basic.collection, minilm, QueryRewriter(Scripted()))
    with pytest.raises(ValueError, match="instruction cannot apply with a query rewriter"):
        rewriting.retrieve(QUERY, instruction="Find it")
    with pytest.raises(ValueError, match="thoughts cannot apply with a query rewriter"):
        rewriting.retrieve(QUERY, thoughts=3)
    with pytest.raises(ValueError, match="thoughts"):
        laser.retrieve(QUERY, thoughts=0)
    with pytest.raises(CollectionMismatchError):
        Retriever(basic.collection, laser.encoder)
    with pytest.raises(CollectionNotFoundError):
        open_retriever("basic", "nothing-here", encoder=minilm, client=minilm_client)
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        open_retriever("fast", encoder=minilm, client=minilm_client)


def test_options_are_checked_once_and_one_function_builds_a_rewriter():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        RetrievalOptions(k=0)
    with pytest.raises(ValueError):
        RetrievalOptions(hybrid=True, fusion="max")
    llm = Scripted()
    assert rewriter_for("basic", llm) is None and rewriter_for("laser") is None
    rewriter = rewriter_for("rewrite", llm, generation=GenerationConfig(rewrite_max_new_tokens=7))
    assert rewriter.llm is llm and rewriter.max_new_tokens == 7 and rewriter_for("rewrite", rewriter) is rewriter
