"""The training results table: every trained objective and the untrained backbone on the validation sets.

    python -m laser_rag_training.report                    # evaluate the rows missing from the results
    python -m laser_rag_training.report --rows laser --rows basic --force --threads 1
    python -m laser_rag_training.report --table long       # round 2: the long-document mix, SciFact validation

Writes ``benchmarks/results/training.json`` (metrics, training wall time, the exact commands) and
``benchmarks/results/training.md`` (the same as a markdown table), from the repository root; ``--table long``
writes ``training_long.json``/``.md``. Rows are evaluated one at a time and saved as they finish, so an interrupted
report resumes. Validation only: test splits are for the final word, not tuning.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from laser_rag.backbones import DEFAULT_BASE
from laser_rag.util import atomic_write, markdown_table

#: Validation sets of the first table: cheap on 2 CPU cores (short passages).
EVAL_SETS = ("strategyqa", "hotpotqa_evidence")
#: The long-document table adds SciFact: claims_train's validation part against 1,000 abstracts
#: (`laser_rag_datasets.subsets.validation_set`); every row reads documents to at most `LONG_MAX_LENGTH` tokens (the
#: long-document runs train at 128) on every set, unless it says otherwise (`Row.max_length`).
LONG_EVAL_SETS = ("strategyqa", "hotpotqa_evidence", "scifact")
LONG_MAX_LENGTH = 128
RESULTS = Path("benchmarks/results")
_COMMAND = "python -m laser_rag_training.report"


@dataclass(frozen=True)
class Row:
    name: str
    label: str
    source: str  # what LaSEREncoder.from_pretrained loads
    num_thinking_steps: int | None = None  # K override for untrained backbones
    config: str | None = None  # the training config that produced the checkpoint
    explicit: bool = False  # evaluate the explicit view (query + rationale: the teacher) instead of the latent one
    table: str = "short"  # which results table (`TABLES`) the row belongs to
    max_length: int | None = None  # documents cut to this many tokens on every set, in place of the table's cap

    @property
    def run(self) -> Path | None:
        return Path(self.source).parent if self.config else None

    def train_command(self) -> str:
        return f"laser-rag train --config {self.config}" if self.config else ""

    def eval_command(self) -> str:
        table = "" if self.table == "short" else f" --table {self.table}"
        return f"{_COMMAND}{table} --rows {self.name} --force"


def _trained(name: str, label: str, table: str = "short", max_length: int | None = None) -> Row:
    return Row(name, label, f"runs/{name}/final", config=f"training/configs/{name}.yaml", table=table,
               max_length=max_length)


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
#: Where the round-1 checkpoints (shipped as builtin:basic/laser until round 2 replaced them) are read from, and
#: the command that gets them from git.
ROUND1 = Path("runs/round1")
ROUND1_EXTRACT = (f"mkdir -p {ROUND1} && git archive 619e0d2 laser_rag/checkpoints/basic-smollm2-135m "
                  f"laser_rag/checkpoints/laser-smollm2-135m | tar -x --strip-components=2 -C {ROUND1}")
#: Round 2 (issue 14): the long-document mix, against the untrained backbone and the round-1 encoders.
LONG_ROWS = (
    Row("backbone-k1", "SmolLM2-135M untrained, K=1 (last token)", DEFAULT_BASE, num_thinking_steps=1, table="long"),
    Row("backbone-k3", "SmolLM2-135M untrained, K=3 latent steps", DEFAULT_BASE, num_thinking_steps=3, table="long"),
    Row("round1-basic", "basic, round 1 (160 steps, sentences only)", str(ROUND1 / "basic-smollm2-135m"),
        table="long"),
    Row("round1-laser", "LaSER, round 1 (160 steps, sentences only)", str(ROUND1 / "laser-smollm2-135m"),
        table="long"),
    _trained("basic-long", "basic, long-document mix, 80 steps", "long"),
    _trained("latent-only-long", "latent-only (contrastive, K=3), long-document mix, 80 steps", "long"),
    _trained("laser-long", "LaSER, long-document mix, 80 steps", "long"),
    Row("laser-long-teacher", "LaSER long-document mix: its explicit view (the teacher; not available at "
        "inference)", "runs/laser-long/final", explicit=True, table="long"),
    _trained("laser-long-authors", "LaSER long, the authors' code details: trajectory tau 0.05, separator states, "
             "teacher EOS", "long"),
    _trained("laser-long-r64", "LaSER long, LoRA r=64, alpha=32 (the paper's rank)", "long"),
    _trained("no-output-kd-long", "LaSER long w/o output KD", "long"),
    _trained("no-trajectory-long", "LaSER long w/o trajectory alignment", "long"),
    _trained("no-output-kd-long-authors", "LaSER long w/o output KD, the authors' code details: trajectory tau "
             "0.05, separator states, teacher EOS", "long"),
    _trained("no-output-kd-long-r64", "LaSER long w/o output KD, LoRA r=64, alpha=32 (the paper's rank)", "long"),
    _trained("no-output-kd-long-stgrad", "LaSER long w/o output KD, gradient through the soft tokens' softmax (the "
             "paper's end-to-end rollout)", "long"),
    # Both read documents to 256 tokens: the pair separates the length trained on from the length read.
    Row("no-output-kd-long-read256", "LaSER long w/o output KD (trained on 128-token documents), read at 256 tokens",
        "runs/no-output-kd-long/final", table="long", max_length=256),
    _trained("no-output-kd-long-256", "LaSER long w/o output KD, trained and read at 256 tokens", "long",
             max_length=256),
    # The default's fair baseline: basic with the same 256-token documents, read at 256 tokens.
    _trained("basic-long-256", "basic, long-document mix, trained and read at 256 tokens", "long", max_length=256),
    # A learning-curve point for no-output-kd-long-256: the same recipe and data order with twice the steps.
    _trained("no-output-kd-long-256-160", "LaSER long w/o output KD, 256 tokens, 160 steps (twice the default's; "
             "over the 60-min budget here)", "long", max_length=256),
)
#: Each table: its rows, validation sets, results file and the longest document a row reads on each set (unless the
#: row sets its own `Row.max_length`).
TABLES = {"short": (ROWS, EVAL_SETS, RESULTS / "training.json", None),
          "long": (LONG_ROWS, LONG_EVAL_SETS, RESULTS / "training_long.json", LONG_MAX_LENGTH)}
_TRAIN_KEYS = ("steps", "examples", "train_seconds", "seconds_per_step", "cpu_seconds", "cpu_seconds_per_step",
               "load_average_at_start", "load_average_at_end", "torch_threads")


def _missing_checkpoint(row: Row) -> str | None:
    """Why ``row`` cannot be evaluated yet (its local checkpoint is absent, and how to make it), or None."""
    source = Path(row.source)
    if row.source.startswith(("builtin:", "pkg:")) or source.parts[:1] != ("runs",):
        return None  # shipped, packaged or a hub model: loading it says what is wrong
    if (source / "laser_config.json").is_file():
        return None
    if row.config:
        return f"{row.source} not trained yet ({row.train_command()})"
    if source.is_relative_to(ROUND1):
        return f"no {row.source}: get the round-1 checkpoints with `{ROUND1_EXTRACT}`"
    return f"no checkpoint at {row.source} (train the run it reads first)"


def evaluate(encoder, names: Sequence[str], split: str = "validation",
             explicit: bool = False) -> dict[str, dict[str, float]]:
    """nDCG@10 etc. of ``encoder`` on each named validation set's ``split`` (`laser_rag_datasets.subsets.validation_set`);
    ``explicit``: of its explicit view (the teacher: each query read with its rationale from
    `laser_rag_training.data.rationales`; no use at inference)."""
    from laser_rag.evaluation import evaluate_encoder
    from laser_rag_datasets.subsets import validation_set
    from laser_rag_training.data import rationales

    return {name: evaluate_encoder(encoder, validation_set(name, split), show_progress_bar=False,
                                   rationales=rationales(name, split) if explicit else None) for name in names}


def evaluate_row(row: Row, sets: Sequence[str], split: str, max_length: int | None = None) -> dict:
    """Evaluate ``row`` with documents cut to its own `Row.max_length` (which may exceed the checkpoint's), else to
    ``max_length``, the table's cap (at most the checkpoint's own budget)."""
    from laser_rag.encoders import LaSEREncoder

    overrides = {"num_thinking_steps": row.num_thinking_steps} if row.num_thinking_steps else {}
    encoder = LaSEREncoder.from_pretrained(row.source, **overrides)
    if row.max_length is not None:
        encoder = encoder.with_config(max_length=row.max_length)
    elif max_length is not None:
        encoder = encoder.with_config(max_length=min(max_length, encoder.config.max_length))
    load = [round(x, 2) for x in os.getloadavg()]
    metrics = evaluate(encoder, sets, split, explicit=row.explicit)
    result = {"label": row.label, "source": row.source,
              "num_thinking_steps": 1 if row.explicit else encoder.num_thinking_steps,
              "max_length": encoder.config.max_length,
              "dtype": str(encoder.dtype).removeprefix("torch."), "metrics": metrics,
              "eval_command": row.eval_command(), "train_command": row.train_command(),
              "eval_load_average": [load, [round(x, 2) for x in os.getloadavg()]]}
    if row.run is not None and (row.run / "summary.json").is_file():
        summary = json.loads((row.run / "summary.json").read_text())
        result["train"] = {k: summary[k] for k in _TRAIN_KEYS}
    return result


def markdown(report: dict) -> str:
    """The report as a markdown table (one row per evaluated model) and notes (relative gains, licences)."""
    sets, rows = report["eval_sets"], report["rows"]
    head = (["model", "K", "steps"] + [f"{s} {m}" for s in sets for m in ("nDCG@10", "R@10")]
            + ["mean nDCG@10", "train wall", "train CPU", "s/step (CPU s/step)", "command"])
    cells = []
    for row in rows.values():
        m, train = row["metrics"], row.get("train")
        line = [row["label"], row["num_thinking_steps"], train["steps"] if train else "-"]
        line += [f"{m[s][k]:.4f}" for s in sets for k in ("ndcg_cut_10", "recall_10")]
        line.append(f"{sum(m[s]['ndcg_cut_10'] for s in sets) / len(sets):.4f}")
        if train:
            line += [f"{train['train_seconds'] / 60:.0f} min", f"{train['cpu_seconds'] / 60:.0f} min",
                     f"{train['seconds_per_step']:.0f} ({train['cpu_seconds_per_step']:.0f})"]
        else:
            line += ["-", "-", "-"]
        line.append("<br>".join(f"`{c}`" for c in (row["train_command"], row["eval_command"]) if c))
        cells.append(line)
    notes = [f"Split: {report['split']} (queries never trained on). Metrics: pytrec_eval, exact search "
             "(Qdrant in memory).",
             "Train wall: wall-clock time on the 2 shared cores (other engineers' jobs ran at the same time; the "
             "load averages are in training.json); train CPU: the training process's CPU time, summed over its torch "
             "threads (1 for runs side by side: about what the run takes on one free core; the JSON has each "
             "run's threads)."]
    for laser, other in (("laser", "basic"), ("laser", "latent-only"), ("laser-long", "basic-long"),
                         ("laser-long", "latent-only-long"), ("laser-long", "round1-laser"),
                         ("basic-long", "round1-basic"), ("no-output-kd-long-256", "no-output-kd-long"),
                         ("no-output-kd-long-256", "no-output-kd-long-read256"),
                         ("no-output-kd-long-256-160", "no-output-kd-long-256"),
                         ("no-output-kd-long-256", "basic-long-256"), ("basic-long-256", "basic-long"),
                         ("no-output-kd-long-authors", "no-output-kd-long"),
                         ("no-output-kd-long-r64", "no-output-kd-long"),
                         ("no-output-kd-long-stgrad", "no-output-kd-long")):
        if laser in rows and other in rows:
            for s in sets:
                a, b = rows[laser]["metrics"][s]["ndcg_cut_10"], rows[other]["metrics"][s]["ndcg_cut_10"]
                notes.append(f"{laser} vs {other} on {s}: {100 * (a - b) / b:+.1f}% relative nDCG@10.")
    from laser_rag_datasets.shared import LICENSES

    notes += [f"{s}: {LICENSES[s]}" for s in sets]
    return markdown_table(head, cells) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def report(
    rows: Annotated[Optional[list[str]], typer.Option("--rows", help="A row to evaluate (repeatable; default: "
                                                                     "all).")] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--sets", help="A validation set (repeatable).")] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "validation",
    force: Annotated[bool, typer.Option(help="Re-evaluate rows already in the results.")] = False,
    threads: Annotated[int, typer.Option(help="torch threads (0: torch's default).")] = 0,
    table: Annotated[str, typer.Option(help="short: round 1 (sentence-length sets); long: round 2 (adds the "
                                            "SciFact long-document validation set).")] = "short",
    out: Annotated[Optional[Path], typer.Option(help="The JSON results file (the table goes beside it, .md; "
                                                     "default: the table's own file).")] = None,
) -> None:
    """Evaluate the training rows on the validation sets and write the results table."""
    if table not in TABLES:
        raise typer.BadParameter(f"--table must be one of {', '.join(TABLES)}")
    all_rows, default_sets, default_out, max_length = TABLES[table]
    out = out or default_out
    known = [r.name for r in all_rows]
    rows, sets = rows or known, sets or list(default_sets)
    if unknown := sorted(set(rows) - set(known)):
        raise typer.BadParameter(f"unknown rows {unknown}; known: {', '.join(known)}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    results = json.loads(out.read_text()) if out.is_file() else {}
    if results.get("eval_sets") != sets or results.get("split") != split:
        results = {"split": split, "eval_sets": sets, "rows": {}}
    for row in all_rows:
        if row.name not in rows or (row.name in results["rows"] and not force):
            continue
        if (missing := _missing_checkpoint(row)) is not None:
            typer.echo(f"skip {row.name}: {missing}")
            continue
        started = time.perf_counter()
        results["rows"][row.name] = evaluate_row(row, sets, split, max_length)
        results["rows"] = {r.name: results["rows"][r.name] for r in all_rows if r.name in results["rows"]}
        atomic_write(out, json.dumps(results, indent=2) + "\n")
        atomic_write(out.with_suffix(".md"), markdown(results))
        metrics = json.dumps(results["rows"][row.name]["metrics"])
        typer.echo(f"{row.name}: {time.perf_counter() - started:.0f} s {metrics}")
    if results["rows"]:
        typer.echo(markdown(results))


if __name__ == "__main__":
    typer.run(report)
