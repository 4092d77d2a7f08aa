"""The Qdrant Edge engine (`laser_rag.store.edge.EdgeEngine`) on real shards in tmp folders: collections and their
metadata across close + reopen, idempotent upserts, dense / sparse / hybrid queries that agree with qdrant-client's
``:memory:`` engine on the same real vectors, filters, the hybrid upgrade, one process per folder, and a writer
killed with SIGKILL mid-upsert."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from laser_rag.errors import CollectionNotFoundError, QdrantUnavailableError, StoreError
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseEncoder
from laser_rag.store import fusion_query, point_id
from laser_rag.store.edge import EdgeEngine, EdgeIndexConfig
from laser_rag.store.engine import CollectionSpec, PointWrite

METADATA = {"laser_rag": {"fingerprint": "abc", "dimension": 576, "sparse": {"name": "bm25", "complete": True}}}
QUERIES = ["how do I use the with statement?", "pass does nothing", "what is a keyword argument",
           "break out of a loop", "delete a name"]
FUSIONS = {
    "dbsf": fusion_query("dbsf"),
    "rrf-qdrant-default": models.FusionQuery(fusion=models.Fusion.RRF),
    "rrf-k2": fusion_query("rrf"),
    "rrf-k60-weighted": fusion_query("rrf", rrf_k=60, weights=(1.0, 2.0)),
}


@pytest.fixture(scope="module")
def passages(short_passages, laser_vectors):
    """The real passages with their default-encoder vectors, BM25 sparse vectors and payloads."""
    sparse = SparseEncoder().encode_documents([f"{doc.title}\n{doc.text}" for doc in short_passages])
    return [PointWrite(id=point_id(doc.id), dense=np.asarray(vector, np.float32).tolist(),
                       payload={"text": doc.text, "metadata": {"doc_id": doc.id, "title": doc.title}}, sparse=lexical)
            for doc, vector, lexical in zip(short_passages, laser_vectors, sparse)]


@pytest.fixture(scope="module")
def query_vectors(encoder):
    return encoder.encode_queries(QUERIES)


@pytest.fixture()
def engine(tmp_path):
    with EdgeEngine(tmp_path / "edge") as opened:
        yield opened


def _filled(engine, passages, name="docs"):
    engine.create(name, CollectionSpec(dimension=len(passages[0].dense), sparse=True, metadata=METADATA))
    engine.upsert(name, passages)
    return name


@pytest.fixture(scope="module")
def reference(passages):
    """qdrant-client's in-memory engine holding the same points, the reference the Edge answers must match."""
    client = QdrantClient(location=":memory:")
    client.create_collection("docs", vectors_config=models.VectorParams(size=len(passages[0].dense),
                                                                          distance=models.Distance.COSINE),
                             sparse_vectors_config={SPARSE_VECTOR_NAME: models.SparseVectorParams(
                                 modifier=models.Modifier.IDF)})
    client.upsert("docs", points=[models.PointStruct(id=p.id, vector={"": list(p.dense), SPARSE_VECTOR_NAME: p.sparse},
                                                     payload=p.payload) for p in passages], wait=True)
    yield client
    client.close()


def _assert_same(edge_records, client_points, *, atol=1e-4):
    """Same scores rank by rank, and the same points at each score (a group of tied scores may come in any order;
    the last group may be cut anywhere by the limit)."""
    assert len(edge_records) == len(client_points)
    np.testing.assert_allclose([r.score for r in edge_records], [p.score for p in client_points], rtol=1e-4,
                               atol=atol)
    groups: list[list[int]] = []
    for rank, point in enumerate(client_points):
        if groups and abs(client_points[groups[-1][0]].score - point.score) < atol:
            groups[-1].append(rank)
        else:
            groups.append([rank])
    for group in groups[:-1]:
        assert {edge_records[r].id for r in group} == {str(client_points[r].id) for r in group}, group
    by_id = {str(p.id): p.payload for p in client_points}
    assert all(r.payload == by_id[r.id] for r in edge_records if r.id in by_id)


# ------------------------------------------------------------------------------------------------- collections


