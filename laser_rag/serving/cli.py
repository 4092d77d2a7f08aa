"""The ``laser-rag serve`` command (registered through the ``laser_rag.commands`` entry point; light to import).
Its options are the fields of `ServeConfig`."""

from __future__ import annotations

from laser_rag.cli_options import dataclass_options
from laser_rag.serving.config import ServeConfig


@dataclass_options(ServeConfig, param="config")
def serve(config: ServeConfig) -> None:
    """Serve the encoder as an OpenAI-compatible embeddings API (POST /v1/embeddings) until interrupted."""
    from laser_rag.cli import run_command

    run_command(_serve, config)


def _serve(config: ServeConfig) -> None:
    """Start, then wait; Ctrl-C or SIGTERM stops Serve and the Ray instance cleanly."""
    import signal
    import threading

    import ray
    import typer

    from laser_rag.serving import start, stop

    typer.echo(f"laser-rag serve: starting on {config.url} (model {config.model or 'the embedded default'}, "
               f"{config.replicas} replica(s))", err=True)
    done = threading.Event()
    try:
        url = start(config)  # Ctrl-C during start-up interrupts it
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, lambda *_: done.set())
        typer.echo(f"laser-rag serve: ready on {url}/v1/embeddings; Ctrl-C stops it", err=True)
        done.wait()
    finally:
        stop()
        ray.shutdown()
