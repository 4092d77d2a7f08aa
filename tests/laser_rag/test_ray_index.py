"""Bulk indexing on Ray (`laser_rag.ray_index`) on one real local Ray cluster (2 CPUs, usage stats off) with the real
MiniLM model and real SciFact abstracts: with an actor that dies mid-run, the points still equal the single-process
index's point for point, each once, and a rerun adds nothing (no Ray work at all); the CLI indexes on the cluster's
address; a killed driver resumes on rerun (slow). The checks that come before any Ray work (fingerprint, stored ids,
Ray missing) need no cluster."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from laser_rag import store
from laser_rag.corpus import load_corpus
from laser_rag.errors import CollectionMismatchError, InvalidInputError, RayError
from laser_rag.ray_index import RayIndexing
from laser_rag.store import VectorCollection

SUPPORT = Path(__file__).resolve().parents[1] / "_support"
#: An address where no Ray cluster listens: any Ray work there would fail.
NOWHERE = "127.0.0.1:1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for the module (its GCS address); the workers carry the test fault (`ray_faults`)."""
    ray = pytest.importorskip("ray")
    import ray_faults

    flag = tmp_path_factory.mktemp("ray-fault") / "kill-one-actor"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={
        "env_vars": {ray_faults.FLAG_ENV: str(flag), "PYTHONPATH": os.pathsep.join([str(SUPPORT), *sys.path])},
        "worker_process_setup_hook": "ray_faults.install"})
    try:
        yield ray.get_runtime_context().gcs_address, flag
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def abstracts(shared_data):
    """12 SciFact abstracts, some longer than MiniLM reads (chunked: ``<id>#0``, ``<id>#1``)."""
    return load_corpus(shared_data / "scifact")[:12]


@pytest.fixture(scope="module")
def reference(minilm, abstracts):
    """The single-process index of the abstracts (hybrid, chunked), in its own embedded store."""
    collection = VectorCollection.open(store.connect(":memory:"), "single", minilm, hybrid=True)
    collection.index(abstracts, minilm, chunk=True, batch_size=8)
    return collection


def _points(collection: VectorCollection) -> dict[str, tuple[dict, np.ndarray, tuple]]:
    """Every point: id -> (payload, dense vector, sparse (indices, values))."""
    points, _ = collection.client.scroll(collection.name, limit=10_000, with_payload=True, with_vectors=True)
    return {str(point.id): (point.payload, np.asarray(point.vector[""], dtype=np.float32),
                            (tuple(point.vector["bm25"].indices), tuple(point.vector["bm25"].values))
                            if "bm25" in point.vector else None)
            for point in points}


def _same_points(ours: VectorCollection, reference: VectorCollection) -> None:
    got, expected = _points(ours), _points(reference)
    assert sorted(got) == sorted(expected)
    for point_id, (payload, dense, sparse) in expected.items():
        assert got[point_id][0] == payload
        np.testing.assert_allclose(got[point_id][1], dense, atol=1e-5)
        assert got[point_id][2] == sparse


