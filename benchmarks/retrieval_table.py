"""The README's retrieval table from the reports `benchmarks/eval_shared.sh` wrote.

    python benchmarks/retrieval_table.py [benchmarks/results/retrieval_*.json ...]

Prints one markdown table (dataset x mode: nDCG@10, R@10, R@100, MRR@10, query latency median / p95), the
rewrite/LaSER latency ratios, the command behind each set, the encoders, the machine and the data licences.
"""

from __future__ import annotations

import sys
from pathlib import Path

from laser_rag_benchmarks.report import EvalReport, results_table
from laser_rag_benchmarks.shared import SHARED_EVALS, find_results_dir


def main(paths: list[str]) -> None:
    if not paths:
        paths = [str(find_results_dir() / f"retrieval_{name}.json") for name in SHARED_EVALS]
    reports = [EvalReport.load(p) for p in paths if Path(p).is_file()]
    if not reports:
        sys.exit("no reports found: run benchmarks/eval_shared.sh first")
    print(results_table(reports))
    print("\nCommands (each writes benchmarks/results/retrieval_<set>.json):\n")
    for report in reports:
        print(f"    {report.command}")
    print("\nEncoders:")
    for result in reports[0].results:
        print(f"- {result.mode}: {result.encoder}")
    env = reports[0].environment
    print(f"\nMachine: {env.get('cpus')} CPUs, torch {env.get('torch')} with {env.get('torch_threads')} thread(s), "
          f"load average at start {env.get('load_average_at_start')} (a shared machine: latencies are noisy; the "
          "modes are interleaved query by query, so their ratios are fair).")
    print("\nData licences:")
    for licence in dict.fromkeys(report.license for report in reports):  # one line per set, not per report
        print(f"- {licence}")


if __name__ == "__main__":
    main(sys.argv[1:])
