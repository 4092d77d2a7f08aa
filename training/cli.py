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
) -> None:
    """Train (or resume) a LaSER encoder: dual-view self-distillation with LoRA (needs the train extra)."""
    from laser_rag.cli import run_command

    def body() -> None:
        from laser_rag_training.config import load_config
        from laser_rag_training.train import train as run

        try:
            settings = load_config(config, overrides or [])
        except ValueError as exc:  # pydantic's ValidationError is one: name the field, no traceback
            raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
        typer.echo(run(settings))

    run_command(body)
