"""Bad input swept with Hypothesis through the three ``encode_*`` methods of the real default encoder (LaSER,
SmolLM2-135M) and of MiniLM: each text either encodes to a unit vector equal (1e-5) to its vector encoded alone, or
the call raises an `InvalidInputError` naming the index of the first bad text."""

from __future__ import annotations

import numpy as np
import pytest
from bad_inputs import text_or_not, text_problem, texts
from hypothesis import example, given, settings
from hypothesis import strategies as st

from laser_rag.errors import InvalidInputError, LaserRagError

#: The LaSER encoder thinks K steps per text: fewer examples keep the sweep within seconds per property.
FEW = settings(max_examples=6)
batches = st.lists(text_or_not, min_size=1, max_size=3)


@pytest.fixture(scope="module", params=["encoder", "minilm"])
def model(request):
    return request.getfixturevalue(request.param)


def _first_problem(items) -> int | None:
    return next((index for index, item in enumerate(items) if text_problem(item)), None)


def _check(call, items, alone):
    """``call(items)`` refuses the first bad item by index, or gives unit rows equal to ``alone(item)``."""
    bad = _first_problem(items)
    if bad is not None:
        with pytest.raises(InvalidInputError, match=f"at index {bad} "):
            call(items)
        return
    vectors = call(items)
    assert vectors.shape[0] == len(items) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for row, item in zip(vectors, items):
        np.testing.assert_allclose(row, alone(item), atol=1e-5)


@FEW
@given(items=batches)
@example(items=["a\ud800b"])  # a lone surrogate reached the tokenizer: TypeError, not a laser_rag error
@example(items=["ok", None])
@example(items=["\x1c\u3000"])
def test_encode_queries(model, items):
    _check(model.encode_queries, items, lambda item: model.encode_queries(item))


@FEW
@given(items=batches)
@example(items=["x", "\x00\x01 NUL and controls", "👨\u200d👩\u200d👧 мир"])
def test_encode_documents(model, items):
    _check(model.encode_documents, items, lambda item: model.encode_documents(item))


@FEW
@given(queries=st.lists(texts, min_size=1, max_size=2), rationale=text_or_not)
@example(queries=["why?"], rationale="\udfff")
def test_encode_explicit(model, queries, rationale):
    rationales = [rationale] * len(queries)
    bad_query, bad_rationale = _first_problem(queries), _first_problem(rationales)
    if bad_query is not None or bad_rationale is not None:
        with pytest.raises(InvalidInputError, match="at index 0 "):
            model.encode_explicit(queries, rationales)
        return
    _check(lambda items: model.encode_explicit(items, [rationale] * len(items)), queries,
           lambda item: model.encode_explicit(item, rationale))


@given(value=st.one_of(st.integers(), st.none(), st.binary(max_size=3), st.dictionaries(st.text(), st.text())),
       instruction=st.one_of(st.none(), st.integers(), st.just("\ud800")), batch_size=st.integers(-2, 0))
def test_whole_arguments_of_the_wrong_kind(minilm, value, instruction, batch_size):
    """Not a list of texts at all, a bad instruction, a batch size below 1: refused before any work."""
    with pytest.raises(LaserRagError):
        minilm.encode_queries(value)
    if instruction is not None:
        with pytest.raises(InvalidInputError, match="instruction"):
            minilm.encode_queries(["fine"], instruction=instruction)
    with pytest.raises(InvalidInputError, match="batch_size"):
        minilm.encode_documents(["fine"], batch_size=batch_size)
