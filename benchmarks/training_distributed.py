"""Memory and step time of `laser-rag train` on 1 and on N local processes (CPU: gloo), a few steps of one config.

Each setting is a fresh ``laser-rag train --config ... --nproc N`` in a subprocess (its own run directory). Step
time is rank 0's wall time per step from ``log.jsonl`` (the first step left out: warm-up); memory is the peak
resident set of the largest process (``getrusage(RUSAGE_CHILDREN)``: every rank holds its own copy of the model).
The JSON names the command, dtype, torch threads per process and the load average before and after.

    python benchmarks/training_distributed.py --config training/configs/tiny.yaml --set batch_size=8 --steps 4 \
        --out benchmarks/results/training_distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(config: str, nproc: int, steps: int, threads: int, run: Path, extra: list[str]) -> dict:
    """One setting: train ``steps`` steps of ``config`` (plus the ``--set`` items ``extra``) on ``nproc`` processes
    of ``threads`` torch threads."""
    command = [sys.executable, "-m", "laser_rag_training", "--config", config, "--nproc", str(nproc),
               "--set", f"max_steps={steps}", "--set", "save_every=0", "--set", "eval_every=0",
               "--set", f"threads={threads}", "--set", f"output_dir={run}",
               *(arg for item in extra for arg in ("--set", item))]
    before, started = _load(), time.perf_counter()
    # A fresh parent per setting: RUSAGE_CHILDREN is the largest descendant's peak (Linux: kB).
    peak = subprocess.run([sys.executable, "-c", _PEAK, *command], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak_mb = int(peak.stdout.split()[-1]) / 1024
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    summary = json.loads((run / "summary.json").read_text())
    seconds = [r["seconds"] for r in log[1:]] or [r["seconds"] for r in log]
    return {"processes": nproc, "torch_threads_per_process": threads, "steps": len(log),
            "seconds_per_step_median": round(statistics.median(seconds), 2), "seconds_per_step": seconds,
            "cpu_seconds_per_step_rank0": [r["cpu_seconds"] for r in log], "wall_seconds_total": round(wall, 1),
            "peak_rss_mb_largest_process": round(peak_mb), "precision": summary["precision"],
            "loss": [r["loss"] for r in log], "load_average_before": before, "load_average_after": _load(),
            "command": " ".join(["laser-rag train", *command[3:]])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="training/configs/laser.yaml")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", dest="extra", action="append", default=[], help="a config override, KEY=VALUE")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="torch threads shared out per run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/training_distributed.json"))
    args = parser.parse_args()
    out = {"config": args.config, "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "backend": "gloo (CPU)", "runs": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for nproc in args.nproc:
            out["runs"].append(measure(args.config, nproc, args.steps, max(1, args.cores // nproc),
                                       Path(scratch) / f"n{nproc}", args.extra))
            args.out.write_text(json.dumps(out, indent=2) + "\n")  # after each setting: a stopped run keeps it


if __name__ == "__main__":
    main()
