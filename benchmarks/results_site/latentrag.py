"""The LatentRAG page: answer quality, retrieval success and stage latency against the baselines."""

from __future__ import annotations

from pathlib import Path

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import SET_TITLES, fmt, load, load_avg
from laser_rag_benchmarks.results_site.figures import stacked_figure


def latentrag_page(results: Path, img: Path) -> str:
    parts = ["# LatentRAG", "",
             "`laser-rag eval-qa` on questions the agents did not train on; every system uses SmolLM2-135M-Instruct, "
             "the same MiniLM index, top-3 and at most 4 retrievals, interleaved question by question. EM/F1 with "
             "95% bootstrap intervals; *retrieval success*: the share of retrievals with a gold answer in one of "
             "their documents."]
    stages = ("prefill_ms", "thought_ms", "subquery_ms", "retrieval_ms", "answer_ms", "decode_ms")
    for name in ("hotpotqa", "musique"):
        data = load(results, f"qa_{name}.json")
        if data is None:
            continue
        rows, stage_rows = [], {}
        for system, s in data["systems"].items():
            em, f1 = s["em"], s["f1"]
            stage = s.get("stages_ms", {})
            stage_rows[system] = [stage.get(key, 0.0) for key in stages]
            rows.append([system, f"{em[0]:.3f} ({em[1]:.2f}–{em[2]:.2f})", f"{f1[0]:.3f}",
                         fmt(s.get("retrieval_success"), 2), fmt(s.get("retrievals"), 2), fmt(s.get("forward_passes"), 1),
                         f"{s['latency_ms']['mean']:,.0f}", *(f"{stage.get(key, 0.0):,.0f}" for key in stages)])
        headers = ["system", "EM (95% CI)", "F1", "retrieval success", "retrievals", "forward passes",
                   "latency ms", *(key.removesuffix("_ms") for key in stages)]
        figure = stacked_figure(stage_rows, stages, img / f"latentrag_stages_{name}.png")
        ratios = "; ".join(f"{k}: {v:.2f}x" for k, v in data.get("latency_ratio", {}).items())
        parts += ["", f"## {SET_TITLES[name]} (n={data['n']})", "", markdown_table(headers, rows), "",
                  f"![stage latency per system]({figure})", "", f"Latency ratios: {ratios}.", "",
                  f"Source: `qa_{name}.json` — {data['runtime']}; load average {load_avg(data.get('load_average'))}; "
                  f"{data['setup'].get('corpus_documents')} documents."]
    return "\n".join(parts)
