"""LatentRAG training (laser_rag_training.latentrag) on tiny models built from configs, with the real tokenizers and
the real shared trajectories: gradients reach every trained part, a run resumes and reloads, the explicit agent
trains on the same data, and the command validates its config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from laser_rag.store import Hit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory):
    """A 2-layer Llama with SmolLM2's tokenizer as the LLM; the real all-MiniLM-L6-v2 as the retriever (a random
    one would find no gold evidence, and every trajectory would be filtered out)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from laser_rag import _models, backbones

    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(_models.locate(backbones.DEFAULT_BASE)[0])
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                       tie_word_embeddings=True))
    llm.save_pretrained(root / "llm")
    tokenizer.save_pretrained(root / "llm")
    return {"base_model": str(root / "llm"), "retriever": "all-minilm-l6-v2"}


@pytest.fixture(scope="module")
def prepared(shared_data, tiny_parts, tmp_path_factory):
    """The tiny runs' data, prepared once (the pools are encoded once); each run starts from a copy."""
    from laser_rag_training.latentrag.data import DATA_FILE, prepare

    root = tmp_path_factory.mktemp("prepared")
    data = prepare(_config(tiny_parts, root), root)
    return data, root / DATA_FILE


def _run_dir(prepared, path: Path) -> Path:
    import shutil

    path.mkdir(parents=True)
    shutil.copy(prepared[1], path / prepared[1].name)
    return path


def _config(tiny_parts, output_dir, **overrides):
    from laser_rag_training.latentrag.config import LatentRAGTrainConfig

    settings = {**tiny_parts, "sources": {"hotpotqa": 2, "strategyqa": 2}, "batch_size": 2, "max_steps": 3,
                "lora_r": 2, "lora_alpha": 4, "retriever_lora_r": 2, "retriever_lora_alpha": 4, "save_every": 1,
                "warmup_ratio": 0.0, "threads": 1, "document_chars": 120, "output_dir": str(output_dir),
                **overrides}
    return LatentRAGTrainConfig(**settings)


def test_gradients_reach_lora_every_projector_and_the_retriever(prepared, tiny_parts, tmp_path):
    from laser_rag_training.latentrag.train import LatentTrainer

    config = _config(tiny_parts, tmp_path)
    data = prepared[0]
    assert data.trajectories and 0 < data.beta < 10
    assert all(len(r) == len(t.steps) for r, t in zip(data.reference, data.trajectories, strict=True))
    trainer = LatentTrainer(config, data.beta)
    trainer.train()
    losses = trainer.losses([0, 1], data)
    assert {"gen", "ret", "dec", "loss"} <= losses.keys() and losses["ret"] >= 0
    losses["loss"].backward()
    grads = {name: p.grad for name, p in trainer.model.named_parameters() if p.requires_grad}

    def reached(prefix: str, part: str = "") -> bool:
        return any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix) and part in n)

    assert reached("llm.", "lora_")
    assert reached("retriever.", "lora_")
    for module in ("proj_ret.", "proj_thought.", "proj_query.", "special"):
        assert reached(module), module
    assert not any("lora_" not in n for n in grads if n.startswith(("llm.", "retriever.")))  # the rest is frozen


def test_tiny_run_resumes_reloads_and_answers(prepared, tiny_parts, tmp_path):
    from laser_rag.latentrag import LatentRAG, LatentRAGModel
    from laser_rag_training.latentrag.train import train

    config = _config(tiny_parts, _run_dir(prepared, tmp_path / "run"), retrieval_epochs=2)
    checkpoint = train(config, stop_after=2)
    assert checkpoint.name == "checkpoint"
    final = train(config)  # resumes at step 3
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["system"] == "latent"
    stage = summary["retrieval_stage"]  # the retrieval-path stage ran after the joint steps
    assert stage["epochs"] == 2 and stage["best_epoch"] in (0, 1, 2)
    assert stage["validation_kl_best"] <= stage["validation_kl_before"]
    assert len((tmp_path / "run" / "retrieval_stage.jsonl").read_text().splitlines()) == 2
    assert train(config) == final  # a finished run returns at once
    model = LatentRAGModel.from_pretrained(final, device="cpu", dtype="float32")
    assert model.config.retriever == tiny_parts["retriever"]
    hit = Hit(id="d", title="Paris", text="Paris is the capital of France.", score=0.0)
    answer = LatentRAG(model, search=lambda v, k: [hit] * k).ask("What is the capital of France?")
    assert answer.forward_passes >= 3 and answer.timings["total_ms"] > 0


def test_explicit_agent_trains_on_the_same_trajectories(prepared, tiny_parts, tmp_path):
    from laser_rag.latentrag.explicit import ExplicitAgent, ExplicitModel
    from laser_rag_training.latentrag.train import train

    final = train(_config(tiny_parts, _run_dir(prepared, tmp_path / "explicit"), system="explicit", max_steps=2))
    log = [json.loads(line) for line in (tmp_path / "explicit" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
    model = ExplicitModel.from_pretrained(final, device="cpu", dtype="float32")
    model.config.max_answer_tokens = 3

    class Collection:
        def search(self, vector, k):
            return [Hit(id="d", title="Paris", text="Paris is the capital of France.", score=0.0)] * k

    class Encoder:
        def encode_queries(self, texts):
            return [None for _ in texts]

    agent = ExplicitAgent(model, Collection(), Encoder())
    assert agent.direct("What is the capital of France?").steps == []
    assert len(agent.naive("What is the capital of France?").steps) == 1


def test_the_command_rejects_an_unknown_field(tmp_path):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["train-latentrag", "--set", "nonsense=1",
                                      "--set", f"output_dir={tmp_path}"])
    assert result.exit_code != 0 and "nonsense" in result.output


def test_micro_batches_accumulate_the_same_gradient(prepared, tiny_parts, tmp_path):
    from laser_rag_training.latentrag.train import LatentTrainer

    data = prepared[0]
    trainer = LatentTrainer(_config(tiny_parts, tmp_path), data.beta)
    trainer.eval()  # no dropout anywhere: both ways see the same network

    def gradients(micro_batch: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        trainer.zero_grad(set_to_none=True)
        losses = trainer.losses([0, 1, 2], data, micro_batch=micro_batch)
        if not micro_batch:
            losses["loss"].backward()
        grads = {n: p.grad.clone() for n, p in trainer.named_parameters() if p.grad is not None}
        return grads, {k: v.item() for k, v in losses.items()}

    whole, whole_losses = gradients(0)
    split, split_losses = gradients(1)
    assert whole.keys() == split.keys()
    for key in whole_losses:
        assert split_losses[key] == pytest.approx(whole_losses[key], rel=1e-4, abs=1e-6)
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], atol=1e-5, rtol=1e-3)