def test_collections_and_metadata_survive_close_and_reopen(tmp_path, passages):
    folder = tmp_path / "edge"
    with EdgeEngine(folder) as engine:
        assert engine.collection_names() == [] and not engine.exists("docs")
        _filled(engine, passages)
        engine.create("empty", CollectionSpec(dimension=8, sparse=False, metadata={}))
        assert engine.collection_names() == ["docs", "empty"]
        assert engine.metadata("docs") == METADATA and engine.metadata("empty") == {}
        engine.set_metadata("empty", {"laser_rag": {"dimension": 8}})
        with pytest.raises(StoreError, match="already exists"):
            engine.create("docs", CollectionSpec(dimension=8, sparse=False, metadata={}))
    with EdgeEngine(folder) as engine:
        assert engine.collection_names() == ["docs", "empty"]
        assert engine.metadata("docs") == METADATA
        assert engine.metadata("empty") == {"laser_rag": {"dimension": 8}}
        assert engine.dense_size("docs") == len(passages[0].dense) and engine.dense_size("empty") == 8
        assert engine.count("docs") == len(passages) and engine.count("empty") == 0
        engine.delete("empty")
        assert engine.collection_names() == ["docs"] and not engine.exists("empty")
        for call in (engine.metadata, engine.count, engine.delete, engine.dense_size):
            with pytest.raises(CollectionNotFoundError):
                call("empty")
        with pytest.raises(CollectionNotFoundError):
            engine.query_dense("empty", passages[0].dense, 3)
        with pytest.raises(StoreError, match="not allowed"):
            engine.exists("../elsewhere")
    with EdgeEngine(folder) as engine:
        assert engine.collection_names() == ["docs"]
    with pytest.raises(StoreError, match="closed"):
        engine.collection_names()


def test_upserts_are_idempotent_by_id(engine, passages):
    name = _filled(engine, passages)
    engine.upsert(name, passages[:5])  # again: replaces, adds nothing
    assert engine.count(name) == len(passages)
    unknown = point_id("not-indexed")
    assert engine.existing_ids(name, [p.id for p in passages[:3]] + [unknown]) == {p.id for p in passages[:3]}
    changed = PointWrite(id=passages[0].id, dense=passages[1].dense, payload={"text": "changed"})
    engine.upsert(name, [changed])
    assert engine.count(name) == len(passages)
    top = engine.query_dense(name, passages[1].dense, 2)
    assert {r.id for r in top} == {passages[0].id, passages[1].id}
    assert next(r for r in top if r.id == passages[0].id).payload == {"text": "changed"}


def test_scroll_and_vectors_read_every_point(engine, passages):
    name = _filled(engine, passages)
    seen, offset = [], None
    while True:
        page, offset = engine.scroll(name, limit=5, offset=offset)
        seen.extend(page)
        if offset is None:
            break
    assert sorted(r.id for r in seen) == sorted(p.id for p in passages)
    assert {r.id: r.payload for r in seen} == {p.id: p.payload for p in passages}
    stored = engine.vectors(name, [p.id for p in passages[:3]] + [point_id("absent")])
    assert set(stored) == {p.id for p in passages[:3]}
    for point in passages[:3]:
        expected = np.asarray(point.dense) / np.linalg.norm(point.dense)  # cosine stores unit vectors
        np.testing.assert_allclose(stored[point.id], expected, atol=1e-5)


# ------------------------------------------------------------------------------------------------- queries


def test_dense_and_sparse_queries_agree_with_qdrant_client(engine, passages, reference, query_vectors):
    name = _filled(engine, passages)
    sparse = SparseEncoder()
    for text, vector in zip(QUERIES, query_vectors):
        for exact in (False, True):
            _assert_same(engine.query_dense(name, vector, 5, exact=exact),
                         reference.query_points("docs", query=vector.tolist(), limit=5, with_payload=True).points)
        query = sparse.encode_query(text)
        _assert_same(engine.query_sparse(name, query, 5),
                     reference.query_points("docs", query=query, using=SPARSE_VECTOR_NAME, limit=5,
                                            with_payload=True).points)


@pytest.mark.parametrize("fusion", list(FUSIONS))
def test_hybrid_queries_agree_with_qdrant_client(engine, passages, reference, query_vectors, fusion):
    name = _filled(engine, passages)
    sparse = SparseEncoder()
    for text, vector in zip(QUERIES, query_vectors):
        query = sparse.encode_query(text)
        prefetch = [models.Prefetch(query=vector.tolist(), limit=8),
                    models.Prefetch(query=query, using=SPARSE_VECTOR_NAME, limit=8)]
        expected = reference.query_points("docs", prefetch=prefetch, query=FUSIONS[fusion], limit=5,
                                          with_payload=True).points
        _assert_same(engine.query_hybrid(name, vector, query, 5, fusion=FUSIONS[fusion], prefetch_limit=8),
                     expected)
    dense_only = fusion_query("dbsf", sparse=False)
    expected = reference.query_points("docs", prefetch=[models.Prefetch(query=query_vectors[0].tolist(), limit=8)],
                                      query=dense_only, limit=5, with_payload=True).points
    _assert_same(engine.query_hybrid(name, query_vectors[0], None, 5, fusion=dense_only, prefetch_limit=8), expected)


