"""Hypothesis strategies of bad (and awkward but valid) input, shared by the property-based test modules
(``tests/**/test_*_properties.py``), and the oracle that says which inputs laser_rag must refuse.

The text cases: empty, whitespace-only (every Unicode kind), control characters, NUL bytes, lone surrogates, mixed
scripts, emoji sequences, very long texts, plus non-strings (None, numbers, bytes, lists).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Whitespace as ``str.strip`` sees it, ASCII and not (U+001C..U+001F are whitespace to Python too).
_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"
_EMOJI = ["😀", "👍🏽", "🇫🇷", "👨\u200d👩\u200d👧", "❤️", "🧪"]
_SCRIPTS = ["héllo", "мир", "你好", "مرحبا", "שלום", "नमस्ते", "こんにちは", "Ελλάδα", "x"]

blank = st.text(alphabet=_WHITESPACE, max_size=6)
control = st.text(alphabet=st.characters(categories=["Cc"]), min_size=1, max_size=8)
lone_surrogate = st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), st.characters(categories=["Cs"]),
                           st.text(max_size=4))
with_nul = st.builds(lambda a, b: f"{a}\x00{b}", st.text(max_size=6), st.text(max_size=6))
mixed_scripts = st.lists(st.sampled_from(_SCRIPTS + _EMOJI), min_size=1, max_size=6).map(" ".join)
emoji = st.lists(st.sampled_from(_EMOJI), min_size=1, max_size=5).map("".join)
very_long = st.integers(min_value=2_500, max_value=6_000).map(lambda n: ("lorem ipsum " * n)[:n * 2])
texts = st.one_of(st.just(""), blank, control, lone_surrogate, with_nul, mixed_scripts, emoji, very_long,
                  st.text(max_size=30))
non_texts = st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.binary(max_size=4),
                      st.lists(st.text(max_size=3), max_size=2), st.booleans())
#: What a caller might pass where a text is expected.
text_or_not = st.one_of(texts, texts, non_texts)
#: What a caller might pass where a count (k, K, max_new_tokens) is expected.
counts = st.one_of(st.integers(min_value=-3, max_value=6), st.none(), st.booleans(), st.floats(-2, 6),
                   st.sampled_from(["3", "", b"2"]))


def text_problem(value: Any) -> str | None:
    """Why laser_rag must refuse ``value`` as a text (None when it must accept it)."""
    if not isinstance(value, str):
        return "not a str"
    if not value.strip():
        return "empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid Unicode"
    return None


def count_ok(value: Any, *, optional: bool = True) -> bool:
    """Whether laser_rag must accept ``value`` as a count (an int >= 1; None where the count is optional)."""
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
