"""laser_rag_training.config: the shipped configs load, values are validated from the field types, YAML overrides,
and a resumed run must keep the settings its objective reads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from laser_rag.errors import TrainingError
from laser_rag_training.config import Objective, TrainConfig, load_config, parse_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


def test_configs_load(tmp_path):
    from laser_rag_training.latentrag.config import LatentRAGTrainConfig

    for path in CONFIGS.glob("*.yaml"):  # LatentRAG's configs (system: latent / explicit) load as their own kind
        kind = LatentRAGTrainConfig if "system" in yaml.safe_load(path.read_text()) else TrainConfig
        config = kind.load(path)
        assert config.output_dir.startswith("runs/")
    assert LatentRAGTrainConfig.load(CONFIGS / "explicit-agent.yaml").system == "explicit"
    assert TrainConfig.load(CONFIGS / "basic.yaml").steps_per_query == 1
    assert TrainConfig.load(CONFIGS / "laser.yaml").objective is Objective.LASER
    assert TrainConfig.load(CONFIGS / "no-trajectory.yaml").loss_weights().trajectory_kd == 0
    assert TrainConfig.load(CONFIGS / "no-output-kd.yaml").loss_weights().output_kd == 0
    authors = TrainConfig.load(CONFIGS / "laser-long-authors.yaml")
    assert (authors.segment_states, authors.teacher_eos, authors.loss_weights().trajectory_temperature) == (
        "separator", True, 0.05)
    assert TrainConfig().loss_weights().trajectory_temperature is None  # the paper: kd_temperature for both
    assert "ircot" in TrainConfig.load(CONFIGS / "laser-long.yaml").datasets
    with pytest.raises(ValueError, match="segment_states"):
        TrainConfig(segment_states="middle")
    ramped = TrainConfig(kd_warmup_ratio=0.5)
    assert ramped.loss_weights(0.0).output_kd == 0 and ramped.loss_weights(0.25).output_kd == 5.0
    assert ramped.loss_weights(0.75).output_kd == 10.0 and ramped.loss_weights(0.25).latent_cl == 1.0
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps({"objective": "latent-only", "lora_r": 4}))
    assert TrainConfig.load(None, learning_rate="6e-4").learning_rate == 6e-4  # YAML 1.1 reads 6e-4 as a string
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate="fast")
    config = TrainConfig.load(as_json, seed=3)
    assert (config.objective, config.lora_r, config.seed) == (Objective.LATENT_ONLY, 4, 3)
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.load(as_json, learning_rte=1.0)


@pytest.mark.parametrize(("name", "changed"), [
    ("basic-long", {"objective"}),  # basic reads K=1 from its objective
    ("latent-only-long", {"objective"}),
    ("no-output-kd-long", {"objective"}),
    ("no-trajectory-long", {"objective"}),
    ("laser-long-authors", {"trajectory_temperature", "segment_states", "teacher_eos"}),
    ("laser-long-r64", {"lora_r", "lora_alpha"}),
    ("no-output-kd-long-authors", {"objective", "trajectory_temperature", "segment_states", "teacher_eos"}),
    ("no-output-kd-long-r64", {"objective", "lora_r", "lora_alpha"}),
    ("no-output-kd-long-stgrad", {"objective", "soft_token_gradient"}),
    ("no-output-kd-long-256", {"objective", "max_doc_length"}),
    ("basic-long-256", {"objective", "max_doc_length"}),
    ("no-output-kd-long-256-160", {"objective", "max_doc_length", "max_steps"}),
])
def test_long_mix_rows_differ_from_the_default_only_where_they_say(name, changed):
    """Each row of the long table is a fair comparison with laser-long: same data, steps, seed, lengths."""
    reference = dataclasses.asdict(TrainConfig.load(CONFIGS / "laser-long.yaml"))
    variant = dataclasses.asdict(TrainConfig.load(CONFIGS / f"{name}.yaml"))
    differs = {key for key in reference if reference[key] != variant[key]} - {"output_dir"}
    assert differs == changed
    assert variant["output_dir"] == f"runs/{name}"


def test_no_config_ships_a_checkpoint():
    """Training never writes into the package: shipping is scripts/ship_checkpoint.py."""
    for path in CONFIGS.glob("*.yaml"):
        assert "export_dir" not in path.read_text()
    with pytest.raises(ValueError, match="export_dir"):
        TrainConfig.load(None, export_dir="builtin:laser")


def test_overrides_are_read_as_yaml_and_validated():
    assert parse_overrides(["max_steps=3", "lora_targets=[q_proj, v_proj]", "output_dir=runs/a=b"]) == {
        "max_steps": 3, "lora_targets": ["q_proj", "v_proj"], "output_dir": "runs/a=b"}
    config = load_config(CONFIGS / "tiny.yaml", ["max_steps=1", "learning_rate=6e-4", "objective=basic"])
    assert (config.max_steps, config.learning_rate, config.objective) == (1, 6e-4, Objective.BASIC)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["max_steps"])
    with pytest.raises(ValueError, match="batch_size"):
        load_config(None, ["batch_size=1"])  # in-batch negatives need two queries
    with pytest.raises(ValueError, match="num_thinking_steps"):
        TrainConfig(num_thinking_steps=0)
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="best")


def test_resuming_compares_only_the_settings_an_objective_reads():
    basic = TrainConfig(objective="basic")
    saved = basic.to_dict() | {"kd_warmup_ratio": 0.0, "soft_token_gradient": True, "num_thinking_steps": 5}
    basic.check_resumes(saved)  # basic never reads them
    with pytest.raises(TrainingError, match="kd_warmup_ratio"):
        TrainConfig(objective="laser", num_thinking_steps=5, soft_token_gradient=True).check_resumes(saved)
    with pytest.raises(TrainingError, match="learning_rate"):
        basic.check_resumes(basic.to_dict() | {"learning_rate": 1e-4})
    basic.check_resumes(basic.to_dict() | {"save_every": 1, "threads": 4, "output_dir": "elsewhere"})
    no_kd = TrainConfig(objective="no-output-kd")
    no_kd.check_resumes(no_kd.to_dict() | {"output_kd_weight": 3.0})
    with pytest.raises(TrainingError, match="trajectory_kd_weight"):
        no_kd.check_resumes(no_kd.to_dict() | {"trajectory_kd_weight": 3.0})
