"""Encoder latency: LaSER K=1 (single pass), 3 and 5 side by side, documents/s, and achieved FLOP/s as a
fraction of a plain torch matmul measured in the same run.

    python benchmarks/encode_latency.py [--model SOURCE] [--rounds 15] [--out benchmarks/results/encode_latency.json]

Queries are real StrategyQA questions, documents real SciFact abstracts (../shared/data). Every K is measured in
interleaved rounds in one process, so the ratios compare like with like on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from laser_rag.util import atomic_write
from laser_rag.encoders import LaSEREncoder
from laser_rag_datasets.shared import shared_data_dir, shared_dataset
from laser_rag_benchmarks.shared import find_results_dir



def matmul_flops_per_s(n: int = 2048, repeats: int = 10) -> float:
    """fp32 FLOP/s of a plain square matmul on this machine (the roofline the model is compared against)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def forward_flops(config, lengths: list[int], steps: int) -> float:
    """Useful FLOPs of encoding texts of these token lengths with K steps (padding excluded).

    Per token and layer: the q/k/v/o projections and the gated MLP (2 FLOPs per weight), plus attention over the
    tokens before it; per soft-token step: the LM head and the probability-weighted embedding sum.
    """
    config = config.get_text_config()
    hidden, inter, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    q_dim, kv_dim = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    weights = hidden * q_dim * 2 + hidden * kv_dim * 2 + 3 * hidden * inter
    total = 0.0
    for length in lengths:
        tokens = length + steps - 1
        total += layers * (2 * weights * tokens + 4 * q_dim * tokens * (tokens + 1) / 2)
        total += (steps - 1) * 2 * 2 * hidden * config.vocab_size
    return total


def median_ms(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="encoder source (default: the embedded default)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--doc-batches", type=int, default=4, help="document batches per K and round")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/encode_latency.json")
    args = parser.parse_args()
    if shared_data_dir() is None:
        raise SystemExit("needs ../shared/data (StrategyQA questions and SciFact abstracts)")

    encoder = LaSEREncoder.from_pretrained(args.model)
    strategy = shared_dataset("strategyqa", split="validation")
    queries = list(strategy.queries.values())[: args.batch_size]
    scifact = shared_dataset("scifact", split="validation")
    docs = [encoder.document_text(d.title, d.text) for d in scifact.corpus[: args.batch_size * args.doc_batches]]
    ks = (1, 3, 5)
    load_before = [round(x, 2) for x in os.getloadavg()]

    for k in ks:  # warm-up: allocator, thread pools, lazy kernels
        encoder.encode_queries(queries, num_thinking_steps=k, batch_size=args.batch_size)
        encoder.encode_documents(docs[: args.batch_size], num_thinking_steps=k, batch_size=args.batch_size)
    query_ms = {k: [] for k in ks}
    doc_ms = {k: [] for k in ks}
    matmul = []
    for _ in range(args.rounds):  # interleaved: every K sees the same machine state
        matmul.append(matmul_flops_per_s(repeats=3))
        for k in ks:
            query_ms[k] += median_ms(lambda: encoder.encode_queries(
                queries, num_thinking_steps=k, batch_size=args.batch_size), 1)
            doc_ms[k] += median_ms(lambda: encoder.encode_documents(
                docs, num_thinking_steps=k, batch_size=args.batch_size), 1)

    query_lengths = [len(x) for x in encoder.tokenize(queries, "query")[0]]
    doc_lengths = [len(x) for x in encoder.tokenize(docs, "document")[0]]
    peak = statistics.median(matmul)
    results = {
        "model": encoder.config.base_model, "fingerprint": encoder.fingerprint,
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "batch_size": args.batch_size, "rounds": args.rounds,
        "query_tokens_mean": statistics.mean(query_lengths), "doc_tokens_mean": statistics.mean(doc_lengths),
        "matmul_gflops": peak / 1e9, "per_k": {},
    }
    for k in ks:
        q_med, d_med = statistics.median(query_ms[k]), statistics.median(doc_ms[k])
        doc_flops = forward_flops(encoder.model.config, doc_lengths, k) / (d_med / 1000)
        results["per_k"][k] = {
            "query_batch_ms_median": q_med,
            "query_ratio_vs_k1": q_med / statistics.median(query_ms[1]),
            "docs_per_s": len(docs) / (d_med / 1000),
            "doc_gflops": doc_flops / 1e9,
            "doc_fraction_of_matmul": doc_flops / peak,
        }
    atomic_write(args.out or find_results_dir() / "encode_latency.json", json.dumps(results, indent=2) + "\n")
    print(f"matmul {peak / 1e9:.1f} GFLOP/s; query batch {args.batch_size} (~{results['query_tokens_mean']:.0f} "
          f"tokens), docs ~{results['doc_tokens_mean']:.0f} tokens")
    print("| K | query batch ms | vs K=1 | docs/s | doc GFLOP/s | of matmul |\n|---|---|---|---|---|---|")
    for k, r in results["per_k"].items():
        print(f"| {k} | {r['query_batch_ms_median']:.0f} | {r['query_ratio_vs_k1']:.2f}x | {r['docs_per_s']:.1f} | "
              f"{r['doc_gflops']:.1f} | {r['doc_fraction_of_matmul']:.0%} |")


if __name__ == "__main__":
    main()
