#!/usr/bin/env python3
"""Ship a finished training run as a checkpoint inside the package: the maintainer's explicit step.

    python scripts/ship_checkpoint.py runs/no-output-kd-long-256 laser-smollm2-135m --max-length 512 --query-max-length 0
    python scripts/ship_checkpoint.py runs/basic-long basic-smollm2-135m --max-length 512 --query-max-length 0
    python scripts/ship_checkpoint.py runs/latentrag latentrag-smollm2-135m            # builtin:latentrag
    python scripts/ship_checkpoint.py runs/explicit-agent explicit-agent-smollm2-135m  # the eval's explicit agent

Training never writes into the installed package; this copies a run's ``final/`` adapter and ``laser_config.json``
into ``laser_rag/checkpoints/<name>/`` of this repository, after checking that the run finished, that the
checkpoint names a backbone every user has (a ``pkg:`` reference or a hub id, not a local path) and that the
adapter is small enough to ship. Then commit the files (and re-run the results the README quotes).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "laser_rag" / "checkpoints"
FILES = ("laser_config.json", "adapter_config.json", "adapter_model.safetensors")
MAX_ADAPTER_BYTES = 10_000_000
#: A LatentRAG run ships its whole final/ folder: two LoRA adapters, the projectors and the special embeddings (bf16).
LATENTRAG_CONFIG = "latentrag_config.json"
MAX_LATENTRAG_BYTES = 32_000_000


def ship(
    run: Annotated[Path, typer.Argument(help="A finished run directory (runs/<name>) or its final/ folder.")],
    name: Annotated[str, typer.Argument(help="Checkpoint folder name, e.g. laser-smollm2-135m.")],
    into: Annotated[Path, typer.Option(help="Where the package's checkpoints live.")] = CHECKPOINTS,
    max_length: Annotated[int | None, typer.Option(
        help="The document token budget users get (the run's laser_config.json keeps the one it trained with).")] = None,
    query_max_length: Annotated[int | None, typer.Option(
        help="The query token budget users get; 0: no separate query budget (max_length).")] = None,
) -> Path:
    """Copy a finished run's adapter and laser_config.json into the package's checkpoints.

    Training records the lengths it trained with (documents cut to 128 tokens, say); ``--max-length`` and
    ``--query-max-length`` set what the shipped checkpoint reads at inference instead, so the ``laser_config.json``
    that ships is exactly what this command wrote, never a hand edit.
    """
    from laser_rag.util import atomic_write
    from laser_rag.config import CONFIG_NAME, LaSERConfig

    final = run if run.name == "final" else run / "final"
    if not (final.parent / "summary.json").is_file():
        raise typer.BadParameter(f"{final.parent} has no summary.json: the run has not finished (or is no run)")
    if (final / LATENTRAG_CONFIG).is_file():
        return _ship_latentrag(final, name, into)
    missing = [f for f in FILES if not (final / f).is_file()]
    if missing:
        raise typer.BadParameter(f"{final} lacks {', '.join(missing)}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise typer.BadParameter(f"{name!r}: use lower-case letters, digits, '.', '_' and '-'")
    config = LaSERConfig.load(final)
    base = config.base_model
    if not base.startswith("pkg:") and (Path(base).is_absolute() or Path(base).exists()):
        raise typer.BadParameter(f"the checkpoint's base_model is a local path ({base}): users will not have it")
    size = (final / "adapter_model.safetensors").stat().st_size
    if size > MAX_ADAPTER_BYTES:
        raise typer.BadParameter(f"the adapter is {size / 1e6:.1f} MB, over the {MAX_ADAPTER_BYTES / 1e6:.0f} MB "
                                 "a shipped checkpoint may take (train with a smaller lora_r)")
    lengths = {} if max_length is None else {"max_length": max_length}
    if query_max_length is not None:
        lengths["query_max_length"] = query_max_length or None
    try:
        config = dataclasses.replace(config, **lengths)  # LaSERConfig checks the budgets
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    target = into / name
    for file in FILES:
        if file != CONFIG_NAME:
            atomic_write(target / file, (final / file).read_bytes())
    config.save(target)
    typer.echo(f"shipped {final} -> {target} ({size / 1e6:.1f} MB adapter, backbone {base})")
    return target


def _ship_latentrag(final: Path, name: str, into: Path) -> Path:
    from laser_rag.util import atomic_write

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise typer.BadParameter(f"{name!r}: use lower-case letters, digits, '.', '_' and '-'")
    config = json.loads((final / LATENTRAG_CONFIG).read_text())
    for key in ("base_model", "retriever"):
        value = config.get(key) or ""
        if value and not value.startswith("pkg:") and (Path(value).is_absolute() or Path(value).exists()):
            raise typer.BadParameter(f"the checkpoint's {key} is a local path ({value}): users will not have it")
    files = sorted(f for f in final.rglob("*") if f.is_file() and f.suffix in (".json", ".safetensors"))
    size = sum(f.stat().st_size for f in files)
    if size > MAX_LATENTRAG_BYTES:
        raise typer.BadParameter(f"the checkpoint is {size / 1e6:.1f} MB, over the {MAX_LATENTRAG_BYTES / 1e6:.0f} "
                                 "MB a shipped LatentRAG checkpoint may take")
    target = into / name
    for file in files:
        atomic_write(target / file.relative_to(final), file.read_bytes())
    typer.echo(f"shipped {final} -> {target} ({size / 1e6:.1f} MB, {len(files)} files)")
    return target


if __name__ == "__main__":
    typer.run(ship)
