"""Collections configured for scale (`CollectionOptions`, `BulkLoad`, rescoring at query time) on the engines CI has:
Qdrant Edge applies on-disk storage and quantization (checked in the shard's own config and by how it scores),
shards and replicas are refused by every embedded engine, qdrant-client's local mode refuses what it cannot do,
and a quantized collection searched with rescoring finds what float32 finds on a real corpus (SciFact abstracts,
all-MiniLM-L6-v2). The same on a real Qdrant server: tests/laser_rag/test_store.py (QDRANT_URL)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from laser_rag.corpus import Document
from laser_rag.errors import InvalidInputError, StoreError
from laser_rag.retrieval import RetrievalOptions
from laser_rag.store import BulkLoad, CollectionOptions, VectorCollection, connect, point_id
from laser_rag.store.edge import EdgeEngine, EdgeIndexConfig
from laser_rag.store.engine import PointWrite

#: Every segment indexed (and so quantized) however few points it holds: quantization applies to indexed segments.
SMALL = EdgeIndexConfig(indexing_threshold_kb=1, full_scan_threshold_kb=1)


@pytest.fixture(scope="module")
def scifact(minilm, scifact_slice):
    """The SciFact slice (80 abstracts, 12 judged claims) with its all-MiniLM-L6-v2 vectors."""
    qids = sorted(scifact_slice.qrels)
    documents = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in scifact_slice.corpus])
    queries = minilm.encode_queries([scifact_slice.queries[q] for q in qids])
    return scifact_slice.corpus, np.asarray(documents, np.float32), np.asarray(queries, np.float32)


def _shard_config(engine: EdgeEngine, name: str) -> dict:
    """The configuration Qdrant Edge persisted for the collection's shard (what it loads it with)."""
    return json.loads((engine.path / name / "shard" / "edge_config.json").read_text())


def _filled(engine, name, scifact, options, **open_kwargs):
    corpus, documents, _ = scifact
    collection = VectorCollection.open(engine, name, fingerprint="minilm", dimension=documents.shape[1],
                                       options=options, **open_kwargs)
    collection.upsert(corpus, documents)
    return collection


def test_edge_applies_the_options_and_records_them(tmp_path):
    options = CollectionOptions(on_disk_vectors=True, on_disk_payload=False, quantization="int8")
    with EdgeEngine(tmp_path / "edge") as engine:
        collection = VectorCollection.open(engine, "c", fingerprint="f", dimension=8, options=options)
        binary = VectorCollection.open(engine, "b", fingerprint="f", dimension=8,
                                       options=CollectionOptions(quantization="binary", quantization_in_ram=False))
        config = _shard_config(engine, "c")
        assert config["vectors"][""]["memory"] == "cold" and config["payload_memory"] == "cached"
        assert config["quantization_config"] == {"scalar": {"type": "int8", "quantile": 0.99, "memory": "pinned"}}
        assert "binary" in _shard_config(engine, "b")["quantization_config"]
        assert collection.options == options and binary.options.quantization == "binary"
        assert collection.info["options"] == options.to_dict()
    with EdgeEngine(tmp_path / "edge") as reopened:  # the metadata tells a reopen what the collection is
        assert VectorCollection.open(reopened, "c", fingerprint="f", dimension=8).options == options
        assert VectorCollection.open_existing(reopened, "b").options.quantization_in_ram is False
        # asking again with other options keeps the collection's own (they apply at creation only)
        assert VectorCollection.open(reopened, "c", fingerprint="f", dimension=8,
                                     options=CollectionOptions(quantization="binary")).options == options


@pytest.mark.parametrize("server_only", [{"shard_number": 2}, {"replication_factor": 2}])
def test_embedded_engines_refuse_shards_and_replicas(tmp_path, server_only):
    with EdgeEngine(tmp_path / "edge") as engine:
        with pytest.raises(StoreError, match="need a Qdrant server"):
            VectorCollection.open(engine, "c", fingerprint="f", dimension=8, options=CollectionOptions(**server_only))
        assert engine.collection_names() == []
    client = connect(":memory:")
    with pytest.raises(StoreError, match="a Qdrant server for shards and replicas"):
        VectorCollection.open(client, "c", fingerprint="f", dimension=8, options=CollectionOptions(**server_only))
    assert not client.collection_exists("c")


def test_local_mode_refuses_what_it_cannot_do_and_takes_the_defaults():
    client = connect(":memory:")
    for options in (CollectionOptions(quantization="int8"), CollectionOptions(on_disk_vectors=True)):
        with pytest.raises(StoreError, match="scans them all.*Qdrant Edge"):
            VectorCollection.open(client, "c", fingerprint="f", dimension=8, options=options)
        assert not client.collection_exists("c")
    collection = VectorCollection.open(client, "c", fingerprint="f", dimension=8, options=CollectionOptions())
    collection.upsert([Document("a", "x")], np.ones((1, 8), np.float32))
    # rescoring is for quantized collections: on this one it changes nothing
    assert collection.search(np.ones(8), 1, rescore=False, oversampling=3.0)[0].id == "a"


