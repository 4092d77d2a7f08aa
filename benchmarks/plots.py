"""The paper's Figure 1 (right) on our data: retrieval quality against query latency, from evaluation reports.

Example::

    figure = plot_quality_latency([shared_eval(name) for name in SHARED_EVALS])
    figure.savefig("quality_latency.png")
"""

from __future__ import annotations

from collections.abc import Sequence

from laser_rag.modes import MODES
from laser_rag_benchmarks.report import EvalReport, metric_header

_MARKERS = {"bm25": "s", "minilm": "D", "basic": "o", "laser": "*", "rewrite": "^"}


def plot_quality_latency(reports: Sequence[EvalReport], metric: str = "ndcg_cut_10", ax=None):
    """Quality (``metric``) against median query latency (log scale): a colour per dataset, a marker per mode, the
    registered retrieval modes of a dataset joined. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    joined = {mode.value for mode in MODES}
    seen_modes: dict[str, None] = {}
    datasets = []
    for index, report in enumerate(reports):
        colour = f"C{index}"
        points = [(r.latency_ms["median"], r.metrics[metric], r.mode) for r in report.results
                  if metric in r.metrics and r.latency_ms["median"] == r.latency_ms["median"]]
        for latency, value, mode in points:
            ax.scatter(latency, value, color=colour, marker=_MARKERS.get(mode, "o"),
                       s=160 if mode == "laser" else 60, edgecolors="black", linewidths=0.5, zorder=3)
            seen_modes[mode] = None
        dense = sorted((p for p in points if p[2] in joined), key=lambda p: p[0])
        if dense:
            ax.plot([p[0] for p in dense], [p[1] for p in dense], color=colour, alpha=0.35, zorder=2)
        datasets.append(Line2D([], [], color=colour, lw=3, label=report.dataset))
    mode_handles = [Line2D([], [], ls="", marker=_MARKERS.get(m, "o"), color="grey", markeredgecolor="black",
                           markersize=11 if m == "laser" else 7, label=m) for m in seen_modes]
    ax.add_artist(ax.legend(handles=datasets, fontsize=8, loc="upper right", title="dataset", title_fontsize=8))
    ax.legend(handles=mode_handles, fontsize=8, loc="center right", title="mode", title_fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median query latency, ms (log scale; rewrite + encode + search, one query at a time)")
    ax.set_ylabel(metric_header(metric))
    ax.set_title("Retrieval quality vs query latency")
    ax.grid(True, which="both", alpha=0.3)
    return ax.figure
