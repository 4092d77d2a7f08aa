"""The training results table: every trained mode and the untrained backbone on the validation sets.

    python -m training.report                        # evaluate the rows missing from benchmarks/results/training.json
    python -m training.report --rows laser basic --force --threads 1

Writes ``benchmarks/results/training.json`` (metrics, training wall time, the exact commands) and
``benchmarks/results/training.md`` (the same as a markdown table). Rows are evaluated one at a time and saved as
they finish, so an interrupted report resumes. Validation only: test splits are for the final word, not tuning.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from laser_rag._models import DEFAULT_BASE
from laser_rag.datasets import LICENSES

#: Validation sets: cheap on 2 CPU cores (short passages). SciFact's 5,183 abstracts (~300 tokens each) take over
#: an hour per model here, so SciFact is a training source only.
EVAL_SETS = ("strategyqa", "hotpotqa_evidence")
RESULTS = Path("benchmarks/results")


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    source: str  # what LaSEREncoder.from_pretrained loads
    num_thinking_steps: int | None = None  # K override for untrained backbones
    config: str | None = None  # the training config that produced the checkpoint
    explicit: bool = False  # evaluate the explicit view (query + rationale: the teacher) instead of the latent one

    @property
    def run(self) -> Path | None:
        return Path(self.source).parent if self.config else None

    def train_command(self) -> str:
        return f"laser-rag train --config {self.config}" if self.config else ""

    def eval_command(self) -> str:
        return f"python -m training.report --rows {self.name} --force"


def _trained(mode: str, label: str) -> Row:
    return Row(mode, label, f"runs/{mode}/final", config=f"training/configs/{mode}.yaml")


ROWS = (
    Row("backbone-k1", "SmolLM2-135M untrained, K=1 (last token)", DEFAULT_BASE, num_thinking_steps=1),
    Row("backbone-k3", "SmolLM2-135M untrained, K=3 latent steps", DEFAULT_BASE, num_thinking_steps=3),
    _trained("basic", "basic: contrastive, K=1 (fair baseline)"),
    _trained("latent-only", "latent-only: contrastive, K=3 (GIRCSE-like)"),
    _trained("laser", "LaSER: all four losses, K=3"),
    Row("laser-teacher", "LaSER's explicit view: query + rationale, one pass (the teacher; not available at "
        "inference)", "runs/laser/final", explicit=True),
    _trained("basic-80", "basic, 80 steps"),
    _trained("latent-only-80", "latent-only, 80 steps"),
    _trained("laser-80", "LaSER, 80 steps (the ablations' reference)"),
    _trained("no-output-kd", "LaSER w/o output KD, 80 steps"),
    _trained("no-trajectory", "LaSER w/o trajectory alignment, 80 steps"),
)


def evaluate_row(row: Row, sets: list[str], split: str) -> dict:
    from laser_rag import LaSEREncoder
    from training.train import evaluate

    overrides = {"num_thinking_steps": row.num_thinking_steps} if row.num_thinking_steps else {}
    encoder = LaSEREncoder.from_pretrained(row.source, **overrides)
    load = [round(x, 2) for x in os.getloadavg()]
    metrics = evaluate(encoder, sets, split, explicit=row.explicit)
    steps = 1 if row.explicit else encoder.config.num_thinking_steps
    result = {"label": row.label, "source": row.source, "num_thinking_steps": steps,
              "metrics": metrics, "eval_command": row.eval_command(), "train_command": row.train_command(),
              "eval_load_average": [load, [round(x, 2) for x in os.getloadavg()]]}
    if row.run is not None and (row.run / "summary.json").is_file():
        summary = json.loads((row.run / "summary.json").read_text())
        result["train"] = {k: summary[k] for k in ("steps", "examples", "train_seconds", "seconds_per_step",
                                                  "cpu_seconds", "cpu_seconds_per_step", "load_average_at_start",
                                                  "load_average_at_end", "torch_threads")}
    return result


def markdown(report: dict) -> str:
    sets = report["eval_sets"]
    head = (["model", "K", "steps"] + [f"{s} {m}" for s in sets for m in ("nDCG@10", "R@10")]
            + ["mean nDCG@10", "train wall", "train CPU", "s/step (CPU s/step)", "command"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in report["rows"].items():
        m = row["metrics"]
        cells = [row["label"], str(row["num_thinking_steps"]), str(row["train"]["steps"]) if "train" in row else "-"]
        cells += [f"{m[s][k]:.4f}" for s in sets for k in ("ndcg_cut_10", "recall_10")]
        cells.append(f"{sum(m[s]['ndcg_cut_10'] for s in sets) / len(sets):.4f}")
        train = row.get("train")
        if train:
            cells += [f"{train['train_seconds'] / 60:.0f} min", f"{train['cpu_seconds'] / 60:.0f} min",
                      f"{train['seconds_per_step']:.0f} ({train['cpu_seconds_per_step']:.0f})"]
        else:
            cells += ["-", "-", "-"]
        commands = [row["train_command"], row["eval_command"]]
        cells.append("<br>".join(f"`{c}`" for c in commands if c))
        lines.append("| " + " | ".join(cells) + " |")
    rows = report["rows"]
    notes = [f"Split: {report['split']} (queries never trained on). Metrics: pytrec_eval, exact dense search.",
             "Train wall: wall-clock time on the 2 shared cores (other engineers' jobs ran at the same time; the "
             "load averages are in training.json); train CPU: the training process's CPU time (1 torch thread), "
             "about what the run takes on one free core."]
    for other in ("basic", "latent-only"):
        if "laser" in rows and other in rows:
            for s in sets:
                a, b = rows["laser"]["metrics"][s]["ndcg_cut_10"], rows[other]["metrics"][s]["ndcg_cut_10"]
                notes.append(f"LaSER vs {other} on {s}: {100 * (a - b) / b:+.1f}% relative nDCG@10.")
    notes += [f"{s}: {LICENSES[s]}" for s in sets]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=[r.name for r in ROWS], choices=[r.name for r in ROWS])
    parser.add_argument("--sets", nargs="*", default=list(EVAL_SETS))
    parser.add_argument("--split", default="validation")
    parser.add_argument("--force", action="store_true", help="re-evaluate rows already in the results")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=str(RESULTS / "training.json"))
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.is_file() else {}
    if report.get("eval_sets") != args.sets or report.get("split") != args.split:
        report = {"split": args.split, "eval_sets": args.sets, "rows": {}}
    for row in ROWS:
        if row.name not in args.rows or (row.name in report["rows"] and not args.force):
            continue
        if row.source.startswith("runs/") and not Path(row.source, "laser_config.json").is_file():
            print(f"skip {row.name}: {row.source} not trained yet")
            continue
        started = time.perf_counter()
        report["rows"][row.name] = evaluate_row(row, args.sets, args.split)
        report["rows"] = {r.name: report["rows"][r.name] for r in ROWS if r.name in report["rows"]}  # table order
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
        print(f"{row.name}: {time.perf_counter() - started:.0f} s", json.dumps(report["rows"][row.name]["metrics"]))
    if report["rows"]:
        print(markdown(report))


if __name__ == "__main__":
    cli()
