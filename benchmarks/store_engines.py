"""The embedded store's two engines side by side: qdrant-client's local mode (``path=``, `laser_rag.store`) and
Qdrant Edge in-process (`laser_rag.store.edge.EdgeEngine`), on real embeddings.

Data: the first ``--docs`` HotpotQA dev paragraphs (/work/shared/data, CC BY-SA 4.0) encoded by the default encoder
(`load_encoder()`; cached on disk by `laser_rag_benchmarks.cache`), and its 100 questions as query vectors. Beyond
the real paragraphs, each further point mixes two real vectors (``a * x_i + (1 - a) * x_j``, ``a`` uniform in
[0.6, 0.9]) plus a small isotropic perturbation, so the set keeps the real vectors' geometry (random unit vectors
are HNSW's worst case and nothing like an encoder's output). Its payload and its BM25 sparse vector
(`laser_rag.sparse`) are those of ``x_i``'s paragraph, each term kept with probability 0.7.

Every engine x size runs in its own child process (clean peak RSS); the parent encodes the data once and computes
the exact top 10 of every query (numpy, float32) for recall@10. Measured: upserts/s (batches of 1,000), the index
build (Edge: ``optimize``, run by the first query), p50/p95 latency of dense top-10 queries (Edge at each
``--ef`` value) and of hybrid ones (dense + BM25, DBSF, 100 candidates each), recall@10, peak and final RSS, disk,
re-open time, and a ``kill -9`` of a writer mid-upsert (how many acknowledged points survive).

    nice -n 15 python benchmarks/store_engines.py --sizes 10000,100000 --edge-sizes 1000000 \\
        --out benchmarks/results/store_engines.json
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
_BATCH = 1000
_K = 10


# ------------------------------------------------------------------------------------------------ the data


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _machine() -> dict:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    import importlib.metadata as metadata

    return {"cpu": model, "cpus": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags,
            "amx_bf16": "amx_bf16" in flags, "avx512f": "avx512f" in flags, "python": platform.python_version(),
            "qdrant_edge": metadata.version("qdrant-edge-py"), "qdrant_client": metadata.version("qdrant-client")}


def encode_base(folder: Path, docs: int, questions: int, vectors: Path | None = None) -> dict:
    """Encode the real paragraphs and questions once; saved in ``folder`` for the children. ``vectors``: the
    paragraphs' vectors computed earlier by the same encoder (checked on the first paragraph) instead of encoding
    them here."""
    import torch

    from laser_rag import runtime
    from laser_rag.encoders import load_encoder
    from laser_rag.sparse import SparseEncoder
    from laser_rag_benchmarks.cache import document_vectors
    from laser_rag_datasets.shared import LICENSES, shared_dataset

    dataset = shared_dataset("hotpotqa", "validation")
    documents = dataset.corpus[:docs]
    encoder = load_encoder()
    load_before = _load()
    if vectors is None:
        matrix, seconds, cached = document_vectors(encoder, documents, chunk_size=100, progress=False)
    else:
        matrix, seconds, cached = np.load(vectors)[:docs], 0.0, True
        first = document_vectors(encoder, documents[:1], progress=False)[0][0]
        agreement = float(first @ matrix[0] / np.linalg.norm(first) / np.linalg.norm(matrix[0]))
        if matrix.shape != (len(documents), encoder.dimension) or agreement < 0.99:
            raise SystemExit(f"{vectors} is not this encoder's encoding of the first {docs} paragraphs "
                             f"(shape {matrix.shape}, cosine with a fresh encoding {agreement:.4f})")
    texts = list(dataset.queries.values())[:questions]
    tick = time.perf_counter()
    queries = encoder.encode_queries(texts)
    query_seconds = time.perf_counter() - tick
    sparse = SparseEncoder()
    doc_sparse = sparse.encode_documents([f"{doc.title}\n{doc.text}" for doc in documents])
    np.savez(folder / "base.npz", vectors=np.asarray(matrix, np.float32), queries=np.asarray(queries, np.float32))
    (folder / "base.json").write_text(json.dumps({
        "titles": [doc.title for doc in documents], "texts": [doc.text for doc in documents],
        "sparse": [[s.indices, s.values] for s in doc_sparse],
        "query_sparse": [[s.indices, s.values] for s in sparse.encode_queries(texts)]}))
    return {"dataset": f"hotpotqa dev_100: the first {len(documents)} paragraphs and {len(texts)} questions",
            "licence": LICENSES.get("hotpotqa"), "encoder": encoder.label, "fingerprint": encoder.fingerprint,
            "dimension": encoder.dimension, "precision": encoder.precision, "torch_threads": torch.get_num_threads(),
            "runtime": runtime.runtime_summary(), "paragraph_vectors": str(vectors) if vectors else "encoded here",
            "encode_seconds": round(seconds, 1), "from_cache": cached, "query_encode_seconds": round(query_seconds, 1),
            "load_average": [load_before, _load()]}


class _Data:
    """The base vectors and their deterministic extension to any size, chunk by chunk."""

    def __init__(self, folder: Path) -> None:
        arrays = np.load(folder / "base.npz")
        self.base, self.queries = arrays["vectors"], arrays["queries"]
        self.base /= np.linalg.norm(self.base, axis=1, keepdims=True)
        self.meta = json.loads((folder / "base.json").read_text())

    def chunk(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Vectors ``start..stop`` (unit, float32) and the base paragraph each one takes its payload from; the
        same point whatever the chunk it is asked in (generated in blocks of `_BATCH`, each from its own seed)."""
        blocks = [self._block(b) for b in range(start // _BATCH, -(-stop // _BATCH))]
        offset = start - (start // _BATCH) * _BATCH
        vectors = np.concatenate([v for v, _ in blocks])[offset:offset + stop - start]
        bases = np.concatenate([b for _, b in blocks])[offset:offset + stop - start]
        return vectors, bases

    @functools.lru_cache(maxsize=4)  # noqa: B019 -- one _Data per process
    def _block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        n, dim = self.base.shape
        index = np.arange(block * _BATCH, (block + 1) * _BATCH)
        rng = np.random.default_rng([7, block])
        first = np.where(index < n, index % n, rng.integers(0, n, _BATCH))
        second = rng.integers(0, n, _BATCH)
        a = np.where(index < n, 1.0, rng.uniform(0.6, 0.9, _BATCH)).astype(np.float32)[:, None]
        noise = np.where(index < n, 0.0, 0.03).astype(np.float32)[:, None]
        vectors = a * self.base[first] + (1 - a) * self.base[second]
        vectors += noise * rng.standard_normal((_BATCH, dim), dtype=np.float32) / np.sqrt(dim)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32), first

    def sparse(self, position: int, base: int):
        from qdrant_client import models

        indices, values = self.meta["sparse"][base]
        if position >= len(self.base):  # a derived point: drop some of its paragraph's terms
            keep = np.random.default_rng([11, position]).random(len(indices)) < 0.7
            keep[0] = True
            indices = [i for i, k in zip(indices, keep) if k]
            values = [v for v, k in zip(values, keep) if k]
        return models.SparseVector(indices=indices, values=values)

    def query_sparse(self, i: int):
        from qdrant_client import models

        indices, values = self.meta["query_sparse"][i]
        return models.SparseVector(indices=indices, values=values)


def exact_top(data: _Data, size: int) -> np.ndarray:
    """The exact top-10 point positions of every query among the first ``size`` points (numpy, float32)."""
    best_scores = np.full((len(data.queries), _K), -np.inf, np.float32)
    best = np.zeros((len(data.queries), _K), np.int64)
    for start in range(0, size, 50_000):
        vectors, _ = data.chunk(start, min(size, start + 50_000))
        scores = data.queries @ vectors.T
        scores = np.concatenate([best_scores, scores], axis=1)
        ids = np.concatenate([best, np.arange(start, start + vectors.shape[0])[None].repeat(len(scores), 0)], axis=1)
        top = np.argsort(-scores, axis=1)[:, :_K]
        best_scores, best = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
    return best


# ------------------------------------------------------------------------------------------------ the engines


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``: unlike ``ru_maxrss`` it does not keep the parent's peak across exec)."""
    return _status_mb("VmHWM")


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _latencies(run, count: int) -> tuple[list[float], list]:
    times, results = [], []
    for i in range(count):
        tick = time.perf_counter()
        results.append(run(i))
        times.append((time.perf_counter() - tick) * 1000.0)
    return times, results


def _summary(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times), 3), "p95_ms": round(float(np.percentile(times, 95)), 3),
            "queries": len(times)}


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / _K for f, t in zip(found, truth)]))


