"""LatentRAG's maths as plain tensor functions (no modules, no I/O), shared by inference and training.

A LatentRAG sequence mixes real token ids with *special* ids ``>= vocab_size`` that index a small trainable table
of latent-token embeddings (the m thought tokens, the n subquery tokens, the two actions): `embed_tokens` builds
the input embeddings of such a sequence. The action at a thought block's last position is the LM head restricted to
the two action rows (`action_logits`, eq. 3). The retrieval loss is the KL of eqs. 7-8 (`retrieval_kl`), with its
temperature found by `calibrate_beta`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def embed_tokens(ids: Tensor, embedding_weight: Tensor, special_weight: Tensor,
                 embed_scale: Tensor | float = 1.0) -> Tensor:
    """Input embeddings ``[..., H]`` of ``ids`` where ids ``>= V`` (``V = embedding_weight.shape[0]``) are rows
    ``id - V`` of ``special_weight``; both kinds are multiplied by ``embed_scale`` (Gemma scales its embeddings)."""
    vocab = embedding_weight.shape[0]
    special = ids >= vocab
    tokens = F.embedding(ids.clamp(max=vocab - 1), embedding_weight)
    if bool(special.any()):
        rows = F.embedding((ids - vocab).clamp(min=0), special_weight.to(tokens.dtype))
        tokens = torch.where(special[..., None], rows, tokens)
    return tokens * embed_scale


def action_logits(hidden: Tensor, action_weight: Tensor) -> Tensor:
    """``[..., H] x [A, H] -> [..., A]``: the LM head's logits of the action tokens alone (tied-head style: an
    added token's output row is its input embedding)."""
    return hidden @ action_weight.to(hidden.dtype).T


def mean_pool(states: Tensor, mask: Tensor | None = None, normalize: bool = True) -> Tensor:
    """``[B, L, H] -> [B, H]``: the mean over real positions (``mask`` [B, L], default all), L2-normalised."""
    states = states.float()
    if mask is None:
        pooled = states.mean(dim=1)
    else:
        weights = mask.to(states.dtype)[..., None]
        pooled = (states * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
    return F.normalize(pooled, dim=-1) if normalize else pooled


def retrieval_distribution(query_vectors: Tensor, doc_vectors: Tensor, beta: float) -> Tensor:
    """``softmax_i(cos(v, d_i) / beta)`` over the candidate documents: ``[S, D], [N, D] -> [S, N]``."""
    scores = F.normalize(query_vectors.float(), dim=-1) @ F.normalize(doc_vectors.float(), dim=-1).T
    return torch.softmax(scores / beta, dim=-1)


def retrieval_kl(latent_vectors: Tensor, reference_vectors: Tensor, doc_vectors: Tensor, beta: float) -> Tensor:
    """Eqs. 7-8: ``mean_s KL(p(s) || q(s))`` with p from the reference (text) subquery vectors ``[S, D]`` and q
    from the latent ones ``[S, D]``, over the same candidates ``[N, D]``; 0 when the two vectors agree. The
    reference side carries no gradient."""
    log_q = torch.log_softmax(_cosine(latent_vectors, doc_vectors) / beta, dim=-1)
    log_p = torch.log_softmax(_cosine(reference_vectors.detach(), doc_vectors.detach()) / beta, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def _cosine(queries: Tensor, docs: Tensor) -> Tensor:
    return F.normalize(queries.float(), dim=-1) @ F.normalize(docs.float(), dim=-1).T


def top_mass(reference_vectors: Tensor, doc_vectors: Tensor, beta: float, top: int = 3) -> float:
    """The mean probability the ``top`` best candidates hold under ``retrieval_distribution`` at ``beta``."""
    probs = retrieval_distribution(reference_vectors, doc_vectors, beta)
    return float(probs.topk(min(top, probs.shape[-1]), dim=-1).values.sum(-1).mean())


def calibrate_beta(reference_vectors: Tensor, doc_vectors: Tensor, *, top: int = 3, target: float = 0.5,
                   low: float = 1e-4, high: float = 10.0, iterations: int = 60) -> float:
    """The temperature at which the ``top`` best candidates hold ``target`` of the probability on average (the
    paper's rule, which gives 0.03 there): bisection on log beta (the mass falls as beta grows)."""
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target}")
    lo, hi = torch.tensor(low).log(), torch.tensor(high).log()
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if top_mass(reference_vectors, doc_vectors, float(mid.exp()), top) > target:
            lo = mid
        else:
            hi = mid
    return float(((lo + hi) / 2).exp())
