"""The latent rollout as plain tensor functions: KV-cached steps equal a full recomputation, on several
architectures; soft tokens can be detached for training; pooling runs in float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from laser_rag import backbones
from laser_rag.encoders import LaSEREncoder
from laser_rag.latent import (
    hidden_states,
    latent_rollout,
    latent_rollout_with_thoughts,
    next_token_probs,
    pool_trajectory,
    position_ids_from_mask,
)

TEXTS = [  # a left-padded batch of mixed lengths
    "Did the Roman Empire last longer than the Ottoman Empire, counting from their founding to their fall?",
    "Can penguins fly?",
    "Is water wet?",
    "How?",
]


@pytest.fixture(scope="module")
def base():
    """The untrained default backbone (no adapter, fp32), for its tokenizer and a real model."""
    return LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="float32")


@pytest.fixture(scope="module")
def batch(base):
    ids, _ = base.tokenize(TEXTS, "query")
    return base.pad(ids)


def uncached_trajectory(model, input_ids, attention_mask, num_steps):
    """Reference: recompute the whole sequence (text + soft tokens so far) at every step, no KV cache,
    through the causal LM's own forward (its own logits, soft-capping and embedding scale)."""
    embeddings = model.get_input_embeddings()
    inputs = embeddings(input_ids)  # scaled by the model itself where it scales (Gemma)
    mask = attention_mask
    states = []
    for step in range(num_steps):
        out = model(inputs_embeds=inputs, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                    output_hidden_states=True, use_cache=False)
        states.append(out.hidden_states[-1][:, -1])
        if step + 1 < num_steps:
            probs = torch.softmax(out.logits[:, -1].float(), dim=-1)
            token = (probs @ embeddings.weight) * getattr(embeddings, "embed_scale", 1.0)
            inputs = torch.cat([inputs, token[:, None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
    return torch.stack(states, dim=1)


def assert_same_trajectory(cached, reference):
    """Every state's direction and the pooled embedding agree to 1e-4. (Raw states have norms ~50, so fp32
    summation-order noise reaches ~1e-3 in absolute terms by step 5; directions are what the embedding uses.)"""
    torch.testing.assert_close(F.normalize(cached, dim=-1), F.normalize(reference, dim=-1), atol=1e-4, rtol=0)
    torch.testing.assert_close(pool_trajectory(cached), pool_trajectory(reference), atol=1e-4, rtol=0)


def _tiny_model(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"final_logit_softcapping": 30.0} if model_type == "gemma3_text" else {}
    config = AutoConfig.for_model(
        model_type, vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, **extra,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


def test_kv_cached_rollout_equals_uncached_recomputation(base, batch):
    """The default backbone at K=3 (two steps from the cache); longer rollouts are checked on the tiny models."""
    input_ids, mask = batch
    steps = 3
    with torch.inference_mode():
        cached = latent_rollout(base.model, input_ids, mask, steps)
        reference = uncached_trajectory(base.model, input_ids, mask, steps)
    assert cached.shape == (len(TEXTS), steps, base.dimension)
    assert_same_trajectory(cached, reference)


def test_k1_state_is_the_plain_forwards_last_hidden_state(base, batch):
    input_ids, mask = batch
    with torch.inference_mode():
        states = latent_rollout(base.model, input_ids, mask, 1)
        plain = hidden_states(base.model, input_ids, mask)
    torch.testing.assert_close(states[:, 0], plain[:, -1], atol=1e-5, rtol=0)


def test_detached_soft_tokens_change_the_gradient_not_the_states(monkeypatch):
    """Training's ``detach_soft_tokens``: the same trajectory; the soft tokens are built from states that carry no
    gradient (so the loss does not reach the model through the vocabulary softmax), the steps themselves do."""
    import laser_rag.latent as latent

    model = _tiny_model("qwen3")
    input_ids = torch.randint(0, 1000, (2, 6))
    mask = torch.ones_like(input_ids)
    seen = []
    original = latent.next_token_probs
    monkeypatch.setattr(latent, "next_token_probs", lambda m, h: seen.append(h.requires_grad) or original(m, h))
    full = latent_rollout(model, input_ids, mask, 3)
    detached = latent_rollout(model, input_ids, mask, 3, detach_soft_tokens=True)
    torch.testing.assert_close(full, detached)
    assert seen == [True, True, False, False]
    assert detached[:, 1:].requires_grad


@pytest.mark.parametrize("model_type", ["qwen3", "gemma3_text", "mistral"])
def test_rollout_is_architecture_generic(batch, model_type):
    """Other families (Gemma's embedding scale and logit soft-capping included) roll out like their own forward."""
    model = _tiny_model(model_type)
    input_ids, mask = batch
    with torch.inference_mode():
        cached = latent_rollout(model, input_ids, mask, 5)
        reference = uncached_trajectory(model, input_ids, mask, 5)
    assert_same_trajectory(cached, reference)


def test_rollout_with_thoughts_records_each_steps_distribution():
    """The same states as `latent_rollout`, to the bit; step j's top tokens are the next-token distribution of state
    j (for j < K the mixture fed back as soft token j+1), most probable first."""
    model = _tiny_model("qwen3")
    input_ids = torch.randint(0, 1000, (2, 6))
    mask = torch.ones_like(input_ids)
    mask[1, :2] = 0
    with torch.inference_mode():
        plain = latent_rollout(model, input_ids, mask, 3)
        states, probs, ids = latent_rollout_with_thoughts(model, input_ids, mask, 3, top_k=4)
        expected = next_token_probs(model, states.reshape(6, -1)).reshape(2, 3, -1)
    torch.testing.assert_close(states, plain, atol=0, rtol=0)
    assert probs.shape == ids.shape == (2, 3, 4) and probs.dtype == torch.float32
    torch.testing.assert_close(probs, expected.topk(4, dim=-1).values, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.gather(expected, -1, ids), probs, atol=1e-6, rtol=0)
    assert bool((probs[..., :-1] >= probs[..., 1:]).all()) and bool((probs.sum(-1) <= 1 + 1e-6).all())
    with pytest.raises(ValueError, match="top_k"):
        latent_rollout_with_thoughts(model, input_ids, mask, 3, top_k=0)


def test_rollout_requires_left_padding(base):
    ids = torch.tensor([[5, 6, 7], [5, 6, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match="left-padded"):
        latent_rollout(base.model, ids, mask, 2)
    with pytest.raises(ValueError, match="num_steps"):
        latent_rollout(base.model, ids[:1], mask[:1], 0)


def test_positions_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_pooling_runs_in_float32_whatever_the_states_dtype():
    torch.manual_seed(0)
    states = (torch.randn(4, 3, 64) * 40).to(torch.bfloat16)
    pooled = pool_trajectory(states)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(pooled, F.normalize(states.float().mean(dim=1), dim=-1))
    torch.testing.assert_close(pool_trajectory(states, "last"), F.normalize(states[:, -1].float(), dim=-1))
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_trajectory(states, "cls")
