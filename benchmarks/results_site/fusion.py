"""The hybrid-fusion page: how the default fusion was chosen."""

from __future__ import annotations

from pathlib import Path

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import fmt, load, load_avg


def fusion_page(results: Path, img: Path) -> str:
    data = load(results, "fusion.json")
    if data is None:
        return "# Hybrid fusion\n\nNo results yet: run `python -m laser_rag_benchmarks.fusion`."
    sets = list(data["sets"])
    sides = ("dense", "bm25")
    names = list(sides) + list(data["candidates"])
    rows = []
    for name in names:
        cells = [f"**{name}** (chosen)" if name == data.get("chosen") else name]
        for set_name in sets:
            scores = data["sets"][set_name]["scores"]
            cells.append(fmt(scores.get(name, {}).get("ndcg_cut_10")))
        summary = data["summary"].get(name, {})
        rows.append(cells + [fmt(summary.get("worst_ratio")), fmt(summary.get("mean_ndcg"))])
    headers = ["fusion", *(f"{s} ({data['sets'][s]['queries']} q, {data['sets'][s]['documents']:,} docs)"
                           for s in sets), "worst set / better side", "mean nDCG@10"]
    return "\n".join([
        "# Hybrid fusion",
        "",
        f"Which fusion of the dense ({data['mode']}) and BM25 rankings, nDCG@10 on the training validation sets "
        "(never the shared evaluation queries); *worst set / better side* is each fusion's worst set as a "
        "fraction of the better of dense and BM25 alone (the aim of hybrid search: never lose to either).",
        "",
        markdown_table(headers, rows),
        "",
        f"Source: `fusion.json` — `{data['command']}`; {data['runtime']}; load average "
        f"{load_avg(data.get('load_average_at_start'))} at start, {load_avg(data.get('load_average_at_end'))} "
        f"at the end; {data.get('seconds', 0) / 60:.0f} min.",
    ])
