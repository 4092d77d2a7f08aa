"""The ``laser-rag serve`` command (registered through the ``laser_rag.commands`` entry point; light to import).
Its options are the fields of `ServeConfig`."""

from __future__ import annotations

from laser_rag._cli_options import dataclass_options
from laser_rag.serving.config import ServeConfig


@dataclass_options(ServeConfig, param="config")
def serve(config: ServeConfig) -> None:
    """Serve the encoder as an OpenAI-compatible embeddings API (POST /v1/embeddings) until interrupted."""
    from laser_rag.cli import run_command

    run_command(_serve, config)


def _serve(config: ServeConfig) -> None:
    import typer

    from laser_rag.serving import start

    typer.echo(f"laser-rag serve: starting on {config.url} (model {config.model or 'the embedded default'}, "
               f"{config.replicas} replica(s)); Ctrl-C stops it", err=True)
    start(config, blocking=True)
