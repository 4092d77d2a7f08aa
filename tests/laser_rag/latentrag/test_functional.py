"""LatentRAG's tensor functions: the retrieval KL, beta calibration, special-token embeddings, the projector."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from laser_rag.latentrag import Projector
from laser_rag.latentrag import functional as LF


def test_retrieval_kl_is_zero_when_the_latent_vector_is_the_reference():
    torch.manual_seed(0)
    reference, docs = torch.randn(3, 8), torch.randn(10, 8)
    assert LF.retrieval_kl(reference.clone(), reference, docs, 0.03).item() == pytest.approx(0.0, abs=1e-6)


def test_retrieval_kl_matches_a_hand_computation():
    docs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    reference = torch.tensor([[1.0, 0.0]])
    latent = torch.tensor([[1.0, 1.0]])  # cos 0.7071 to both documents
    beta = 0.5
    p = [math.exp(1 / beta), math.exp(0 / beta)]
    p = [x / sum(p) for x in p]
    q = [0.5, 0.5]
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert LF.retrieval_kl(latent, reference, docs, beta).item() == pytest.approx(expected, rel=1e-5)


def test_retrieval_kl_sends_no_gradient_to_the_reference():
    reference = torch.randn(2, 4, requires_grad=True)
    latent = torch.randn(2, 4, requires_grad=True)
    LF.retrieval_kl(latent, reference, torch.randn(5, 4), 0.1).backward()
    assert reference.grad is None and latent.grad is not None


def test_calibrated_beta_puts_the_target_mass_on_the_top_three():
    torch.manual_seed(1)
    reference, docs = F.normalize(torch.randn(8, 16), dim=-1), F.normalize(torch.randn(40, 16), dim=-1)
    beta = LF.calibrate_beta(reference, docs, top=3, target=0.5)
    assert LF.top_mass(reference, docs, beta) == pytest.approx(0.5, abs=1e-3)
    assert LF.top_mass(reference, docs, beta / 2) > 0.5 > LF.top_mass(reference, docs, beta * 2)


def test_special_ids_index_the_special_table():
    table, special = torch.randn(5, 3), torch.randn(2, 3)
    ids = torch.tensor([[0, 5, 4, 6]])
    out = LF.embed_tokens(ids, table, special)
    torch.testing.assert_close(out[0], torch.stack([table[0], special[0], table[4], special[1]]))


def test_projector_is_bidirectional_and_maps_the_width():
    torch.manual_seed(0)
    projector = Projector(16, 8, heads=4).eval()
    x = torch.randn(1, 5, 16)
    y = projector(x)
    assert y.shape == (1, 5, 8)
    changed = x.clone()
    changed[0, -1] = torch.randn(16)
    # the first token's output sees the last token: no causal mask
    assert not torch.allclose(projector(changed)[0, 0], y[0, 0])
