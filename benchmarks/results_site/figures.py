"""The results pages' matplotlib figures: deterministic PNGs (no timestamps in the metadata)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from laser_rag_benchmarks.results_site.common import SET_TITLES, SETS


def save(figure, path: Path) -> str:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)
    return f"img/{path.name}"


def new_figure(width: float = 7.5, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def bar_figure(values: dict[str, list[float]], path: Path) -> str:
    figure, ax = new_figure(height=4.2)
    shown = {label: v for label, v in values.items() if v}
    width = 0.8 / max(1, len(shown))
    for index, (label, ndcgs) in enumerate(shown.items()):
        ax.bar([i + index * width for i in range(len(SETS))], ndcgs, width, label=label.split(" (")[0])
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(SETS))], [SET_TITLES[s] for s in SETS])
    ax.set_ylabel("nDCG@10")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return save(figure, path)


def stacked_figure(rows: dict[str, list[float]], stages: Sequence[str], path: Path) -> str:
    figure, ax = new_figure(height=3.0)
    left = [0.0] * len(rows)
    for index, stage in enumerate(stages):
        widths = [values[index] for values in rows.values()]
        ax.barh(list(rows), widths, left=left, label=stage.removesuffix("_ms"))
        left = [a + b for a, b in zip(left, widths)]
    ax.set_xlabel("ms per question")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=3)
    return save(figure, path)


def line_figure(points: dict[int, float], path: Path) -> str:
    figure, ax = new_figure(width=5, height=3)
    ks = sorted(points)
    ax.plot(ks, [points[k] for k in ks], marker="o")
    ax.set_xticks(ks)
    ax.set_xlabel("K (latent thinking steps)")
    ax.set_ylabel("query batch median (ms)")
    return save(figure, path)