def test_filters_agree_with_qdrant_client(engine, passages, reference, query_vectors):
    name = _filled(engine, passages)
    ids = [p.payload["metadata"]["doc_id"] for p in passages]
    filters = [
        models.Filter(must=[models.FieldCondition(key="metadata.doc_id", match=models.MatchValue(value=ids[3]))]),
        models.Filter(must=models.FieldCondition(key="metadata.doc_id", match=models.MatchAny(any=ids[:4]))),
        models.Filter(must_not=[models.FieldCondition(key="metadata.doc_id", match=models.MatchAny(any=ids[:6]))]),
        models.Filter(should=[models.HasIdCondition(has_id=[passages[7].id]),
                              models.FieldCondition(key="metadata.doc_id", match=models.MatchValue(value=ids[8]))]),
        models.Filter(must=[models.Filter(must_not=[models.IsEmptyCondition(
            is_empty=models.PayloadField(key="metadata.title"))])]),
    ]
    query = SparseEncoder().encode_query(QUERIES[0])
    for condition in filters:
        _assert_same(engine.query_dense(name, query_vectors[0], 12, query_filter=condition),
                     reference.query_points("docs", query=query_vectors[0].tolist(), limit=12,
                                            query_filter=condition, with_payload=True).points)
        prefetch = [models.Prefetch(query=query_vectors[0].tolist(), limit=8, filter=condition),
                    models.Prefetch(query=query, using=SPARSE_VECTOR_NAME, limit=8, filter=condition)]
        _assert_same(engine.query_hybrid(name, query_vectors[0], query, 5, fusion=FUSIONS["dbsf"], prefetch_limit=8,
                                         query_filter=condition),
                     reference.query_points("docs", prefetch=prefetch, query=FUSIONS["dbsf"], limit=5,
                                            with_payload=True).points)
    with pytest.raises(StoreError, match="cannot convert"):
        engine.query_dense(name, query_vectors[0], 3, query_filter=models.Filter(must=[models.FieldCondition(
            key="geo", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=0, lat=0), radius=1.0))]))


def test_the_hybrid_upgrade_adds_sparse_vectors_in_place(tmp_path, passages, reference, query_vectors):
    folder = tmp_path / "edge"
    with EdgeEngine(folder) as engine:
        engine.create("docs", CollectionSpec(dimension=len(passages[0].dense), sparse=False, metadata={}))
        engine.upsert("docs", [PointWrite(p.id, p.dense, p.payload) for p in passages])
        query = SparseEncoder().encode_query(QUERIES[0])
        with pytest.raises(StoreError, match="no sparse vector"):
            engine.query_sparse("docs", query, 3)
        with pytest.raises(StoreError, match="no sparse vector"):
            engine.upsert("docs", passages[:1])
        engine.add_sparse("docs")
        engine.add_sparse("docs")  # a second time: nothing
    with EdgeEngine(folder) as engine:  # the upgrade is recorded
        engine.set_sparse("docs", [(p.id, p.sparse) for p in passages])
        _assert_same(engine.query_sparse("docs", query, 5),
                     reference.query_points("docs", query=query, using=SPARSE_VECTOR_NAME, limit=5,
                                            with_payload=True).points)


