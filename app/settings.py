"""How the app runs: `AppSettings`, one dataclass whose fields are also the ``laser-rag demo`` options.

Light to import (no torch, no Qdrant, no gradio): the ``demo`` command builds its options from these fields, and
the per-mode ones (``--<mode>-model``, ``--<mode>-checkpoint``) from the registry (`laser_rag.modes.source_fields`),
gathered in ``AppSettings.models``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import platformdirs

from laser_rag.llm import GenerationConfig
from laser_rag.modes import ModeSources

DATA_DIR_ENV = "LASER_RAG_APP_DIR"


def default_data_dir() -> Path:
    """``$LASER_RAG_APP_DIR``, else ``<user data dir>/laser_rag/app``."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path(platformdirs.user_data_dir("laser_rag")) / "app")


@dataclass
class AppSettings:
    """How the app runs. ``generation`` holds the LLM's budgets (`laser_rag.llm.GenerationConfig`, the defaults);
    ``models`` the encoder and agent checkpoint picked per mode (`laser_rag.modes.ModeSources`; an agent's default
    is ``$LASER_RAG_<MODE>_CHECKPOINT``, else the preset's, e.g. ``builtin:latentrag``)."""

    data_dir: Path = field(default_factory=default_data_dir, metadata={
        "help": f"The app's indexes and uploads (default: ${DATA_DIR_ENV}, else <user data dir>/laser_rag/app).",
        "show_default": False})
    host: str = field(default="127.0.0.1", metadata={
        "help": "Address to bind (0.0.0.0 opens the app to your network)."})
    port: Optional[int] = field(default=None, metadata={
        "help": "Port (default: 7860, or the next free one).", "min": 1, "max": 65535})
    corpus: Optional[str] = field(default=None, metadata={
        "help": "Corpus selected at start (default: a small HotpotQA slice, or the Python reference without the "
                "shared data)."})
    llm: Optional[str] = field(default=None, metadata={
        "help": "An OpenAI-compatible URL or a local model (default: SmolLM2-135M-Instruct)."})
    llm_model: str = field(default="default", metadata={
        "help": "Model name to request from an OpenAI-compatible server."})
    concurrency: int = field(default=1, metadata={
        "help": "Events of each kind served at once (answers take turns on the CPU either way; 1 finishes each "
                "user's answer before the next starts: faster on average on 2 cores).", "min": 1})
    queue_size: int = field(default=32, metadata={
        "help": "Requests waiting at most; more are refused until the queue drains.", "min": 1})
    threads: Optional[int] = field(default=None, metadata={
        "help": "CPU threads for the models (default: one per physical core; 1 is faster on a busy machine).",
        "min": 1})
    preload: bool = field(default=True, metadata={
        "help": "Load and warm up the models at start, so the first question is timed fairly."})
    verbose: bool = field(default=False, metadata={
        "help": "Show the model libraries' progress bars and info logs in the app's log (hidden by default)."})
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    models: ModeSources = field(default_factory=ModeSources)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
