"""Hybrid search: the lexical sparse encoder (stable across processes, stopwords, stemming, BM25 weights), hybrid
collections fused server-side (checked against an RRF computed here), the clear error on a dense-only collection,
and the in-place upgrade that keeps every dense vector."""

from __future__ import annotations

from laser_rag.retrieval import RetrievalOptions

import json
import subprocess
import sys

import numpy as np
import pytest
from qdrant_client import models

from laser_rag.errors import HybridNotEnabledError, StoreError
from laser_rag.retrieval import Retriever, open_retriever
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseConfig, SparseEncoder, token_index
from laser_rag.store import RRF_K, VectorCollection, connect

TEXT = "Vitamin D supplementation lowers the risk of hip fractures in older adults."


@pytest.fixture(scope="module")
def scifact(scifact_slice):
    return scifact_slice


@pytest.fixture(scope="module")
def vectors(minilm, scifact):
    return minilm.encode_documents([minilm.document_text(d.title, d.text) for d in scifact.corpus])


def _dense_collection(minilm, scifact, vectors, name="scifact-dense"):
    collection = VectorCollection.open(connect(":memory:"), name, minilm)
    collection.upsert(scifact.corpus, vectors)
    return collection


# --------------------------------------------------------------------------------------------------- the encoder


def test_the_same_text_gives_the_same_vector_in_another_process():
    here = SparseEncoder().encode_documents([TEXT])[0]
    script = ("import json; from laser_rag.sparse import SparseEncoder; "
              f"v = SparseEncoder().encode_documents([{TEXT!r}])[0]; print(json.dumps([v.indices, v.values]))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(other.stdout) == [here.indices, here.values]
    assert token_index("fractur") == int.from_bytes(__import__("hashlib").blake2b(b"fractur", digest_size=4).digest(),
                                                    "little")


def test_stopwords_go_and_words_are_stemmed():
    encoder = SparseEncoder()
    assert encoder.config.stemmed  # PyStemmer is a core dependency
    assert encoder.tokens(["The runners are running to the houses"]) == [["runner", "run", "hous"]]
    assert SparseEncoder(SparseConfig(stem=False)).tokens(["The runners are running"]) == [["runners", "running"]]
    assert encoder.encode_query("the of and to").indices == []  # nothing but stopwords
    # a query and a document share the stem's index: "fractures" finds "fracture"
    assert set(encoder.encode_query("fracture").indices) <= set(encoder.encode_documents([TEXT])[0].indices)
    assert SparseConfig().fingerprint != SparseConfig(stem=False).fingerprint != SparseConfig(k1=1.5).fingerprint


def test_document_weights_are_bm25_saturation_and_query_weights_are_one():
    config = SparseConfig(k1=1.2, b=0.75, avg_length=4)
    vector = SparseEncoder(config).encode_documents(["apple apple banana cherry"])[0]
    weights = dict(zip(vector.indices, vector.values))
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4)
    assert weights[token_index("appl")] == pytest.approx(2 * 2.2 / (2 + norm))
    assert weights[token_index("banana")] == pytest.approx(1 * 2.2 / (1 + norm))
    query = SparseEncoder(config).encode_query("apple apple banana")
    assert sorted(query.values) == [1.0, 1.0] and query.indices == sorted(query.indices)
    with pytest.raises(ValueError):
        SparseConfig(b=2)


# --------------------------------------------------------------------------------------------------- the store


