"""The embedded default (Qdrant Edge in ``<folder>/edge``) beside a folder's old qdrant-client local-mode
collections, and ``laser-rag migrate``: local mode -> Edge on a real corpus (MiniLM), resumed after an interruption,
checked (counts, a sample of vectors and payloads), the local-mode data set aside; to a server where QDRANT_URL is
set."""

from __future__ import annotations

import json
import logging
import os
import uuid

import numpy as np
import pytest
from typer.testing import CliRunner

from laser_rag.cli import app
from laser_rag.errors import CollectionMismatchError, CollectionNotFoundError, MigrationError
from laser_rag.store import CollectionSpec, PointWrite, QdrantClientEngine, VectorCollection, connect, point_id, release
from laser_rag.store.clients import local_mode_client
from laser_rag.store.edge import EdgeEngine
from laser_rag.store.embedded import EDGE_DIR, MIGRATED_DIR, EmbeddedEngine
from laser_rag.store.migrate import copy_collection, migrate

QUERIES = ["how do I catch two exceptions at once?", "what does the with statement do?", "assert statement"]


@pytest.fixture
def local_folder(tmp_path, minilm, short_passages):
    """A folder as laser_rag left it before Edge: one hybrid collection in qdrant-client's local mode."""
    folder = tmp_path / "qdrant"
    client = local_mode_client(folder)
    VectorCollection.open(client, "pydoc-minilm", minilm, hybrid=True).index(short_passages, minilm)
    client.close()
    yield folder
    release(folder)


def rankings(store, minilm) -> list[list[str]]:
    collection = VectorCollection.open(store, "pydoc-minilm", minilm, hybrid=True, create=False)
    found = []
    for query in QUERIES:
        vector = minilm.encode_queries([query])[0]
        found.append([hit.id for hit in collection.search(vector, k=5)])
        found.append([hit.id for hit in collection.search_hybrid(vector, collection.sparse_encoder.encode_query(query),
                                                                 k=5)])
    return found


