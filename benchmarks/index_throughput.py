"""Indexing at scale with the embedded (local-mode) Qdrant store.

Two parts, each optional:

1. ``--scifact``: the whole SciFact corpus (5,183 abstracts, or ``--limit N``) through the production path —
   `load_encoder()` (the embedded default), `VectorCollection.index` (encode + upsert, skip-before-encode) into a
   fresh embedded store — documents/s end to end, with the dtype and torch threads used.
2. ``--sizes 100000,1000000``: the embedded store alone with synthetic unit vectors of the default encoder's
   dimension (the vectors' values do not matter to the store): upsert rate, re-open time, p50/p95 query latency
   (top 10) and the process's peak memory, to say when a user should move to a Qdrant server.

    python benchmarks/index_throughput.py --scifact --sizes 100000 --out benchmarks/results/index_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from laser_rag import store
from laser_rag.corpus import Document


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def scifact_end_to_end(folder: Path, limit: int | None, batch_size: int) -> dict:
    import torch

    from laser_rag import runtime
    from laser_rag.encoders import load_encoder
    from laser_rag_datasets.shared import LICENSES, shared_dataset

    documents = shared_dataset("scifact", "all").corpus[:limit]
    encoder = load_encoder()
    client = store.connect(folder / "scifact")
    collection = store.VectorCollection.open(client, "scifact-e2e", encoder)
    load_before = _load()
    report = collection.index(documents, encoder, batch_size=batch_size, chunk=False, progress=True)
    store.close_all()
    return {
        "documents": report.added, "seconds": report.seconds, "documents_per_s": report.documents_per_second,
        "encode_seconds": report.encode_seconds, "upsert_seconds": report.upsert_seconds,
        "encoder": encoder.label, "precision": encoder.precision, "torch_threads": torch.get_num_threads(),
        "runtime": runtime.runtime_summary(), "max_length": encoder.max_length,
        "load_average_before": load_before, "load_average_after": _load(), "licence": LICENSES["scifact"],
    }


def synthetic_store(folder: Path, size: int, dimension: int, batch: int, queries: int) -> dict:
    rng = np.random.default_rng(0)
    path = folder / f"synthetic-{size}"
    client = store.connect(path)
    name = f"synthetic-{size}"
    collection = store.VectorCollection.open(client, name, fingerprint=f"synthetic-{dimension}",
                                             dimension=dimension, label="synthetic")
    started = time.perf_counter()
    for offset in range(0, size, batch):
        n = min(batch, size - offset)
        vectors = rng.standard_normal((n, dimension), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        collection.upsert([Document(id=str(offset + i), text="") for i in range(n)], vectors)
    upsert_seconds = time.perf_counter() - started
    store.close_all()

    started = time.perf_counter()
    client = store.connect(path)
    collection = store.VectorCollection.open(client, name, fingerprint=f"synthetic-{dimension}", dimension=dimension,
                                             create=False)
    count = collection.count()
    reopen_seconds = time.perf_counter() - started

    latencies = []
    for _ in range(queries):
        vector = rng.standard_normal(dimension, dtype=np.float32)
        tick = time.perf_counter()
        collection.search(vector / np.linalg.norm(vector), 10)
        latencies.append((time.perf_counter() - tick) * 1000.0)
    store.close_all()
    disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {
        "vectors": count, "dimension": dimension, "upsert_seconds": upsert_seconds,
        "upserts_per_s": size / upsert_seconds, "reopen_seconds": reopen_seconds,
        "query_p50_ms": statistics.median(latencies), "query_p95_ms": float(np.percentile(latencies, 95)),
        "peak_rss_mb": _peak_rss_mb(), "disk_mb": disk / 2**20, "load_average": _load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scifact", action="store_true", help="index the SciFact corpus end to end")
    parser.add_argument("--limit", type=int, default=None, help="only the first N SciFact abstracts")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sizes", default="", help="synthetic store sizes, e.g. 100000,1000000")
    parser.add_argument("--dimension", type=int, default=576, help="the default encoder's (SmolLM2-135M) is 576")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--folder", type=Path, default=None, help="where the stores go (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="laser-rag-index-"))
    report = {"benchmark": "index_throughput", "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        if args.scifact:
            report["scifact"] = scifact_end_to_end(folder, args.limit, args.batch_size)
            print(json.dumps(report["scifact"]), flush=True)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            report.setdefault("synthetic", []).append(synthetic_store(folder, size, args.dimension, 1024,
                                                                      args.queries))
            print(json.dumps(report["synthetic"][-1]), flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