def test_a_hybrid_search_fuses_its_two_prefetches_by_dbsf_or_weighted_rrf(minilm, scifact, vectors):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "scifact-hybrid", minilm, hybrid=True)
    collection.upsert(scifact.corpus, vectors)
    info = client.get_collection("scifact-hybrid").config
    assert info.params.sparse_vectors[SPARSE_VECTOR_NAME].modifier == models.Modifier.IDF
    assert info.metadata["laser_rag"]["sparse"]["fingerprint"] == SparseEncoder().fingerprint
    for query in list(scifact.queries.values())[:4]:
        dense = minilm.encode_queries([query])[0]
        sparse = collection.sparse_encoder.encode_query(query)
        dense_hits, sparse_hits = collection.search(dense, 20), collection.search_sparse(sparse, 20)
        dense_list, sparse_list = [h.id for h in dense_hits], [h.id for h in sparse_hits]
        # the default, distribution-based score fusion: each list's scores rescaled so that its mean -/+ 3 sample
        # standard deviations map to 0 and 1, then summed
        fused: dict[str, float] = {}
        for found in (dense_hits, sparse_hits):
            scores = np.array([h.score for h in found])
            low, high = scores.mean() - 3 * scores.std(ddof=1), scores.mean() + 3 * scores.std(ddof=1)
            for h in found:
                fused[h.id] = fused.get(h.id, 0.0) + (h.score - low) / (high - low)
        hits = collection.search_hybrid(dense, sparse, 10, prefetch_limit=20)
        assert [h.score for h in hits] == pytest.approx(sorted(fused.values(), reverse=True)[:10])
        assert all(h.score == pytest.approx(fused[h.id]) for h in hits)
        for rrf_k, weights in ((None, None), (60, (1.0, 2.0)), (10, (3.0, 1.0))):
            # weighted reciprocal rank fusion as Qdrant defines it: w / (rank + w * (k - 1)), rank from 1
            k_, (w_dense, w_sparse) = rrf_k or RRF_K, weights or (1.0, 1.0)
            fused = {}
            for ranking, w in ((dense_list, w_dense), (sparse_list, w_sparse)):
                for rank, doc_id in enumerate(ranking, start=1):
                    fused[doc_id] = fused.get(doc_id, 0.0) + w / (rank + w * (k_ - 1))
            hits = collection.search_hybrid(dense, sparse, 10, fusion="rrf", prefetch_limit=20, rrf_k=rrf_k,
                                             weights=weights)
            assert [h.score for h in hits] == pytest.approx(sorted(fused.values(), reverse=True)[:10])
            assert all(h.score == pytest.approx(fused[h.id]) for h in hits)
    dbsf = collection.search_hybrid(dense, sparse, 5, fusion="dbsf")
    assert len(dbsf) == 5
    with pytest.raises(ValueError, match="unknown fusion"):
        collection.search_hybrid(dense, sparse, 5, fusion="max")
    with pytest.raises(ValueError, match="apply to fusion=.rrf. only"):
        collection.search_hybrid(dense, sparse, 5, fusion="dbsf", weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="both positive"):
        collection.search_hybrid(dense, sparse, 5, fusion="rrf", weights=(1.0, 0.0))


def test_a_dense_only_collection_refuses_hybrid_with_the_upgrade_command(minilm, scifact, vectors):
    collection = _dense_collection(minilm, scifact, vectors)
    with pytest.raises(HybridNotEnabledError, match="laser-rag upgrade-hybrid --collection scifact-dense"):
        VectorCollection.open(collection.client, "scifact-dense", minilm, hybrid=True)
    with pytest.raises(HybridNotEnabledError, match="upgrade-hybrid"):
        Retriever(collection, minilm, options=RetrievalOptions(hybrid=True))
    with pytest.raises(HybridNotEnabledError):
        collection.search_hybrid(vectors[0], SparseEncoder().encode_query("vitamin"), 3)
    with pytest.raises(HybridNotEnabledError):
        open_retriever("basic", collection="scifact-dense", encoder=minilm, client=collection.client, options=RetrievalOptions(hybrid=True))


