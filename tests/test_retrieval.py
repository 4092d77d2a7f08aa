"""The three retrieval modes behind one interface, on real models and local Qdrant."""

from __future__ import annotations

import numpy as np
import pytest

from laser_rag.config import CONFIG_NAME
from laser_rag.encoder import BUILTIN_CHECKPOINTS
from laser_rag.encoders import encoder_label, load_encoder
from laser_rag.retrieval import RetrievalMode, Retriever, encoder_for, open_retriever
from laser_rag.store import CollectionMismatchError, CollectionNotFoundError, VectorCollection, connect

QUERY = "What does the await expression do?"


@pytest.fixture(scope="module")
def laser(encoder, short_passages, laser_vectors):
    collection = VectorCollection.open(connect(":memory:"), "pydoc-laser-k3", encoder)
    collection.upsert(short_passages, laser_vectors)
    return Retriever(collection, encoder, mode="laser", k=4)


@pytest.fixture(scope="module")
def scifact_pool(shared_data):
    """Eight SciFact validation claims, their cited abstracts and 16 other abstracts (relevance from the qrels)."""
    from laser_rag.datasets import shared_dataset

    data = shared_dataset("scifact", "validation", data_dir=shared_data)
    qids = sorted(data.queries)[:8]
    relevant = {doc_id for qid in qids for doc_id in data.qrels[qid]}
    pool = [d for d in data.corpus if d.id in relevant] + [d for d in data.corpus if d.id not in relevant][:16]
    return [(data.queries[qid], set(data.qrels[qid])) for qid in qids], pool


@pytest.fixture(scope="module")
def minilm_client(minilm, scifact_pool):
    client = connect(":memory:")
    open_retriever("basic", corpus="scifact", basic_source="all-minilm-l6-v2", client=client,
                   create=True).index(scifact_pool[1])
    return client


def test_laser_mode_hits_and_timings(laser, short_passages):
    result = laser.retrieve(QUERY)
    assert result.mode is RetrievalMode.LASER and result.rationale is None
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


async def test_aretrieve(laser):
    result = await laser.aretrieve(QUERY, k=3)
    assert [h.id for h in result.hits] == [h.id for h in laser.retrieve(QUERY, k=3).hits]


def test_basic_encoder_is_single_pass(encoder):
    basic = encoder_for("basic")
    if (BUILTIN_CHECKPOINTS["basic"] / CONFIG_NAME).is_file():
        assert basic.config.num_thinking_steps == 1 and basic.fingerprint != encoder.fingerprint
    else:  # until the fair-baseline adapter ships: the default backbone, one pass, the same weights
        assert basic.config.num_thinking_steps == 1
        assert basic.model is load_encoder().model
        assert basic.fingerprint != encoder.fingerprint
    assert encoder_label(basic) == "basic"


def test_basic_mode_with_minilm_finds_cited_abstracts(minilm, minilm_client, scifact_pool):
    retriever = open_retriever("basic", corpus="scifact", basic_source="all-minilm-l6-v2", client=minilm_client)
    assert retriever.collection.name == "scifact-all-minilm-l6-v2"
    claims, _ = scifact_pool
    found = sum(any(h.id in relevant for h in retriever.retrieve(claim, k=3).hits) for claim, relevant in claims)
    assert found >= 6  # SciFact's own qrels define relevance


def test_rewrite_mode_reasons_then_searches_the_basic_collection(minilm_client, local_llm, scifact_pool):
    retriever = open_retriever("rewrite", corpus="scifact", basic_source="all-minilm-l6-v2",
                               client=minilm_client, llm=local_llm, k=3)
    retriever.rewrite_max_new_tokens = 8
    assert retriever.collection.name == "scifact-all-minilm-l6-v2"
    claim = scifact_pool[0][0][0]
    result = retriever.retrieve(claim)
    assert result.mode is RetrievalMode.REWRITE and result.rationale
    assert result.timings["rewrite_ms"] > 0 and len(result.hits) == 3
    vector = retriever.encoder.encode_queries([claim], rationales=[result.rationale])[0]
    assert [h.id for h in result.hits] == [h.id for h in retriever.collection.search(vector, k=3)]


def test_errors(laser, minilm, minilm_client):
    with pytest.raises(ValueError, match="empty"):
        laser.retrieve("  ")
    basic = open_retriever("basic", corpus="scifact", basic_source="all-minilm-l6-v2", client=minilm_client)
    with pytest.raises(ValueError, match="laser mode only"):
        basic.retrieve(QUERY, num_thinking_steps=3)
    with pytest.raises(CollectionMismatchError):
        Retriever(basic.collection, laser.encoder)
    with pytest.raises(CollectionNotFoundError):
        open_retriever("basic", corpus="nothing-here", basic_source="all-minilm-l6-v2", client=minilm_client)
    with pytest.raises(ValueError):
        RetrievalMode("fast")
