"""The store under faults: two processes opening one embedded store, a collection deleted under an open retriever,
a disk that refuses a write in the middle of indexing (an injected OSError, and a real full tmpfs where this machine
lets the test mount one). Each gives a clear `LaserRagError`, and rerunning the same index afterwards stores every
document exactly once: nothing lost, nothing doubled."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from laser_rag import store as _store
from laser_rag.cli import app
from laser_rag.corpus import Document
from laser_rag.errors import CollectionNotFoundError, QdrantUnavailableError, StoreError
from laser_rag.retrieval import open_retriever

HOLD = "import sys; from laser_rag.store import connect; connect(sys.argv[1]); print('open', flush=True); sys.stdin.read()"


def _documents(count: int) -> list[Document]:
    return [Document(f"doc-{n}", f"passage number {n} about topic {n % 7}: " + "filler words " * 30)
            for n in range(count)]


def _stored_ids(retriever) -> list[str]:
    points, _ = retriever.collection.engine.scroll(retriever.collection.name, limit=10_000)
    return sorted(point.payload["metadata"]["doc_id"] for point in points)


def test_two_processes_on_one_embedded_store(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(QdrantUnavailableError, match="in use by another process"):
            _store.connect(tmp_path)
        result = CliRunner().invoke(app, ["collections", "--qdrant-path", str(tmp_path)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "in use" in result.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _store.connect(tmp_path) is not None  # free again once the other process ends
    _store.release(tmp_path)


def test_a_collection_deleted_under_an_open_retriever(minilm, short_passages):
    client = _store.connect(":memory:")
    retriever = open_retriever("basic", "gone", client=client, encoder=minilm, create=True)
    retriever.index(short_passages[:3])
    client.delete_collection(retriever.collection.name)
    with pytest.raises(CollectionNotFoundError, match="was deleted while this retriever was open"):
        retriever.retrieve("what does pass do?")
    with pytest.raises(CollectionNotFoundError):
        retriever.index(short_passages[:3])
    again = open_retriever("basic", "gone", client=client, encoder=minilm, create=True)
    assert again.index(short_passages[:3]).added == 3


def test_a_write_refused_midway_then_a_rerun(minilm, tmp_path, monkeypatch):
    client = _store.connect(tmp_path / "qdrant")
    retriever = open_retriever("basic", "disk", client=client, encoder=minilm, create=True)
    documents = _documents(12)
    calls = {"n": 0}
    upsert = client.edge.upsert  # the embedded store's Qdrant Edge engine

    def failing_upsert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return upsert(*args, **kwargs)

    monkeypatch.setattr(client.edge, "upsert", failing_upsert)
    with pytest.raises(StoreError, match="No space left on device.*run the same index again"):
        retriever.index(documents, batch_size=4)
    assert _stored_ids(retriever) == sorted(doc.id for doc in documents[:4])  # the first batch is kept
    monkeypatch.undo()
    report = retriever.index(documents, batch_size=4)
    assert (report.skipped, report.added) == (4, 8)
    assert _stored_ids(retriever) == sorted(doc.id for doc in documents)
    _store.release(tmp_path / "qdrant")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only, where mounting is allowed); skipped elsewhere."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_then_a_rerun_with_room(minilm, small_tmpfs):
    """Qdrant Edge memory-maps its files (a write into a full disk would kill the process with SIGBUS): below
    `MIN_FREE_MB` free it refuses to write, with a clear error, and the rerun with room stores everything."""
    path = small_tmpfs / "qdrant"
    documents = _documents(120)
    with pytest.raises(StoreError, match="full"):
        open_retriever("basic", "full", client=_store.connect(path), encoder=minilm, create=True).index(
            documents, batch_size=30)
    _store.release(path)
    assert subprocess.run(["mount", "-o", "remount,size=512m", str(small_tmpfs)]).returncode == 0
    retriever = open_retriever("basic", "full", client=_store.connect(path), encoder=minilm, create=True)
    retriever.index(documents, batch_size=30)
    assert _stored_ids(retriever) == sorted(doc.id for doc in documents)
    _store.release(Path(path))
