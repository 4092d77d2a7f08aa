"""Train a LaSER encoder: dual-view self-distillation on one shared backbone, LoRA through peft.

    laser-rag train --config training/configs/laser.yaml      # run from the repository root
    laser-rag train --config training/configs/laser.yaml      # the same command again resumes (or returns)
    laser-rag train --config training/configs/tiny.yaml --set max_steps=3 --set output_dir=runs/try

Each step runs, on the same LoRA-wrapped model:
  latent view    queries and documents: K latent thinking steps with gradients (`laser_rag.latent.latent_rollout`)
  explicit view  query + rationale in one pass: the last state is v*_q, the states at the segment ends the K
                 steps map to are the trajectory targets (`training.segments`)
and the loss `training.losses.laser_loss` (eq. 13). A checkpoint directory is ``laser_config.json`` + the peft
adapter; `LaSEREncoder.from_pretrained(directory)` reloads it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from laser_rag import LaSEREncoder
from laser_rag._models import DEFAULT_BASE
from laser_rag.config import LaSERConfig
from laser_rag.encoder import BUILTIN_CHECKPOINTS
from laser_rag.latent import hidden_states, latent_rollout, pool_trajectory
from training.data import TrainExample, TrainingSet, build_training_set
from training.losses import LossWeights, laser_loss
from training.segments import explicit_inputs, gather_segment_states


class Mode(str, Enum):
    """What is trained. All modes see the same data, steps and seed."""

    LASER = "laser"  #: all four losses (eq. 13)
    BASIC = "basic"  #: the fair baseline: query-only contrastive learning, K=1 (a standard LLM retriever)
    LATENT_ONLY = "latent-only"  #: latent view with K steps, contrastive only (GIRCSE-like; "w/o explicit view")
    NO_OUTPUT_KD = "no-output-kd"  #: LaSER without the output-level score distillation (lambda_2 = 0)
    NO_TRAJECTORY = "no-trajectory"  #: LaSER without the trajectory alignment (lambda_3 = 0)

    @property
    def uses_explicit_view(self) -> bool:
        return self not in (Mode.BASIC, Mode.LATENT_ONLY)

    @property
    def unused_fields(self) -> frozenset[str]:
        """`TrainConfig` fields this mode never reads (a resumed run may differ in them)."""
        unused = set()
        if not self.uses_explicit_view:
            unused |= {"explicit_cl_weight", "output_kd_weight", "trajectory_kd_weight", "kd_temperature",
                       "kd_warmup_ratio", "max_explicit_length", "segment_separator"}
        if self is Mode.BASIC:  # K=1: no latent token is ever fed back
            unused |= {"num_thinking_steps", "pooling", "soft_token_gradient"}
        if self is Mode.NO_OUTPUT_KD:
            unused.add("output_kd_weight")
        if self is Mode.NO_TRAJECTORY:
            unused.add("trajectory_kd_weight")
        return frozenset(unused)


@dataclass
class TrainConfig:
    """Every setting of a training run (defaults: the paper's section 4.3, scaled to 2 CPU cores)."""

    #: Backbone: anything `LaSEREncoder.from_pretrained` loads (hub id, directory, .gguf, pkg:<package>/<file>).
    backbone: str = DEFAULT_BASE
    #: What is trained: laser, basic, latent-only, no-output-kd, no-trajectory (see `Mode`).
    mode: Mode = Mode.LASER
    #: K, latent thinking steps for queries and documents (the basic mode always uses 1).
    num_thinking_steps: int = 3
    #: How the K states become one vector: "mean" (the paper) or "last".
    pooling: str = "mean"
    #: LoRA rank (the paper: 64; 8 on all projections keeps the fp32 adapter of SmolLM2-135M under 10 MB).
    lora_r: int = 8
    #: LoRA alpha (scale = alpha / r).
    lora_alpha: int = 16
    #: LoRA dropout (0: none; masks on every projection cost ~15% of a CPU step, and one epoch needs no regulariser).
    lora_dropout: float = 0.0
    #: LoRA target modules: "all-linear" (every linear layer but the LM head, any architecture) or a list of names.
    lora_targets: str | list[str] = "all-linear"
    #: AdamW learning rate (the paper: 1e-4 for ~10k steps; 6e-4 here, where a run is 80-160 steps: in 80-step runs
    #: on the validation sets it beat 2e-4 for both basic, 0.610 vs 0.539 mean nDCG@10, and LaSER, 0.608 vs 0.293).
    learning_rate: float = 6e-4
    #: AdamW weight decay.
    weight_decay: float = 0.0
    #: Fraction of the steps spent warming the learning rate up linearly (then linear decay to 0).
    warmup_ratio: float = 0.1
    #: Gradient clipping (global norm); 0 disables it.
    max_grad_norm: float = 1.0
    #: Queries per step; every query's positive and hard negatives are negatives for the others (in-batch).
    batch_size: int = 8
    #: Hard negatives per query (the paper: 1), drawn from its top-`negatives_depth` BM25 hits.
    hard_negatives: int = 1
    #: How many BM25 hits (positives removed) hard negatives are drawn from.
    negatives_depth: int = 30
    #: Maximum tokens of a templated query.
    max_query_length: int = 64
    #: Maximum tokens of the explicit view (templated query + rationale); segments cut off are dropped.
    max_explicit_length: int = 256
    #: Maximum tokens of a document.
    max_doc_length: int = 192
    #: tau, temperature of both InfoNCE terms.
    temperature: float = 0.02
    #: tau_kd, temperature of both distillation terms.
    kd_temperature: float = 0.02
    #: Weight of the latent view's InfoNCE.
    latent_cl_weight: float = 1.0
    #: lambda_1, weight of the explicit view's InfoNCE.
    explicit_cl_weight: float = 1.0
    #: lambda_2, weight of the output-level score distillation.
    output_kd_weight: float = 10.0
    #: lambda_3, weight of the trajectory alignment.
    trajectory_kd_weight: float = 0.1
    #: Ramp lambda_2 and lambda_3 up linearly from 0 over this fraction of the steps, so the explicit view learns
    #: to rank before it is imitated (0: the paper's constant weights, which in an 80-step run let the untrained
    #: teacher's scores dominate the first steps: 0.074 mean nDCG@10 against 0.183 with this ramp).
    kd_warmup_ratio: float = 0.5
    #: Backpropagate through the soft tokens' vocabulary softmax (the paper's end-to-end rollout). False stops the
    #: gradient there (the tokens are still the current model's, and the gradient still flows through every
    #: step's states and the KV cache): on SmolLM2-135M that path's gradient is ~5x the rest of the model's and,
    #: under clipping, drowns the contrastive signal (0.183 -> 0.293 mean nDCG@10 at lr 2e-4).
    soft_token_gradient: bool = False
    #: Separator between rationale segments in the explicit view.
    segment_separator: str = "\n"
    #: Training sources and their mix: each source's train examples are used this many times per epoch.
    datasets: dict[str, float] = field(default_factory=lambda: {"strategyqa": 1.0, "hotpotqa_evidence": 1.0})
    #: Use at most this many examples per source (0: all); for quick runs and tests.
    max_examples_per_source: int = 0
    #: Passes over the mixed data; used when max_steps is 0.
    epochs: float = 1.0
    #: Optimizer steps; overrides epochs when > 0. 160 x 8 queries (1,278 of the 1,790 training queries) is a
    #: LaSER run of ~45 CPU-minutes on SmolLM2-135M, inside the 60-minute budget; over 80 steps it lifted every
    #: mode on the validation sets (mean nDCG@10: basic 0.610 -> 0.663, LaSER 0.608 -> 0.643).
    max_steps: int = 160
    #: Validation sets (`laser_rag.datasets.shared_dataset` names) evaluated every eval_every steps.
    eval_sets: list[str] = field(default_factory=lambda: ["hotpotqa_evidence"])
    #: Evaluate every this many steps (0: never during training).
    eval_every: int = 0
    #: Save a resumable checkpoint every this many steps (and at the end).
    save_every: int = 25
    #: Seed for data order, sampling, LoRA init and dropout.
    seed: int = 0
    #: torch threads (0: torch's default). 1 by default: on oversubscribed shared cores, 2-thread OpenMP regions
    #: stall at their barriers and a step took 3-5x longer than with one thread.
    threads: int = 1
    #: Run directory: log.jsonl, checkpoint/ (resumable), final/ (the encoder), summary.json.
    output_dir: str = "runs/laser"
    #: Also copy the final checkpoint here ("builtin:laser" / "builtin:basic": the package's shipped checkpoints).
    export_dir: str = ""

    def __post_init__(self) -> None:
        self.mode = Mode(self.mode)
        for f in dataclasses.fields(self):  # YAML reads 6e-4 (no dot) as a string
            value = getattr(self, f.name)
            if f.type in ("float", "int") and isinstance(value, str):
                try:
                    setattr(self, f.name, float(value) if f.type == "float" else int(value))
                except ValueError:
                    raise ValueError(f"{f.name}: expected a number, got {value!r}") from None
        if self.num_thinking_steps < 1:
            raise ValueError(f"num_thinking_steps must be >= 1, got {self.num_thinking_steps}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2 (in-batch negatives)")
        if not any(weight > 0 for weight in self.datasets.values()):
            raise ValueError("datasets: give at least one source a weight > 0")

    @property
    def steps_per_query(self) -> int:
        """K actually used: 1 in the basic mode."""
        return 1 if self.mode is Mode.BASIC else self.num_thinking_steps

    def loss_weights(self, progress: float = 1.0) -> LossWeights:
        """The loss weights of this mode at ``progress`` (0..1) through the run (the KD warm-up)."""
        ramp = min(1.0, progress / self.kd_warmup_ratio) if self.kd_warmup_ratio > 0 else 1.0
        return LossWeights(
            latent_cl=self.latent_cl_weight,
            explicit_cl=self.explicit_cl_weight,
            output_kd=0.0 if self.mode is Mode.NO_OUTPUT_KD else ramp * self.output_kd_weight,
            trajectory_kd=0.0 if self.mode is Mode.NO_TRAJECTORY else ramp * self.trajectory_kd_weight,
            temperature=self.temperature,
            kd_temperature=self.kd_temperature,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mode"] = self.mode.value
        return data

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides) -> TrainConfig:
        """A config from a JSON or YAML file (or the defaults when ``path`` is None), with ``overrides`` on top."""
        data: dict[str, Any] = {}
        if path is not None:
            text = Path(path).read_text(encoding="utf-8")
            if str(path).endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        data.update(overrides)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config fields: {unknown}")
        return cls(**data)


# ---------------------------------------------------------------------------------------------------------------- data


def plan_batches(examples: list[TrainExample], config: TrainConfig) -> list[list[int]]:
    """The whole run's batches (example indices), fixed by the seed: a resumed run replays the same order.

    Every batch holds one source (harder in-batch negatives); each epoch uses each source's examples
    ``datasets[source]`` times (fractions: a random part), shuffled, and interleaves the sources' batches.
    """
    rng = random.Random(f"{config.seed}:plan")
    by_source: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_source.setdefault(example.source, []).append(index)

    def epoch() -> list[list[int]]:
        batches = []
        for source, indices in sorted(by_source.items()):
            weight = config.datasets.get(source, 0.0)
            chosen = indices * int(weight) + rng.sample(indices, round((weight % 1) * len(indices)))
            rng.shuffle(chosen)
            batches += [chosen[i:i + config.batch_size] for i in range(0, len(chosen), config.batch_size)]
        batches = [b for b in batches if len(b) >= 2]
        rng.shuffle(batches)
        return batches

    plan = epoch()
    total = config.max_steps or math.ceil(config.epochs * len(plan))
    while len(plan) < total:
        plan += epoch()
    return plan[:total]


@dataclass
class Batch:
    examples: list[TrainExample]
    doc_ids: list[str]
    positive_index: torch.Tensor  # [B]
    exclude: torch.Tensor  # [B, N]: other documents relevant to query i


def make_batch(examples: list[TrainExample], config: TrainConfig, rng: random.Random) -> Batch:
    """Draw each query's positive (among its targets) and hard negatives; the batch's documents, deduplicated."""
    doc_ids: list[str] = []
    position: dict[str, int] = {}

    def add(doc_id: str) -> int:
        if doc_id not in position:
            position[doc_id] = len(doc_ids)
            doc_ids.append(doc_id)
        return position[doc_id]

    positive_index = [add(rng.choice(e.targets)) for e in examples]
    for e in examples:
        for doc_id in rng.sample(e.negatives, min(config.hard_negatives, len(e.negatives))):
            add(doc_id)
    relevant = [set(e.positives) for e in examples]
    exclude = torch.tensor([[d in positives for d in doc_ids] for positives in relevant], dtype=torch.bool)
    return Batch(examples, doc_ids, torch.tensor(positive_index), exclude)


# --------------------------------------------------------------------------------------------------------------- model


def _peft_model(model: torch.nn.Module, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.lora_targets, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def laser_config_for(config: TrainConfig, base: LaSERConfig) -> LaSERConfig:
    """The inference config a checkpoint of this run is saved with."""
    return dataclasses.replace(base, num_thinking_steps=config.steps_per_query, pooling=config.pooling)


class DualViewModel:
    """The shared backbone (LoRA-wrapped) and the two views' forward passes for one batch."""

    def __init__(self, encoder: LaSEREncoder, config: TrainConfig, documents: dict[str, str]) -> None:
        self.config = config
        self.documents = documents
        self.peft_model = _peft_model(encoder.model, config)
        self.net = self.peft_model.get_base_model()  # the causal LM with LoRA layers injected
        self.laser_config = laser_config_for(config, encoder.config)
        self.encoder = LaSEREncoder(self.net, encoder.tokenizer, self.laser_config, base_id=encoder._base_id)
        self._queries = self.encoder.with_config(max_length=config.max_query_length)
        self._docs = self.encoder.with_config(max_length=config.max_doc_length)

    def losses(self, batch: Batch, weights: LossWeights) -> dict[str, torch.Tensor]:
        c, k = self.config, self.config.steps_per_query
        q_ids, q_mask = self._queries.pad(self._queries.tokenize(
            [self.laser_config.format_query(e.query) for e in batch.examples])[0])
        d_ids, d_mask = self._docs.pad(self._docs.tokenize(
            [self.laser_config.format_document(self.documents[d]) for d in batch.doc_ids])[0])
        detach = not c.soft_token_gradient
        latent_steps = latent_rollout(self.net, q_ids, q_mask, k, detach)
        latent_q = pool_trajectory(latent_steps, c.pooling)
        docs = pool_trajectory(latent_rollout(self.net, d_ids, d_mask, k, detach), c.pooling)
        explicit = {}
        if c.mode.uses_explicit_view:
            inputs = [explicit_inputs(self.encoder.tokenizer, self.laser_config, e.query, e.segments,
                                      c.max_explicit_length, c.segment_separator) for e in batch.examples]
            e_ids, e_mask = self.encoder.pad([x.ids for x in inputs])
            hidden = hidden_states(self.net, e_ids, e_mask)
            teacher_steps, valid = gather_segment_states(
                hidden, [len(x.ids) for x in inputs], [x.segment_ends for x in inputs], k)
            explicit = dict(explicit_q=F.normalize(hidden[:, -1], dim=-1), latent_steps=latent_steps,
                            teacher_steps=teacher_steps, valid=valid)
        return laser_loss(latent_q, docs, batch.positive_index, weights, exclude=batch.exclude, **explicit)

    def save(self, directory: Path) -> Path:
        """``laser_config.json`` + the peft adapter (no model card), reloadable by `LaSEREncoder.from_pretrained`."""
        directory.mkdir(parents=True, exist_ok=True)
        self.peft_model.peft_config["default"].base_model_name_or_path = self.laser_config.base_model
        self.peft_model.save_pretrained(str(directory), save_embedding_layers=False)
        (directory / "README.md").unlink(missing_ok=True)
        self.laser_config.save(directory)
        return directory

    def load_adapter(self, directory: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.peft_model, load_file(str(directory / "adapter_model.safetensors")))


# ------------------------------------------------------------------------------------------------ checkpoints and logs


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _save_checkpoint(run: Path, model: DualViewModel, optimizer, scheduler, step: int,
                     elapsed: tuple[float, float], config: TrainConfig) -> None:
    """Write ``run/checkpoint`` atomically: adapter, laser_config.json, train_config.json and state.pt."""
    staging = run / "checkpoint.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    (staging / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    torch.save({"step": step, "elapsed": elapsed[0], "cpu_elapsed": elapsed[1], "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": _rng_state()}, staging / "state.pt")
    target = run / "checkpoint"
    if target.exists():
        old = run / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old)
    else:
        os.replace(staging, target)


def _check_same_run(saved: dict[str, Any], config: TrainConfig) -> None:
    ignore = {"eval_every", "save_every", "threads", "export_dir", "output_dir"} | config.mode.unused_fields
    current, defaults = config.to_dict(), TrainConfig().to_dict()  # fields added since a run keep their default
    changed = sorted(k for k in current if k not in ignore and saved.get(k, defaults[k]) != current[k])
    if changed:
        raise ValueError(f"{config.output_dir} holds a run with other settings ({', '.join(changed)}): "
                         "resume with the same config, or pick another output_dir")


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines of steps after ``step`` (they were not checkpointed and will be run again)."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        path.write_text("".join(line + "\n" for line in lines))


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def evaluate(
    encoder: LaSEREncoder, names: list[str], split: str = "validation", explicit: bool = False
) -> dict[str, dict[str, float]]:
    """nDCG@10 etc. of ``encoder`` on each named shared dataset's ``split``; ``explicit``: of its explicit view
    (the teacher: each query read with its rationale from `training.data.rationales`; no use at inference)."""
    from laser_rag.datasets import shared_dataset
    from laser_rag.evaluation import evaluate_encoder
    from training.data import rationales

    return {name: evaluate_encoder(encoder, shared_dataset(name, split), show_progress_bar=False,
                                   rationales=rationales(name, split) if explicit else None) for name in names}


def reload_difference(model: DualViewModel, directory: Path, texts: list[str]) -> float:
    """Largest absolute difference between the in-training model's query and document embeddings and those of
    the checkpoint in ``directory`` reloaded by `LaSEREncoder.from_pretrained` (adapter merged)."""
    reloaded = LaSEREncoder.from_pretrained(directory)
    live = model.encoder
    return max(
        float(np.abs(live.encode_queries(texts) - reloaded.encode_queries(texts)).max()),
        float(np.abs(live.encode_documents(texts) - reloaded.encode_documents(texts)).max()),
    )


# ------------------------------------------------------------------------------------------------------------- driver


def train(config: TrainConfig, stop_after: int | None = None) -> Path:
    """Train (or resume) the run in ``config.output_dir``; returns the final checkpoint directory.

    ``stop_after`` stops (with a checkpoint) after that many steps of the schedule, as an interruption would:
    the same call without it resumes there.
    """
    run = Path(config.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    final = run / "final"
    if (final / "laser_config.json").is_file() and (run / "summary.json").is_file():
        _check_same_run(json.loads((run / "train_config.json").read_text()), config)
        _export(final, config)
        return final
    with _run_lock(run):
        return _train(config, run, stop_after)


@contextmanager
def _run_lock(run: Path):
    """One process per run directory: a second one would interleave checkpoints and logs."""
    lock = run / "lock"
    if lock.is_file():
        pid = int(lock.read_text() or 0)
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError, ValueError):
            pass  # a stale lock: its process is gone
        else:
            raise RuntimeError(f"process {pid} is training in {run} already (remove {lock} if it is not)")
    lock.write_text(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _train(config: TrainConfig, run: Path, stop_after: int | None) -> Path:
    from transformers import get_linear_schedule_with_warmup

    final = run / "final"
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    sources = [name for name, weight in config.datasets.items() if weight > 0]
    data = _training_set(sources, config)
    plan = plan_batches(data.examples, config)
    encoder = LaSEREncoder.from_pretrained(config.backbone)
    model = DualViewModel(encoder, config, data.documents)
    trainable = [p for p in model.peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * len(plan)), len(plan))

    step, elapsed, cpu_elapsed = 0, 0.0, 0.0
    checkpoint = run / "checkpoint"
    if (checkpoint / "state.pt").is_file():
        _check_same_run(json.loads((checkpoint / "train_config.json").read_text()), config)
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        model.load_adapter(checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        step, elapsed, cpu_elapsed = state["step"], state["elapsed"], state["cpu_elapsed"]
    (run / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    log = run / "log.jsonl"
    _truncate_log(log, step)
    _truncate_log(run / "eval.jsonl", step)

    load_start = _load_average()
    end = len(plan) if stop_after is None else min(len(plan), stop_after)
    model.peft_model.train()
    bar = tqdm(total=len(plan), initial=step, desc=f"train {config.mode.value}", unit="step", dynamic_ncols=True)
    while step < end:
        started, cpu_started = time.perf_counter(), time.process_time()
        batch = make_batch([data.examples[i] for i in plan[step]], config, random.Random(f"{config.seed}:{step}"))
        losses = model.losses(batch, config.loss_weights(step / len(plan)))
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm or float("inf"))
        optimizer.step()
        scheduler.step()
        step += 1
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        elapsed += seconds
        cpu_elapsed += cpu_seconds
        record = {"step": step, **{k: round(v.item(), 6) for k, v in losses.items()},
                  "lr": scheduler.get_last_lr()[0], "grad_norm": round(float(grad_norm), 4),
                  "source": batch.examples[0].source, "docs": len(batch.doc_ids), "seconds": round(seconds, 3),
                  "cpu_seconds": round(cpu_seconds, 3)}
        _append_jsonl(log, record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", s_per_step=f"{elapsed / step:.1f}")
        if config.eval_every and step % config.eval_every == 0 and step < len(plan):
            model.peft_model.eval()
            with torch.no_grad():
                _append_jsonl(run / "eval.jsonl", {"step": step, **evaluate(model.encoder, config.eval_sets)})
            model.peft_model.train()
        if step % config.save_every == 0 or step == end:
            _save_checkpoint(run, model, optimizer, scheduler, step, (elapsed, cpu_elapsed), config)
    bar.close()
    if step < len(plan):
        return checkpoint

    model.peft_model.eval()
    model.save(final)
    probe = [e.query for e in data.examples[:4]]
    summary = {
        "mode": config.mode.value, "steps": step, "examples": len(data.examples),
        "examples_seen": sum(len(batch) for batch in plan),
        "train_seconds": round(elapsed, 1), "seconds_per_step": round(elapsed / max(step, 1), 2),
        "cpu_seconds": round(cpu_elapsed, 1), "cpu_seconds_per_step": round(cpu_elapsed / max(step, 1), 2),
        "load_average_at_start": load_start, "load_average_at_end": _load_average(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "reload_max_abs_diff": reload_difference(model, final, probe),
        "trainable_parameters": sum(p.numel() for p in trainable),
        "adapter_bytes": (final / "adapter_model.safetensors").stat().st_size,
    }
    if config.eval_every:
        with torch.no_grad():
            summary["validation"] = evaluate(model.encoder, config.eval_sets)
    (run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _export(final, config)
    return final


def _training_set(sources: list[str], config: TrainConfig) -> TrainingSet:
    data = build_training_set(sources, config.negatives_depth)
    if config.max_examples_per_source:
        kept, seen = [], {}
        for example in data.examples:
            seen[example.source] = seen.get(example.source, 0) + 1
            if seen[example.source] <= config.max_examples_per_source:
                kept.append(example)
        data = TrainingSet(kept, data.documents)
    return data


def _export(final: Path, config: TrainConfig) -> None:
    """Copy the final checkpoint to ``config.export_dir`` (if set)."""
    if not config.export_dir:
        return
    name = config.export_dir.removeprefix("builtin:")
    target = BUILTIN_CHECKPOINTS[name] if config.export_dir.startswith("builtin:") else Path(config.export_dir)
    target.mkdir(parents=True, exist_ok=True)
    for file in ("laser_config.json", "adapter_config.json", "adapter_model.safetensors"):
        shutil.copyfile(final / file, target / file)


def main(config_path: str | None = None, **overrides) -> Path:
    """Train from a JSON/YAML config file (``None``: the defaults) with field overrides; the final checkpoint dir."""
    return train(TrainConfig.load(config_path, **overrides))
