"""The latent rollout on a static KV cache, with its soft-token steps replayed as CUDA graphs on a GPU.

`laser_rag.latent.latent_rollout` is the reference: a growing dynamic cache, a 2-D mask that transformers turns into
a 4-D one at every step, and a padding check that syncs the GPU with the host. For one position per step that is
almost all Python and kernel-launch overhead on a GPU. `StaticRollout` computes the same trajectory with:

- inputs padded up to a batch bucket (1, 2, 4, ... rows) and a length bucket (a multiple of ``length_multiple``),
  so a few fixed shapes cover every batch;
- one `transformers.StaticCache` per bucket (``max_cache_len`` = padded length + K - 1), reused across batches;
- 4-D additive masks built here (transformers passes a 4-D mask through untouched), so nothing in a step depends on
  tensor values on the host;
- each soft-token step (LM head, softmax over the vocabulary, ``@ E``, one decoder position) captured once per
  bucket as a CUDA graph and replayed K-1 times; the cache advances its own write position on the device.

On a CPU (or with ``use_cuda_graphs=False``) the same static-cache path runs eagerly; a test checks it equals the
reference rollout. If capturing fails on some model, the bucket falls back to the eager static path, logged once.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor

from laser_rag.latent import (
    latent_rollout,
    latent_rollout_with_thoughts,
    mix_embeddings,
    next_token_probs,
    position_ids_from_mask,
    top_tokens,
)

logger = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def _batch_bucket(size: int) -> int:
    return next(b for b in BATCH_BUCKETS if b >= size)


def _additive(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean "may attend" mask as the additive float mask attention kernels take (finite, so no NaN rows)."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


@dataclass
class _Bucket:
    """The fixed-shape state of one (batch, length, K) bucket: its cache, step buffers and (on CUDA) graph."""

    cache: object
    state: Tensor  # [B, H]: the previous step's last-layer state (graph input)
    mask: Tensor  # [B, 1, 1, S]: additive mask of the current step (graph input)
    position: Tensor  # [B, 1]: the current step's position ids (graph input)
    output: Tensor | None = None  # [B, H]: the graph's output
    graph: torch.cuda.CUDAGraph | None = None
    eager: bool = False  # capturing failed once: run this bucket eagerly


class StaticRollout:
    """``rollout(input_ids, attention_mask, K) -> [B, K, H]``, equal to `latent_rollout` (inference only).

    ``use_cuda_graphs``: None = on CUDA devices only. ``max_buckets`` bounds how many (batch, length, K) buckets keep
    a cache (and graph) alive; the least recently used is dropped first.
    """

    def __init__(self, model, *, use_cuda_graphs: bool | None = None, length_multiple: int = 64,
                 max_buckets: int = 8) -> None:
        self.model = model
        self.length_multiple = length_multiple
        self.max_buckets = max_buckets
        device = next(model.parameters()).device
        self.use_cuda_graphs = device.type == "cuda" if use_cuda_graphs is None else use_cuda_graphs
        self._buckets: OrderedDict[tuple[int, int, int], _Bucket] = OrderedDict()
        embeddings = model.get_input_embeddings()
        self._embedding = embeddings.weight
        self._embed_scale = getattr(embeddings, "embed_scale", 1.0)

    @torch.inference_mode()
    def __call__(self, input_ids: Tensor, attention_mask: Tensor, num_steps: int) -> Tensor:
        if num_steps == 1:  # a single pass: no soft tokens, nothing to replay
            return latent_rollout(self.model, input_ids, attention_mask, 1)
        return self._chunks(input_ids, attention_mask, num_steps, 0)[0]

    @torch.inference_mode()
    def with_thoughts(self, input_ids: Tensor, attention_mask: Tensor, num_steps: int,
                      top_k: int) -> tuple[Tensor, Tensor, Tensor]:
        """`laser_rag.latent.latent_rollout_with_thoughts` on the static cache: the states of calling this rollout,
        with each step's top tokens recorded as the step computes them. Its soft-token steps run eagerly (a captured
        graph records no top tokens): the kernels a graph replays, launched one by one, on the same bucket shapes
        (equal to the replayed states as far as those kernels are deterministic; on a CPU there is no graph)."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if num_steps == 1:
            return latent_rollout_with_thoughts(self.model, input_ids, attention_mask, 1, top_k)
        return self._chunks(input_ids, attention_mask, num_steps, top_k)

    def _chunks(self, input_ids: Tensor, attention_mask: Tensor, num_steps: int,
                top_k: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if attention_mask.shape[0] and not bool(attention_mask[:, -1].all()):
            raise ValueError("StaticRollout needs left-padded inputs (every row's last position must be real)")
        chunks = [
            self._run(input_ids[i:i + BATCH_BUCKETS[-1]], attention_mask[i:i + BATCH_BUCKETS[-1]], num_steps, top_k)
            for i in range(0, input_ids.shape[0], BATCH_BUCKETS[-1])
        ]
        states = torch.cat([c[0] for c in chunks], dim=0)
        if not top_k:
            return states, None, None
        return states, torch.cat([c[1] for c in chunks], dim=0), torch.cat([c[2] for c in chunks], dim=0)

    # ------------------------------------------------------------------ one bucket-sized batch
    def _run(self, input_ids: Tensor, attention_mask: Tensor, num_steps: int,
             top_k: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
        rows, length = input_ids.shape
        batch = _batch_bucket(rows)
        padded = math.ceil(length / self.length_multiple) * self.length_multiple
        span = padded + num_steps - 1
        device = input_ids.device
        dtype = self._embedding.dtype

        ids = input_ids.new_zeros(batch, padded)
        mask = attention_mask.new_zeros(batch, padded)
        ids[:rows, padded - length:] = input_ids
        mask[:rows, padded - length:] = attention_mask
        mask[rows:, -1] = 1  # filler rows read one (pad) token, so no row is all masked
        positions = position_ids_from_mask(mask)

        allowed = torch.zeros(batch, span, dtype=torch.bool, device=device)  # keys each row may attend to
        allowed[:, :padded] = mask.bool()
        causal = torch.ones(padded, span, dtype=torch.bool, device=device).tril()
        prefill_mask = _additive(allowed[:, None, None, :] & causal[None, None], dtype)

        bucket = self._bucket(batch, padded, num_steps, device, dtype)
        bucket.cache.reset()
        out = self.model.get_decoder()(input_ids=ids, attention_mask=prefill_mask, position_ids=positions,
                                       past_key_values=bucket.cache, use_cache=True)
        state = out.last_hidden_state[:, -1]
        states = [state]
        tops: list[tuple[Tensor, Tensor]] = []
        for step in range(1, num_steps):
            allowed[:, padded + step - 1] = True  # the soft token this step writes
            bucket.mask.copy_(_additive(allowed[:, None, None, :], dtype))
            bucket.position.copy_(positions[:, -1:] + step)
            bucket.state.copy_(state)
            if top_k:
                state = self._eager_step(bucket, tops, top_k).clone()
            else:
                state = self._step(bucket, padded + step - 1).clone()
            states.append(state)
        trajectory = torch.stack(states, dim=1)[:rows]
        if not top_k:
            return trajectory, None, None
        tops.append(top_tokens(next_token_probs(self.model, state), top_k))
        return (trajectory, torch.stack([p for p, _ in tops], dim=1)[:rows],
                torch.stack([i for _, i in tops], dim=1)[:rows])

    def _bucket(self, batch: int, padded: int, num_steps: int, device, dtype) -> _Bucket:
        from transformers import StaticCache

        key = (batch, padded, num_steps)
        bucket = self._buckets.get(key)
        if bucket is None:
            hidden = self._embedding.shape[1]
            cache = StaticCache(config=self.model.config, max_cache_len=padded + num_steps - 1)
            bucket = _Bucket(
                cache=cache,
                state=torch.zeros(batch, hidden, dtype=dtype, device=device),
                mask=torch.zeros(batch, 1, 1, padded + num_steps - 1, dtype=dtype, device=device),
                position=torch.zeros(batch, 1, dtype=torch.long, device=device),
            )
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        return bucket

    # ------------------------------------------------------------------ one soft-token step
    def _eager_step(self, bucket: _Bucket, tops: list | None = None, top_k: int = 0) -> Tensor:
        probs = next_token_probs(self.model, bucket.state)
        if top_k:
            tops.append(top_tokens(probs, top_k))
        token = mix_embeddings(probs, self._embedding, self._embed_scale)
        out = self.model.get_decoder()(inputs_embeds=token[:, None, :], attention_mask=bucket.mask,
                                       position_ids=bucket.position, past_key_values=bucket.cache, use_cache=True)
        return out.last_hidden_state[:, -1]

    def _step(self, bucket: _Bucket, write_position: int) -> Tensor:
        if not self.use_cuda_graphs or bucket.eager:
            return self._eager_step(bucket)
        if bucket.graph is None:
            try:
                self._capture(bucket, write_position)
            except Exception as exc:  # a model whose step cannot be captured still works, eagerly
                logger.warning("CUDA graph capture failed (%s: %s); soft-token steps run eagerly for this shape",
                               type(exc).__name__, exc)
                bucket.eager, bucket.graph = True, None
                self._set_write_position(bucket, write_position)
                return self._eager_step(bucket)
        bucket.graph.replay()
        return bucket.output

    def _set_write_position(self, bucket: _Bucket, position: int) -> None:
        for layer in bucket.cache.layers:
            layer.cumulative_length.fill_(position)

    def _capture(self, bucket: _Bucket, write_position: int) -> None:
        """Warm up on a side stream (kernels pick their algorithms), rewind the cache, then capture one step."""
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._set_write_position(bucket, write_position)
                self._eager_step(bucket)
        torch.cuda.current_stream().wait_stream(stream)
        self._set_write_position(bucket, write_position)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            bucket.output = self._eager_step(bucket)
        self._set_write_position(bucket, write_position)  # capture records kernels without running them
        bucket.graph = graph
