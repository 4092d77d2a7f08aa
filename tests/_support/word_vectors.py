"""The tests' stand-in for a dense encoder: unit bag-of-words vectors, each word counted in slot md5(word) % d."""

from __future__ import annotations

import hashlib
import re

import numpy as np


def word_vectors(texts: list[str], dimension: int) -> np.ndarray:
    """One unit float32 row per text (all zeros for a text with no word)."""
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % dimension] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