def test_the_upgrade_keeps_every_dense_vector_and_makes_hybrid_work(minilm, scifact, vectors):
    collection = _dense_collection(minilm, scifact, vectors, "scifact-upgrade")
    client = collection.client

    def dense_vectors():
        points, _ = client.scroll("scifact-upgrade", limit=1000, with_vectors=True)
        return {p.id: np.asarray(p.vector[""] if isinstance(p.vector, dict) else p.vector, dtype=np.float32)
                for p in points}

    before = dense_vectors()
    opened = VectorCollection.open_existing(client, "scifact-upgrade")
    assert not opened.hybrid
    assert opened.enable_hybrid(batch_size=32) == len(scifact.corpus)
    after = dense_vectors()
    assert before.keys() == after.keys() and all(np.array_equal(before[i], after[i]) for i in before)
    assert opened.enable_hybrid() == 0  # already hybrid: nothing to do
    reopened = VectorCollection.open(client, "scifact-upgrade", minilm, hybrid=True)
    retriever = Retriever(reopened, minilm, options=RetrievalOptions(hybrid=True))
    query = next(iter(scifact.queries.values()))
    result = retriever.retrieve(query, k=5)
    assert result.mode == f"{minilm.label}+hybrid" and "sparse_ms" in result.timings and len(result.hits) == 5
    # the retriever's fusion settings are the store's
    weighted = Retriever(reopened, minilm, options=RetrievalOptions(hybrid=True, fusion="rrf", rrf_k=60, fusion_weights=(1.0, 3.0)))
    weighted = weighted.retrieve(query, k=5)
    expected = reopened.search_hybrid(minilm.encode_queries([query])[0], reopened.sparse_encoder.encode_query(query),
                                      5, fusion="rrf", rrf_k=60, weights=(1.0, 3.0))
    assert [h.id for h in weighted.hits] == [h.id for h in expected]
    with pytest.raises(ValueError, match="rrf_k"):
        Retriever(reopened, minilm, options=RetrievalOptions(hybrid=True, fusion="rrf", rrf_k=0))
    # the upgrade's vectors are those indexing would have written
    fresh = VectorCollection.open(connect(":memory:"), "fresh", minilm, hybrid=True)
    fresh.upsert(scifact.corpus, vectors)
    sparse = reopened.sparse_encoder.encode_query(query)
    assert ([h.id for h in reopened.search_sparse(sparse, 10)] == [h.id for h in fresh.search_sparse(sparse, 10)])


def test_an_interrupted_upgrade_refuses_hybrid_until_it_is_run_again(minilm, scifact, vectors, monkeypatch):
    collection = _dense_collection(minilm, scifact, vectors, "scifact-interrupted")
    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(collection.client, "update_vectors", crash)
        with pytest.raises(KeyboardInterrupt):
            collection.enable_hybrid(batch_size=16)
    assert calls
    reopened = VectorCollection.open_existing(collection.client, "scifact-interrupted")
    assert not reopened.hybrid
    with pytest.raises(HybridNotEnabledError, match="unfinished"):
        VectorCollection.open(collection.client, "scifact-interrupted", minilm, hybrid=True)
    assert reopened.enable_hybrid(batch_size=16) == len(scifact.corpus)
    assert VectorCollection.open(collection.client, "scifact-interrupted", minilm, hybrid=True).hybrid


def test_a_collection_whose_sparse_weights_cannot_be_reproduced_is_refused(minilm, scifact, vectors):
    collection = VectorCollection.open(connect(":memory:"), "odd", minilm, hybrid=True)
    info = {**collection.info, "sparse": {**collection.info["sparse"], "fingerprint": "0" * 16}}
    collection.client.update_collection("odd", metadata={"laser_rag": info})
    with pytest.raises(StoreError, match="cannot reproduce"):
        VectorCollection.open(collection.client, "odd", minilm, hybrid=True)


# --------------------------------------------------------------------------------------------------- retrieval


def test_hybrid_minilm_finds_cited_abstracts(minilm, scifact):
    """On real claims with SciFact's qrels: hybrid finds a cited abstract in the top 3 at least as often as dense."""
    client = connect(":memory:")
    hybrid = open_retriever("basic", "scifact", encoder=minilm, client=client, create=True, options=RetrievalOptions(hybrid=True))
    report = hybrid.index(scifact.corpus)
    assert report.added == len(scifact.corpus) and report.sparse_seconds > 0
    dense = open_retriever("basic", "scifact", encoder=minilm, client=client)
    assert hybrid.mode == "basic+hybrid" and dense.mode == "basic" and not dense.hybrid

    def found(retriever):
        return sum(any(h.id in scifact.qrels[qid] for h in retriever.retrieve(query, k=3).hits)
                   for qid, query in scifact.queries.items())

    assert found(hybrid) >= max(found(dense), 8)
