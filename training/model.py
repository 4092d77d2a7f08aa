"""`LaSERModel`: the shared backbone with LoRA and its two views, ``forward(batch) -> losses``.

One batch runs, on the same LoRA-wrapped model:
  latent view    queries and documents: K latent thinking steps with gradients (`laser_rag.latent.latent_rollout`)
  explicit view  query + rationale in one pass: the last state is v*_q, the states at the segment ends the K
                 steps map to are the trajectory targets (`laser_rag_training.segments`)
and the loss `laser_rag_training.losses.laser_loss` (eq. 13), over the global batch: on N processes each rank
encodes its slice of the queries and documents and the embeddings are all-gathered
(`laser_rag_training.distributed`). LoRA is injected into the encoder's own model (peft
does it in place), so ``model.encoder`` is the live encoder: evaluating it mid-run needs no copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from laser_rag import backbones
from laser_rag.config import LaSERConfig
from laser_rag.corpus import Document
from laser_rag.encoders import LaSEREncoder
from laser_rag.latent import hidden_states, latent_rollout, pool_trajectory
from laser_rag_training.config import TrainConfig
from laser_rag_training.data import Batch
from laser_rag_training.distributed import World, gather
from laser_rag_training.losses import LossWeights, laser_loss
from laser_rag_training.segments import explicit_inputs, gather_segment_states

def trained_settings(config: TrainConfig) -> dict[str, int | str]:
    """The `LaSERConfig` fields a checkpoint of this run is saved with: K, pooling and the max lengths trained with
    (so a reload reads queries and documents as training did)."""
    return {"num_thinking_steps": config.steps_per_query, "pooling": config.pooling,
            "query_max_length": config.max_query_length, "max_length": config.max_doc_length}


class LaSERModel(nn.Module):
    """The backbone of ``encoder`` with LoRA (from ``config``), trained on ``documents`` (id -> `Document`) as rank
    ``world.rank`` of ``world.size`` processes."""

    def __init__(self, encoder: LaSEREncoder, config: TrainConfig, documents: Mapping[str, Document],
                 world: World | None = None) -> None:
        from peft import LoraConfig, get_peft_model

        super().__init__()
        self.config = config
        self.documents = documents
        self.world = world or World()
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=config.lora_targets, bias="none", task_type="CAUSAL_LM")
        with backbones.quiet_peft():
            self.peft_model = get_peft_model(encoder.model, lora)
        #: The live encoder: the training weights under the config a checkpoint is saved with.
        self.encoder = encoder.with_config(**trained_settings(config))

    @property
    def net(self) -> nn.Module:
        """The causal LM with the LoRA layers injected (the encoder's own model)."""
        return self.peft_model.get_base_model()

    @property
    def laser_config(self) -> LaSERConfig:
        return self.encoder.config

    def forward(self, batch: Batch, weights: LossWeights | None = None) -> dict[str, torch.Tensor]:
        """The loss terms of one batch (``"loss"`` is their weighted sum; ``weights`` default to the config's at the
        end of the KD warm-up). Queries and documents are read exactly as the encoder reads them at inference
        (`LaSEREncoder.tokenize`: template, budget, truncation)."""
        c, k, encoder, world = self.config, self.config.steps_per_query, self.encoder, self.world
        # Every rank tokenizes and pads the global batch and encodes its own rows: each row's input (padding too)
        # is the one a single process would encode.
        docs = [encoder.document_text(self.documents[d].title, self.documents[d].text) for d in batch.doc_ids]
        q_ids, q_mask = (world.shard(x) for x in encoder.pad(encoder.tokenize([e.query for e in batch.examples],
                                                                               "query")[0]))
        d_ids, d_mask = (world.shard(x) for x in encoder.pad(encoder.tokenize(docs, "document")[0]))
        detach = not c.soft_token_gradient
        latent_steps = self._run(latent_rollout, q_ids, q_mask, k, detach)
        doc_steps = self._run(latent_rollout, d_ids, d_mask, k, detach)
        total = len(batch.examples)
        latent_q = gather(pool_trajectory(latent_steps, c.pooling), world, total)
        doc_vectors = gather(pool_trajectory(doc_steps, c.pooling), world, len(batch.doc_ids))
        explicit = {}
        if c.objective.uses_explicit_view:
            inputs = [explicit_inputs(encoder.tokenizer, self.laser_config, e.query, e.segments,
                                      c.max_explicit_length, c.segment_separator,
                                      at_separator=c.segment_states == "separator",
                                      append_eos=c.teacher_eos or None) for e in batch.examples]
            e_ids, e_mask = (world.shard(x) for x in encoder.pad([x.ids for x in inputs]))
            inputs = world.shard(inputs)
            hidden = self._run(hidden_states, e_ids, e_mask)
            teacher_steps, valid = gather_segment_states(
                hidden, [len(x.ids) for x in inputs], [x.segment_ends for x in inputs], k)
            explicit = dict(explicit_q=gather(F.normalize(hidden[:, -1], dim=-1), world, total),
                            latent_steps=gather(latent_steps, world, total),
                            teacher_steps=gather(teacher_steps, world, total), valid=gather(valid, world, total))
        weights = weights or c.loss_weights()
        device = latent_q.device
        return laser_loss(latent_q, doc_vectors, batch.positive_index.to(device), weights,
                          exclude=batch.exclude.to(device), **explicit)

    def _run(self, forward, *args) -> torch.Tensor:
        """``forward(self.net, *args)``; with ``gradient_checkpointing`` its activations are not kept but
        recomputed in the backward pass (the whole pass at once: the latent rollout's KV cache rules out
        recomputing layer by layer)."""
        if self.config.gradient_checkpointing and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(forward, self.net, *args, use_reentrant=False)
        return forward(self.net, *args)

    def save(self, directory: Path) -> Path:
        """``laser_config.json`` + the peft adapter, reloadable by `LaSEREncoder.from_pretrained`."""
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

    def reload_difference(self, directory: Path, texts: list[str]) -> float:
        """Largest absolute difference between this model's query and document embeddings and those of the
        checkpoint in ``directory`` reloaded by `LaSEREncoder.from_pretrained` (adapter merged), both in fp32."""
        reloaded = LaSEREncoder.from_pretrained(directory, dtype=torch.float32)
        return max(
            float(np.abs(self.encoder.encode_queries(texts) - reloaded.encode_queries(texts)).max()),
            float(np.abs(self.encoder.encode_documents(texts) - reloaded.encode_documents(texts)).max()),
        )
