"""Qdrant collections that know their encoder: local (`:memory:` and a folder), idempotent and resumable indexing,
fingerprint checks, the payload layout, clean shutdown, unreachable servers, and (with $QDRANT_URL) a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings

import numpy as np
import pytest
from qdrant_client import models

from laser_rag import store
from laser_rag.corpus import Document
from laser_rag.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    CorpusError,
    QdrantUnavailableError,
    TruncationWarning,
)
from laser_rag.store import Hit, VectorCollection, close_all, collection_name, connect, point_id, release

# the 12 shortest pydoc topics, as the `short_passages` fixture, for scripts run in a subprocess
SHORT_PASSAGES = "sorted(pydoc_corpus(), key=lambda doc: (len(doc.text), doc.id))[:12]"


class Recording:
    """The real encoder, recording which documents it was asked to encode."""

    def __init__(self, encoder):
        self.inner = encoder
        self.encoded: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_documents(self, texts, **kwargs):
        self.encoded.extend(texts)
        return self.inner.encode_documents(texts, **kwargs)


@pytest.fixture(scope="module")
def docs(short_passages):
    return short_passages


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_point_ids_and_names_are_stable():
    assert point_id("pydoc:assert") == point_id("pydoc:assert") == str(uuid.UUID(point_id("pydoc:assert")))
    assert point_id("a") != point_id("b")
    assert collection_name("My Notes!", "laser-k3") == "my-notes-laser-k3"


def test_index_records_encoder_and_is_idempotent(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "pydoc-minilm", minilm)
    meta = client.get_collection("pydoc-minilm").config.metadata["laser_rag"]
    assert meta["fingerprint"] == minilm.fingerprint and meta["dimension"] == minilm.dimension == 384
    assert meta["encoder"] == minilm.label == "all-minilm-l6-v2" and meta["precision"] == minilm.precision
    assert collection.info == meta

    first = collection.index(docs, minilm, batch_size=5)
    assert (first.added, first.skipped, collection.count()) == (12, 0, 12)
    again = collection.index(docs, minilm)
    assert (again.added, again.skipped, collection.count()) == (0, 12, 12)

    points, _ = client.scroll("pydoc-minilm", limit=100, with_payload=True)
    assert {str(p.id) for p in points} == {point_id(d.id) for d in docs}
    by_id = {p.payload["metadata"]["doc_id"]: p.payload for p in points}
    doc = docs[3]
    assert by_id[doc.id]["text"] == doc.text
    assert by_id[doc.id]["metadata"] == {**doc.metadata, "doc_id": doc.id, "title": doc.title}


def test_vectors_are_the_encoders_document_text(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    collection.index(docs[:3], minilm)
    points = client.retrieve("c", ids=[point_id(d.id) for d in docs[:3]], with_vectors=True)
    stored = {str(p.id): np.array(p.vector) for p in points}
    expected = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in docs[:3]])
    for doc, vector in zip(docs[:3], expected):
        np.testing.assert_allclose(stored[point_id(doc.id)], vector, atol=1e-5)


def test_payload_is_one_layout(minilm):
    doc = Document("guide.md#1", "Install it.", "Guide", {"source": "guide.md", "parent_id": "guide.md",
                                                           "title": "ignored: the document's title wins"})
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    collection.upsert([doc], minilm.encode_documents(["Guide\nInstall it."]))
    payload = client.retrieve("c", ids=[point_id(doc.id)], with_payload=True)[0].payload
    metadata = {"source": "guide.md", "parent_id": "guide.md", "doc_id": "guide.md#1", "title": "Guide"}
    assert payload == {"text": "Install it.", "metadata": metadata}  # LangChain's keys, nothing else
    assert collection.info["payload_layout"] == store.PAYLOAD_LAYOUT == 3


def test_the_payload_is_the_same_without_llama_index(minilm):
    """The layout does not depend on what is installed: a process where llama_index cannot be imported writes the
    same payload as this one (where it can)."""
    script = """
        import json, sys
        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "llama_index":
                    raise ModuleNotFoundError(f"blocked: {name}")
        sys.meta_path.insert(0, Blocked())
        from laser_rag.corpus import Document
        from laser_rag.encoders import load_encoder
        from laser_rag.store import VectorCollection, connect, point_id
        enc = load_encoder("all-minilm-l6-v2")
        client = connect(":memory:")
        VectorCollection.open(client, "c", enc).index([Document("d", "Text.", "T", {"k": 1})], enc)
        print(json.dumps(client.retrieve("c", ids=[point_id("d")], with_payload=True)[0].payload))
        assert not any(m.split(".")[0] == "llama_index" for m in sys.modules)
    """
    blocked = run_python(script)
    assert blocked.returncode == 0, blocked.stderr[-2000:]
    client = connect(":memory:")
    VectorCollection.open(client, "c", minilm).index([Document("d", "Text.", "T", {"k": 1})], minilm)
    here = client.retrieve("c", ids=[point_id("d")], with_payload=True)[0].payload
    assert json.loads(blocked.stdout.strip().splitlines()[-1]) == here == {
        "text": "Text.", "metadata": {"k": 1, "doc_id": "d", "title": "T"}}


def test_hit_from_point_reads_every_layout():
    def point(payload, id_="2b1c9d4e-0000-0000-0000-000000000000", score=0.5):
        return models.ScoredPoint(id=id_, version=0, score=score, payload=payload)

    ours = point({"text": "t", "metadata": {"doc_id": "d1", "title": "T", "k": 1}})
    assert Hit.from_point(ours) == Hit("d1", "T", "t", 0.5, {"k": 1})
    node = {"text": "node text", "metadata": {"title": "N", "page": 3}}  # LlamaIndex's own pipeline wrote it
    llama = point({"_node_content": json.dumps(node), "_node_type": "TextNode", "doc_id": "source-doc",
                   "title": "N", "page": 3})
    assert Hit.from_point(llama) == Hit("source-doc", "N", "node text", 0.5, {"page": 3})
    node_fields = {"_node_content": json.dumps({"text": "old", "metadata": {"doc_id": "p1", "title": "T"}}),
                   "_node_type": "TextNode", "doc_id": "parent", "document_id": "parent", "ref_doc_id": "parent"}
    layout_2 = point({"text": "t2", "metadata": {"doc_id": "d2", "title": "T", "k": 2}, **node_fields})
    assert Hit.from_point(layout_2) == Hit("d2", "T", "t2", 0.5, {"k": 2})  # points of layouts 1 and 2
    langchain = point({"page_content": "lc", "metadata": {"a": "b"}})
    assert Hit.from_point(langchain) == Hit("2b1c9d4e-0000-0000-0000-000000000000", "", "lc", 0.5, {"a": "b"})
    record = models.Record(id=7, payload={"text": "r", "metadata": {"doc_id": "x"}})  # retrieve(): no score
    assert Hit.from_point(record) == Hit("x", "", "r", 0.0, {})
    engine_record = store.PointRecord(id="2b1c9d4e-0000-0000-0000-000000000000", payload=ours.payload, score=0.25)
    assert Hit.from_point(engine_record) == Hit("d1", "T", "t", 0.25, {"k": 1})  # what an engine returns


def test_search_returns_hits_with_document_fields(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    collection.index(docs, minilm)
    target = docs[5]
    hits = collection.search(minilm.encode_queries(target.text), k=3)
    assert len(hits) == 3 and hits[0].id == target.id  # a passage used as the query finds itself first
    assert hits[0].title == target.title and hits[0].text == target.text
    assert hits[0].metadata == target.metadata
    assert hits[0].score >= hits[1].score >= hits[2].score
    exact = collection.search(minilm.encode_queries(target.text), k=3, exact=True)
    assert [h.id for h in exact] == [h.id for h in hits]
    np.testing.assert_allclose([h.score for h in exact], [h.score for h in hits], atol=1e-6)
    with pytest.raises(ValueError, match="dimensions"):
        collection.search(np.ones(5), k=1)


def test_index_with_chunk_cuts_long_documents(minilm):
    long = Document("guide.md", "\n\n".join(f"Paragraph {n}. " + "More words on the topic. " * 30 for n in range(6)),
                    "Guide", {"source": "guide.md"})
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    report = collection.index([long, Document("short", "Short.", "S")], minilm, chunk=True)
    hits = collection.search(minilm.encode_queries("Paragraph 4. More words on the topic."), k=20)
    pieces = sorted(h.id for h in hits if h.id.startswith("guide.md#"))
    assert report.added == collection.count() == len(pieces) + 1 and len(pieces) >= 3
    assert all(h.metadata == {"source": "guide.md", "parent_id": "guide.md"} for h in hits if h.id in pieces)
    assert collection.index([long], minilm, chunk=True).skipped == len(pieces)  # the same pieces again


def test_truncation_is_reported_once_per_run(minilm, docs):
    class Truncating(Recording):
        def encode_documents(self, texts, **kwargs):
            warnings.warn(f"{len(texts)} of {len(texts)} inputs were cut to 8 tokens", TruncationWarning, stacklevel=2)
            warnings.warn("something else", DeprecationWarning, stacklevel=2)
            return super().encode_documents(texts, **kwargs)

    collection = VectorCollection.open(connect(":memory:"), "c", minilm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collection.index(docs[:6], Truncating(minilm), batch_size=2)
    truncations = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(truncations) == 1 and "in 3 of 3 batches" in str(truncations[0].message)
    assert "chunk=True" in str(truncations[0].message)
    assert sum(issubclass(w.category, DeprecationWarning) for w in caught) == 3  # other warnings pass through


def test_crash_mid_indexing_resumes_without_loss_or_double_work(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    spy = Recording(minilm)

    def crash_after_two_batches(report):
        if report.added == 8:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        collection.index(docs, spy, batch_size=4, on_batch=crash_after_two_batches)
    assert collection.count() == 8
    spy.encoded.clear()

    report = collection.index(docs, spy, batch_size=4)
    assert (report.skipped, report.added, collection.count()) == (8, 4, 12)
    assert len(spy.encoded) == 4  # only the missing documents were encoded


def test_killed_process_then_restart_resumes(minilm, docs, tmp_path):
    """A process is killed (SIGKILL) half-way through indexing into a folder; another opens the folder, finds the
    finished batches and the recorded fingerprint, and completes the job; a third process reads the result."""
    folder = tmp_path / "qdrant"
    child = run_python(f"""
        import os, signal
        from laser_rag.corpus import pydoc_corpus
        from laser_rag.encoders import load_encoder
        from laser_rag.store import VectorCollection, connect
        enc = load_encoder("all-minilm-l6-v2")
        col = VectorCollection.open(connect({str(folder)!r}), "pydoc", enc)
        def die(report):
            if report.added == 8:
                os.kill(os.getpid(), signal.SIGKILL)
        col.index({SHORT_PASSAGES}, enc, batch_size=4, on_batch=die)
    """)
    assert child.returncode == -9, child.stderr[-2000:]

    client = connect(folder)
    collection = VectorCollection.open(client, "pydoc", minilm, create=False)
    assert collection.count() == 8
    spy = Recording(minilm)
    report = collection.index(docs, spy, batch_size=4)
    assert (report.skipped, report.added, len(spy.encoded), collection.count()) == (8, 4, 4, 12)

    # while this process holds the folder, another one gets a clear error
    busy = run_python(f"""
        from laser_rag.errors import QdrantUnavailableError
        from laser_rag.store import connect
        try:
            connect({str(folder)!r})
        except QdrantUnavailableError as e:
            print('BUSY', e)
    """, timeout=120)
    assert "BUSY" in busy.stdout and "in use by another process" in busy.stdout

    release(folder)
    after = run_python(f"""
        from laser_rag.store import connect
        c = connect({str(folder)!r})
        print(c.count('pydoc'), c.metadata('pydoc')['laser_rag']['fingerprint'])
    """, timeout=120)
    assert after.stdout.split() == ["12", minilm.fingerprint], after.stderr[-2000:]


def test_local_folder_client_is_shared_and_persists(minilm, docs, tmp_path):
    folder = tmp_path / "q"
    client = connect(folder)
    assert connect(folder) is client  # one client per folder per process
    VectorCollection.open(client, "c", minilm).index(docs[:3], minilm)
    release(folder)
    reopened = connect(folder)
    assert reopened is not client
    assert VectorCollection.open(reopened, "c", minilm, create=False).count() == 3
    reopened.close()  # closed behind the registry's back: the next connect opens a fresh client
    fresh = connect(folder)
    assert fresh is not reopened and fresh.count("c") == 3
    release(folder)


def test_close_all_closes_the_registry_and_exit_is_clean(minilm, tmp_path):
    first, second = connect(tmp_path / "a"), connect(tmp_path / "b")
    close_all()
    assert connect(tmp_path / "a") not in (first, second)  # a fresh client: the old one was closed
    close_all()

    # a process that uses a local store and exits without closing anything prints nothing on stderr
    # (left to the garbage collector at shutdown, qdrant-client's __del__ printed an ImportError traceback)
    script = f"""
        from laser_rag.encoders import load_encoder
        from laser_rag.corpus import pydoc_corpus
        from laser_rag.store import VectorCollection, connect
        enc = load_encoder("all-minilm-l6-v2")
        VectorCollection.open(connect({str(tmp_path / "c")!r}), "c", enc).index({SHORT_PASSAGES}[:2], enc)
        print("done")
    """
    result = run_python(script)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr[-2000:]


def test_wrong_encoder_is_refused(minilm, encoder, docs):
    client = connect(":memory:")
    VectorCollection.open(client, "c", minilm).index(docs[:2], minilm)
    with pytest.raises(CollectionMismatchError) as err:  # another encoder and another dimension
        VectorCollection.open(client, "c", encoder)
    assert minilm.fingerprint in str(err.value) and encoder.fingerprint in str(err.value)
    assert err.value.stored_fingerprint == minilm.fingerprint
    with pytest.raises(CollectionMismatchError):  # same dimension, other fingerprint
        VectorCollection.open(client, "c", fingerprint="0" * 32, dimension=384)
    collection = VectorCollection.open(client, "c", minilm)
    with pytest.raises(CollectionMismatchError):
        collection.index(docs[2:4], encoder)
    assert collection.count() == 2
    rebuilt = VectorCollection.open(client, "c", encoder, recreate=True)
    assert rebuilt.count() == 0 and rebuilt.fingerprint == encoder.fingerprint
    assert rebuilt.info["encoder"] == encoder.label and rebuilt.info["precision"] == encoder.precision


def test_foreign_collections(minilm):
    client = connect(":memory:")
    params = models.VectorParams(size=384, distance=models.Distance.COSINE)
    client.create_collection("empty", vectors_config=params)
    assert VectorCollection.open(client, "empty", minilm).fingerprint == minilm.fingerprint  # adopted
    client.create_collection("full", vectors_config=params)
    client.upsert("full", [models.PointStruct(id=1, vector=[1.0] * 384, payload={"text": "x"})])
    with pytest.raises(CollectionMismatchError, match="not made by laser_rag"):
        VectorCollection.open(client, "full", minilm)
    with pytest.raises(CollectionNotFoundError, match="laser-rag index"):
        VectorCollection.open(client, "missing", minilm, create=False)


def test_bad_documents_fail_before_anything_is_written(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "c", minilm)
    with pytest.raises(CorpusError, match="duplicate"):
        collection.index([docs[0], docs[1], docs[0]], minilm)
    with pytest.raises(CorpusError, match="empty text.*'blank'"):
        collection.index([docs[0], Document("blank", "   ")], minilm)
    assert collection.count() == 0


def test_unreachable_server_fails_fast():
    started = time.perf_counter()
    with pytest.raises(QdrantUnavailableError, match="cannot reach a Qdrant server"):
        connect(url="http://127.0.0.1:1", timeout=2)
    assert time.perf_counter() - started < 5


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="set QDRANT_URL to test against a Qdrant server")
def test_qdrant_server(minilm, docs):
    client = connect(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"))
    name = f"laser-rag-test-{uuid.uuid4().hex[:8]}"
    try:
        collection = VectorCollection.open(client, name, minilm)
        assert collection.index(docs, minilm).added == 12
        assert collection.index(docs, minilm).skipped == 12
        assert collection.search(minilm.encode_queries(docs[0].text), k=1)[0].id == docs[0].id
        with pytest.raises(CollectionMismatchError):
            VectorCollection.open(client, name, fingerprint="0" * 32, dimension=384)
    finally:
        client.delete_collection(name)


@pytest.mark.qdrant_server
@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="set QDRANT_URL to test against a Qdrant server")
@pytest.mark.parametrize("grpc", [False, True], ids=["rest", "grpc"])
def test_qdrant_server_options_bulk_load_and_rescoring(minilm, docs, grpc):
    """What the embedded engines cannot show: the server-only options in the server's own collection config, a
    bulk load that defers HNSW (m=0 while the batches arrive) and switches it back on, parallel upload streams, and
    rescored int8 search that finds what exact float32 search finds."""
    from laser_rag.store import BulkLoad, CollectionOptions, CollectionSpec, PointWrite, QdrantClientEngine

    client = connect(url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY"), prefer_grpc=grpc)
    name = f"laser-rag-test-{uuid.uuid4().hex[:8]}"
    options = CollectionOptions(shard_number=2, replication_factor=1, on_disk_vectors=True,
                                on_disk_payload=True, quantization="int8")
    try:
        collection = VectorCollection.open(client, name, minilm, options=options)
        config = client.get_collection(name).config
        assert (config.params.shard_number, config.params.replication_factor) == (2, 1)
        assert config.params.vectors.on_disk is True and config.params.on_disk_payload is True
        assert config.quantization_config.scalar.type == models.ScalarType.INT8
        default_m = config.hnsw_config.m
        seen_m = []
        collection.index(docs, minilm, batch_size=4, bulk=BulkLoad(timeout=120),
                         on_batch=lambda report: seen_m.append(client.get_collection(name).config.hnsw_config.m))
        assert seen_m and set(seen_m) == {0}
        info = client.get_collection(name)
        assert info.config.hnsw_config.m == default_m and info.status == models.CollectionStatus.GREEN
        assert not (info.config.metadata or {}).get("laser_rag_bulk_load")
        assert VectorCollection.open(client, name, minilm).options == options
        for doc in docs[:4]:
            query = minilm.encode_queries(doc.text)
            assert [h.id for h in collection.search(query, 3, oversampling=2.0)] == \
                [h.id for h in collection.search(query, 3, exact=True)]
        engine = QdrantClientEngine(client)
        engine.create(f"{name}-bulk", CollectionSpec(dimension=4, sparse=False, metadata={"laser_rag": {}}))
        rows = np.random.default_rng(0).standard_normal((600, 4)).tolist()
        with engine.bulk_load(f"{name}-bulk", BulkLoad(parallel=2, timeout=120)):
            engine.upsert(f"{name}-bulk", [PointWrite(point_id(str(i)), row, {"i": i}) for i, row in enumerate(rows)])
        assert engine.count(f"{name}-bulk") == 600
    finally:
        for leftover in (name, f"{name}-bulk"):
            if client.collection_exists(leftover):
                client.delete_collection(leftover)
