"""LaSER's training objective as plain tensor functions (Jin et al., 2026, eq. 8-13).

Tensors in, scalar tensors out; no model code here. Shapes: ``B`` queries, ``N`` documents in the batch
(every query's positive plus the hard negatives, shared by all queries: in-batch negatives), ``K`` latent
thinking steps, ``H`` hidden size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


def info_nce(
    q: Tensor, d: Tensor, positive_index: Tensor, temperature: float = 0.02, exclude: Tensor | None = None
) -> Tensor:
    """InfoNCE over in-batch and hard negatives (eq. 8): ``-mean_i log softmax(q_i . d / tau)[positive_i]``.

    ``q`` is ``[B, H]`` and ``d`` is ``[N, H]``, both unit vectors (so ``q . d`` is the cosine); ``positive_index``
    ``[B]`` says which row of ``d`` is query i's positive; every other row is a negative. ``exclude`` (``[B, N]``,
    True = leave out of query i's softmax) removes documents that are also relevant to query i, e.g. another
    query's positive that is one of i's own gold passages.

    Example::

        q = F.normalize(torch.randn(2, 8), dim=-1)
        d = F.normalize(torch.randn(4, 8), dim=-1)          # 2 positives + 2 hard negatives
        loss = info_nce(q, d, torch.tensor([0, 1]), temperature=0.02)
    """
    logits = (q @ d.T) / temperature
    if exclude is not None:
        keep_positive = F.one_hot(positive_index, d.shape[0]).bool()
        logits = logits.masked_fill(exclude & ~keep_positive, float("-inf"))
    return F.cross_entropy(logits, positive_index)


def score_kl(teacher_scores: Tensor, student_scores: Tensor, temperature: float = 0.02) -> Tensor:
    """Output-level distillation (eq. 9-10): ``KL(p_teacher || p_student)`` over the batch's documents.

    Both inputs are ``[B, N]`` similarity scores (teacher: explicit view ``v*_q . v_d``; student: latent view
    ``v_q . v_d``); each row becomes a distribution by ``softmax(s / tau_kd)``. The teacher is detached: only the
    student learns from this term.

    Reading of eq. 10: the paper writes ``(1/N) sum_i p^E_i log(p^E_i / p^L_i)`` with ``i`` over the N documents
    of the batch. Taken literally that is a KL divided by the number of documents; we read the inner sum as the KL
    divergence of one query's two distributions over the documents, and the ``1/N`` as the mean over the batch's
    queries (the usual "batchmean" KL, as in tevatron/RocketQA-style score distillation).

    Example::

        teacher = torch.tensor([[0.9, 0.1, 0.0]])
        student = torch.tensor([[0.5, 0.4, 0.1]], requires_grad=True)
        score_kl(teacher, student, temperature=0.02).backward()   # gradient reaches the student only
    """
    target = F.log_softmax(teacher_scores.detach().float() / temperature, dim=-1)
    prediction = F.log_softmax(student_scores.float() / temperature, dim=-1)
    return F.kl_div(prediction, target, log_target=True, reduction="batchmean")


def trajectory_kl(
    student_steps: Tensor,
    teacher_segment_states: Tensor,
    docs: Tensor,
    valid: Tensor,
    temperature: float = 0.02,
) -> Tensor:
    """Process-level trajectory alignment (eq. 12): mean over steps and valid queries of
    ``KL(softmax(h^E_{j_i} . v_D / tau) || softmax(h_i . v_D / tau))``.

    ``student_steps`` ``[B, K, H]`` are the latent view's K thinking states; ``teacher_segment_states``
    ``[B, K, H]`` are the explicit view's states at the ends of the segments that the K steps map to (already
    gathered with `training.segments.step_to_segment`); ``docs`` ``[N, H]`` are the batch's unit document vectors;
    ``valid`` ``[B]`` (bool) is False for queries whose rationale has no segment left (they contribute nothing).

    Hidden states are L2-normalised before scoring. Raw last-layer states have norms in the tens to hundreds
    (and differ per position and per view), so ``h . v_d / 0.02`` would be a near one-hot softmax whose sharpness
    depends on the norm rather than on the direction; the documents are scored by cosine everywhere else (the
    pooled embedding is normalised), so the intermediate states are compared on the same scale. The teacher
    side is detached.

    Example::

        h = torch.randn(2, 3, 8, requires_grad=True)       # 2 queries, K=3 steps
        t = torch.randn(2, 3, 8)                           # teacher states at the mapped segment ends
        d = F.normalize(torch.randn(5, 8), dim=-1)
        trajectory_kl(h, t, d, valid=torch.tensor([True, False])).backward()
    """
    valid = valid.bool()
    if not bool(valid.any()):
        return student_steps.sum() * 0.0  # keeps the graph (and a zero gradient) when nothing is aligned
    student = F.normalize(student_steps[valid].float(), dim=-1) @ docs.float().T  # [b, K, N]
    teacher = F.normalize(teacher_segment_states[valid].detach().float(), dim=-1) @ docs.detach().float().T
    target = F.log_softmax(teacher / temperature, dim=-1)
    prediction = F.log_softmax(student / temperature, dim=-1)
    per_step = (target.exp() * (target - prediction)).sum(dim=-1)  # [b, K]
    return per_step.mean()


@dataclass
class LossWeights:
    """The weights and temperatures of eq. 13 (defaults: the paper's section 4.3)."""

    #: Weight of the latent view's InfoNCE, L_cl^latent.
    latent_cl: float = 1.0
    #: lambda_1: weight of the explicit view's InfoNCE, L_cl^explicit.
    explicit_cl: float = 1.0
    #: lambda_2: weight of the output-level score distillation, KL_out.
    output_kd: float = 10.0
    #: lambda_3: weight of the trajectory alignment, KL_traj.
    trajectory_kd: float = 0.1
    #: tau: temperature of both InfoNCE terms.
    temperature: float = 0.02
    #: tau_kd: temperature of both distillation terms.
    kd_temperature: float = 0.02
    #: The trajectory term's own temperature (the authors' released code: 0.05); None = ``kd_temperature``.
    trajectory_temperature: float | None = None


def laser_loss(
    latent_q: Tensor,
    docs: Tensor,
    positive_index: Tensor,
    weights: LossWeights | None = None,
    *,
    explicit_q: Tensor | None = None,
    latent_steps: Tensor | None = None,
    teacher_steps: Tensor | None = None,
    valid: Tensor | None = None,
    exclude: Tensor | None = None,
) -> dict[str, Tensor]:
    """``L = L_cl^latent + lambda_1 L_cl^explicit + lambda_2 KL_out + lambda_3 KL_traj`` (eq. 13).

    ``latent_q`` ``[B, H]`` (student, pooled and unit) and ``docs`` ``[N, H]`` are always needed. The explicit
    terms need ``explicit_q`` (``v*_q``, unit); the trajectory term also needs ``latent_steps`` ``[B, K, H]``,
    ``teacher_steps`` ``[B, K, H]`` and ``valid`` ``[B]``. A term whose inputs are missing is left out (and not
    returned); a term with weight 0 is still returned, for logging, but adds nothing to ``"loss"``.

    Returns a dict: ``"loss"`` (the weighted sum) and each computed term by name (``latent_cl``, ``explicit_cl``,
    ``output_kd``, ``trajectory_kd``).

    Example::

        w = LossWeights()
        out = laser_loss(q, d, pos, w, explicit_q=q_star, latent_steps=h, teacher_steps=h_e, valid=ok)
        out["loss"].backward()
    """
    w = weights or LossWeights()
    terms = {"latent_cl": info_nce(latent_q, docs, positive_index, w.temperature, exclude)}
    if explicit_q is not None:
        terms["explicit_cl"] = info_nce(explicit_q, docs, positive_index, w.temperature, exclude)
        terms["output_kd"] = score_kl(explicit_q @ docs.T, latent_q @ docs.T, w.kd_temperature)
        if latent_steps is not None and teacher_steps is not None and valid is not None:
            terms["trajectory_kd"] = trajectory_kl(latent_steps, teacher_steps, docs, valid,
                                                     w.trajectory_temperature or w.kd_temperature)
    loss = sum(getattr(w, name) * value for name, value in terms.items() if getattr(w, name) != 0)
    return {"loss": loss, **terms}
