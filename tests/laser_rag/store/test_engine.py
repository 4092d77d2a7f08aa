"""The engine interface on its qdrant-client implementation (``":memory:"`` and an embedded folder), the one read
of qdrant-client internals (the local store's WAL mode), and a `VectorCollection` that uses nothing but the
interface."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from laser_rag.corpus import Document
from laser_rag.errors import CollectionNotFoundError, StoreError
from laser_rag.sparse import SparseEncoder
from laser_rag.store import (
    CollectionSpec,
    Engine,
    PointRecord,
    PointWrite,
    QdrantClientEngine,
    VectorCollection,
    connect,
    fusion_query,
    point_id,
)
from laser_rag.store.clients import local_mode_client
from laser_rag.store.engine import _enable_local_wal

#: The methods of the interface (what a second engine implements).
INTERFACE = {name for name, member in vars(Engine).items() if getattr(member, "__isabstractmethod__", False)}
TEXTS = ["the cat sat on the mat", "dogs chase cats", "a quiet lake at dawn", "stock markets fell sharply",
         "the mat was red"]


@pytest.fixture(params=["memory", "local"])
def engine(request, tmp_path):
    engine = QdrantClientEngine(connect(":memory:") if request.param == "memory" else
                                local_mode_client(tmp_path / "qdrant"))
    yield engine
    engine.close()


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fill(engine: Engine, name: str, *, sparse: bool, dim: int = 8) -> np.ndarray:
    vectors = unit(np.random.default_rng(0), len(TEXTS), dim)
    lexical = SparseEncoder().encode_documents(TEXTS)
    engine.create(name, CollectionSpec(dimension=dim, sparse=sparse, metadata={"laser_rag": {"n": 1}}))
    engine.upsert(name, [PointWrite(id=point_id(str(i)), dense=vector.tolist(), payload={"i": i},
                                    sparse=lexical[i] if sparse else None) for i, vector in enumerate(vectors)])
    return vectors


def test_kind_and_collections(engine):
    assert engine.kind == ("memory" if engine.client.init_options.get("location") else "local")
    assert engine.collection_names() == [] and not engine.exists("c")
    engine.create("c", CollectionSpec(dimension=8, sparse=False, metadata={"laser_rag": {"a": [1, 2]}}))
    assert engine.exists("c") and engine.collection_names() == ["c"]
    assert engine.metadata("c") == {"laser_rag": {"a": [1, 2]}} and engine.dense_size("c") == 8
    engine.set_metadata("c", {"laser_rag": {"a": [3]}})
    assert engine.metadata("c") == {"laser_rag": {"a": [3]}}
    assert engine.count("c") == 0
    engine.delete("c")
    assert not engine.exists("c")


def test_points_round_trip(engine):
    vectors = fill(engine, "c", sparse=False)
    assert engine.count("c") == len(TEXTS)
    ids = [point_id(str(i)) for i in range(len(TEXTS))]
    assert engine.existing_ids("c", [ids[0], ids[3], point_id("absent")]) == {ids[0], ids[3]}
    stored = engine.vectors("c", ids[:2])
    assert stored.keys() == set(ids[:2])
    np.testing.assert_allclose(stored[ids[1]], vectors[1], atol=1e-6)

    pages, offset, seen = [], None, []
    while True:
        page, offset = engine.scroll("c", limit=2, offset=offset)
        pages.append(len(page))
        seen.extend(page)
        if offset is None:
            break
    assert pages == [2, 2, 1] and all(isinstance(p, PointRecord) for p in seen)
    assert sorted(p.payload["i"] for p in seen) == list(range(len(TEXTS))) and {p.id for p in seen} == set(ids)

    engine.upsert("c", [PointWrite(id=ids[0], dense=vectors[0].tolist(), payload={"i": 0, "again": True})])
    assert engine.count("c") == len(TEXTS)  # an upsert replaces the point of the same id


def test_dense_queries_are_best_first(engine):
    vectors = fill(engine, "c", sparse=False)
    for exact in (False, True):
        found = engine.query_dense("c", vectors[2].tolist(), 3, exact=exact)
        assert found[0].id == point_id("2") and found[0].score == pytest.approx(1.0, abs=1e-5)
        assert [p.score for p in found] == sorted((p.score for p in found), reverse=True) and len(found) == 3
        expected = sorted(range(len(TEXTS)), key=lambda i: -float(vectors[i] @ vectors[2]))[:3]
        assert [p.id for p in found] == [point_id(str(i)) for i in expected]
    only = models.Filter(must=[models.FieldCondition(key="i", match=models.MatchValue(value=4))])
    assert [p.id for p in engine.query_dense("c", vectors[2].tolist(), 3, query_filter=only)] == [point_id("4")]


def test_sparse_and_hybrid_queries(engine):
    vectors = fill(engine, "c", sparse=True)
    query = SparseEncoder().encode_query("red mat")
    lexical = engine.query_sparse("c", query, 3)
    assert lexical[0].id == point_id("4") and {p.id for p in lexical} == {point_id("4"), point_id("0")}
    fused = engine.query_hybrid("c", vectors[3].tolist(), query, 3, fusion=fusion_query("rrf"), prefetch_limit=5)
    assert len(fused) == 3 and [p.score for p in fused] == sorted((p.score for p in fused), reverse=True)
    assert {point_id("3"), point_id("4")} <= {p.id for p in fused}  # the dense best and the lexical best
    dense_only = engine.query_hybrid("c", vectors[3].tolist(), None, 2, fusion=fusion_query("dbsf", sparse=False),
                                     prefetch_limit=5)
    assert [p.id for p in dense_only] == [p.id for p in engine.query_dense("c", vectors[3].tolist(), 2)]


def test_sparse_vectors_added_in_place(engine):
    vectors = fill(engine, "c", sparse=False)
    engine.add_sparse("c")
    lexical = SparseEncoder().encode_documents(TEXTS)
    engine.set_sparse("c", [(point_id(str(i)), vector) for i, vector in enumerate(lexical)])
    assert engine.query_sparse("c", SparseEncoder().encode_query("red mat"), 1)[0].id == point_id("4")
    stored = engine.vectors("c", [point_id("1")])[point_id("1")]
    np.testing.assert_allclose(stored, vectors[1], atol=1e-6)  # the dense vector is untouched


def test_a_missing_collection_raises_collection_not_found(engine):
    sparse = SparseEncoder().encode_query("mat")
    calls = {
        "delete": lambda: engine.delete("nope"),
        "metadata": lambda: engine.metadata("nope"),
        "set_metadata": lambda: engine.set_metadata("nope", {}),
        "dense_size": lambda: engine.dense_size("nope"),
        "count": lambda: engine.count("nope"),
        "existing_ids": lambda: engine.existing_ids("nope", [point_id("a")]),
        "upsert": lambda: engine.upsert("nope", [PointWrite(id=point_id("a"), dense=[1.0] * 8, payload={})]),
        "query_dense": lambda: engine.query_dense("nope", [1.0] * 8, 1),
        "query_sparse": lambda: engine.query_sparse("nope", sparse, 1),
        "query_hybrid": lambda: engine.query_hybrid("nope", [1.0] * 8, sparse, 1, fusion=fusion_query(),
                                                    prefetch_limit=2),
        "scroll": lambda: engine.scroll("nope", limit=1),
        "vectors": lambda: engine.vectors("nope", [point_id("a")]),
        "add_sparse": lambda: engine.add_sparse("nope"),
        "set_sparse": lambda: engine.set_sparse("nope", [(point_id("a"), sparse)]),
    }
    for name, call in calls.items():
        with pytest.raises(CollectionNotFoundError, match="no collection 'nope'"):
            call()
    assert set(calls) | {"collection_names", "exists", "create", "close"} == INTERFACE


def test_named_dense_vectors_are_refused(engine):
    engine.client.create_collection("named", vectors_config={"dense": models.VectorParams(
        size=4, distance=models.Distance.COSINE)})
    with pytest.raises(StoreError, match="named vectors"):
        engine.dense_size("named")


def test_local_writes_run_in_wal_mode(tmp_path):
    """The one read of qdrant-client internals (no public hook for the local store's SQLite settings). If this
    fails, qdrant-client changed them: local indexing is then much slower until `_enable_local_wal` is fixed."""
    folder = tmp_path / "q"
    engine = QdrantClientEngine(local_mode_client(folder))
    fill(engine, "c", sparse=False)
    mode = sqlite3.connect(folder / "collection" / "c" / "storage.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"  # the engine's first write tuned it
    assert _enable_local_wal(engine.client, "c") is True
    assert _enable_local_wal(connect(":memory:"), "c") is False  # nothing to tune in memory
    engine.close()


class OnlyTheInterface:
    """A duck-typed engine (as a second engine may be) that offers nothing but the interface, and records which
    of its methods were called."""

    kind = "test"

    def __init__(self, inner: Engine) -> None:
        self._inner = inner
        self.calls: set[str] = set()

    def __getattr__(self, name: str):
        if name not in INTERFACE:
            raise AttributeError(name)
        self.calls.add(name)
        return getattr(self._inner, name)


def test_a_collection_uses_only_the_interface(minilm, short_passages):
    engine = OnlyTheInterface(QdrantClientEngine(connect(":memory:")))
    collection = VectorCollection.open(engine, "c", minilm, hybrid=True)
    assert collection.engine is engine
    collection.index(short_passages[:4], minilm)
    target = short_passages[2]
    assert collection.search(minilm.encode_queries(target.text), k=1)[0].id == target.id
    sparse = collection.sparse_encoder.encode_query(target.text)
    assert collection.search_sparse(sparse, 1)[0].id == target.id
    assert collection.search_hybrid(minilm.encode_queries(target.text), sparse, 1)[0].id == target.id
    again = VectorCollection.open(engine, "c", minilm, hybrid=True)
    assert again.count() == 4 and again.stored_ids([target.id, "absent"]) == {target.id}
    assert engine.calls <= INTERFACE and {"create", "upsert", "query_hybrid"} <= engine.calls
    with pytest.raises(StoreError, match="no qdrant-client client"):
        collection.client  # noqa: B018 -- only a qdrant-client engine has one


def test_a_client_is_wrapped_and_stays_reachable(minilm):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    assert isinstance(collection.engine, QdrantClientEngine) and isinstance(collection.client, QdrantClient)
    assert collection.client is client  # what langchain-qdrant and LlamaIndex's QdrantVectorStore are handed
    collection.upsert([Document("d", "Text.", "T")], minilm.encode_documents(["T\nText."]))
    assert client.count("c").count == 1