def test_local_mode_is_used_until_migrated_then_edge(local_folder, minilm, short_passages, caplog, monkeypatch):
    store = connect(local_folder)
    assert isinstance(store, EmbeddedEngine) and store.in_local_mode("pydoc-minilm")
    with caplog.at_level(logging.WARNING, logger="laser_rag.store.embedded"):
        before = rankings(store, minilm)
        rankings(store, minilm)
    warned = [r.getMessage() for r in caplog.records if "laser-rag migrate" in r.getMessage()]
    assert len(warned) == 1 and "pydoc-minilm" in warned[0]  # once, naming the command
    VectorCollection.open(store, "notes-minilm", minilm).index(short_passages[:3], minilm)  # a new one: Edge's
    assert (local_folder / EDGE_DIR / "notes-minilm").is_dir()
    assert store.collection_names() == ["notes-minilm", "pydoc-minilm"]

    upsert, calls = store.edge.upsert, []

    def interrupted(name, points):
        calls.append(len(points))
        if len(calls) == 2:
            raise KeyboardInterrupt
        upsert(name, points)

    monkeypatch.setattr(store.edge, "upsert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        migrate(local_folder, batch_size=4)
    monkeypatch.undo()
    assert store.in_local_mode("pydoc-minilm") and store.edge.count("pydoc-minilm") == 4  # nothing set aside yet
    assert store.count("pydoc-minilm") == len(short_passages)  # still the local-mode copy

    (report,) = migrate(local_folder, batch_size=4)
    assert (report.skipped, report.copied, report.total) == (4, len(short_passages) - 4, len(short_passages))
    assert report.checked == len(short_passages) and report.set_aside == local_folder / MIGRATED_DIR
    assert not store.in_local_mode("pydoc-minilm")
    assert store.count("pydoc-minilm") == store.edge.count("pydoc-minilm") == len(short_passages)  # nothing doubled
    assert rankings(store, minilm) == before  # the same passages, now from Edge
    with pytest.raises(CollectionMismatchError):  # the encoder's fingerprint came along
        VectorCollection.open(store, "pydoc-minilm", fingerprint="another", dimension=minilm.dimension)
    with pytest.raises(CollectionNotFoundError, match="nothing to migrate"):
        migrate(local_folder)
    release(local_folder)

    # set aside, not deleted: a local-mode store of its own; the folder's own local mode holds nothing any more
    assert json.loads((local_folder / "meta.json").read_text())["collections"] == {}
    aside = local_mode_client(local_folder / MIGRATED_DIR)
    assert aside.count("pydoc-minilm").count == len(short_passages)
    aside.close()
    listed = CliRunner().invoke(app, ["collections", "--qdrant-path", str(local_folder)])
    assert listed.exit_code == 0 and f"pydoc-minilm\t{len(short_passages)} points" in listed.output
    assert "local mode" not in listed.output


def test_the_cli_migrates_and_says_so(local_folder, short_passages):
    runner = CliRunner()
    listed = runner.invoke(app, ["collections", "--qdrant-path", str(local_folder)])
    assert "local mode: run `laser-rag migrate`" in listed.output
    result = runner.invoke(app, ["migrate", "--qdrant-path", str(local_folder)])
    assert result.exit_code == 0, result.output
    assert f"pydoc-minilm: {len(short_passages)} points copied, 0 already there" in result.output
    assert MIGRATED_DIR in result.output
    again = runner.invoke(app, ["migrate", "--qdrant-path", str(local_folder)])
    assert again.exit_code == 1 and "nothing to migrate" in again.stderr


def _points(n: int, *, dim: int = 8, shift: float = 0.0) -> list[PointWrite]:
    rng = np.random.default_rng(0)
    return [PointWrite(id=point_id(str(i)), dense=(rng.standard_normal(dim) + shift).tolist(),
                       payload={"text": f"t{i}", "metadata": {"doc_id": str(i)}}) for i in range(n)]


def test_a_copy_that_differs_is_refused(tmp_path):
    source = QdrantClientEngine(connect(":memory:"))
    spec = CollectionSpec(dimension=8, sparse=False, metadata={"laser_rag": {"fingerprint": "f", "dimension": 8}})
    source.create("c", spec)
    source.upsert("c", _points(30))
    with EdgeEngine(tmp_path / "edge") as target:
        assert copy_collection(source, target, "c", batch_size=7, sample=30).copied == 30
        assert target.metadata("c") == source.metadata("c")
        target.upsert("c", [PointWrite(id=point_id("extra"), dense=[1.0] * 8, payload={})])
        with pytest.raises(MigrationError, match="holds 30 points"):
            copy_collection(source, target, "c")
        source.upsert("c", [PointWrite(id=point_id("extra"), dense=[1.0] * 8, payload={})])
        target.upsert("c", _points(30, shift=3.0)[:1])  # one point's vector changed at the target
        with pytest.raises(MigrationError, match="1 of 31 sampled points differ"):
            copy_collection(source, target, "c", sample=64)
        other = CollectionSpec(dimension=8, sparse=False, metadata={"laser_rag": {"fingerprint": "g"}})
        target.create("d", other)
        source.create("d", spec)
        with pytest.raises(MigrationError, match="another collection"):
            copy_collection(source, target, "d")


@pytest.mark.skipif(not os.environ.get("QDRANT_URL"), reason="needs a Qdrant server: set QDRANT_URL")
def test_an_embedded_collection_migrates_to_a_server(tmp_path, minilm, short_passages):
    folder = tmp_path / "qdrant"
    name = f"migrate-{uuid.uuid4().hex[:8]}"
    VectorCollection.open(connect(folder), name, minilm, hybrid=True).index(short_passages, minilm)
    url, key = os.environ["QDRANT_URL"], os.environ.get("QDRANT_API_KEY")
    server = connect(url=url, api_key=key)
    try:
        (report,) = migrate(folder, collections=[name], to_url=url, api_key=key)
        assert report.copied == len(short_passages) and report.set_aside is None
        assert rankings_of(server, name, minilm) == rankings_of(connect(folder), name, minilm)
        assert migrate(folder, collections=[name], to_url=url, api_key=key)[0].skipped == len(short_passages)
    finally:
        server.delete_collection(name)
        release(folder)


def rankings_of(store, name, minilm) -> list[list[str]]:
    collection = VectorCollection.open(store, name, minilm, hybrid=True, create=False)
    return [[hit.id for hit in collection.search_hybrid(minilm.encode_queries([q])[0],
                                                        collection.sparse_encoder.encode_query(q), k=5)]
            for q in QUERIES]


def test_deleting_a_local_mode_collection_drops_a_partial_edge_copy_too(tmp_path):
    """After an interrupted migration Edge holds part of a copy; deleting the collection (e.g. ``--recreate``) must
    not let that part surface in its place."""
    folder = tmp_path / "qdrant"
    spec = CollectionSpec(dimension=8, sparse=False, metadata={"laser_rag": {"fingerprint": "f", "dimension": 8}})
    local = QdrantClientEngine(local_mode_client(folder))
    local.create("c", spec)
    local.upsert("c", _points(5))
    local.close()
    store = connect(folder)
    store.edge.create("c", spec)
    store.edge.upsert("c", _points(2))
    assert store.count("c") == 5  # the local-mode copy answers while it exists
    store.delete("c")
    assert not store.exists("c") and not store.edge.exists("c") and store.collection_names() == []
    release(folder)