@pytest.mark.parametrize("bad", [{"shard_number": 0}, {"replication_factor": True}, {"quantization": "int4"}])
def test_bad_options_are_refused(bad):
    with pytest.raises(InvalidInputError):
        CollectionOptions(**bad)


@pytest.mark.parametrize("bad", [{"parallel": 0}, {"timeout": -1.0}])
def test_bad_bulk_loads_are_refused(bad):
    with pytest.raises(InvalidInputError):
        BulkLoad(**bad)


@pytest.mark.parametrize("bad", [{"rescore": "yes"}, {"oversampling": 0.5}, {"oversampling": True}])
def test_bad_rescoring_is_refused(bad, tmp_path):
    with pytest.raises(InvalidInputError):
        RetrievalOptions(**bad)
    collection = VectorCollection.open(connect(":memory:"), "c", fingerprint="f", dimension=2)
    with pytest.raises(InvalidInputError):
        collection.search([1.0, 0.0], 1, **bad)


# binary: 1 bit per dimension finds the float32 top 5 among its own top 80 (the whole slice) only; the quality it
# keeps at smaller oversampling is measured (benchmarks/store_quantization.py), not asserted
@pytest.mark.parametrize(("quantization", "search"), [("int8", {}), ("binary", {"oversampling": 16.0})])
def test_quantized_search_with_rescoring_finds_the_float32_hits(tmp_path, scifact, quantization, search):
    _, _, queries = scifact
    with EdgeEngine(tmp_path / "edge", SMALL) as engine:
        reference = _filled(engine, "float32", scifact, CollectionOptions())
        quantized = _filled(engine, "quantized", scifact, CollectionOptions(quantization=quantization))
        quantized.build_index()
        for query in queries:
            exact = reference.search(query, 5, exact=True)
            rescored = quantized.search(query, 5, **search)
            assert [h.id for h in rescored] == [h.id for h in exact]
            np.testing.assert_allclose([h.score for h in rescored], [h.score for h in exact], atol=1e-5)
        # the quantized vectors are what was searched: without rescoring the scores are theirs, not float32's
        assert _quantization_error(quantized, queries) > 1e-3


def test_a_bulk_load_on_edge_builds_the_index_before_it_returns(tmp_path, minilm, scifact):
    corpus, _, queries = scifact
    with EdgeEngine(tmp_path / "edge", SMALL) as engine:
        options = CollectionOptions(quantization="int8")
        plain = _filled(engine, "plain", scifact, options)  # 80 points: under optimize_after, nothing built yet
        bulk = VectorCollection.open(engine, "bulk", minilm, options=options)
        report = bulk.index(corpus[:30], minilm, bulk=BulkLoad(), batch_size=16)
        assert report.added == 30 and bulk.count() == 30
        # only an indexed (optimised) segment holds quantized vectors, so unrescored scores tell which were built
        assert _quantization_error(plain, queries) < 1e-6
        assert _quantization_error(bulk, queries) > 1e-3
        assert [h.id for h in bulk.search(queries[0], 3)] == [h.id for h in bulk.search(queries[0], 3, exact=True)]


def _quantization_error(collection, queries) -> float:
    """The largest gap between a collection's unrescored top score and its exact one, over the queries."""
    return max(abs(collection.search(q, 1, rescore=False)[0].score - collection.search(q, 1, exact=True)[0].score)
               for q in queries)


def test_a_bulk_load_without_an_index_to_defer_is_a_plain_load(minilm, scifact):
    corpus, _, queries = scifact
    collection = VectorCollection.open(connect(":memory:"), "c", minilm)
    assert collection.index(corpus[:6], minilm, bulk=BulkLoad(parallel=4)).added == 6
    assert collection.index(corpus[:6], minilm, bulk=BulkLoad()).skipped == 6
    assert len(collection.search(queries[0], 3)) == 3


def test_edge_upserts_numpy_rows_and_lists_alike(tmp_path):
    from qdrant_client import models

    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((4, 6)).astype(np.float32)
    lexical = models.SparseVector(indices=[3, 1], values=[1, 2])  # ints: pydantic keeps them as floats
    with EdgeEngine(tmp_path / "edge") as engine:
        from laser_rag.store import CollectionSpec

        engine.create("c", CollectionSpec(dimension=6, sparse=True, metadata={}))
        engine.upsert("c", [PointWrite(point_id("0"), vectors[0], {"i": 0}, lexical),
                            PointWrite(point_id("1"), vectors[1].tolist(), {"i": 1}),
                            PointWrite(point_id("2"), list(vectors[2].astype(np.float64)), {"i": 2})])
        stored = engine.vectors("c", [point_id(str(i)) for i in range(3)])
        for i in range(3):
            np.testing.assert_allclose(stored[point_id(str(i))], vectors[i] / np.linalg.norm(vectors[i]), atol=1e-6)
        assert engine.query_sparse("c", models.SparseVector(indices=[1], values=[1.0]), 1)[0].payload == {"i": 0}
