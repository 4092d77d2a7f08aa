"""``laser-rag eval``, ``laser-rag eval-qa`` and ``laser-rag convert``: commands the core CLI picks up from the
``laser_rag.commands`` entry points when the ``eval`` extra is installed.

Light at import (typer and the eval's settings); the harness is imported inside the commands.

    laser-rag eval --dataset hotpotqa --modes bm25,basic,laser --max-queries 50 --max-docs 1000 --out report.json
    laser-rag eval-qa --data hotpotqa --limit 50 --systems direct,naive,explicit,latentrag
    laser-rag convert hotpotqa hotpotqa-beir/
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from laser_rag.cli_options import mode_source_options
from laser_rag.modes import ModeSources
from laser_rag_benchmarks.retrievers import DEFAULT_MODES, DEPTH, EvalSettings, parse_modes  # light: no torch


def _load_dataset(data: Path | None, name: str | None, split: str | None):
    """``data``: a BEIR directory (split default "test"); or ``name``: a shared set (split default "validation").
    Returns the dataset and its licence line (None for a user's directory). A source that cannot be read is a
    `laser_rag.errors.CorpusError` (one red line on the command line)."""
    from laser_rag.beir import load_beir
    from laser_rag.errors import CorpusError, LaserRagError
    from laser_rag_datasets.shared import LICENSES, shared_dataset

    if (data is None) == (name is None):
        raise CorpusError("give either a BEIR directory (--data) or a shared dataset name (--dataset)")
    try:
        if data is not None:
            return load_beir(data, split or "test"), None
        return shared_dataset(name, split or "validation"), LICENSES.get(name)
    except LaserRagError:
        raise
    except (FileNotFoundError, ValueError) as exc:  # a missing file, an unknown set or split: the user's to fix
        raise CorpusError(str(exc)) from exc


def _check_modes(value: str) -> str:
    """``--modes`` names known modes (else a usage error naming them, before anything loads)."""
    try:
        parse_modes(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def _command_line(context: typer.Context) -> str:
    """The command a ``context`` ran, for the report: ``laser-rag eval --dataset hotpotqa ...``, options left at
    their defaults left out."""
    words = ["laser-rag", context.info_name or "eval"]
    for param in context.command.params:
        value = context.params.get(param.name)
        if value is None or value == param.default or not getattr(param, "opts", None):
            continue
        words += [param.opts[0], str(getattr(value, "value", value))]
    return shlex.join(words)


@mode_source_options(param="models", agents=False)
def eval_(
    context: typer.Context,
    models: ModeSources,
    data: Annotated[Optional[Path], typer.Option("--data", help="A BEIR directory: corpus.jsonl[.gz], queries.jsonl, "
                                                                "qrels/<split>.tsv.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Or a shared set: scifact, strategyqa, hotpotqa, "
                                                                     "musique, hotpotqa_evidence.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Which qrels (default: test for --data, validation for "
                                                      "--dataset).")] = None,
    modes: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(DEFAULT_MODES)}; a dense mode with "
                                            "+hybrid (e.g. laser+hybrid) fuses it with BM25 in Qdrant.",
                                       callback=_check_modes)]
    = ",".join(DEFAULT_MODES),
    k: Annotated[int, typer.Option("--k", min=1, max=DEPTH, help="Cut-off of nDCG, Recall and MRR (Recall@100 is "
                                                               "always reported).")] = EvalSettings.k,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the JSON report here.")] = None,
    num_thinking_steps: Annotated[Optional[int], typer.Option(min=1, help="K for laser-mode queries (documents keep "
                                                                          "the encoder's own K).")] = None,
    max_queries: Annotated[Optional[int], typer.Option(min=1, help="Evaluate only the first N judged queries.")]
    = None,
    max_length: Annotated[Optional[int], typer.Option(min=8, help="Token limit of the LaSER encoders (documents "
                                                                  "longer are truncated; cheaper).")] = None,
    max_docs: Annotated[Optional[int], typer.Option(min=1, help="A sub-corpus: the evaluated queries' relevant "
                                                                "documents plus random distractors (seed 0) up to "
                                                                "N documents (cheaper; not comparable with the full "
                                                                "corpus).")] = None,
    llm: Annotated[Optional[str], typer.Option(help="The rewriter: an OpenAI-compatible URL or a local model "
                                                    "(default: SmolLM2).")] = None,
    llm_model: Annotated[str, typer.Option(help="Model name to request from an OpenAI-compatible server.")]
    = EvalSettings.llm_model,
    rewrite_max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest rewrite, in tokens.")]
    = EvalSettings.rewrite_max_new_tokens,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per encoder batch.")] = EvalSettings.batch_size,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where document vectors are cached (default: the "
                                                           "laser_rag cache dir).")] = None,
) -> None:
    """Retrieval quality (nDCG, Recall, MRR) and query latency of each mode on a BEIR dataset; exact search."""
    from laser_rag.cli import run_command

    def body():
        from laser_rag_benchmarks.harness import run_eval

        settings = EvalSettings(
            k=k, num_thinking_steps=num_thinking_steps, max_queries=max_queries, max_length=max_length,
            models=models, llm=llm, llm_model=llm_model,
            rewrite_max_new_tokens=rewrite_max_new_tokens, batch_size=batch_size)
        loaded, license = _load_dataset(data, dataset, split)
        run_eval(loaded, modes, settings, max_docs=max_docs, out=out, license=license, cache_dir=cache_dir,
                 command=_command_line(context), echo=typer.echo)

    run_command(body)


def convert(
    name: Annotated[str, typer.Argument(help="A shared set: scifact, strategyqa, hotpotqa, musique, "
                                             "hotpotqa_evidence.")],
    directory: Annotated[Path, typer.Argument(help="Where to write the BEIR directory.")],
    split: Annotated[str, typer.Option(help="Which queries (train, validation, test, all).")] = "validation",
) -> None:
    """Write a shared dataset as a BEIR directory (for `laser-rag eval --data`, or any BEIR tool)."""
    from laser_rag.cli import run_command

    def body():
        from laser_rag.errors import CorpusError
        from laser_rag_benchmarks.shared import export_shared

        try:
            written = export_shared(name, directory, split)
        except (FileNotFoundError, ValueError) as exc:  # no shared data, an unknown set or split
            raise CorpusError(str(exc)) from exc
        typer.echo(f"wrote {written} (qrels/{split}.tsv; licence in LICENSE.txt)\n"
                   f"evaluate it with: laser-rag eval --data {written} --split {split}")

    run_command(body)


def _check_systems(value: str) -> str:
    """``--systems`` names known systems (else a usage error naming them, before anything loads)."""
    from laser_rag_benchmarks.qa_eval import parse_systems  # light: no torch

    try:
        parse_systems(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def eval_qa(
    data: Annotated[str, typer.Option("--data", help="A QA file (HotpotQA official layout, JSON or JSON lines; "
                                                     "MuSiQue JSON lines) or a shared set: hotpotqa, musique, "
                                                     "strategyqa.")],
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N questions (the corpus "
                                                                        "stays whole).")] = None,
    latentrag: Annotated[Optional[Path], typer.Option("--latentrag", help="A LatentRAG checkpoint folder "
                                                                          "(default: the shipped one).")] = None,
    explicit: Annotated[Optional[Path], typer.Option("--explicit", help="An explicit-agent checkpoint folder "
                                                                        "(default: the shipped one).")] = None,
    systems: Annotated[str, typer.Option("--systems", help="Comma-separated: direct, naive, explicit, latentrag, "
                                                           "latentrag+decode.", callback=_check_systems)]
    = "direct,naive,explicit,latentrag,latentrag+decode",
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Questions run through every system untimed "
                                                                "first.")] = 1,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the JSON report here (default: "
                                                              "benchmarks/results/qa_<dataset>.json).")] = None,
) -> None:
    """End-to-end QA (EM, F1, retrieval success, stage latencies) of LatentRAG against the explicit agent and the
    direct / naive baselines: one LLM, one index, the questions run interleaved."""
    from laser_rag.cli import run_command

    def body():
        import json
        import re

        from laser_rag.util import atomic_write
        from laser_rag.errors import CorpusError
        from laser_rag_benchmarks.qa import load_qa
        from laser_rag_benchmarks.qa_eval import qa_table, run_qa_eval
        from laser_rag_benchmarks.shared import find_results_dir

        try:
            qa_set = load_qa(data, limit=limit)
        except (FileNotFoundError, ValueError) as exc:  # a missing or malformed file: the user's to fix
            raise CorpusError(str(exc)) from exc
        result = run_qa_eval(qa_set, latentrag_checkpoint=latentrag, explicit_checkpoint=explicit,
                             systems=systems, warmup=warmup)
        target = out or find_results_dir() / f"qa_{re.sub(r'[^A-Za-z0-9_.-]+', '_', qa_set.name)}.json"
        atomic_write(target, json.dumps(result, indent=2) + "\n")
        typer.echo(qa_table(result))
        typer.echo(f"\nwrote {target}")

    run_command(body)
