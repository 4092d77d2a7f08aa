"""The registry of retrieval modes: one place, read by the CLI (its light import: test_package.py)."""

from __future__ import annotations

import pytest

from laser_rag.modes import (
    MODES,
    ModePreset,
    ModeSources,
    RetrievalMode,
    mode_name,
    parse_mode_name,
    preset,
    register_mode,
    source_fields,
)


def test_every_mode_has_one_preset():
    assert list(MODES) == list(RetrievalMode)
    for mode, chosen in MODES.items():
        assert isinstance(chosen, ModePreset) and chosen.mode is mode
        assert chosen.title and chosen.description and chosen.encoder
        assert MODES[chosen.collection_mode].collection_mode is chosen.collection_mode  # owns its collection


def test_presets():
    assert preset("laser").encoder == "builtin:laser" and not preset("laser").rewrites
    assert preset(RetrievalMode.BASIC).num_thinking_steps == 1
    rewrite = preset("rewrite")
    assert rewrite.rewrites and rewrite.collection_mode is RetrievalMode.BASIC
    assert rewrite.encoder == preset("basic").encoder
    assert RetrievalMode.LASER == "laser"
    with pytest.raises(ValueError, match="basic, laser, rewrite"):
        preset("fast")
    with pytest.raises(ValueError):
        RetrievalMode("fast")
    with pytest.raises(AttributeError):
        rewrite.rewrites = False  # frozen


def test_the_cli_offers_the_registered_modes():
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["search", "--help"])
    assert result.exit_code == 0
    for mode, chosen in MODES.items():
        assert mode.value in result.output
    assert "--basic-model" in result.output and "--laser-model" in result.output


def test_per_mode_choices_follow_the_collection_a_mode_searches(monkeypatch):
    monkeypatch.delenv("LASER_RAG_LATENTRAG_CHECKPOINT", raising=False)
    assert MODES["laser"] is MODES[RetrievalMode.LASER] and preset("LASER") is MODES["laser"]
    assert [name for name, _, _ in source_fields()] == ["basic_model", "laser_model", "latentrag_model",
                                                          "latentrag_checkpoint"]
    sources = ModeSources.from_options({"basic_model": "x", "laser_model": None, "latentrag_checkpoint": "/c"})
    assert sources.encoder("rewrite") == sources.encoder("basic") == "x" and sources.encoder("laser") is None
    assert sources.agent("latentrag") == "/c" and sources.agent("basic") is None
    assert ModeSources().agent("latentrag") == "builtin:latentrag"
    assert parse_mode_name("laser+hybrid") == ("laser", True) and parse_mode_name("laser") == ("laser", False)
    assert mode_name(RetrievalMode.LASER, hybrid=True) == "laser+hybrid" and mode_name("basic") == "basic"


def test_registering_a_mode_checks_it():
    with pytest.raises(ValueError, match="registered already"):
        register_mode(preset("laser"))
    with pytest.raises(ValueError, match="collection_mode"):  # rewrite searches basic's: not an owner
        register_mode(ModePreset("echo", "Echo", "echoes", encoder="all-minilm-l6-v2", collection_mode="rewrite"))
    assert list(MODES) == list(RetrievalMode)
