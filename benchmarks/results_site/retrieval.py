"""The retrieval page (every mode on every shared set) and the README's headline table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from laser_rag.util import markdown_table
from laser_rag_benchmarks.report import EvalReport
from laser_rag_benchmarks.results_site.common import SET_TITLES, SETS, eval_environment, fmt, load, ms
from laser_rag_benchmarks.results_site.figures import bar_figure


@dataclass(frozen=True)
class Row:
    """One row of the shared-set table: ``mode`` as its report names it, read from ``files`` (a pattern with
    ``{set}``; ``overrides`` names another file for some sets)."""

    label: str
    mode: str
    files: str
    overrides: tuple[tuple[str, str], ...] = ()

    def file(self, name: str) -> str:
        return dict(self.overrides).get(name, self.files.format(set=name))


#: The current row of each encoder on every judged query of the shared sets (``laser-rag eval --dataset <set>``):
#: the shipped checkpoints; SciFact read at the LLM encoders' trained length, 256 tokens.
RETRIEVAL_ROWS = (
    Row("BM25", "bm25", "full_{set}.json"),
    Row("all-MiniLM-L6-v2", "minilm", "full_{set}.json"),
    Row("basic (`builtin:basic`, K=1)", "basic", "full_{set}_basic256.json",
        (("scifact", "full_scifact_basic256_256.json"),)),
    Row("LaSER (`builtin:laser`, K=3)", "laser", "full_{set}_default.json",
        (("scifact", "full_scifact_default_256.json"),)),
    Row("LaSER + hybrid (BM25, DBSF)", "laser+hybrid", "full_{set}_default.json",
        (("scifact", "full_scifact_default_256.json"),)),
    Row("all-MiniLM-L6-v2 + hybrid", "minilm+hybrid", "full_{set}.json"),
    Row("rewrite-then-retrieve (SmolLM2 reasons, then the basic of 2026-11-30)", "rewrite", "full_{set}.json"),
)


def retrieval_page(results: Path, img: Path) -> str:
    reports: dict[str, EvalReport] = {}
    rows, means, sources = [], {}, {}
    for row in RETRIEVAL_ROWS:
        cells, ndcgs, latencies = [row.label], [], []
        for name in SETS:
            file = row.file(name)
            if file not in reports and (results / file).is_file():
                reports[file] = EvalReport.load(results / file)
            result = reports[file].result(row.mode) if file in reports else None
            if result is None:
                cells.append("–")
                continue
            sources.setdefault(file, reports[file])
            metrics = result.metrics
            ndcgs.append(metrics["ndcg_cut_10"])
            latencies.append(result.latency_ms["median"])
            cells.append(f"{metrics['ndcg_cut_10']:.3f} / {metrics['recall_10']:.3f} / "
                         f"{metrics.get('recip_rank@10', float('nan')):.3f}")
        mean = sum(ndcgs) / len(ndcgs) if len(ndcgs) == len(SETS) else None
        means[row.label] = [float(n) for n in ndcgs] if mean is not None else []
        lat = f"{ms(min(latencies))}–{ms(max(latencies))}" if latencies else "–"
        rows.append(cells + [fmt(mean), lat])
    headers = ["mode", *(_set_header(sources, name) for name in SETS), "mean nDCG@10", "query latency (median)"]
    figure = bar_figure(means, img / "retrieval_ndcg.png")
    held_out = load(results, "full_strategyqa_test.json")
    parts = [
        "# Retrieval on the shared sets",
        "",
        "Every judged query of each shared set against its whole pool, the shipped checkpoints; each cell is "
        "nDCG@10 / R@10 / MRR@10. SciFact abstracts are read at 256 tokens by the LLM encoders (their trained "
        "length); BM25 and MiniLM read them whole.",
        "",
        markdown_table(headers, rows),
        "",
        f"![nDCG@10 per set and mode]({figure})",
        "",
        "Sources (each `laser-rag eval` run, modes interleaved query by query):",
        "",
        *(f"- `{file}`: {eval_environment(report)}" for file, report in sources.items()),
    ]
    if held_out is not None:
        report = EvalReport.from_dict(held_out)
        table = [[r.mode, f"{r.metrics['ndcg_cut_10']:.3f}", f"{r.metrics['recall_10']:.3f}",
                  f"{r.metrics.get('recip_rank@10', float('nan')):.3f}", ms(r.latency_ms["median"])]
                 for r in report.results]
        parts += [
            "",
            "## StrategyQA's held-out test split",
            "",
            "The shared StrategyQA set above is the training validation split (it helped choose the encoders); "
            f"its `test` split ({report.num_queries} questions, {report.num_docs:,} sentences) is used by nothing "
            "else:",
            "",
            markdown_table(["mode", "nDCG@10", "R@10", "MRR@10", "query latency (median)"], table),
            "",
            f"Source: `full_strategyqa_test.json`: {eval_environment(report)}",
        ]
    return "\n".join(parts)


def _set_header(sources: dict[str, EvalReport], name: str) -> str:
    report = next((r for r in sources.values() if r.dataset.startswith(name)), None)
    title = SET_TITLES[name]
    return f"{title} ({report.num_queries} q, {report.num_docs:,} docs)" if report else title


def headline_table(results: Path) -> str:
    """The README's table: each current row's mean nDCG@10 over the four shared sets and its query latency."""
    rows = []
    for row in RETRIEVAL_ROWS:
        found = [EvalReport.load(results / row.file(name)).result(row.mode)
                 for name in SETS if (results / row.file(name)).is_file()]
        found = [r for r in found if r is not None]
        if len(found) != len(SETS):
            continue
        mean = sum(r.metrics["ndcg_cut_10"] for r in found) / len(found)
        latencies = [r.latency_ms["median"] for r in found]
        rows.append([row.label, f"{mean:.3f}", f"{ms(min(latencies))}–{ms(max(latencies))}"])
    return markdown_table(["mode", "mean nDCG@10 (StrategyQA, HotpotQA, MuSiQue, SciFact)",
                           "query latency (median, 2 CPU cores)"], rows)
