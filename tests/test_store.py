"""Qdrant collections that know their encoder: local (`:memory:` and a folder), idempotent and resumable indexing,
fingerprint checks, unreachable servers, and (with $QDRANT_URL) a real server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from qdrant_client import models

from laser_rag.datasets import Document, pydoc_corpus
from laser_rag.store import (
    CollectionMismatchError,
    CollectionNotFoundError,
    QdrantUnavailableError,
    VectorCollection,
    collection_name,
    connect,
    point_id,
    release,
)


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
def docs():
    return pydoc_corpus()[:12]


def test_point_ids_and_names_are_stable():
    assert point_id("pydoc:assert") == point_id("pydoc:assert") == str(uuid.UUID(point_id("pydoc:assert")))
    assert point_id("a") != point_id("b")
    assert collection_name("My Notes!", "laser-k3") == "my-notes-laser-k3"


def test_index_records_encoder_and_is_idempotent(minilm, docs):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "pydoc-minilm", minilm)
    meta = client.get_collection("pydoc-minilm").config.metadata["laser_rag"]
    assert meta["fingerprint"] == minilm.fingerprint and meta["dimension"] == minilm.dimension == 384

    first = collection.index(docs, minilm, batch_size=5)
    assert (first.added, first.skipped, collection.count()) == (12, 0, 12)
    again = collection.index(docs, minilm)
    assert (again.added, again.skipped, collection.count()) == (0, 12, 12)

    points, _ = client.scroll("pydoc-minilm", limit=100, with_payload=True)
    assert {str(p.id) for p in points} == {point_id(d.id) for d in docs}
    by_id = {p.payload["doc_id"]: p.payload for p in points}
    doc = docs[3]
    assert by_id[doc.id]["text"] == doc.text
    assert by_id[doc.id]["metadata"]["title"] == doc.title


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
    store = tmp_path / "qdrant"
    script = textwrap.dedent(f"""
        import os, signal
        from laser_rag.datasets import pydoc_corpus
        from laser_rag.encoders import load_encoder
        from laser_rag.store import VectorCollection, connect
        enc = load_encoder("all-minilm-l6-v2")
        col = VectorCollection.open(connect({str(store)!r}), "pydoc", enc)
        def die(report):
            if report.added == 8:
                os.kill(os.getpid(), signal.SIGKILL)
        col.index(pydoc_corpus()[:12], enc, batch_size=4, on_batch=die)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-2000:]

    client = connect(store)
    collection = VectorCollection.open(client, "pydoc", minilm, create=False)
    assert collection.count() == 8
    spy = Recording(minilm)
    report = collection.index(docs, spy, batch_size=4)
    assert (report.skipped, report.added, len(spy.encoded), collection.count()) == (8, 4, 4, 12)

    # while this process holds the folder, another one gets a clear error
    probe = ("from laser_rag.store import connect, QdrantUnavailableError\n"
             f"try:\n    connect({str(store)!r})\nexcept QdrantUnavailableError as e:\n    print('BUSY', e)")
    busy = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "BUSY" in busy.stdout and "in use by another process" in busy.stdout

    release(store)
    reread = ("from laser_rag.store import connect\n"
              f"c = connect({str(store)!r})\n"
              "print(c.count('pydoc').count, c.get_collection('pydoc').config.metadata['laser_rag']['fingerprint'])")
    after = subprocess.run([sys.executable, "-c", reread], capture_output=True, text=True, timeout=120)
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
    # local writes run in WAL mode (one commit per point is otherwise an fsync per point)
    mode = sqlite3.connect(folder / "collection" / "c" / "storage.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"
    release(folder)


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
    with pytest.raises(ValueError, match="duplicate"):
        collection.index([docs[0], docs[1], docs[0]], minilm)
    with pytest.raises(ValueError, match="empty text.*'blank'"):
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
