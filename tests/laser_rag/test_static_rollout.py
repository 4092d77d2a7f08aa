"""The static-cache rollout (the GPU fast path) computes the same trajectory as the reference rollout.

On a CPU it runs eagerly on a `StaticCache` with masks built by `StaticRollout` itself; CUDA graphs replay exactly
that step, so the equality checked here is what the graphs compute (the graphs themselves need a GPU).
"""

from __future__ import annotations

import pytest
import torch

from laser_rag.latent import latent_rollout, latent_rollout_with_thoughts
from laser_rag.static_rollout import StaticRollout


def _tiny(kind: str):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config

    common = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256)
    config = Qwen3Config(head_dim=8, **common) if kind == "qwen3" else LlamaConfig(**common)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def _left_padded_batch(lengths: list[int], vocab: int = 97) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    width = max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, width - length:] = torch.randint(1, vocab, (length,), generator=generator)
        mask[row, width - length:] = 1
    return ids, mask


@pytest.mark.parametrize("kind", ["qwen3", "llama"])
@pytest.mark.parametrize("steps", [1, 3, 5])
def test_static_rollout_equals_reference_rollout(kind, steps):
    model = _tiny(kind)
    ids, mask = _left_padded_batch([5, 17, 9])
    with torch.inference_mode():
        expected = latent_rollout(model, ids, mask, steps)
    rollout = StaticRollout(model, length_multiple=8)
    got = rollout(ids, mask, steps)
    assert got.shape == expected.shape == (3, steps, 32)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # the bucket's cache is reused for the next batch (reset, not reallocated) and gives the same answer again
    again = rollout(ids[1:], mask[1:], steps)
    torch.testing.assert_close(again, expected[1:], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("steps", [1, 3])
def test_thoughts_leave_the_states_unchanged_and_equal_the_references(steps):
    model = _tiny("qwen3")
    ids, mask = _left_padded_batch([5, 17, 9])
    rollout = StaticRollout(model, length_multiple=8)
    states, probs, tokens = rollout.with_thoughts(ids, mask, steps, top_k=3)
    torch.testing.assert_close(states, rollout(ids, mask, steps), atol=0, rtol=0)
    with torch.inference_mode():
        _, expected_probs, expected_tokens = latent_rollout_with_thoughts(model, ids, mask, steps, 3)
    assert probs.shape == tokens.shape == (3, steps, 3)
    torch.testing.assert_close(probs, expected_probs, atol=1e-5, rtol=0)
    assert torch.equal(tokens[:, :, 0], expected_tokens[:, :, 0])


def test_a_text_does_not_depend_on_its_batch_mates_or_its_bucket():
    model = _tiny("qwen3")
    ids, mask = _left_padded_batch([4, 30, 11, 7, 19])
    rollout = StaticRollout(model, length_multiple=16)
    together = rollout(ids, mask, 3)
    for row in range(ids.shape[0]):
        keep = mask[row].bool()
        alone = rollout(ids[row:row + 1, keep], mask[row:row + 1, keep], 3)
        torch.testing.assert_close(alone[0], together[row], atol=1e-4, rtol=1e-4)


def test_least_recently_used_buckets_are_dropped():
    model = _tiny("llama")
    rollout = StaticRollout(model, length_multiple=4, max_buckets=2)
    for length in (3, 7, 11):
        ids, mask = _left_padded_batch([length])
        rollout(ids, mask, 2)
    assert len(rollout._buckets) == 2


def test_right_padding_is_refused():
    model = _tiny("llama")
    ids, mask = _left_padded_batch([3, 6])
    with pytest.raises(ValueError, match="left-padded"):
        StaticRollout(model)(ids.flip(1), mask.flip(1), 3)