def test_the_hnsw_index_built_after_a_bulk_upsert_finds_the_exact_neighbours(tmp_path, laser_vectors):
    """Past the indexing threshold the first query builds the HNSW graph: its answers match exact search."""
    rng = np.random.default_rng(0)
    base = np.asarray(laser_vectors, np.float32)
    mixed = [0.7 * base[rng.integers(len(base))] + 0.3 * base[rng.integers(len(base))]
             + 0.02 * rng.standard_normal(base.shape[1]).astype(np.float32) for _ in range(3000)]
    config = EdgeIndexConfig(full_scan_threshold_kb=100, indexing_threshold_kb=100, optimize_after=500)
    with EdgeEngine(tmp_path / "edge", config) as engine:
        engine.create("docs", CollectionSpec(dimension=base.shape[1], sparse=False, metadata={}))
        for start in range(0, len(mixed), 1000):
            engine.upsert("docs", [PointWrite(point_id(str(i)), mixed[i], {"i": i})
                                   for i in range(start, start + 1000)])
        matrix = np.asarray(mixed) / np.linalg.norm(mixed, axis=1, keepdims=True)
        recalls = []
        for vector in base:
            exact = engine.query_dense("docs", vector, 10, exact=True)
            indexed = engine.query_dense("docs", vector, 10)
            truth = np.argsort(-(matrix @ (vector / np.linalg.norm(vector))))[:10]
            assert [r.payload["i"] for r in exact] == truth.tolist()
            recalls.append(len({r.id for r in indexed} & {r.id for r in exact}) / 10)
        assert np.mean(recalls) >= 0.9


# ------------------------------------------------------------------------------------------------- processes


def _python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_second_process_is_refused_while_the_first_holds_the_folder(tmp_path):
    folder = tmp_path / "edge"
    probe = f"""
        from laser_rag.errors import QdrantUnavailableError
        from laser_rag.store.edge import EdgeEngine
        try:
            EdgeEngine({str(folder)!r}).close()
        except QdrantUnavailableError as exc:
            print("REFUSED", exc)
        else:
            print("OPENED")
    """
    with EdgeEngine(folder):
        refused = _python(probe)
        assert "REFUSED" in refused.stdout and "in use by another process" in refused.stdout, refused.stderr
        with pytest.raises(QdrantUnavailableError):
            EdgeEngine(folder)  # nor a second engine in this process
    assert "OPENED" in _python(probe).stdout


def test_a_writer_killed_mid_upsert_loses_no_acknowledged_point(tmp_path, passages):
    """A subprocess upserts batches and prints each acknowledged total; it is killed with SIGKILL while writing.
    The folder reopens (its lock died with the process) and holds every acknowledged point."""
    folder = tmp_path / "edge"
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.asarray([p.dense for p in passages], np.float32))
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import numpy as np
        from laser_rag.store import point_id
        from laser_rag.store.edge import CollectionSpec, EdgeEngine, PointWrite
        vectors = np.load({str(vectors)!r})
        engine = EdgeEngine({str(folder)!r})
        engine.create("docs", CollectionSpec(dimension=vectors.shape[1], sparse=False, metadata={{}}))
        done = 0
        while True:
            engine.upsert("docs", [PointWrite(point_id(str(i)), vectors[i % len(vectors)], {{"i": i}})
                                   for i in range(done, done + 500)])
            done += 500
            print(done, flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    while acknowledged < 5000:
        line = writer.stdout.readline()
        assert line, "the writer stopped early"
        acknowledged = int(line)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    for line in writer.stdout.read().split():
        acknowledged = int(line)
    with EdgeEngine(folder) as engine:
        ids = [point_id(str(i)) for i in range(acknowledged)]
        assert engine.existing_ids("docs", ids) == set(ids)
        assert engine.count("docs") >= acknowledged
        assert len(engine.query_dense("docs", passages[0].dense, 5)) == 5


def test_writes_are_refused_when_the_disk_is_nearly_full(tmp_path, passages):
    """Edge memory-maps its files: a write into a full disk would kill the process (SIGBUS). Below its free-space
    threshold the engine refuses every write with a clear StoreError, and what was stored stays readable."""
    with EdgeEngine(tmp_path / "edge") as roomy:
        roomy.create("c", CollectionSpec(dimension=576, sparse=True, metadata=METADATA))
        roomy.upsert("c", passages[:4])
    enormous = 2**40  # MB: more than any disk has free
    with EdgeEngine(tmp_path / "edge", min_free_mb=enormous) as full:
        with pytest.raises(StoreError, match=r"refusing to write 2 points to 'c'.*\(nearly\) full"):
            full.upsert("c", passages[4:6])
        with pytest.raises(StoreError, match="refusing to create"):
            full.create("d", CollectionSpec(dimension=576, sparse=False, metadata={}))
        with pytest.raises(StoreError, match="refusing to write 1 sparse vectors"):
            full.set_sparse("c", [(passages[0].id, passages[0].sparse)])
        assert full.count("c") == 4 and not full.exists("d")
        assert full.query_dense("c", passages[0].dense, k=1)[0].id == passages[0].id  # reads still answer