def _edge_writes(data: _Data, start: int, stop: int):
    from laser_rag.store import point_id
    from laser_rag.store.edge import PointWrite

    vectors, bases = data.chunk(start, stop)
    return [PointWrite(id=point_id(str(start + i)), dense=vectors[i],
                       payload={"text": data.meta["texts"][b], "metadata": {"doc_id": str(start + i),
                                                                          "title": data.meta["titles"][b]}},
                       sparse=data.sparse(start + i, b))
            for i, b in enumerate(bases.tolist())]


def _local_batch(data: _Data, start: int, stop: int):
    from laser_rag.corpus import Document

    vectors, bases = data.chunk(start, stop)
    documents = [Document(id=str(start + i), text=data.meta["texts"][b], title=data.meta["titles"][b])
                 for i, b in enumerate(bases.tolist())]
    return documents, vectors, [data.sparse(start + i, b) for i, b in enumerate(bases.tolist())]


def run_edge(folder: Path, data: _Data, size: int, truth: np.ndarray, m: int, ef_construct: int,
             efs: list[int], queries: int) -> dict:
    from dataclasses import replace

    from laser_rag.store import fusion_query
    from laser_rag.store.edge import CollectionSpec, EdgeEngine, EdgeIndexConfig

    path = folder / f"edge-{size}-m{m}-ef{ef_construct}"
    config = EdgeIndexConfig(m=m, ef_construct=ef_construct, hnsw_ef=efs[0])
    engine = EdgeEngine(path, config)
    engine.create("bench", CollectionSpec(dimension=data.base.shape[1], sparse=True, metadata={}))
    load_before = _load()
    upsert_seconds = 0.0
    for start in range(0, size, _BATCH):
        batch = _edge_writes(data, start, min(size, start + _BATCH))
        tick = time.perf_counter()
        engine.upsert("bench", batch)
        upsert_seconds += time.perf_counter() - tick
    tick = time.perf_counter()
    engine.query_dense("bench", data.queries[0], _K)  # builds the HNSW index first (optimize)
    build_seconds = time.perf_counter() - tick
    engine.close()

    result = {"engine": "edge", "points": size, "m": m, "ef_construct": ef_construct,
              "upsert_seconds": round(upsert_seconds, 2), "upserts_per_s": round(size / upsert_seconds),
              "index_build_seconds": round(build_seconds, 2), "by_hnsw_ef": {}}
    for ef in efs:
        tick = time.perf_counter()
        engine = EdgeEngine(path, replace(config, hnsw_ef=ef))
        count = engine.count("bench")
        result.setdefault("reopen_seconds", round(time.perf_counter() - tick, 3))
        times, hits = _latencies(lambda i: engine.query_dense("bench", data.queries[i % len(data.queries)], _K),
                                 queries)
        found = [[int(h.payload["metadata"]["doc_id"]) for h in r] for r in hits[:len(truth)]]
        result["by_hnsw_ef"][str(ef)] = {**_summary(times), "recall_at_10": round(_recall(found, truth), 4)}
        if ef == efs[0]:
            fusion = fusion_query("dbsf")
            times, _ = _latencies(lambda i: engine.query_hybrid(
                "bench", data.queries[i % len(data.queries)], data.query_sparse(i % len(data.queries)), _K,
                fusion=fusion, prefetch_limit=100), queries)
            result["hybrid_dbsf"] = _summary(times)
            exact_times, exact_hits = _latencies(
                lambda i: engine.query_dense("bench", data.queries[i], _K, exact=True), min(20, len(truth)))
            exact_found = [[int(h.payload["metadata"]["doc_id"]) for h in r] for r in exact_hits]
            result["exact"] = {**_summary(exact_times), "recall_at_10": round(_recall(exact_found, truth), 4)}
        engine.close()
    result.update(count=count, peak_rss_mb=round(_peak_rss_mb()), final_rss_mb=round(_rss_mb()),
                  disk_mb=round(_disk_mb(path)), load_average=[load_before, _load()])
    shutil.rmtree(path, ignore_errors=True)
    return result


