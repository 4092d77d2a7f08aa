"""What quantization costs in retrieval quality, memory and disk, on the embedded Qdrant Edge engine: nDCG@10 on the
shared sets with float32 vectors and with int8 / binary quantization, with and without rescoring.

Data: the four shared sets as the project evaluates them (`laser_rag_benchmarks.shared.SHARED_EVALS`: validation,
the first 50 judged queries, their relevant documents plus distractors up to 1,000 documents; ``--full``: the whole
validation corpora and every judged query; /work/shared/data via `laser_rag_datasets.shared`), encoded once by
``--encoder`` (default all-MiniLM-L6-v2, the fast one; document
vectors cached by `laser_rag_benchmarks.cache`). Each set is stored three times through the production path
(`VectorCollection.open(engine, ..., options=CollectionOptions(quantization=...))`, `upsert`, `build_index`) in
an `EdgeEngine` whose indexing threshold is 1 KB, so that every segment is indexed and quantized (at the default
threshold, segments under 10 MB are searched exactly, float32, and a corpus of a few thousand passages would never
be quantized). Searched per configuration: exact float32 (the reference, what `evaluate_encoder` does), HNSW on
float32, and each quantization with ``rescore=False``, ``rescore=True``, and ``rescore=True`` with oversampling.
Memory: the size of the quantized vectors (the part kept in RAM with ``quantization_in_ram``) and of the original
vectors, from the shard's files; disk: the collection's folder.

    nice -n 15 python benchmarks/store_quantization.py --out benchmarks/results/store_quantization.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ("hotpotqa", "strategyqa", "musique", "scifact")
#: (label, search keywords) per quantized collection; the float32 collection runs exact and HNSW.
SEARCHES = {
    "no rescore": {"rescore": False},
    "rescore": {"rescore": True},
    "rescore, oversampling 2": {"rescore": True, "oversampling": 2.0},
    "rescore, oversampling 4": {"rescore": True, "oversampling": 4.0},
}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _folder_mb(path: Path, part: str | None = None) -> float:
    files = [p for p in path.rglob("*") if p.is_file() and (part is None or part in p.parts)]
    return round(sum(p.stat().st_size for p in files) / 2**20, 2)


def _evaluate(collection, vectors: np.ndarray, qids: list[str], qrels, **search) -> dict:
    from laser_rag.evaluation import score_run

    times, run = [], {}
    for qid, vector in zip(qids, vectors):
        tick = time.perf_counter()
        hits = collection.search(vector, 10, **search)
        times.append((time.perf_counter() - tick) * 1000.0)
        run[qid] = {hit.id: hit.score for hit in hits}
    scores = score_run({qid: qrels[qid] for qid in qids}, run, ["ndcg_cut_10", "recall_10"])
    return {"ndcg@10": round(scores["ndcg_cut_10"], 4), "recall@10": round(scores["recall_10"], 4),
            "p50_ms": round(statistics.median(times), 3), "top10": run}


def _overlap(run: dict, reference: dict) -> float:
    """Mean share of the reference's top 10 that a run also returns."""
    return round(float(np.mean([len(set(run[q]) & set(reference[q])) / max(1, len(reference[q]))
                                for q in reference])), 4)


