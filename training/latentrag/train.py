"""The LatentRAG training loop (and the explicit agent's), resumable like the LaSER trainer.

    laser-rag train-latentrag --config training/configs/latentrag.yaml          # again: resumes, or returns

The run directory holds ``data.pt`` (the prepared trajectories), ``log.jsonl`` (one line of losses per step),
``checkpoint/`` (resumable), ``final/`` (the checkpoint `laser_rag.latentrag.load_model` or
`ExplicitModel.from_pretrained` loads) and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from laser_rag import backbones
from laser_rag.util import atomic_write
from laser_rag.latentrag.explicit import ExplicitModel
from laser_rag.latentrag.model import LLM_ADAPTER, MODULES_FILE, RETRIEVER_ADAPTER, RETRIEVER_LORA_TARGETS
from laser_rag_training.checkpoint import (
    append_jsonl,
    resume,
    run_lock,
    save_checkpoint,
    seed_run,
    truncate_log,
    use_threads,
)
from laser_rag_training.latentrag.config import LatentRAGTrainConfig, save_config
from laser_rag_training.latentrag.data import Prepared, prepare
from laser_rag_training.latentrag.objective import explicit_examples, explicit_loss, latent_losses
from laser_rag_training.train import apply_step, mixed_precision


def _llm_lora(llm, config: LatentRAGTrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", bias="none", task_type="CAUSAL_LM")
    with backbones.quiet_peft():
        return get_peft_model(llm, lora)


def _load_peft(model, directory: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(directory / "adapter_model.safetensors")))


class LatentTrainer(nn.Module):
    """`LatentRAGModel` with LoRA on the LLM and on the retriever; projectors and special embeddings trained."""

    def __init__(self, config: LatentRAGTrainConfig, beta: float) -> None:
        from peft import LoraConfig, get_peft_model

        from laser_rag.latentrag.model import LatentRAGModel

        super().__init__()
        self.train_config = config
        self.model = LatentRAGModel.from_base(config.model_config(beta))
        self.model.llm = _llm_lora(self.model.llm, config)
        lora = LoraConfig(r=config.retriever_lora_r, lora_alpha=config.retriever_lora_alpha, lora_dropout=0.0,
                          target_modules=RETRIEVER_LORA_TARGETS, bias="none")
        with backbones.quiet_peft():
            self.model.retriever = get_peft_model(self.model.retriever, lora)
        for part in (self.model.proj_ret, self.model.proj_thought, self.model.proj_query):
            part.requires_grad_(True)
        self.model.special.requires_grad_(True)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def parameter_groups(self) -> list[dict]:
        config = self.train_config
        own = [p for n, p in self.model.named_parameters() if not n.startswith(("llm.", "retriever."))]
        llm = [p for p in self.model.llm.parameters() if p.requires_grad]
        retriever = [p for p in self.model.retriever.parameters() if p.requires_grad]
        return [{"params": llm, "lr": config.learning_rate}, {"params": own, "lr": config.projector_learning_rate},
                {"params": retriever, "lr": config.retriever_learning_rate}]

    def losses(self, batch: list[int], data: Prepared, micro_batch: int = 0) -> dict[str, torch.Tensor]:
        return latent_losses(self.model, batch, data, retrieval_weight=self.train_config.retrieval_weight,
                             decode_weight=self.train_config.decode_weight, micro_batch=micro_batch)

    def save(self, directory: Path, dtype: torch.dtype = torch.float32) -> Path:
        return self.model.save_pretrained(directory, dtype=dtype)

    def load_adapter(self, directory: Path) -> None:
        from safetensors.torch import load_file

        _load_peft(self.model.llm, directory / LLM_ADAPTER)
        _load_peft(self.model.retriever, directory / RETRIEVER_ADAPTER)
        self.model.load_state_dict(load_file(str(directory / MODULES_FILE)), strict=False)


class ExplicitTrainer(nn.Module):
    """The same LLM with LoRA, trained on the trajectories written as text."""

    def __init__(self, config: LatentRAGTrainConfig, beta: float) -> None:
        from laser_rag import backbones

        super().__init__()
        self.train_config = config
        self.config = config.model_config(beta)
        backbone = backbones.load_backbone(config.base_model or backbones.DEFAULT_BASE, device=torch.device("cpu"),
                                         dtype=torch.float32)
        self.llm = _llm_lora(backbone.model, config)
        #: The inference wrapper around the LoRA model (the objective reads the same pieces the agent runs).
        self.model = ExplicitModel(self.config, self.llm, backbone.tokenizer)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def parameter_groups(self) -> list[dict]:
        trained = [p for p in self.llm.parameters() if p.requires_grad]
        return [{"params": trained, "lr": self.train_config.learning_rate}]

    def losses(self, batch: list[int], data: Prepared, micro_batch: int = 0) -> dict[str, torch.Tensor]:
        tokenizer = self.model.tokenizer
        examples = [e for i in batch for e in explicit_examples(tokenizer, self.config, data.trajectories[i])]
        return explicit_loss(self.model, examples, micro_batch=3 * micro_batch)

    def save(self, directory: Path, dtype: torch.dtype = torch.float32) -> Path:
        from laser_rag.latentrag.model import cast_safetensors

        directory = Path(directory)
        self.llm.save_pretrained(directory / LLM_ADAPTER)
        cast_safetensors(directory / LLM_ADAPTER / "adapter_model.safetensors", dtype)
        self.config.save(directory)
        return directory

    def load_adapter(self, directory: Path) -> None:
        _load_peft(self.llm, directory / LLM_ADAPTER)


def plan(count: int, config: LatentRAGTrainConfig) -> list[list[int]]:
    """The run's batches of trajectory indices, fixed by the seed (a resumed run replays them)."""
    rng = random.Random(f"{config.seed}:latentrag")
    per_epoch = math.ceil(count / config.batch_size)
    total = config.max_steps or max(1, math.ceil(config.epochs * per_epoch))
    batches: list[list[int]] = []
    while len(batches) < total:
        order = list(range(count))
        rng.shuffle(order)
        batches += [order[i:i + config.batch_size] for i in range(0, count, config.batch_size)]
    return batches[:total]


