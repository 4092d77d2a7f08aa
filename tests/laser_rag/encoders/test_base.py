"""`BaseEncoder`: input validation (once, for every encoder), the one document-text rule, and a light import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from laser_rag.encoders.base import BaseEncoder


class HashEncoder(BaseEncoder):
    """A numpy-only encoder: enough to exercise the base class without a model."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str], dict]] = []

    dimension = property(lambda self: 8)
    fingerprint = property(lambda self: "hash")
    label = property(lambda self: "hash")
    max_length = property(lambda self: 64)
    tokenizer = property(lambda self: None)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vectors(self, texts: list[str]) -> np.ndarray:
        rows = np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar):
        self.calls.append(("queries", texts, {"instruction": instruction, "batch_size": batch_size}))
        return self._vectors([f"{instruction}:{t}" for t in texts])

    def _encode_documents(self, texts, *, batch_size, show_progress_bar):
        self.calls.append(("documents", texts, {"batch_size": batch_size}))
        return self._vectors(texts)

    def _encode_explicit(self, queries, rationales, *, batch_size):
        self.calls.append(("explicit", queries, {"rationales": rationales}))
        return self._vectors([f"{q}\n{r}" for q, r in zip(queries, rationales)])


def test_bad_input_is_rejected_with_its_index():
    encoder = HashEncoder()
    with pytest.raises(ValueError, match="query at index 2 is empty"):
        encoder.encode_queries(["a", "b", "   "])
    with pytest.raises(TypeError, match="document at index 1 is a int"):
        encoder.encode_documents(["a", 3])
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode_documents(None)
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode_documents(b"bytes")
    with pytest.raises(ValueError, match="rationale at index 0 is empty"):
        encoder.encode_explicit(["q"], [""])
    with pytest.raises(ValueError, match="2 queries but 1 rationales"):
        encoder.encode_explicit(["a", "b"], ["r"])
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode_documents(["a"], batch_size=0)
    assert encoder.calls == []  # nothing reached the model


def test_one_string_gives_one_vector_and_lists_give_matrices():
    encoder = HashEncoder()
    assert encoder.encode_documents("one").shape == (8,)
    assert encoder.encode_documents(("one", "two")).shape == (2, 8)
    assert encoder.encode_queries("why?", instruction="Find it").shape == (8,)
    assert encoder.calls[-1] == ("queries", ["why?"], {"instruction": "Find it", "batch_size": 16})
    assert encoder.encode_explicit("q", "r").shape == (8,)
    assert encoder.precision == "float32"
    calls = len(encoder.calls)
    assert encoder.encode_documents([]).shape == encoder.encode_queries([]).shape == (0, 8)
    assert encoder.encode_explicit([], []).shape == (0, 8) and len(encoder.calls) == calls


def test_document_text_is_title_then_text():
    encoder = HashEncoder()
    assert encoder.document_text("Title", "Body.") == "Title\nBody."
    assert encoder.document_text("", "Body.") == "Body."


def test_the_base_class_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        BaseEncoder()


def test_importing_the_interface_loads_no_torch():
    code = ("import sys, laser_rag.encoders, laser_rag.encoders.base, laser_rag.config; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
