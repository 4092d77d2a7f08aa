"""An evaluation's report: each mode's figures with the settings and machine they came from, saved as JSON and
printed as a markdown table.

Example::

    report = EvalReport.load("benchmarks/results/retrieval_hotpotqa.json")
    print(results_table([report]))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laser_rag.modes import ModeSources, RetrievalMode
from laser_rag.util import atomic_write, markdown_table

_HEADERS = {"ndcg_cut": "nDCG", "recall": "R", "recip_rank": "MRR"}


@dataclass
class ModeFigures:
    """One mode's figures. ``latency_ms``: ``median``, ``p95``, ``mean`` of the whole query side;
    ``stages_ms``: the median of each stage (``rewrite_ms``, ``encode_ms``, ``search_ms``)."""

    mode: str
    encoder: str
    fingerprint: str | None
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    stages_ms: dict[str, float]
    num_queries: int
    #: Queries whose retrieval failed (e.g. the rewriter raised); they score 0.
    failures: int = 0
    #: Seconds spent encoding the corpus in this run (0 when the vectors came from the cache).
    index_seconds: float = 0.0
    index_cached: bool = False
    #: Each judged query's metrics (``laser_rag.evaluation.score_queries``; `metrics` is their mean), for
    #: per-query comparisons between modes. Empty in reports written before 2026-11-30.
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class EvalReport:
    """Every mode on one dataset, with the settings and machine it ran on. Save with `save`, print with
    `results_table`."""

    dataset: str
    num_docs: int
    num_queries: int
    settings: dict[str, Any]
    results: list[ModeFigures]
    environment: dict[str, Any] = field(default_factory=dict)
    license: str | None = None
    command: str | None = None

    def result(self, mode: str) -> ModeFigures | None:
        name = mode.value if isinstance(mode, RetrievalMode) else mode
        return next((r for r in self.results if r.mode == name), None)

    @property
    def rewrite_laser_ratio(self) -> float | None:
        """Median query latency of rewrite over laser's, measured in the same run (the paper: ~330x, i.e. LaSER
        at 0.3% of the rewrite pipeline); None unless both modes ran."""
        rewrite, laser = self.result(RetrievalMode.REWRITE), self.result(RetrievalMode.LASER)
        if rewrite is None or laser is None or not laser.latency_ms.get("median"):
            return None
        return rewrite.latency_ms["median"] / laser.latency_ms["median"]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rewrite_laser_latency_ratio"] = self.rewrite_laser_ratio
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        data = {k: v for k, v in data.items() if k != "rewrite_laser_latency_ratio"}
        data["results"] = [ModeFigures(**r) for r in data["results"]]
        data["settings"] = _current_settings(data["settings"])
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        return atomic_write(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> EvalReport:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _current_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as `EvalSettings` names them now: reports written before the per-mode encoders moved into
    ``models`` (`laser_rag.modes.ModeSources`) name them ``<mode>_model`` (``laser_model``, ``basic_model``)."""
    old = [key for key in settings if key.endswith("_model") and key != "llm_model"]
    if not old:
        return settings
    kept = {key: value for key, value in settings.items() if key not in old}
    return {**kept, "models": dataclasses.asdict(ModeSources.from_options({key: settings[key] for key in old}))}


def metric_header(metric: str) -> str:
    """``ndcg_cut_10`` -> ``nDCG@10``, ``recip_rank@10`` -> ``MRR@10``."""
    if "@" in metric:
        name, cut = metric.split("@")
    else:
        name, _, cut = metric.rpartition("_")
    return f"{_HEADERS.get(name, name)}@{cut}"


def results_table(reports: EvalReport | Sequence[EvalReport]) -> str:
    """One markdown table: a row per dataset and mode with the quality metrics and query latency (median / p95),
    then one line per dataset with the rewrite/LaSER latency ratio (when both ran)."""
    reports = [reports] if isinstance(reports, EvalReport) else list(reports)
    metrics = list(dict.fromkeys(m for report in reports for r in report.results for m in r.metrics))
    headers = ["dataset", "mode", *map(metric_header, metrics), "latency median (ms)", "latency p95 (ms)"]
    rows, notes = [], []
    for report in reports:
        for r in report.results:
            cells = [report.dataset, r.mode + (f" ({r.failures} failed)" if r.failures else "")]
            cells += [f"{r.metrics[m]:.3f}" if m in r.metrics else "" for m in metrics]
            rows.append(cells + [_ms(r.latency_ms["median"]), _ms(r.latency_ms["p95"])])
        ratio = report.rewrite_laser_ratio
        if ratio is not None:
            notes.append(f"- {report.dataset}: rewrite/LaSER median query latency = {ratio:.1f}x "
                         f"(LaSER at {100 / ratio:.1f}% of the rewrite pipeline's latency)")
    return "\n".join([markdown_table(headers, rows)] + ([""] + notes if notes else []))


def _ms(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
