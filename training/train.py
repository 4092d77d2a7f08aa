"""Train a LaSER encoder: dual-view self-distillation on one shared backbone, LoRA through peft.

    laser-rag train --config training/configs/laser.yaml      # run from the repository root
    laser-rag train --config training/configs/laser.yaml      # the same command again resumes (or returns)
    laser-rag train --config training/configs/tiny.yaml --set max_steps=3 --set output_dir=runs/try
    laser-rag train --config training/configs/laser.yaml --nproc 2   # 2 processes, the same loss (docs/training-distributed.md)

The model and its loss are in `laser_rag_training.model`, the data in `laser_rag_training.data`, the run directory's
files in `laser_rag_training.checkpoint`, the processes in `laser_rag_training.distributed` (``batch_size`` is the
global batch: N ranks train the objective one process trains). The result is ``runs/<name>/final`` (``laser_config.json`` + the peft
adapter): `LaSEREncoder.from_pretrained("runs/<name>/final")` loads it. Training never writes into the installed
package; ``python scripts/ship_checkpoint.py`` is the maintainer's explicit step that ships a finished run.
"""

from __future__ import annotations

import json
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.distributed.elastic.multiprocessing.errors import record
from tqdm.auto import tqdm

from laser_rag import runtime
from laser_rag.util import atomic_write
from laser_rag.encoders import LaSEREncoder
from laser_rag.errors import TrainingError
from laser_rag_training import distributed
from laser_rag_training.checkpoint import append_jsonl, resume, run_lock, save_checkpoint, seed_run, truncate_log
from laser_rag_training.config import TrainConfig, save_config
from laser_rag_training.data import build_training_set, make_batch, plan_batches
from laser_rag_training.distributed import World
from laser_rag_training.losses import LossWeights
from laser_rag_training.model import LaSERModel


