"""The ``laser-rag train`` command (registered through the ``laser_rag.commands`` entry point; light to import)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", exists=True, dir_okay=False,
                                                   help="A JSON/YAML training config (training/configs/*.yaml); "
                                                        "default: the built-in defaults.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config field, KEY=VALUE "
                                                                          "(repeatable; values read as YAML).")]
    = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Train on this many local processes (torchrun's "
                                                               "elastic agent: one GPU each, or CPU processes); "
                                                               "batch_size stays the global batch.")] = 1,
) -> None:
    """Train (or resume) a LaSER encoder: dual-view self-distillation with LoRA (needs the train extra)."""
    from laser_rag_training.config import TrainConfig

    _run(TrainConfig, "laser_rag_training.train", config, overrides, nproc)


def _run(config_class, module: str, config: Path | None, overrides: list[str] | None, nproc: int = 1) -> None:
    """Load ``config_class`` from the file and ``--set`` overrides, then ``module.train`` it (``launch_train`` on
    ``nproc`` processes); print the result."""
    import importlib

    from laser_rag.cli import run_command

    def body() -> None:
        from laser_rag_training.config import parse_overrides

        try:
            settings = config_class.load(config, **parse_overrides(overrides or []))
        except ValueError as exc:  # pydantic's ValidationError is one: name the field, no traceback
            raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
        trainer = importlib.import_module(module)
        typer.echo(trainer.train(settings) if nproc == 1 else trainer.launch_train(settings, nproc))

    run_command(body)


def train_latentrag(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", exists=True, dir_okay=False,
                                                   help="A JSON/YAML LatentRAG training config "
                                                        "(training/configs/latentrag*.yaml); default: the built-in "
                                                        "defaults.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config field, KEY=VALUE "
                                                                          "(repeatable; values read as YAML).")]
    = None,
) -> None:
    """Train (or resume) LatentRAG, or with system=explicit the explicit agent it is compared with."""
    from laser_rag_training.latentrag.config import LatentRAGTrainConfig

    _run(LatentRAGTrainConfig, "laser_rag_training.latentrag.train", config, overrides)
