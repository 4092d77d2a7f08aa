"""`LatentRAGTrainConfig`: every setting of a LatentRAG (or explicit-agent) training run, from YAML plus overrides."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pydantic
from pydantic.dataclasses import dataclass

from laser_rag.latentrag.config import LatentRAGConfig
from laser_rag_training.config import RESUMABLE_FIELDS, RunConfig, save_config


@dataclass(config=pydantic.ConfigDict(extra="forbid"))
class LatentRAGTrainConfig(RunConfig):
    """Defaults: the paper's recipe (App. B) scaled to SmolLM2-135M on 2 CPU cores (see the README's table); the run
    and optimiser settings are `RunConfig`'s, with the defaults below."""

    _label = "LatentRAG training"

    #: "latent": LatentRAG (LoRA + projectors + retriever, eq. 11); "explicit": the same LLM fine-tuned on the same
    #: trajectories written as text (the explicit agent, and the direct / naive baselines' answer format).
    system: Literal["latent", "explicit"] = "latent"
    #: The LLM ("" = the project default, SmolLM2-135M-Instruct) and the retriever (a sentence-transformers model).
    base_model: str = ""
    retriever: str = "all-minilm-l6-v2"
    num_thought_tokens: int = pydantic.Field(default=4, ge=1)
    num_query_tokens: int = pydantic.Field(default=16, ge=1)
    top_k: int = pydantic.Field(default=3, ge=1)
    document_chars: int = pydantic.Field(default=400, ge=20)
    #: Trajectories per source (`laser_rag_training.trajectories`): 0 = all of that source.
    sources: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"strategyqa": 120, "hotpotqa": 120, "musique": 40})
    #: Trajectories longer than this (tokens) are dropped (the paper caps at 3,000).
    max_sequence_tokens: int = 1024
    batch_size: int = pydantic.Field(default=4, ge=1)
    #: Trajectories per forward/backward (gradient accumulation inside a step; the losses are normalised over the
    #: whole batch, so the gradient is the same): memory holds one micro-batch's activations at a time.
    micro_batch: int = pydantic.Field(default=1, ge=1)
    max_steps: int = 0
    #: LoRA on the LLM (the paper: r=16, alpha=64, all projections, dropout 0.1).
    lora_r: int = 16
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    #: LoRA on the retriever (the paper tunes it; LoRA keeps the shipped checkpoint small).
    retriever_lora_r: int = 16
    retriever_lora_alpha: int = 32
    #: Learning rates: LoRA, projectors and special embeddings, retriever LoRA (the paper: 1e-4 for 5 epochs).
    learning_rate: float = 5e-4
    projector_learning_rate: float = 1e-3
    retriever_learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    #: lambda_ret of eq. 11, and the weight of the latent-decoding loss.
    retrieval_weight: float = 1.0
    decode_weight: float = 1.0
    #: Epochs of the retrieval-path stage that follows the joint steps: the LLM is frozen, the subquery blocks'
    #: states are computed once, and the projector and the retriever's LoRA train on the retrieval KL alone, many
    #: times over (0: none, the paper's joint training only). The epoch kept is the one with the lowest KL on
    #: `retrieval_validation` of the trajectories, which it never trains on.
    retrieval_epochs: int = 0
    retrieval_validation: float = 0.15
    #: Pseudo-relevant documents per subquery (the paper: 16).
    pseudo_relevant: int = 16
    #: beta of eqs. 7-8; None = calibrated on the training subqueries so the top-3 hold ``beta_top_mass``.
    beta: float | None = None
    beta_top_mass: float = 0.5
    save_every: int = 20
    output_dir: str = "runs/latentrag"

    def model_config(self, beta: float) -> LatentRAGConfig:
        """The inference config saved with the weights."""
        return LatentRAGConfig(base_model=self.base_model, retriever=self.retriever,
                               num_thought_tokens=self.num_thought_tokens, num_query_tokens=self.num_query_tokens,
                               top_k=self.top_k, document_chars=self.document_chars, beta=beta,
                               name="latentrag" if self.system == "latent" else "explicit-agent")

    def resumable_fields(self) -> frozenset[str]:
        """`RunConfig`'s and ``micro_batch`` (it changes the memory a step needs, not its gradient)."""
        return RESUMABLE_FIELDS | {"micro_batch"}


__all__ = ["LatentRAGTrainConfig", "save_config"]
