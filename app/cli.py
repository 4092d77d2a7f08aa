"""The ``laser-rag demo`` command (registered through the ``laser_rag.commands`` entry point; light to import).

Its options are the fields of `AppSettings` and of `laser_rag.llm.GenerationConfig`: a setting is declared once,
with its default and help, on the dataclass; the per-mode ones (``--<mode>-model``, ``--<mode>-checkpoint``) come
from the registry (`laser_rag.modes.source_fields`) into ``AppSettings.models``.
"""

from __future__ import annotations

import dataclasses

from laser_rag.cli_options import dataclass_options, mode_source_options
from laser_rag.llm import GenerationConfig
from laser_rag.modes import ModeSources
from laser_rag_app.settings import AppSettings


@dataclass_options(GenerationConfig, param="generation")
@dataclass_options(AppSettings, param="settings", exclude=("generation", "models"))
@mode_source_options(param="models")
def demo(settings: AppSettings, generation: GenerationConfig, models: ModeSources) -> None:
    """Start the web app: the retrieval modes side by side, with per-stage latency."""
    from laser_rag.cli import run_command
    from laser_rag_app import launch

    run_command(launch, dataclasses.replace(settings, generation=generation, models=models))