def test_ray_equals_single_process_with_an_actor_killed_and_a_rerun_adds_nothing(cluster, minilm, abstracts,
                                                                                reference, capsys):
    """The one end-to-end run (the module's budget): two actors, the first to get a batch dies on it (Ray restarts
    it and retries the batch); the points are still the single-process ones, every one exactly once."""
    address, flag = cluster
    flag.write_text("the first actor to encode a batch dies")
    collection = VectorCollection.open(store.connect(":memory:"), "ray", minilm, hybrid=True)
    batches = []
    report = collection.index(abstracts, minilm, chunk=True, batch_size=8, progress=True,
                              ray=RayIndexing(address=address, workers=2, batch_size=4),
                              on_batch=lambda report: batches.append(report.added))
    assert not flag.exists()  # an actor did die
    assert (report.total, report.added, report.skipped) == (reference.count(), reference.count(), 0)
    assert report.total > len(abstracts)  # some abstracts were chunked
    assert batches[-1] == report.added == collection.count() and len(batches) == -(-report.added // 8)
    _same_points(collection, reference)
    startup = [line for line in capsys.readouterr().err.splitlines() if line.startswith("laser-rag: encoding on")]
    assert len(startup) == 1 and "2 workers x 1 CPU each, float32, encoder all-minilm-l6-v2" in startup[0]
    # the ids are stored already: skipped before any encoding (no Ray work: the address is never reached)
    again = collection.index(abstracts, minilm, chunk=True, ray=RayIndexing(address=NOWHERE))
    assert (again.added, again.skipped, collection.count()) == (0, reference.count(), reference.count())


def test_the_checks_before_any_ray_work(minilm, abstracts, monkeypatch):
    client = store.connect(":memory:")
    other = VectorCollection.open(client, "other", fingerprint="another-encoder", dimension=minilm.dimension)
    with pytest.raises(CollectionMismatchError, match="another encoder"):
        other.index(abstracts, minilm, ray=RayIndexing(address=NOWHERE))
    collection = VectorCollection.open(client, "mine", minilm)
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(RayError, match=r"pip install 'laser-rag\[distributed\]'"):
        collection.index(abstracts[:2], minilm, ray=RayIndexing())
    assert collection.count() == 0
    for bad in ({"workers": 0}, {"gpus_per_worker": -1}, {"batch_size": 0}, {"address": ""}):
        with pytest.raises(InvalidInputError):
            RayIndexing(**bad)


def test_workers_load_the_encoder_from_its_source(minilm, abstracts):
    from laser_rag.encoders import SentenceTransformerEncoder

    assert minilm.source == "all-minilm-l6-v2"  # what load_encoder loaded it from: a worker loads it the same way
    built = SentenceTransformerEncoder(minilm.model, name="built-here", weights_id="local")
    assert built.source is None
    collection = VectorCollection.open(store.connect(":memory:"), "built", built)
    with pytest.raises(InvalidInputError, match="load it with laser_rag.encoders.load_encoder"):
        collection.index(abstracts[:2], built, ray=RayIndexing(address=NOWHERE))


def test_cli_ray_options_need_ray_and_ray_missing_is_one_line(tmp_path, monkeypatch):
    from laser_rag.cli import app

    (tmp_path / "note.txt").write_text("A note about Ray.", encoding="utf-8")
    common = ["index", str(tmp_path / "note.txt"), "--mode", "basic", "--basic-model", "all-minilm-l6-v2",
              "--qdrant-path", str(tmp_path / "qdrant")]
    result = CliRunner().invoke(app, [*common, "--workers", "2"])
    assert result.exit_code == 2 and "apply with --ray" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    result = CliRunner().invoke(app, [*common, "--ray", "auto"])
    assert result.exit_code == 1 and "pip install 'laser-rag[distributed]'" in result.stderr


def test_cli_index_on_the_clusters_address(cluster, tmp_path, abstracts):
    from laser_rag.cli import app

    notes = tmp_path / "notes"
    notes.mkdir()
    for doc in abstracts[:3]:
        (notes / f"{doc.id}.txt").write_text(f"{doc.title}\n\n{doc.text}", encoding="utf-8")
    args = ["index", str(notes), "--mode", "basic", "--basic-model", "all-minilm-l6-v2", "--corpus", "notes",
            "--qdrant-path", str(tmp_path / "qdrant"), "--ray", cluster[0], "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"notes-all-minilm-l6-v2: (\d+) added, 0 already there, \1 in total", result.stdout)
    assert "1 worker x 1 CPU each" in result.stderr


KILLED_DRIVER = """
import sys
from laser_rag import store
from laser_rag.corpus import load_corpus
from laser_rag.encoders import load_encoder
from laser_rag.ray_index import RayIndexing
from laser_rag.store import VectorCollection

encoder = load_encoder("all-minilm-l6-v2")
collection = VectorCollection.open(store.connect(sys.argv[1]), "resumed", encoder, hybrid=True)
collection.index(load_corpus(sys.argv[2])[:12], encoder, chunk=True, batch_size=4,
                 ray=RayIndexing(address=sys.argv[3], workers=1, batch_size=4),
                 on_batch=lambda report: print("stored", report.added, flush=True))
"""


@pytest.mark.slow
def test_a_killed_driver_resumes_on_rerun(cluster, minilm, abstracts, reference, shared_data, tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", KILLED_DRIVER, str(tmp_path / "qdrant"),
                               str(shared_data / "scifact"), cluster[0]], stdout=subprocess.PIPE, text=True)
    try:
        first = driver.stdout.readline()
        assert first.startswith("stored"), first
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=60)
    collection = VectorCollection.open(store.connect(tmp_path / "qdrant"), "resumed", minilm, hybrid=True)
    stored = collection.count()
    assert 0 < stored < reference.count()
    report = collection.index(abstracts, minilm, chunk=True, batch_size=8,
                              ray=RayIndexing(address=cluster[0], workers=2, batch_size=4))
    assert report.skipped == stored and collection.count() == reference.count()  # nothing lost, nothing doubled
    store.release(tmp_path / "qdrant")
