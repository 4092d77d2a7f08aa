"""Every setting of a training run: `TrainConfig`, read from YAML/JSON plus ``--set KEY=VALUE`` overrides.

Values are validated and coerced by pydantic from the field types (YAML 1.1 reads ``6e-4`` as a string: it becomes
the float the field asks for), so a typo in a number or a field name fails at start-up, not after an hour.

Example::

    config = load_config("training/configs/tiny.yaml", ["max_steps=3", "output_dir=runs/try"])
    config.objective, config.loss_weights(0.5).output_kd
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Self

import pydantic
import yaml
from pydantic.dataclasses import dataclass

from laser_rag.backbones import DEFAULT_BASE
from laser_rag.errors import TrainingError
from laser_rag_training.losses import LossWeights


class Objective(str, Enum):
    """What a run trains (not a retrieval mode: every objective yields one encoder). Same data, steps and seed."""

    LASER = "laser"  #: all four losses (eq. 13)
    BASIC = "basic"  #: the fair baseline: query-only contrastive learning, K=1 (a standard LLM retriever)
    LATENT_ONLY = "latent-only"  #: latent view with K steps, contrastive only (GIRCSE-like; "w/o explicit view")
    NO_OUTPUT_KD = "no-output-kd"  #: LaSER without the output-level score distillation (lambda_2 = 0)
    NO_TRAJECTORY = "no-trajectory"  #: LaSER without the trajectory alignment (lambda_3 = 0)

    @property
    def uses_explicit_view(self) -> bool:
        return self not in (Objective.BASIC, Objective.LATENT_ONLY)

    @property
    def unused_fields(self) -> frozenset[str]:
        """`TrainConfig` fields this objective never reads (a resumed run may differ in them)."""
        unused = set()
        if not self.uses_explicit_view:
            unused |= {"explicit_cl_weight", "output_kd_weight", "trajectory_kd_weight", "kd_temperature",
                       "kd_warmup_ratio", "max_explicit_length", "segment_separator", "trajectory_temperature",
                       "segment_states", "teacher_eos"}
        if self is Objective.BASIC:  # K=1: no latent token is ever fed back
            unused |= {"num_thinking_steps", "pooling", "soft_token_gradient"}
        if self is Objective.NO_OUTPUT_KD:
            unused.add("output_kd_weight")
        if self is Objective.NO_TRAJECTORY:
            unused.add("trajectory_kd_weight")
        return frozenset(unused)


#: Fields any run may change when it is resumed (they change neither the data order nor the weights).
RESUMABLE_FIELDS = frozenset({"save_every", "threads", "output_dir"})


@dataclass(config=pydantic.ConfigDict(extra="forbid"))
class RunConfig:
    """The run and optimiser settings every training run has (LaSER's `TrainConfig`, LatentRAG's
    `LatentRAGTrainConfig`), and how a run's config is loaded, written and checked on resume. A subclass adds its
    own fields, may give these other defaults, and names in `resumable_fields` what a resumed run may change."""

    #: LoRA rank, alpha (scale = alpha / r) and dropout (0: none) of the trained LLM.
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    #: AdamW learning rate and weight decay.
    learning_rate: float = 6e-4
    weight_decay: float = 0.0
    #: Fraction of the steps spent warming the learning rate up linearly (then linear decay to 0).
    warmup_ratio: float = 0.1
    #: Gradient clipping (global norm); 0 disables it.
    max_grad_norm: float = 1.0
    #: Passes over the data; used when max_steps is 0.
    epochs: float = 1.0
    #: Optimizer steps; overrides epochs when > 0.
    max_steps: int = 160
    #: Seed for data order, sampling, LoRA init and dropout.
    seed: int = 0
    #: torch threads; 0: the machine's physical cores (or ``$LASER_RAG_THREADS`` / ``OMP_NUM_THREADS``). Set 1 for
    #: runs that share the cores with other jobs: on oversubscribed cores, 2-thread OpenMP regions stall at their
    #: barriers (benchmarks/results/training_time.json).
    threads: int = 0
    #: Save a resumable checkpoint every this many steps (and at the end; 0: only at the end).
    save_every: int = 25
    #: Mixed precision of the forward passes (weights and optimizer stay fp32): "auto" = bf16 autocast on CUDA with
    #: bf16 and on CPUs with AMX or AVX512-BF16 (`laser_rag.runtime.cpu_bf16_units`), fp32 elsewhere, where bf16 is
    #: emulated and slower; "bf16" forces it; "off" never.
    autocast: Literal["auto", "bf16", "off"] = "auto"
    #: Run directory: the run's config, log, resumable checkpoint and result.
    output_dir: str = "runs/laser"

    _label = "training"  # names the config kind in error messages

    def to_dict(self) -> dict[str, Any]:
        return pydantic.TypeAdapter(type(self)).dump_python(self, mode="json")

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Self:
        """A config from a JSON or YAML file (or the defaults when ``path`` is None), with ``overrides`` on top."""
        return cls(**config_fields(cls, path, overrides, cls._label))

    def resumable_fields(self) -> frozenset[str]:
        """The fields a resumed run may change (this kind of run reads none of them for its data or weights)."""
        return RESUMABLE_FIELDS

    def check_resumes(self, saved: dict[str, Any]) -> None:
        """Refuse to continue the run saved with ``saved`` (its `to_dict`) under settings this run reads."""
        check_same_settings(self, saved, self.resumable_fields())


@dataclass(config=pydantic.ConfigDict(extra="forbid"))
class TrainConfig(RunConfig):
    """Every setting of a LaSER training run (defaults: the paper's section 4.3, scaled to 2 CPU cores; the run and
    optimiser settings are `RunConfig`'s)."""

    #: Backbone: anything `LaSEREncoder.from_pretrained` loads (hub id, directory, .gguf, pkg:<package>/<file>).
    backbone: str = DEFAULT_BASE
    #: What is trained: laser, basic, latent-only, no-output-kd, no-trajectory (see `Objective`).
    objective: Objective = Objective.LASER
    #: K, latent thinking steps for queries and documents (the basic objective always uses 1).
    num_thinking_steps: int = pydantic.Field(default=3, ge=1)
    #: How the K states become one vector: "mean" (the paper) or "last".
    pooling: str = "mean"
    #: LoRA target modules: "all-linear" (every linear layer but the LM head, any architecture) or a list of names.
    lora_targets: str | list[str] = "all-linear"
    #: Queries per step; every query's positive and hard negatives are negatives for the others (in-batch).
    batch_size: int = pydantic.Field(default=8, ge=2)
    #: Hard negatives per query (the paper: 1), drawn from its top-`negatives_depth` BM25 hits.
    hard_negatives: int = 1
    #: How many BM25 hits (positives removed) hard negatives are drawn from.
    negatives_depth: int = 30
    #: Maximum tokens of a templated query (saved as the checkpoint's ``query_max_length``).
    max_query_length: int = 64
    #: Maximum tokens of the explicit view (templated query + rationale); segments cut off are dropped.
    max_explicit_length: int = 256
    #: Maximum tokens of a document (saved as the checkpoint's ``max_length``).
    max_doc_length: int = 192
    #: tau, temperature of both InfoNCE terms.
    temperature: float = 0.02
    #: tau_kd, temperature of both distillation terms.
    kd_temperature: float = 0.02
    #: Temperature of the trajectory alignment alone (the authors' released code uses 0.05 there and 0.02 for the
    #: other terms); None = ``kd_temperature``, as the paper writes it.
    trajectory_temperature: float | None = None
    #: Where the explicit view's segment states are read: "end" (the token ending each segment) or "separator"
    #: (the separator token after it, the last segment's last token: the authors' code, at its newline tokens).
    segment_states: Literal["end", "separator"] = "end"
    #: Append EOS to the explicit view's input and take v*_q at it (the authors' code); False: the last token.
    teacher_eos: bool = False
    #: Weight of the latent view's InfoNCE.
    latent_cl_weight: float = 1.0
    #: lambda_1, weight of the explicit view's InfoNCE.
    explicit_cl_weight: float = 1.0
    #: lambda_2, weight of the output-level score distillation.
    output_kd_weight: float = 10.0
    #: lambda_3, weight of the trajectory alignment.
    trajectory_kd_weight: float = 0.1
    #: Ramp lambda_2 and lambda_3 up linearly from 0 over this fraction of the steps, so the explicit view learns
    #: to rank before it is imitated (0: the paper's constant weights, which in a short run let the untrained
    #: teacher's scores dominate the first steps; benchmarks/results/training_experiments.json).
    kd_warmup_ratio: float = 0.5
    #: Backpropagate through the soft tokens' vocabulary softmax (the paper's end-to-end rollout). False stops the
    #: gradient there (the tokens are still the current model's, and the gradient still flows through every
    #: step's states and the KV cache): on SmolLM2-135M that path's gradient dominates the rest of the model's
    #: and, under clipping, drowns the contrastive signal (benchmarks/results/training_experiments.json).
    soft_token_gradient: bool = False
    #: Separator between rationale segments in the explicit view.
    segment_separator: str = "\n"
    #: Training sources and their mix: each source's train examples are used this many times per epoch.
    datasets: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"strategyqa": 1.0, "hotpotqa_evidence": 1.0})
    #: Use at most this many examples per source (0: all); for quick runs and tests.
    max_examples_per_source: int = 0
    #: Validation sets (`laser_rag_datasets.shared.shared_dataset` names) evaluated every eval_every steps.
    eval_sets: list[str] = dataclasses.field(default_factory=lambda: ["hotpotqa_evidence"])
    #: Evaluate every this many steps (0: never during training).
    eval_every: int = 0
    #: Recompute each forward pass (queries, documents, explicit view) in the backward pass instead of keeping its
    #: activations: less memory for long documents, about one more forward pass of time.
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "last"):
            raise ValueError(f"pooling must be 'mean' or 'last', got {self.pooling!r}")
        if not any(weight > 0 for weight in self.datasets.values()):
            raise ValueError("datasets: give at least one source a weight > 0")

    @property
    def steps_per_query(self) -> int:
        """K actually used: 1 for the basic objective."""
        return 1 if self.objective is Objective.BASIC else self.num_thinking_steps

    def loss_weights(self, progress: float = 1.0) -> LossWeights:
        """The loss weights of this objective at ``progress`` (0..1) through the run (the KD warm-up)."""
        ramp = min(1.0, progress / self.kd_warmup_ratio) if self.kd_warmup_ratio > 0 else 1.0
        return LossWeights(
            latent_cl=self.latent_cl_weight,
            explicit_cl=self.explicit_cl_weight,
            output_kd=0.0 if self.objective is Objective.NO_OUTPUT_KD else ramp * self.output_kd_weight,
            trajectory_kd=0.0 if self.objective is Objective.NO_TRAJECTORY else ramp * self.trajectory_kd_weight,
            temperature=self.temperature,
            kd_temperature=self.kd_temperature,
            trajectory_temperature=self.trajectory_temperature,
        )

    def resumable_fields(self) -> frozenset[str]:
        """`RunConfig`'s, ``eval_every``, and the fields this objective never reads."""
        return RESUMABLE_FIELDS | {"eval_every", "gradient_checkpointing"} | self.objective.unused_fields


