"""Bulk indexing on Ray against one process: documents/s for ``VectorCollection.index`` in this process, then with
``ray=RayIndexing(workers=1)`` and ``workers=2`` on a local Ray instance, each into a fresh in-memory store, on the
first ``--documents`` SciFact abstracts (the shared data, CC BY-NC 2.0) with MiniLM (all-MiniLM-L6-v2, fp32).

Each Ray figure is given twice: end to end (Ray's start, the actors loading the model, the encoding and the writes)
and the steady rate after the first batch came back (what more documents would see). The JSON records the dtype,
torch threads, the load average before and after each run and the CPU model: on a machine shared with other work
the figures move with the load.

    python benchmarks/ray_index.py --out benchmarks/results/ray_index.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run(documents, encoder, ray_options) -> dict:
    from laser_rag import store
    from laser_rag.store import VectorCollection

    collection = VectorCollection.open(store.connect(":memory:"), "bench", encoder, recreate=True)
    firsts: list[tuple[float, int]] = []
    load_before, started = _load(), time.perf_counter()
    report = collection.index(documents, encoder, batch_size=16, ray=ray_options,
                              on_batch=lambda r: firsts.append((time.perf_counter() - started, r.added)))
    seconds = time.perf_counter() - started
    first_at, first_added = firsts[0]
    steady = (report.added - first_added) / (seconds - first_at) if seconds > first_at else None
    return {"documents": report.added, "seconds": round(seconds, 2),
            "documents_per_s": round(report.added / seconds, 2),
            "first_batch_after_s": round(first_at, 2),
            "steady_documents_per_s": round(steady, 2) if steady else None,
            "load_average_before": load_before, "load_average_after": _load()}


def _worker_threads(ray) -> int:
    """torch's threads in a 1-CPU Ray worker, as the encoding actors get one (Ray sets OMP_NUM_THREADS to it)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=1)
        def threads() -> int:
            import torch

            from laser_rag import runtime

            runtime.configure_threads()
            return torch.get_num_threads()

        return ray.get(threads.remote())
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ray_index.json")
    args = parser.parse_args()

    os.environ.setdefault("LASER_RAG_DTYPE", "float32")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import ray
    import torch

    from laser_rag import runtime
    from laser_rag.corpus import load_corpus
    from laser_rag.encoders import load_encoder
    from laser_rag.ray_index import RayIndexing

    documents = load_corpus(args.data / "scifact")[: args.documents]
    encoder = load_encoder("all-minilm-l6-v2")
    runtime.configure_threads()
    results = {
        "command": f"python benchmarks/ray_index.py --documents {args.documents}",
        "documents": len(documents), "corpus": "SciFact abstracts (first N, no chunking), CC BY-NC 2.0",
        "encoder": encoder.label, "dtype": encoder.precision, "single_process_torch_threads": torch.get_num_threads(),
        "ray_worker_torch_threads": _worker_threads(ray), "ray": ray.__version__, "cpus": os.cpu_count(), "cpu_model": _cpu_model(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "runs": {},
    }
    results["runs"]["single_process"] = _run(documents, encoder, None)
    for workers in (1, 2):
        results["runs"][f"ray_{workers}_worker{'s' if workers > 1 else ''}"] = _run(
            documents, encoder, RayIndexing(address="local", workers=workers, batch_size=16))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["runs"], indent=2))


if __name__ == "__main__":
    main()