def run_local(folder: Path, data: _Data, size: int, truth: np.ndarray, queries: int) -> dict:
    from laser_rag import store
    from laser_rag.store.clients import local_mode_client

    path = folder / f"local-{size}"
    dimension = data.base.shape[1]

    def opened(create: bool):
        client = local_mode_client(path)  # qdrant-client's local mode, not the embedded default (Edge)
        return store.VectorCollection.open(client, "bench", fingerprint="bench", dimension=dimension, label="bench",
                                           hybrid=True, create=create)

    collection = opened(True)
    load_before = _load()
    upsert_seconds = 0.0
    for start in range(0, size, _BATCH):
        batch = _local_batch(data, start, min(size, start + _BATCH))
        tick = time.perf_counter()
        collection.upsert(*batch)
        upsert_seconds += time.perf_counter() - tick
    collection.engine.close()
    tick = time.perf_counter()
    collection = opened(False)
    count = collection.count()
    reopen_seconds = time.perf_counter() - tick
    times, hits = _latencies(lambda i: collection.search(data.queries[i % len(data.queries)], _K), queries)
    found = [[int(h.id) for h in r] for r in hits[:len(truth)]]
    hybrid, _ = _latencies(lambda i: collection.search_hybrid(
        data.queries[i % len(data.queries)], data.query_sparse(i % len(data.queries)), _K, fusion="dbsf"), queries)
    collection.engine.close()
    result = {"engine": "local", "points": size, "upsert_seconds": round(upsert_seconds, 2),
              "upserts_per_s": round(size / upsert_seconds), "index_build_seconds": 0.0,
              "reopen_seconds": round(reopen_seconds, 3),
              "dense": {**_summary(times), "recall_at_10": round(_recall(found, truth[:len(found)]), 4)},
              "hybrid_dbsf": _summary(hybrid), "count": count, "peak_rss_mb": round(_peak_rss_mb()),
              "final_rss_mb": round(_rss_mb()), "disk_mb": round(_disk_mb(path)),
              "load_average": [load_before, _load()]}
    shutil.rmtree(path, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------------------------ kill -9


def writer(engine: str, path: Path, data: _Data) -> None:
    """Upsert 200 points at a time forever, printing how many are acknowledged after each upsert returns."""
    if engine == "edge":
        from laser_rag.store.edge import CollectionSpec, EdgeEngine

        store_edge = EdgeEngine(path)
        if not store_edge.exists("bench"):
            store_edge.create("bench", CollectionSpec(dimension=data.base.shape[1], sparse=True, metadata={}))
        write = lambda start, stop: store_edge.upsert("bench", _edge_writes(data, start, stop))  # noqa: E731
    else:
        from laser_rag import store
        from laser_rag.store.clients import local_mode_client

        collection = store.VectorCollection.open(local_mode_client(path), "bench", fingerprint="bench",
                                                 dimension=data.base.shape[1], label="bench", hybrid=True)
        write = lambda start, stop: collection.upsert(*_local_batch(data, start, stop))  # noqa: E731
    start = 0
    while True:
        write(start, start + 200)
        start += 200
        print(start, flush=True)


def kill_test(engine: str, folder: Path, seconds: float) -> dict:
    """Start a writer, kill -9 it after ``seconds``, re-open the store: are all acknowledged points there?"""
    path = folder / f"kill-{engine}"
    child = subprocess.Popen([sys.executable, __file__, "--writer", engine, "--folder", str(folder),
                              "--store", str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    child.send_signal(signal.SIGKILL)
    child.wait()
    for line in child.stdout.read().split():  # acknowledged before the kill landed
        acknowledged = int(line)
    tick = time.perf_counter()
    from laser_rag.store import point_id

    ids = [point_id(str(i)) for i in range(acknowledged)]
    if engine == "edge":
        from laser_rag.store.edge import EdgeEngine

        with EdgeEngine(path) as reopened:
            count, present = reopened.count("bench"), len(reopened.existing_ids("bench", ids))
    else:
        from laser_rag.store.clients import local_mode_client

        client = local_mode_client(path)
        count = client.count("bench", exact=True).count
        present = len(client.retrieve("bench", ids=ids, with_payload=False, with_vectors=False))
        client.close()
    reopen = time.perf_counter() - tick
    shutil.rmtree(path, ignore_errors=True)
    return {"engine": engine, "acknowledged": acknowledged, "present_after_reopen": present,
            "count_after_reopen": count, "lost": acknowledged - present, "reopen_seconds": round(reopen, 2)}


# ------------------------------------------------------------------------------------------------ main


def _child(args: argparse.Namespace) -> None:
    data = _Data(args.folder)
    truth = np.load(args.folder / f"truth-{args.size}.npy")
    if args.child == "edge":
        result = run_edge(args.folder, data, args.size, truth, args.m, args.ef_construct,
                          [int(e) for e in args.ef.split(",")], args.queries)
    else:
        result = run_local(args.folder, data, args.size, truth, args.queries)
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(folder: Path, *extra: str) -> dict:
    output = subprocess.run([sys.executable, __file__, "--folder", str(folder), *extra], check=True,
                            stdout=subprocess.PIPE, text=True).stdout
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="sizes run on both engines")
    parser.add_argument("--edge-sizes", default="", help="sizes run on Edge only (e.g. 1000000)")
    parser.add_argument("--docs", type=int, default=400, help="real paragraphs encoded")
    parser.add_argument("--questions", type=int, default=50, help="real questions encoded (the query vectors)")
    parser.add_argument("--vectors", type=Path, default=None,
                        help="the paragraphs' vectors (.npy) from an earlier encoding by the default encoder")
    parser.add_argument("--edge-configs", default="16:128,32:256", help="HNSW m:ef_construct pairs")
    parser.add_argument("--ef", default="128,32,64,256", help="hnsw_ef values (the first also runs hybrid)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per measurement (Edge)")
    parser.add_argument("--local-queries", type=int, default=40, help="timed queries per measurement (local)")
    parser.add_argument("--kill-seconds", type=float, default=8.0)
    parser.add_argument("--folder", type=Path, default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=RESULTS / "store_engines.json")
    # internal: a child measurement / the kill -9 writer
    parser.add_argument("--child", choices=["edge", "local"], help=argparse.SUPPRESS)
    parser.add_argument("--writer", choices=["edge", "local"], help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, default=16, help=argparse.SUPPRESS)
    parser.add_argument("--ef-construct", type=int, default=128, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    if args.writer:
        return writer(args.writer, args.store, _Data(args.folder))

    folder = args.folder or Path(tempfile.mkdtemp(prefix="laser-rag-engines-"))
    folder.mkdir(parents=True, exist_ok=True)
    report = {"benchmark": "store_engines", "command": " ".join(["python", "benchmarks/store_engines.py",
                                                                  *sys.argv[1:]]),
              "machine": _machine(), "nice": os.getpriority(os.PRIO_PROCESS, 0), "vectors": "float32, cosine",
              "batch": _BATCH, "k": _K, "runs": [], "kill_9": []}

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    if not (folder / "base.npz").exists():
        report["data"] = encode_base(folder, args.docs, args.questions, args.vectors)
        (folder / "data.json").write_text(json.dumps(report["data"]))
    report["data"] = json.loads((folder / "data.json").read_text())
    print(json.dumps(report["data"]), flush=True)
    data = _Data(folder)
    both = [int(s) for s in args.sizes.split(",") if s]
    edge_only = [int(s) for s in args.edge_sizes.split(",") if s]
    for engine in ("edge", "local"):
        report["kill_9"].append(kill_test(engine, folder, args.kill_seconds))
        print(json.dumps(report["kill_9"][-1]), flush=True)
    save()
    configs = [tuple(int(x) for x in pair.split(":")) for pair in args.edge_configs.split(",")]
    for size in both + edge_only:
        truth_path = folder / f"truth-{size}.npy"
        if not truth_path.exists():
            np.save(truth_path, exact_top(data, size))
        for m, ef_construct in configs:
            report["runs"].append(_spawn(folder, "--child", "edge", "--size", str(size), "--m", str(m),
                                         "--ef-construct", str(ef_construct), "--ef", args.ef,
                                         "--queries", str(args.queries)))
            print(json.dumps(report["runs"][-1]), flush=True)
            save()
        if size in both:
            report["runs"].append(_spawn(folder, "--child", "local", "--size", str(size),
                                         "--queries", str(args.local_queries)))
            print(json.dumps(report["runs"][-1]), flush=True)
            save()
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
