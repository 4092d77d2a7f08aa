"""Latent thinking as plain tensor functions.

A causal LM "thinks" for K steps before it embeds a text: the text is encoded once (with a KV cache), then K-1
continuous *soft tokens* are fed back one at a time. A soft token is the expected input embedding under the
next-token distribution predicted from the last hidden state::

    t_j = softmax(W_lm h_{j-1}) @ E

The K last-layer states (the text's last position, then one per soft token) are the thinking trajectory; their
mean, L2-normalised, is the embedding (Jin et al., 2026, eq. 3-6). K=1 is plain last-token pooling.

These functions take any transformers causal LM (or a peft wrapper of one) and tensors; they work with and
without gradients, so training and inference share them. Inputs must be *left*-padded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def position_ids_from_mask(attention_mask: Tensor) -> Tensor:
    """Positions counted over real tokens only, so left padding does not shift a text's positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


def soft_token(logits: Tensor, embedding_weight: Tensor, embed_scale: Tensor | float = 1.0) -> Tensor:
    """The expected input embedding under ``softmax(logits)``: ``[..., V] -> [..., H]``.

    ``embed_scale`` is the factor the model's own embedding layer multiplies by (Gemma: sqrt(H)), so that a soft
    token lives on the same scale as a real one.
    """
    return mix_embeddings(torch.softmax(logits.float(), dim=-1), embedding_weight, embed_scale)


def mix_embeddings(probs: Tensor, embedding_weight: Tensor, embed_scale: Tensor | float = 1.0) -> Tensor:
    """The soft token of a next-token distribution ``probs`` (float32, ``[..., V]``): ``probs @ E`` in the table's
    dtype, times ``embed_scale`` (`soft_token` is this on ``softmax(logits)``)."""
    return (probs.to(embedding_weight.dtype) @ embedding_weight) * embed_scale


def next_token_logits(model, hidden: Tensor) -> Tensor:
    """The LM head on a batch of final hidden states ``[B, H] -> [B, V]``, with the model's logit soft-capping."""
    logits = model.get_output_embeddings()(hidden)
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(text_config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def next_token_probs(model, hidden: Tensor) -> Tensor:
    """The next-token distribution of final hidden states, ``[B, H] -> [B, V]`` float32: the mixture weights of the
    soft token a latent step feeds back."""
    return torch.softmax(next_token_logits(model, hidden).float(), dim=-1)


def top_tokens(probs: Tensor, top_k: int) -> tuple[Tensor, Tensor]:
    """The ``top_k`` most probable tokens of distributions ``[..., V]``: (probabilities, token ids), each
    ``[..., min(top_k, V)]``, most probable first."""
    found = probs.topk(min(top_k, probs.shape[-1]), dim=-1, sorted=True)
    return found.values, found.indices


def hidden_states(model, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """Last-layer hidden states of a plain forward pass, ``[B, L, H]`` (no logits are computed)."""
    out = model.get_decoder()(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
    )
    return out.last_hidden_state


def latent_rollout(
    model, input_ids: Tensor, attention_mask: Tensor, num_steps: int, detach_soft_tokens: bool = False
) -> Tensor:
    """Run K latent thinking steps with a KV cache; returns the trajectory of last-layer states ``[B, K, H]``.

    Step 1 is the text's own last position; each further step appends one soft token computed from the previous
    state. Only the last position's logits are ever computed. ``detach_soft_tokens`` (training only) stops the
    gradient through the soft tokens' vocabulary softmax: the tokens are still the current model's, and the
    gradient still flows through every step's states and the KV cache.
    """
    return _rollout(model, input_ids, attention_mask, num_steps, detach_soft_tokens, 0)[0]


def latent_rollout_with_thoughts(
    model, input_ids: Tensor, attention_mask: Tensor, num_steps: int, top_k: int
) -> tuple[Tensor, Tensor, Tensor]:
    """`latent_rollout`, also reading what each step thought: (states ``[B, K, H]``, probabilities ``[B, K, top_k]``
    float32 most probable first, token ids ``[B, K, top_k]``).

    Step j's tokens are the top of the next-token distribution of state j, recorded as the rollout computes it:
    for j < K it is the mixture fed back as soft token j+1; for j = K (the last state, which feeds nothing) it is
    read from the last state once the trajectory is complete. The states are `latent_rollout`'s, to the bit.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    return _rollout(model, input_ids, attention_mask, num_steps, False, top_k)


def _rollout(model, input_ids: Tensor, attention_mask: Tensor, num_steps: int, detach_soft_tokens: bool,
             top_k: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if attention_mask.shape[0] and not bool(attention_mask[:, -1].all()):
        raise ValueError("latent_rollout needs left-padded inputs (every row's last position must be a real token)")
    decoder = model.get_decoder()
    embeddings = model.get_input_embeddings()
    embed_scale = getattr(embeddings, "embed_scale", 1.0)
    positions = position_ids_from_mask(attention_mask)
    out = decoder(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=num_steps > 1
    )
    state = out.last_hidden_state[:, -1]
    states = [state]
    tops: list[tuple[Tensor, Tensor]] = []
    cache = out.past_key_values
    mask = attention_mask
    position = positions[:, -1:]
    ones = attention_mask.new_ones(attention_mask.shape[0], 1)
    for _ in range(num_steps - 1):
        probs = next_token_probs(model, state.detach() if detach_soft_tokens else state)
        if top_k:
            tops.append(top_tokens(probs, top_k))
        token = mix_embeddings(probs, embeddings.weight, embed_scale)
        mask = torch.cat([mask, ones], dim=1)
        position = position + 1
        out = decoder(
            inputs_embeds=token[:, None, :],
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
        )
        cache = out.past_key_values
        state = out.last_hidden_state[:, -1]
        states.append(state)
    trajectory = torch.stack(states, dim=1)
    if not top_k:
        return trajectory, None, None
    tops.append(top_tokens(next_token_probs(model, state), top_k))
    return trajectory, torch.stack([p for p, _ in tops], dim=1), torch.stack([i for _, i in tops], dim=1)


def pool_trajectory(states: Tensor, pooling: str = "mean", normalize: bool = True) -> Tensor:
    """``[B, K, H] -> [B, H]``: the mean of the K states (or the last one), L2-normalised.

    Pooling and normalisation run in float32 whatever the model's dtype, so a bf16 model's vectors still leave at
    unit norm (to 1e-6) and the mean does not lose precision.
    """
    states = states.float()
    if pooling == "mean":
        pooled = states.mean(dim=1)
    elif pooling == "last":
        pooled = states[:, -1]
    else:
        raise ValueError(f"unknown pooling {pooling!r}")
    return F.normalize(pooled, p=2, dim=-1) if normalize else pooled
