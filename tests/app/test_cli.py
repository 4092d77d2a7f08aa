"""``laser-rag demo``: a plugin command of the core CLI, light to import, with options from the settings
dataclasses (bound to 127.0.0.1 by default)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

from typer.testing import CliRunner

from laser_rag.llm import GenerationConfig
from laser_rag.modes import source_fields
from laser_rag_app.settings import AppSettings


def test_demo_command_binds_localhost_by_default():
    import typer

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--data-dir", "--max-new-tokens", "127.0.0.1"):
        assert option in result.output
    demo = typer.main.get_command(app).commands["demo"]
    options = {name for param in demo.params for name in param.opts}
    for settings in (AppSettings, GenerationConfig):  # every setting is an option: none copied by hand
        for field in dataclasses.fields(settings):
            if field.name not in ("generation", "models"):
                assert f"--{field.name.replace('_', '-')}" in options
    for name, _, _ in source_fields():  # and one per mode of the registry: --basic-model, --latentrag-checkpoint
        assert f"--{name.replace('_', '-')}" in options
    assert {"--basic-model", "--laser-model", "--latentrag-checkpoint"} <= options


def test_demo_options_become_the_settings(monkeypatch, tmp_path):
    import laser_rag_app
    from laser_rag.cli import app

    seen = []
    monkeypatch.setattr(laser_rag_app, "launch", seen.append)
    result = CliRunner().invoke(app, ["demo", "--port", "8000", "--data-dir", str(tmp_path), "--max-new-tokens",
                                      "16", "--threads", "1"])
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert (settings.port, settings.data_dir, settings.threads, settings.host) == (8000, tmp_path, 1, "127.0.0.1")
    assert settings.generation == GenerationConfig(max_new_tokens=16)


def test_the_latentrag_checkpoint_comes_from_the_option_or_the_environment(monkeypatch, tmp_path):
    import laser_rag_app
    from laser_rag.cli import app
    from laser_rag.modes import preset

    seen = []
    monkeypatch.setattr(laser_rag_app, "launch", seen.append)
    result = CliRunner().invoke(app, ["demo", "--latentrag-checkpoint", str(tmp_path), "--basic-model", "minilm"])
    assert result.exit_code == 0, result.output
    models = seen[0].models
    assert models.agent(preset("latentrag")) == str(tmp_path) and models.agent(preset("basic")) is None
    assert models.encoder("rewrite") == models.encoder("basic") == "minilm" and models.encoder("laser") is None
    monkeypatch.setenv("LASER_RAG_LATENTRAG_CHECKPOINT", "/elsewhere")
    assert AppSettings().models.agent("latentrag") == "/elsewhere"
    monkeypatch.delenv("LASER_RAG_LATENTRAG_CHECKPOINT")
    assert AppSettings().models.agent("latentrag") == "builtin:latentrag"


def test_plugin_modules_are_light_to_import():
    code = ("import sys, laser_rag_app.cli, laser_rag_training.cli; "
            "print(sorted(m for m in ('torch', 'gradio', 'qdrant_client', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "laser_rag_app", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--data-dir" in help_text.stdout
