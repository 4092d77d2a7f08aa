"""The training page: the runs' validation tables, training time, and training on several processes."""

from __future__ import annotations

from pathlib import Path

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import fmt, load, load_avg


def training_page(results: Path, img: Path) -> str:
    parts = ["# Training", "",
             "The training runs' validation tables, written by `python -m laser_rag_training.report` "
             "(`--table long` for the long-document mix of the shipped checkpoints) into "
             "`benchmarks/results/training*.md`, included here as they are."]
    for name, title in (("training_long.md", "Long-document mix (the shipped checkpoints)"),
                        ("training_long_scifact_160.md", "Learning curve: the default's recipe at 160 steps"),
                        ("training.md", "Round 1: sentence-length passages")):
        path = results / name
        if path.is_file():
            parts += ["", f"## {title}", "", path.read_text(encoding="utf-8").strip()]
    timing = load(results, "training_time.json")
    if timing is not None:
        rows = [[name, run.get("steps"), f"{run['train_seconds'] / 60:.0f} min", fmt(run.get("seconds_per_step"), 1),
                 run.get("torch_threads"), run.get("precision", "–"), load_avg(run.get("load_average_at_start"))]
                for name, run in timing["runs"].items()]
        parts += ["", "## Training time", "", timing["what"], "",
                  markdown_table(["run", "steps", "wall", "s/step", "torch threads", "dtype", "load at start"], rows),
                  "", f"Machine: {timing['machine']}. Commands:", "",
                  *(f"- `{command}`" for command in timing["commands"])]
    parts += distributed_section(results)
    return "\n".join(parts)


def distributed_section(results: Path) -> list[str]:
    """Training on one and on several processes (`benchmarks/training_distributed.py`)."""
    data = load(results, "training_distributed.json")
    if data is None:
        return []
    rows = [[run["processes"], run["torch_threads_per_process"], run["steps"], fmt(run["seconds_per_step_median"], 2),
             f"{run['peak_rss_mb_largest_process']:,}", run["precision"], load_avg(run["load_average_before"])]
            for run in data["runs"]]
    return ["", "## One process and several (`benchmarks/training_distributed.py`)", "",
            markdown_table(["processes", "torch threads each", "steps", "s/step (median)", "peak RSS MB (largest)",
                            "dtype", "load before"], rows), "",
            data["notes"], "",
            f"Source: `{data['command']}` on `{data['config']}`; {data['machine']}, {data['cpu_count']} CPUs, "
            f"{data['backend']}, {data['dtype']}."]
