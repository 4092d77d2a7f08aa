"""laser_rag_training.distributed: 2 gloo processes on the real default model train the loss of one process on the
whole batch (loss and LoRA gradients to 1e-5, fp32), and a run stopped on 2 ranks resumes on 1 to the adapter of an
uninterrupted run; gradient checkpointing leaves the gradients as they are."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.distributed.elastic.multiprocessing.errors import record

from laser_rag_training import distributed
from laser_rag_training.config import TrainConfig
from laser_rag_training.data import make_batch
from laser_rag_training.distributed import World
from laser_rag_training.train import _forward_backward, _setup, launch_train, train

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
#: 4 queries per step: "2 ranks x 2 queries" against "1 process x 4 queries", in fp32. K=1 for laser too (all four
#: terms still run): a K=3 rollout of 2 rows and of 4 rows differ by ~5e-6 in fp32 in one process already (the
#: soft-token steps' CPU kernels depend on the batch shape), which tau = 0.02 turns into ~0.2% of the LoRA
#: gradients; at K=1 each row's input is the one a single process encodes, and its states are bit-identical.
TINY = dict(batch_size=4, threads=1, autocast="off", max_steps=2, num_thinking_steps=1)


def _fields(tmp_path: Path, name: str, **extra) -> dict:
    return TrainConfig.load(CONFIGS / "tiny.yaml", **TINY, output_dir=str(tmp_path / name), **extra).to_dict()


@record
def _first_step(runs: list[dict]) -> list[tuple[dict[str, float], dict[str, torch.Tensor]]]:
    """Each config's first-step losses and LoRA gradients on this process's rank (gradients as DDP leaves them)."""
    results = []
    with distributed.session() as world:
        for fields in runs:
            config = TrainConfig(**fields)
            data, plan, model, _, _ = _setup(config, world)
            batch = make_batch([data.examples[i] for i in plan[0]], config.hard_negatives,
                               random.Random(f"{config.seed}:0"))
            losses = _forward_backward(distributed.wrap(model, world), batch, config.loss_weights(0.5),
                                       torch.autocast("cpu", enabled=False), world)
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
            results.append(({k: v.item() for k, v in losses.items()}, grads))
    return results


def test_two_ranks_train_the_loss_and_gradients_of_one_process(shared_data, tmp_path):
    runs = [_fields(tmp_path, "laser"), _fields(tmp_path, "basic", objective="basic")]
    # One process also with gradient_checkpointing (recomputed passes): the same gradients.
    *single, checkpointed = _first_step([*runs, {**runs[0], "gradient_checkpointing": True}])
    ranks = distributed.launch(_first_step, 2, runs)
    for name, grad in single[0][1].items():
        torch.testing.assert_close(checkpointed[1][name], grad, atol=1e-6, rtol=1e-5)
    for rank in (0, 1):
        for (losses, grads), (one_losses, one_grads) in zip(ranks[rank], single):
            assert losses.keys() == one_losses.keys() and len(losses) > 1
            for key in losses:
                assert losses[key] == pytest.approx(one_losses[key], abs=1e-5, rel=1e-5), key
            assert grads.keys() == one_grads.keys()
            assert sum(g.abs().sum() for g in one_grads.values()) > 0
            for name in grads:
                torch.testing.assert_close(grads[name], one_grads[name], atol=1e-5, rtol=1e-5)


def test_a_run_stopped_on_two_ranks_resumes_on_one(shared_data, tmp_path):
    straight = train(TrainConfig(**_fields(tmp_path, "straight")))
    resumed = TrainConfig(**_fields(tmp_path, "resumed"))
    checkpoint = Path(distributed.launch(_stop_after_one, 2, resumed.to_dict())[0])
    assert torch.load(checkpoint / "state.pt", weights_only=False)["step"] == 1
    final = launch_train(resumed, 1)  # the 2-rank checkpoint goes on in one process
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    a, b = load_file(str(straight / "adapter_model.safetensors")), load_file(str(final / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:  # AdamW divides by |g|: a gradient element near 0 turns float noise into ~1e-5 of a weight
        torch.testing.assert_close(a[key], b[key], atol=5e-5, rtol=1e-4)
    assert json.loads((tmp_path / "resumed" / "summary.json").read_text())["processes"] == 1


@record
def _stop_after_one(fields: dict) -> str:
    return str(train(TrainConfig(**fields), stop_after=1))


def test_world_slices_cover_the_batch_in_rank_order():
    items = list(range(7))
    slices = [World(rank, 3).shard(items) for rank in range(3)]
    assert slices == [[0, 1, 2], [3, 4], [5, 6]] and World(0, 3).sizes(7) == [3, 2, 2]
    assert World().shard(items) == items and World().backward_scale == 1.0
