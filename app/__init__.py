"""The laser_rag demo app (Gradio; installed as ``laser_rag_app``, the ``[app]`` extra): the retrieval modes side
by side in the answer loop, with the latency of every stage.

    laser-rag demo                       # http://127.0.0.1:7860 ; --host/--port/--data-dir, see --help
    python -m laser_rag_app --port 8000  # the same

`launch` starts it from Python; ``laser_rag_app.ui.build_app(Engine(AppSettings(...)))`` gives the Blocks without
starting it. The app's data (embedded Qdrant, uploaded files) lives in ``$LASER_RAG_APP_DIR`` or the user data dir.
settings (`AppSettings`), corpora (built-in sets, uploads), engine (indexing and answering, no UI), ui (Gradio),
cli (the ``demo`` command).
"""

from __future__ import annotations

import os
import sys

from laser_rag_app.settings import AppSettings

__all__ = ["AppSettings", "launch"]


def launch(settings: AppSettings | None = None, *, block: bool = True):
    """Start the app offline (no analytics, no share link, nothing fetched from the network), bound to
    ``settings.host`` (127.0.0.1 by default); prints the device, dtype and threads the models use (the model libraries'
    progress bars stay hidden unless ``settings.verbose``). Blocks until
    interrupted unless ``block=False``."""
    from laser_rag import runtime

    settings = settings or AppSettings()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(settings.data_dir / "gradio-tmp"))  # uploads land here first
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    else:
        runtime.configure_threads()
    runtime.quiet_model_loading(settings.verbose)
    print(f"laser-rag demo: {runtime.runtime_summary()}", file=sys.stderr, flush=True)
    from laser_rag_app.ui import serve

    return serve(settings, block=block)
