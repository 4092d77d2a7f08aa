"""Retrieval quality and query latency of every mode on one BEIR-style dataset (``laser-rag eval``).

How it measures:

- Quality: nDCG@k, Recall@k, Recall@100 and MRR@k by pytrec_eval (`laser_rag.evaluation.score_run`) on the
  top-100 of each judged query. Each dense mode runs through `laser_rag.retrieval.Retriever` over an in-memory
  Qdrant collection, which searches exhaustively: the path users run, with no approximate index between an
  encoder and its score (`laser_rag_benchmarks.retrievers`).
- Latency: the query side only, one query at a time as a user sends it (rewrite + encode + search, wall clock).
  The modes are interleaved query by query (mode order rotating) so every mode sees the same machine state; the
  rewrite/LaSER ratio of medians comes from the same run. Document encoding is not part of query latency.
- Document vectors are computed once per encoder and corpus and cached on disk
  (`laser_rag_benchmarks.cache.document_vectors`): a re-run encodes only the queries.

Example::

    from laser_rag.beir import load_beir
    from laser_rag_benchmarks.harness import evaluate_modes
    from laser_rag_benchmarks.report import results_table
    from laser_rag_benchmarks.retrievers import EvalSettings

    report = evaluate_modes(load_beir("my-beir-dir", "test"), ["bm25", "basic", "laser"], EvalSettings(max_queries=50))
    print(results_table(report))
    report.save("results.json")
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from laser_rag.beir import RetrievalDataset
from laser_rag.evaluation import judged_queries, score_queries, score_run
from laser_rag_datasets.subsets import slice_dataset
from laser_rag_benchmarks.report import EvalReport, ModeFigures, results_table
from laser_rag_benchmarks.retrievers import DEFAULT_MODES, EvalSettings, parse_modes, runners


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def _environment() -> dict[str, Any]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": sys.version.split()[0], "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
            "load_average_at_start": [round(x, 2) for x in load] if load else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def evaluate_modes(
    dataset: RetrievalDataset,
    modes: str | Sequence[str] = DEFAULT_MODES,
    settings: EvalSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    license: str | None = None,
    command: str | None = None,
    on_mode_ready: Callable[[str], None] | None = None,
) -> EvalReport:
    """Quality and query latency of each mode on ``dataset`` (see the module docstring for the method).

    ``license`` and ``command`` are recorded in the report as given. A query a mode fails on (the rewriter raised a
    `laser_rag.errors.GenerationError`) counts as a failure and scores 0 for that mode.
    """
    from laser_rag.errors import CorpusError, GenerationError

    settings = settings or EvalSettings()
    modes = parse_modes(modes)
    environment = _environment()
    qids = judged_queries(dataset.qrels, list(dataset.queries))[:settings.max_queries]
    if not qids:
        raise CorpusError(f"{dataset.name}: no query has a relevant document in the qrels")
    built = runners(modes, dataset.corpus, settings, cache_dir=cache_dir, progress=progress)
    for mode, runner in built.items():  # warm-up, untimed: first-call costs are not query latency
        runner.retrieve(dataset.queries[qids[0]])
        if on_mode_ready:
            on_mode_ready(mode)

    runs: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in modes}
    totals: dict[str, list[float]] = {mode: [] for mode in modes}
    stages: dict[str, dict[str, list[float]]] = {mode: {} for mode in modes}
    failures = dict.fromkeys(modes, 0)
    for number, qid in enumerate(tqdm(qids, desc="queries", unit="query", disable=not progress)):
        query = dataset.queries[qid]
        turn = number % len(modes)
        for mode in modes[turn:] + modes[:turn]:
            tick = time.perf_counter()
            try:
                ranked, timings = built[mode].retrieve(query)
            except GenerationError:
                failures[mode] += 1
                continue
            totals[mode].append((time.perf_counter() - tick) * 1000.0)
            for stage, ms in timings.items():
                stages[mode].setdefault(stage, []).append(ms)
            runs[mode][qid] = dict(ranked)

    qrels = {qid: dataset.qrels[qid] for qid in qids}
    results = []
    for mode in modes:
        runner = built[mode]
        per_query = score_queries(qrels, runs[mode], settings.metrics)
        results.append(ModeFigures(
            mode=mode,
            encoder=runner.encoder,
            fingerprint=runner.fingerprint,
            metrics=score_run(qrels, runs[mode], settings.metrics),
            per_query=per_query,
            latency_ms={"median": _percentile(totals[mode], 50), "p95": _percentile(totals[mode], 95),
                        "mean": float(statistics.fmean(totals[mode])) if totals[mode] else float("nan")},
            stages_ms={stage: _percentile(values, 50) for stage, values in stages[mode].items()},
            num_queries=len(qids),
            failures=failures[mode],
            index_seconds=round(runner.index_seconds, 1),
            index_cached=runner.index_cached,
        ))
    return EvalReport(dataset=dataset.name, num_docs=len(dataset.corpus), num_queries=len(qids),
                      settings=dataclasses.asdict(settings), results=results, environment=environment,
                      license=license, command=command)


def run_eval(dataset: RetrievalDataset, modes: str | Sequence[str], settings: EvalSettings, *,
             max_docs: int | None = None, out: str | Path | None = None, license: str | None = None,
             cache_dir: str | Path | None = None, command: str | None = None,
             echo: Callable[[str], None] = print) -> EvalReport:
    """`evaluate_modes` (on a `slice_dataset` of at most ``max_docs`` documents when given), then the JSON report to
    ``out`` and the markdown table (and licence) to ``echo``."""
    if max_docs is not None:
        dataset = slice_dataset(dataset, settings.max_queries, max_docs)
    report = evaluate_modes(dataset, modes, settings, cache_dir=cache_dir, license=license, command=command)
    if out is not None:
        report.save(out)
    echo(results_table(report))
    notes = [f"{report.num_queries} queries, {report.num_docs} documents; exact search (in-memory Qdrant); latency "
             "= one query at a time, query side only (rewrite + encode + search), modes interleaved"]
    if license:
        notes.append(f"data licence: {license}")
    if out is not None:
        notes.append(f"written to {out}")
    echo("\n" + "\n".join(notes))
    return report
