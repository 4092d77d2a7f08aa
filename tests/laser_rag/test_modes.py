"""The registry of retrieval modes: one place, read by the CLI (its light import: test_package.py)."""

from __future__ import annotations

import pytest

from laser_rag.modes import MODES, ModePreset, RetrievalMode, preset


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
