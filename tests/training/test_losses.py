"""laser_rag_training.losses against values worked out by hand (math.exp / math.log on small explicit tensors)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from laser_rag_training.losses import LossWeights, info_nce, laser_loss, score_kl, trajectory_kl


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def _softmax(xs: list[float]) -> list[float]:
    total = sum(math.exp(x) for x in xs)
    return [math.exp(x) / total for x in xs]


Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
D = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # two positives, one hard negative (all unit)


def test_info_nce_by_hand():
    # tau = 0.5: query 0 scores [1, 0, 0.6] -> logits [2, 0, 1.2]; query 1 scores [0, 1, 0.8] -> [0, 2, 1.6]
    loss0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(1.2)))
    loss1 = -math.log(math.exp(2) / (math.exp(0) + math.exp(2) + math.exp(1.6)))
    got = info_nce(Q, D, torch.tensor([0, 1]), temperature=0.5)
    assert got.item() == pytest.approx((loss0 + loss1) / 2, rel=1e-6)


def test_info_nce_exclude_drops_other_relevant_documents():
    exclude = torch.tensor([[False, False, True], [True, True, False]])  # query 1's own positive stays in
    loss0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
    loss1 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1.6)))
    got = info_nce(Q, D, torch.tensor([0, 1]), temperature=0.5, exclude=exclude)
    assert got.item() == pytest.approx((loss0 + loss1) / 2, rel=1e-6)


def test_score_kl_by_hand():
    teacher = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.2, 0.2]])
    student = torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.3, 0.6]])
    tau = 0.5
    expected = [
        _kl(_softmax([x / tau for x in t]), _softmax([x / tau for x in s]))
        for t, s in zip(teacher.tolist(), student.tolist())
    ]
    got = score_kl(teacher, student, temperature=tau)
    assert got.item() == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_score_kl_zero_when_views_agree_and_teacher_gets_no_gradient():
    teacher = torch.tensor([[0.3, -0.1, 0.7]], requires_grad=True)
    student = teacher.detach().clone().requires_grad_(True)
    loss = score_kl(teacher, student, temperature=0.02)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    (loss + score_kl(teacher, student * 0.5, temperature=0.02)).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_trajectory_kl_by_hand_normalises_and_masks():
    docs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # query 0: step 0 student (3, 0) -> unit (1, 0), teacher (0, 5) -> (0, 1); step 1 both point along (0, 1)
    student = torch.tensor([[[3.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [-4.0, 2.0]]], requires_grad=True)
    teacher = torch.tensor([[[0.0, 5.0], [0.0, 1.0]], [[9.0, 0.0], [1.0, -3.0]]])
    valid = torch.tensor([True, False])
    tau = 1.0
    step0 = _kl(_softmax([0.0, 1.0]), _softmax([1.0, 0.0]))
    step1 = 0.0
    got = trajectory_kl(student, teacher, docs, valid, temperature=tau)
    assert got.item() == pytest.approx((step0 + step1) / 2, rel=1e-6)
    got.backward()
    assert student.grad[1].abs().sum() == 0  # the masked query contributes nothing
    assert student.grad[0].abs().sum() > 0
    changed = teacher.clone()
    changed[1] = torch.tensor([[0.0, 1.0], [5.0, 5.0]])
    assert trajectory_kl(student, changed, docs, valid, tau).item() == pytest.approx(got.item(), rel=1e-6)


def test_trajectory_kl_zero_when_views_agree_up_to_scale():
    h = torch.randn(3, 2, 4)
    docs = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    valid = torch.tensor([True, True, True])
    assert trajectory_kl(h, h * 7.0, docs, valid, 0.02).item() == pytest.approx(0.0, abs=1e-5)


def test_trajectory_kl_all_masked_is_zero_with_a_graph():
    h = torch.randn(2, 3, 4, requires_grad=True)
    loss = trajectory_kl(h, torch.randn(2, 3, 4), torch.eye(4), torch.tensor([False, False]))
    loss.backward()
    assert loss.item() == 0.0 and h.grad.abs().sum() == 0


def test_laser_loss_combines_terms_and_keeps_teacher_detached():
    torch.manual_seed(0)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape), dim=-1)  # noqa: E731
    latent_q = unit(2, 4).requires_grad_(True)
    explicit_q = unit(2, 4).requires_grad_(True)
    docs = unit(3, 4).requires_grad_(True)
    steps = torch.randn(2, 3, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4, requires_grad=True)
    valid = torch.tensor([True, False])
    pos = torch.tensor([0, 1])
    w = LossWeights(latent_cl=1.0, explicit_cl=0.5, output_kd=10.0, trajectory_kd=0.1, temperature=0.1,
                    kd_temperature=0.2)
    out = laser_loss(latent_q, docs, pos, w, explicit_q=explicit_q, latent_steps=steps, teacher_steps=teacher,
                     valid=valid)
    expected = (info_nce(latent_q, docs, pos, 0.1) + 0.5 * info_nce(explicit_q, docs, pos, 0.1)
                + 10.0 * score_kl(explicit_q @ docs.T, latent_q @ docs.T, 0.2)
                + 0.1 * trajectory_kl(steps, teacher, docs, valid, 0.2))
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(out) == {"loss", "latent_cl", "explicit_cl", "output_kd", "trajectory_kd"}

    # the distillation terms alone move the student only: no gradient reaches the teacher's inputs
    kd_only = LossWeights(latent_cl=0.0, explicit_cl=0.0, output_kd=1.0, trajectory_kd=1.0)
    laser_loss(latent_q, docs, pos, kd_only, explicit_q=explicit_q, latent_steps=steps, teacher_steps=teacher,
               valid=valid)["loss"].backward()
    assert explicit_q.grad is None and teacher.grad is None
    assert latent_q.grad.abs().sum() > 0 and steps.grad.abs().sum() > 0


def test_laser_loss_latent_only_has_one_term():
    q = torch.nn.functional.normalize(torch.randn(2, 4), dim=-1)
    d = torch.nn.functional.normalize(torch.randn(2, 4), dim=-1)
    out = laser_loss(q, d, torch.tensor([0, 1]))
    assert set(out) == {"loss", "latent_cl"}
    assert out["loss"].item() == pytest.approx(info_nce(q, d, torch.tensor([0, 1]), 0.02).item())


def test_trajectory_term_has_its_own_temperature():
    torch.manual_seed(0)
    q, docs = F.normalize(torch.randn(2, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    steps, teacher, valid = torch.randn(2, 3, 8), torch.randn(2, 3, 8), torch.tensor([True, True])
    inputs = dict(explicit_q=q.flip(0), latent_steps=steps, teacher_steps=teacher, valid=valid)
    own = laser_loss(q, docs, torch.tensor([0, 1]), LossWeights(trajectory_temperature=0.05), **inputs)
    assert own["trajectory_kd"].item() == pytest.approx(trajectory_kl(steps, teacher, docs, valid, 0.05).item())
    shared = laser_loss(q, docs, torch.tensor([0, 1]), LossWeights(kd_temperature=0.05), **inputs)
    assert shared["trajectory_kd"].item() == pytest.approx(own["trajectory_kd"].item())
    assert own["output_kd"].item() != pytest.approx(shared["output_kd"].item())  # only the trajectory term moved