def config_fields(cls: type, path: str | Path | None, overrides: dict[str, Any], what: str) -> dict[str, Any]:
    """The fields of a ``cls`` config from a JSON or YAML file (or none), with ``overrides`` on top; a ValueError
    names unknown fields (``what``: the kind of config, for the message)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}  # YAML reads JSON too
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of config fields")
    data.update(overrides)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} config fields: {unknown}")
    return data


def check_same_settings(config: Any, saved: dict[str, Any], ignore: frozenset[str]) -> None:
    """TrainingError unless ``config`` agrees with the run config ``saved`` (a `to_dict`) outside ``ignore``; fields
    added since that run was saved count at their defaults."""
    current, defaults = config.to_dict(), type(config)().to_dict()
    changed = sorted(k for k in current if k not in ignore and saved.get(k, defaults[k]) != current[k])
    if changed:
        raise TrainingError(f"{config.output_dir} holds a run with other settings ({', '.join(changed)}): "
                            "resume with the same config, or pick another output_dir")


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["max_steps=3", "lora_targets=[q_proj, v_proj]"]`` -> field values, each value read as YAML."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """`TrainConfig.load` with ``--set KEY=VALUE`` strings."""
    return TrainConfig.load(path, **parse_overrides(overrides))


def save_config(config: TrainConfig, path: Path) -> None:
    from laser_rag.util import atomic_write

    atomic_write(path, json.dumps(config.to_dict(), indent=2) + "\n")
