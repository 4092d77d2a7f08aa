"""The speed page: encoder latency against K, framework overhead, bf16 against fp32."""

from __future__ import annotations

from pathlib import Path

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import load, load_avg, ms
from laser_rag_benchmarks.results_site.figures import line_figure


def speed_page(results: Path, img: Path) -> str:
    parts = ["# Speed and scale", "", "Measured side by side in one process; run by hand."]
    latency = load(results, "encode_latency.json")
    if latency is not None:
        machine = latency["machine"]
        rows = [[k, f"{v['query_batch_ms_median']:,.0f} ms", f"{v['query_ratio_vs_k1']:.2f}x", f"{v['docs_per_s']:.1f}",
                 f"{v['doc_fraction_of_matmul']:.0%}"] for k, v in latency["per_k"].items()]
        figure = line_figure({int(k): v["query_batch_ms_median"] for k, v in latency["per_k"].items()},
                              img / "latency_vs_k.png")
        parts += ["", "## Encoder latency against K (`python benchmarks/encode_latency.py`)", "",
                  f"Batches of {latency['batch_size']} real StrategyQA questions (~{latency['query_tokens_mean']:.0f} "
                  f"tokens) and SciFact abstracts (~{latency['doc_tokens_mean']:.0f} tokens), the default encoder.", "",
                  markdown_table(["K", "query batch median", "vs K=1", "documents/s", "of matmul FLOP/s"], rows), "",
                  f"![query latency against K]({figure})", "",
                  f"Machine: {machine.get('cpus')} CPUs, torch {machine.get('torch')}, {machine.get('threads')} "
                  f"thread(s), dtype {latency.get('dtype', 'float32 (not recorded in the JSON)')}, load average "
                  f"{load_avg(machine.get('load_average_before'))} before, matmul roofline "
                  f"{latency['matmul_gflops']:.0f} GFLOP/s."]
    overhead = load(results, "framework_overhead.json")
    if overhead is not None:
        rows = []
        for path, end in overhead["latency_end_to_end"].items():
            only = overhead["latency_framework_only"][path]
            rows.append([path, ms(end["p50_ms"]), ms(end["p95_ms"]), ms(only["p50_ms"]),
                         f"{end.get('p50_vs_bare', 1.0):.3f}x / {only.get('p50_vs_bare', 1.0):.3f}x"])
        machine = overhead["machine"]
        parts += ["", "## Framework overhead (`python benchmarks/framework_overhead.py`)", "",
                  markdown_table(["path", "p50 end to end", "p95 end to end", "p50 framework only",
                                  "vs bare (p50: end to end / framework only)"], rows), "",
                  f"Source: `{overhead['command']}`; {machine.get('cpus')} CPUs, {machine.get('torch_threads')} torch "
                  f"thread(s), load average {load_avg(machine.get('load_average_before'))} before; "
                  f"{overhead['indexing']['documents']:,} SciFact documents indexed at "
                  f"{overhead['indexing']['documents_per_s']:.1f}/s."]
    dtype = load(results, "dtype_quality.json")
    if dtype is not None:
        rows = [[name, f"{s['float32']['ndcg_cut_10']:.4f}", f"{s['bfloat16']['ndcg_cut_10']:.4f}",
                 f"{s['ndcg_difference']:+.4f}",
                 f"{s['float32']['documents_per_s'] / s['bfloat16']['documents_per_s']:.1f}x"]
                for name, s in dtype["sets"].items()]
        parts += ["", "## bf16 against fp32 (`python benchmarks/dtype_quality.py`)", "",
                  markdown_table(["set", "fp32 nDCG@10", "bf16 nDCG@10", "bf16 - fp32", "fp32 speed / bf16 speed"],
                                 rows), "",
                  f"Source: `{dtype['command']}` on `{dtype['source']}`; {dtype['machine']}. {dtype.get('note', '')}"]
    return "\n".join(parts)