def train(config: TrainConfig, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in ``config.output_dir``; returns the final checkpoint directory.

    ``stop_after`` stops (with a checkpoint) after that many steps of the schedule, as an interruption would: the
    same call without it resumes there. A finished run returns at once. Under torchrun every rank calls this; rank 0
    alone writes the run directory.
    """
    run = Path(config.output_dir)
    with distributed.session() as world:
        if config.batch_size < world.size:
            raise TrainingError(f"batch_size {config.batch_size} is smaller than the {world.size} processes: "
                                "give each at least one query")
        if world.is_main:
            run.mkdir(parents=True, exist_ok=True)
        if distributed.broadcast(world.is_main and (run / "summary.json").is_file(), world):
            if world.is_main:
                config.check_resumes(json.loads((run / "train_config.json").read_text()))
            return run / "final"
        with run_lock(run) if world.is_main else nullcontext():
            return _train(config, run, stop_after, world)


def _setup(config: TrainConfig, world: World):
    """The run's data, batch plan, model (LoRA on this rank's device), optimizer and schedule."""
    from transformers import get_linear_schedule_with_warmup

    seed_run(config.seed, config.threads or distributed.cpu_threads(world))
    sources = [name for name, weight in config.datasets.items() if weight > 0]
    data = build_training_set(sources, config.negatives_depth).limit(config.max_examples_per_source)
    plan = plan_batches(data.examples, config.datasets, config.batch_size, seed=config.seed,
                        max_steps=config.max_steps, epochs=config.epochs)
    encoder = LaSEREncoder.from_pretrained(config.backbone, device=world.device, dtype=torch.float32)
    model = LaSERModel(encoder, config, data.documents, world)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * len(plan)), len(plan))
    return data, plan, model, optimizer, scheduler


def _forward_backward(model: torch.nn.Module, batch, weights: LossWeights, autocast, world: World) -> dict:
    """One step's losses (over the global batch) with their gradients accumulated into the LoRA weights: the
    single-process gradient on every rank once DDP has averaged them."""
    with autocast:
        losses = model(batch, weights)
    (losses["loss"] * world.backward_scale).backward()
    return losses


def _train(config: TrainConfig, run: Path, stop_after: int | None, world: World) -> Path:
    data, plan, model, optimizer, scheduler = _setup(config, world)
    autocast, progress_precision = mixed_precision(config.autocast, model.encoder.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    progress = {"step": 0, "elapsed": 0.0, "cpu_elapsed": 0.0, "load_average_at_start": _load_average()}
    progress.update(resume(run, model, optimizer, scheduler, config, world))
    ddp = distributed.wrap(model, world)  # after resume: every rank starts from rank 0's adapter
    progress["precision"] = progress_precision  # this machine's, also when the run started elsewhere
    progress["processes"] = world.size
    if world.is_main:
        save_config(config, run / "train_config.json")
        for log in (run / "log.jsonl", run / "eval.jsonl"):
            truncate_log(log, progress["step"])

    step, end = progress["step"], len(plan) if stop_after is None else min(len(plan), stop_after)
    model.train()
    bar = tqdm(total=len(plan), initial=step, desc=f"train {config.objective.value}", unit="step", dynamic_ncols=True,
               disable=not world.is_main)
    while step < end:
        started, cpu_started = time.perf_counter(), time.process_time()
        batch = make_batch([data.examples[i] for i in plan[step]], config.hard_negatives,
                           random.Random(f"{config.seed}:{step}"))
        optimizer.zero_grad(set_to_none=True)
        losses = _forward_backward(ddp, batch, config.loss_weights(step / len(plan)), autocast, world)
        step += 1
        record = {"step": step, **apply_step(optimizer, scheduler, trainable, config.max_grad_norm, losses, progress,
                                             started, cpu_started),
                  "lr": scheduler.get_last_lr()[0], "source": batch.examples[0].source, "docs": len(batch.doc_ids)}
        if world.is_main:
            append_jsonl(run / "log.jsonl", record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", s_per_step=f"{progress['elapsed'] / step:.1f}")
            if config.eval_every and step % config.eval_every == 0 and step < len(plan):
                append_jsonl(run / "eval.jsonl", {"step": step, **_evaluate(model, config)})
            if (config.save_every and step % config.save_every == 0) or step == end:
                save_checkpoint(run, model, optimizer, scheduler, config, progress)
    bar.close()
    distributed.barrier(world)  # the others wait for rank 0's checkpoint (and its final save, below)
    if step < len(plan):
        return run / "checkpoint"
    final = _finish(run, model, config, progress, data, plan, trainable) if world.is_main else run / "final"
    distributed.barrier(world)
    return final


def _finish(run: Path, model: LaSERModel, config: TrainConfig, progress: dict, data, plan, trainable) -> Path:
    """Save ``final/`` and write ``summary.json`` (the run is then finished)."""
    model.eval()
    final = model.save(run / "final")
    step, elapsed, cpu_elapsed = progress["step"], progress["elapsed"], progress["cpu_elapsed"]
    summary = {
        "objective": config.objective.value, "steps": step, "examples": len(data.examples),
        "examples_seen": sum(len(batch) for batch in plan),
        "train_seconds": round(elapsed, 1), "seconds_per_step": round(elapsed / max(step, 1), 2),
        "cpu_seconds": round(cpu_elapsed, 1), "cpu_seconds_per_step": round(cpu_elapsed / max(step, 1), 2),
        "load_average_at_start": progress["load_average_at_start"], "load_average_at_end": _load_average(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "precision": progress["precision"],
        "processes": progress["processes"],
        "reload_max_abs_diff": model.reload_difference(final, [e.query for e in data.examples[:4]]),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "adapter_bytes": (final / "adapter_model.safetensors").stat().st_size,
    }
    if config.eval_every:
        summary["validation"] = _evaluate(model, config)
    atomic_write(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    return final


def _evaluate(model: LaSERModel, config: TrainConfig) -> dict[str, dict[str, float]]:
    from laser_rag_training.report import evaluate

    was_training = model.training
    model.eval()
    with torch.no_grad():
        metrics = evaluate(model.encoder, config.eval_sets)
    model.train(was_training)
    return metrics


def apply_step(optimizer, scheduler, trainable, max_grad_norm: float, losses: dict, progress: dict, started: float,
               cpu_started: float) -> dict:
    """Clip the gradient, step the optimizer and the schedule, count the step's time into ``progress``; the log
    fields of the step (its losses, gradient norm, wall and CPU seconds)."""
    grad_norm = torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm or float("inf"))
    optimizer.step()
    scheduler.step()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    progress.update(step=progress.get("step", 0) + 1, elapsed=progress["elapsed"] + seconds,
                    cpu_elapsed=progress["cpu_elapsed"] + cpu_seconds)
    return {**{k: round(v.item(), 6) for k, v in losses.items()}, "grad_norm": round(float(grad_norm), 4),
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3)}


def mixed_precision(mode: str, device: torch.device) -> tuple[torch.autocast, str]:
    """The autocast context the forward passes run under, and a line saying which precision and why.

    "auto" turns bf16 on only where it is fast: CUDA with bf16, or a CPU with AMX / AVX512-BF16 units.
    """
    if mode == "off":
        enabled, why = False, "autocast off"
    elif mode == "bf16":
        enabled, why = True, "autocast bf16 (forced)"
    elif device.type == "cuda":
        enabled = torch.cuda.is_bf16_supported()
        why = "auto: CUDA with bf16" if enabled else "auto: this GPU has no bf16"
    else:
        units = runtime.cpu_bf16_units() if device.type == "cpu" else None
        enabled = units is not None
        why = f"auto: CPU with {units}" if enabled else "auto: no bf16 units on this device"
    precision = f"{'bfloat16 autocast' if enabled else 'float32'} ({why})"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled), precision


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@record
def _launched(fields: dict) -> str:
    """One rank of `launch_train` (module level: the workers are spawned)."""
    return str(train(TrainConfig(**fields)))


def launch_train(config: TrainConfig, nproc: int) -> Path:
    """`train` on ``nproc`` local processes (torchrun's elastic agent; gloo on CPU, one GPU each with nccl); the
    final checkpoint directory (or the checkpoint, when stopped early)."""
    if nproc == 1:
        return train(config)
    return Path(distributed.launch(_launched, nproc, config.to_dict())[0])


def main(config_path: str | Path | None = None, **overrides) -> Path:
    """Train from a JSON/YAML config file (``None``: the defaults) with field overrides; the final checkpoint dir."""
    return train(TrainConfig.load(config_path, **overrides))
