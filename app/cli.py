"""The ``laser-rag demo`` command (registered through the ``laser_rag.commands`` entry point; light to import).

Its options are the fields of `AppSettings` and of `laser_rag.llm.GenerationConfig`: a setting is declared once,
with its default and help, on the dataclass.
"""

from __future__ import annotations

import dataclasses

from laser_rag.cli_options import dataclass_options
from laser_rag.llm import GenerationConfig
from laser_rag_app.settings import AppSettings


@dataclass_options(GenerationConfig, param="generation")
@dataclass_options(AppSettings, param="settings", exclude=("generation",))
def demo(settings: AppSettings, generation: GenerationConfig) -> None:
    """Start the web app: the retrieval modes side by side, with per-stage latency."""
    from laser_rag.cli import run_command
    from laser_rag_app import launch

    run_command(launch, dataclasses.replace(settings, generation=generation))