def train(config: LatentRAGTrainConfig, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in ``config.output_dir``; returns ``final/`` (or ``checkpoint/`` when stopped)."""
    run = Path(config.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    if (run / "summary.json").is_file():
        summary = json.loads((run / "summary.json").read_text())
        if config.system == "latent" and config.retrieval_epochs > summary.get("retrieval_stage", {}).get("epochs", 0):
            with run_lock(run):  # the run's last part: the retrieval-path stage (added, or longer than before)
                return retrieval_stage(config, run)
        config.check_resumes(json.loads((run / "train_config.json").read_text()))
        return run / "final"
    with run_lock(run):
        final = _train(config, run, stop_after)
        if final.name == "final" and config.system == "latent" and config.retrieval_epochs:
            return retrieval_stage(config, run)
        return final


def _train(config: LatentRAGTrainConfig, run: Path, stop_after: int | None) -> Path:
    from transformers import get_linear_schedule_with_warmup

    seed_run(config.seed, config.threads)
    data = prepare(config, run)
    if not data.trajectories:
        from laser_rag.errors import TrainingError

        raise TrainingError("no trajectory found its gold evidence: nothing to train on")
    trainer = (LatentTrainer if config.system == "latent" else ExplicitTrainer)(config, data.beta)
    batches = plan(len(data.trajectories), config)
    autocast, precision = mixed_precision(config.autocast, trainer.device)
    groups = trainer.parameter_groups()
    trainable = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * len(batches)), len(batches))
    progress = {"step": 0, "elapsed": 0.0, "cpu_elapsed": 0.0, "load_average_at_start": _load_average()}
    progress.update(resume(run, trainer, optimizer, scheduler, config))
    save_config(config, run / "train_config.json")
    truncate_log(run / "log.jsonl", progress["step"])
    step, end = progress["step"], len(batches) if stop_after is None else min(len(batches), stop_after)
    trainer.train()
    bar = tqdm(total=len(batches), initial=step, desc=f"train {config.system}", unit="step", dynamic_ncols=True)
    while step < end:
        started, cpu_started = time.perf_counter(), time.process_time()
        optimizer.zero_grad(set_to_none=True)
        with autocast:  # forward and backward, micro-batch by micro-batch (exact accumulation)
            losses = trainer.losses(batches[step], data, micro_batch=config.micro_batch)
        step += 1
        record = {"step": step, **apply_step(optimizer, scheduler, trainable, config.max_grad_norm, losses, progress,
                                             started, cpu_started)}
        append_jsonl(run / "log.jsonl", record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", s_per_step=f"{progress['elapsed'] / step:.1f}")
        if step % config.save_every == 0 or step == end:
            save_checkpoint(run, trainer, optimizer, scheduler, config, progress)
    bar.close()
    if step < len(batches):
        return run / "checkpoint"
    trainer.eval()
    final = trainer.save(run / "final", dtype=torch.bfloat16)
    counts: dict[str, int] = {}
    for trajectory in data.trajectories:
        counts[trajectory.source] = counts.get(trajectory.source, 0) + 1
    summary = {
        "system": config.system, "steps": step, "trajectories": counts, "beta": data.beta,
        "train_seconds": round(progress["elapsed"], 1), "cpu_seconds": round(progress["cpu_elapsed"], 1),
        "seconds_per_step": round(progress["elapsed"] / max(step, 1), 2), "precision": precision,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_at_start": progress["load_average_at_start"], "load_average_at_end": _load_average(),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "checkpoint_bytes": sum(f.stat().st_size for f in final.rglob("*") if f.is_file()),
    }
    atomic_write(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    return final


def retrieval_stage(config: LatentRAGTrainConfig, run: Path) -> Path:
    """The retrieval-path stage after the joint steps (``retrieval_epochs``): the trained LLM is frozen and each
    subquery block's states are computed once; then ``proj_ret`` and the retriever's LoRA learn the retrieval KL
    alone, batch by batch as in the joint steps (the candidate set is each batch's pseudo-relevant documents).
    ``retrieval_validation`` of the trajectories is held out and the epoch with its lowest KL is kept. Rewrites
    ``final/`` and records the stage in ``summary.json``."""
    from laser_rag.latentrag import functional as LF
    from laser_rag_training.latentrag.data import candidates
    from laser_rag_training.latentrag.objective import forward_hidden, sequence_of

    use_threads(config.threads)
    started = time.perf_counter()
    data = prepare(config, run)
    trainer = LatentTrainer(config, data.beta)
    trainer.load_adapter(run / "final")
    model = trainer.model
    model.eval()
    states: list[torch.Tensor] = []  # [steps, n, H] per trajectory
    with torch.no_grad():
        for trajectory in tqdm(data.trajectories, desc="subquery states", unit="trajectory", dynamic_ncols=True):
            sequence = sequence_of(model, trajectory)
            ids = torch.tensor([sequence.ids], device=model.device)
            hidden = forward_hidden(model, ids, torch.ones_like(ids))[0]
            states.append(torch.stack([hidden[block] for block in sequence.query_positions]))
    order = list(range(len(data.trajectories)))
    random.Random(f"{config.seed}:retrieval-stage").shuffle(order)
    held = max(1, round(config.retrieval_validation * len(order)))
    validation, training = order[:held], order[held:]
    groups = [{"params": list(model.proj_ret.parameters()), "lr": config.projector_learning_rate},
              {"params": [p for p in model.retriever.parameters() if p.requires_grad],
               "lr": config.retriever_learning_rate}]
    parameters = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)

    def kl(batch: list[int]) -> torch.Tensor:
        latent = model.latent_query_vectors(torch.cat([states[i] for i in batch]))
        reference = torch.from_numpy(np.concatenate([data.reference[i] for i in batch]))
        docs = torch.from_numpy(data.doc_vectors[candidates([r for i in batch for r in data.pseudo[i]])])
        return LF.retrieval_kl(latent, reference, docs, data.beta)

    def validation_kl() -> float:
        with torch.no_grad():
            chunks = [validation[i:i + config.batch_size] for i in range(0, len(validation), config.batch_size)]
            return float(np.mean([kl(chunk).item() for chunk in chunks]))

    history = [{"epoch": 0, "validation_kl": validation_kl()}]
    best = (history[0]["validation_kl"], 0, {k: v.clone() for k, v in model.state_dict().items()
                                             if k.startswith(("proj_ret.", "retriever."))})
    rng = random.Random(f"{config.seed}:retrieval-epochs")
    for epoch in tqdm(range(1, config.retrieval_epochs + 1), desc="retrieval stage", unit="epoch",
                      dynamic_ncols=True):
        model.proj_ret.train()
        shuffled = training[:]
        rng.shuffle(shuffled)
        losses = []
        for start in range(0, len(shuffled), config.batch_size):
            loss = kl(shuffled[start:start + config.batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm or float("inf"))
            optimizer.step()
            losses.append(loss.item())
        model.proj_ret.eval()
        record = {"epoch": epoch, "train_kl": round(float(np.mean(losses)), 6),
                  "validation_kl": round(validation_kl(), 6)}
        history.append(record)
        append_jsonl(run / "retrieval_stage.jsonl", record)
        if record["validation_kl"] < best[0]:
            best = (record["validation_kl"], epoch, {k: v.clone() for k, v in model.state_dict().items()
                                                     if k.startswith(("proj_ret.", "retriever."))})
    model.load_state_dict(best[2], strict=False)
    final = trainer.save(run / "final", dtype=torch.bfloat16)
    summary = json.loads((run / "summary.json").read_text())
    summary["retrieval_stage"] = {
        "epochs": config.retrieval_epochs, "best_epoch": best[1], "validation_trajectories": len(validation),
        "validation_kl_before": history[0]["validation_kl"], "validation_kl_best": best[0],
        "seconds": round(time.perf_counter() - started, 1), "torch_threads": torch.get_num_threads(),
        "load_average_at_end": _load_average(),
    }
    summary["checkpoint_bytes"] = sum(f.stat().st_size for f in final.rglob("*") if f.is_file())
    atomic_write(run / "summary.json", json.dumps(summary, indent=2) + "\n")
    return final


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
