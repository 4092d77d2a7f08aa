"""The LaSER encoder as an OpenAI-compatible embeddings service on Ray Serve (``pip install laser-rag[distributed]``).

Other embedding servers run one forward pass and pool; this one runs the encoder's K-step latent loop, batching
concurrent requests (`laser_rag.serving.app`). ``laser-rag serve`` runs it from the shell; from Python::

    from laser_rag.serving import ServeConfig, start, stop

    url = start(ServeConfig(port=8000))       # returns once the service answers
    # POST {url}/v1/embeddings {"model": "<name>", "input": [...]}; "<name>:query" embeds queries
    stop()

Importing this package loads no Ray (nor torch): `start` does.
"""

from __future__ import annotations

from laser_rag.serving.config import QUERY_SUFFIX, ServeConfig, ServeConfigError

__all__ = ["APP_NAME", "QUERY_SUFFIX", "ServeConfig", "ServeConfigError", "start", "stop"]

#: The Serve application's name (one per Serve instance: `start` replaces a running one).
APP_NAME = "laser-rag"


def start(config: ServeConfig | None = None) -> str:
    """Start (or replace) the service on a local Ray instance (started here unless one runs), bound to
    ``config.host:config.port``; returns its URL once it answers. A Serve instance already running keeps its host
    and port (Serve applies them once): `stop` it first to move it."""
    import ray

    from laser_rag.serving.app import build_app, serve

    config = config or ServeConfig()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, configure_logging=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    serve.run(build_app(config), name=APP_NAME, route_prefix="/")
    return config.url


def stop() -> None:
    """Stop Serve (the Ray instance keeps running; `ray.shutdown` ends it)."""
    from ray import serve

    serve.shutdown()
