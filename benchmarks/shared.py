"""The shared sets as the README and notebooks/01_retrieval.ipynb report them: how each is evaluated (split and a
budget for 2 CPU cores), where the reports live (`find_results_dir`), and a BEIR export for other tools.

Example::

    report = shared_eval("hotpotqa")            # benchmarks/results/retrieval_hotpotqa.json when it still matches
    corpus = shared_slice("hotpotqa").corpus    # the same (sliced) corpus, e.g. to answer questions over it
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laser_rag.beir import RetrievalDataset
from laser_rag.errors import LaserRagError
from laser_rag_datasets.shared import LICENSES, shared_dataset
from laser_rag_benchmarks.harness import evaluate_modes
from laser_rag_datasets.subsets import slice_dataset
from laser_rag_benchmarks.report import EvalReport
from laser_rag_benchmarks.retrievers import DEFAULT_MODES, EvalSettings, mode_encoder, parse_modes

#: How each shared set is evaluated (benchmarks/eval_shared.sh runs the same): the split, and a cost budget for
#: 2 CPU cores: the first 50 judged queries, and a corpus of their relevant documents plus random distractors up
#: to 1,000 documents (HotpotQA's whole pool is 998). SciFact's abstracts (~310 tokens on average) are also cut to
#: 128 tokens for the LaSER encoders (BM25 and MiniLM see them whole; MiniLM's own limit is 256 word pieces).
SHARED_EVALS = {
    "strategyqa": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "hotpotqa": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "musique": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "scifact": {"split": "validation", "max_queries": 50, "max_docs": 1000, "max_length": 128},
}
#: Overrides where the benchmark results are read and written (`find_results_dir`).
RESULTS_ENV = "LASER_RAG_RESULTS"


class ResultsNotFoundError(LaserRagError, FileNotFoundError):
    """No folder for the benchmark results: not in a repository checkout, and ``$LASER_RAG_RESULTS`` unset."""


def find_results_dir() -> Path:
    """Where the benchmark results live (benchmarks/eval_shared.sh writes ``retrieval_<set>.json`` there):
    ``$LASER_RAG_RESULTS``, else the repository's benchmarks/results folder: that of the checkout this package runs
    from (an editable install), else that of the current folder. The results are the repository's files, not
    package data: an installed copy of the package carries none, so outside a checkout set ``$LASER_RAG_RESULTS``."""
    if os.environ.get(RESULTS_ENV, "").strip():
        return Path(os.environ[RESULTS_ENV].strip()).expanduser()
    for repo in dict.fromkeys((Path(__file__).resolve().parents[1], Path.cwd().resolve())):
        folder = repo / "benchmarks" / "results"
        if (repo / "pyproject.toml").is_file() and folder.is_dir():
            return folder
    raise ResultsNotFoundError("benchmark results folder not found (benchmarks/results of a laser_rag checkout): "
                               f"run from the repository root or set ${RESULTS_ENV}")


def export_shared(name: str, directory: str | Path, split: str = "validation",
                  data_dir: str | Path | None = None) -> Path:
    """Write a shared set (`laser_rag_datasets.shared.SHARED_DATASETS`) as a BEIR directory with
    ``qrels/<split>.tsv`` and a LICENSE.txt naming its licence; returns the directory."""
    from laser_rag.util import atomic_write
    from laser_rag.beir import save_beir

    directory = Path(save_beir(shared_dataset(name, split, data_dir), directory, split=split))
    atomic_write(directory / "LICENSE.txt", LICENSES[name] + "\n")
    return directory


def _shared_plan(name: str, overrides: dict[str, Any]) -> tuple[RetrievalDataset, dict[str, Any]]:
    if name not in SHARED_EVALS:
        raise ValueError(f"no evaluation plan for {name!r}; expected one of {', '.join(SHARED_EVALS)}")
    plan = {**SHARED_EVALS[name], **overrides}
    split, max_docs = plan.pop("split"), plan.pop("max_docs", None)
    dataset = shared_dataset(name, split)
    if max_docs is not None:
        dataset = slice_dataset(dataset, plan.get("max_queries"), max_docs)
    return dataset, plan


def _same_encoders(report: EvalReport, settings: EvalSettings) -> bool:
    """Whether the encoders a report used are the ones its modes load now (a checkpoint may have shipped since)."""
    return all(r.fingerprint is None or mode_encoder(r.mode, settings).fingerprint == r.fingerprint
               for r in report.results)


def shared_slice(name: str, **overrides: Any) -> RetrievalDataset:
    """The (sliced) dataset `shared_eval` evaluates for ``name``, e.g. to answer questions over the same corpus
    (its document vectors are then already cached)."""
    return _shared_plan(name, overrides)[0]


def shared_eval(name: str, *, modes: str | Sequence[str] = DEFAULT_MODES, results_dir: str | Path | None = None,
                cache_dir: str | Path | None = None, progress: bool = True, **overrides: Any) -> EvalReport:
    """One shared set evaluated as `SHARED_EVALS` says; ``overrides`` replace its ``max_queries``/``max_docs`` and
    any `EvalSettings` field (``max_docs=None`` = the whole corpus).

    Reuses ``results_dir/retrieval_<name>.json`` when that report was made on the same (sliced) dataset with the
    same modes, settings and encoder fingerprints (benchmarks/eval_shared.sh writes them); otherwise runs
    `laser_rag_benchmarks.harness.evaluate_modes`. ``results_dir`` None: `find_results_dir`'s, when there is one.
    """
    dataset, plan = _shared_plan(name, overrides)
    chosen = EvalSettings(**plan)
    modes = parse_modes(modes)
    if results_dir is None:
        try:
            results_dir = find_results_dir()
        except ResultsNotFoundError:
            pass  # nothing to reuse: evaluate
    saved = Path(results_dir) / f"retrieval_{name}.json" if results_dir is not None else None
    if saved is not None and saved.is_file():
        report = EvalReport.load(saved)
        if (report.dataset == dataset.name and report.settings == dataclasses.asdict(chosen)
                and [r.mode for r in report.results] == modes and _same_encoders(report, chosen)):
            return report
    return evaluate_modes(dataset, modes, chosen, cache_dir=cache_dir, progress=progress, license=LICENSES[name])
