"""The laser_rag demo app (Gradio): basic, LaSER and rewrite-then-retrieve side by side in the answer loop, with
the latency of every stage.

    laser-rag demo                       # http://127.0.0.1:7860 ; --host/--port/--data-dir, see --help
    python -m app --port 8000            # the same

`launch` starts it from Python; `build_app(Engine(AppSettings(...)))` gives the Blocks without starting it. The
app's data (embedded Qdrant, uploaded files) lives in ``$LASER_RAG_APP_DIR`` or the user data dir.
"""

from __future__ import annotations

import os
import sys

__all__ = ["AppSettings", "Engine", "build_app", "launch", "main"]


def launch(settings=None, *, block: bool = True):
    """Start the app offline (no analytics, no share link, nothing fetched from the network): bound to
    ``settings.host`` (127.0.0.1 by default). Blocks until interrupted unless ``block=False``."""
    from app.engine import AppSettings

    settings = settings or AppSettings()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.data_dir / "gradio-tmp"))  # uploads land here first
    from app.ui import serve

    return serve(settings, block=block)


def main(argv: list[str] | None = None) -> None:
    """``python -m app [options]``: the ``laser-rag demo`` command."""
    from laser_rag.cli import app as cli

    cli(["demo", *(sys.argv[1:] if argv is None else argv)], prog_name="python -m app")


def __getattr__(name: str):
    if name in ("AppSettings", "Engine"):
        from app import engine

        return getattr(engine, name)
    if name == "build_app":
        from app.ui import build_app

        return build_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