def run_set(name: str, encoder, folder: Path, full: bool = False) -> dict:
    from laser_rag.evaluation import judged_queries
    from laser_rag.store import CollectionOptions, VectorCollection
    from laser_rag.store.edge import EdgeEngine, EdgeIndexConfig
    from laser_rag_benchmarks.cache import document_vectors
    from laser_rag_benchmarks.shared import shared_slice
    from laser_rag_datasets.shared import shared_dataset

    dataset = shared_dataset(name, "validation") if full else shared_slice(name)
    qids = judged_queries(dataset.qrels, list(dataset.queries))
    load_before = _load()
    matrix, encode_seconds, cached = document_vectors(encoder, dataset.corpus, progress=False)
    queries = encoder.encode_queries([dataset.queries[q] for q in qids])
    result = {"set": name, "documents": len(dataset.corpus), "queries": len(qids),
              "encode_seconds": round(encode_seconds, 1), "vectors_from_cache": cached, "configs": {}}
    config = EdgeIndexConfig(indexing_threshold_kb=1, full_scan_threshold_kb=1)
    reference = None
    for quantization in (None, "int8", "binary"):
        label = quantization or "float32"
        path = folder / f"{name}-{label}"
        with EdgeEngine(path, config) as engine:
            options = CollectionOptions(quantization=quantization, on_disk_vectors=quantization is not None)
            collection = VectorCollection.open(engine, name, encoder, options=options)
            tick = time.perf_counter()
            for start in range(0, len(dataset.corpus), 1000):
                collection.upsert(dataset.corpus[start:start + 1000], matrix[start:start + 1000])
            upsert_seconds = time.perf_counter() - tick
            tick = time.perf_counter()
            collection.build_index()
            build_seconds = time.perf_counter() - tick
            searches = {"exact": {"exact": True}, "hnsw": {}} if quantization is None else SEARCHES
            measured = {}
            for search_label, search in searches.items():
                measured[search_label] = _evaluate(collection, queries, qids, dataset.qrels, **search)
            if reference is None:
                reference = measured["exact"]["top10"]
            for values in measured.values():
                values["top10_overlap_with_exact"] = _overlap(values.pop("top10"), reference)
        result["configs"][label] = {
            "options": options.to_dict(), "upsert_seconds": round(upsert_seconds, 2),
            "build_seconds": round(build_seconds, 2), "searches": measured,
            "disk_mb": _folder_mb(path), "quantized_vectors_mb": _folder_mb(path, "quantized_data"),
            "original_vectors_mb": round(matrix.shape[0] * matrix.shape[1] * 4 / 2**20, 2)}
        shutil.rmtree(path, ignore_errors=True)
        print(json.dumps({name: {label: {k: {m: v[m] for m in ("ndcg@10", "top10_overlap_with_exact")}
                                         for k, v in measured.items()}}}), flush=True)
    result["load_average"] = [load_before, _load()]
    return result


def encoder_report(benchmark: str, encoder, sets: list[str], **extra: Any) -> dict:
    """The head of a store benchmark's JSON: the command, the encoder, the machine (threads, nice, CPUs), the
    Qdrant libraries, ``extra``, the sets' licences, and an empty ``sets`` list."""
    import importlib.metadata as metadata

    import torch

    from laser_rag import runtime
    from laser_rag_datasets.shared import LICENSES

    return {"benchmark": benchmark, "command": " ".join(["python", *sys.argv]),
            "encoder": encoder.label, "fingerprint": encoder.fingerprint, "dimension": encoder.dimension,
            "precision": encoder.precision, "torch_threads": torch.get_num_threads(),
            "runtime": runtime.runtime_summary(), "cpu_bf16": runtime.cpu_bf16_units(),
            "nice": os.getpriority(os.PRIO_PROCESS, 0), "cpus": os.cpu_count(),
            "qdrant_client": metadata.version("qdrant-client"), "qdrant_edge": metadata.version("qdrant-edge-py"),
            **extra, "licences": {s: LICENSES.get(s) for s in sets}, "sets": []}


def run_sets(report: dict, sets: list[str], run: Callable[[str, Path], dict], out: Path, prefix: str) -> None:
    """``run(set, scratch folder)`` for each set, the report rewritten to ``out`` after each (a run cut short keeps
    the sets it finished); the scratch folder is removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        for name in sets:
            report["sets"].append(run(name, folder))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="all-minilm-l6-v2")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--full", action="store_true", help="whole validation corpora instead of the slices")
    parser.add_argument("--out", type=Path, default=RESULTS / "store_quantization.json")
    args = parser.parse_args()

    from laser_rag.encoders import load_encoder

    encoder = load_encoder(args.encoder)
    sets = [s for s in args.sets.split(",") if s]
    report = encoder_report(
        "store_quantization", encoder, sets,
        index="Edge HNSW m=32, ef_construct=256, hnsw_ef=128; indexing and full-scan thresholds 1 KB",
        data="whole validation sets" if args.full else "SHARED_EVALS slices (50 queries, <= 1,000 docs)")
    run_sets(report, sets, lambda name, folder: run_set(name, encoder, folder, args.full), args.out,
             "laser-rag-quantization-")


if __name__ == "__main__":
    main()
