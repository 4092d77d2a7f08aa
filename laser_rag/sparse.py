"""Lexical sparse vectors for hybrid search: BM25 term weights that Qdrant stores beside the dense vector.

- Tokens come from bm25s's tokenizer (lower case, words of two or more characters, its English stopwords) and are
  stemmed with the Snowball English stemmer when PyStemmer is importable (`english_stemmer`; the `laser_rag.bm25`
  anchor tokenizes the same way).
- Each token maps to a fixed u32 index: the first 4 bytes of its BLAKE2b hash, the same in every process and on
  every machine (no vocabulary to store or keep in step).
- A document's value for a term is BM25's term-frequency saturation
  ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_length))``, with an *assumed* average length
  (`SparseConfig`): the collection is never re-weighted as it grows. A query's value is 1 per unique term.
- The engine keeps the corpus statistics: the collection's sparse vector is declared with
  ``SparseVectorParams(modifier=Modifier.IDF)``, so Qdrant multiplies each term by its IDF at query time, and a
  query's score is the BM25 score of the document (with the length normalisation above).

Example::

    sparse = SparseEncoder()                      # SparseConfig(): k1=1.2, b=0.75, avg_length=128
    sparse.encode_documents(["Vitamin D\\nVitamin D lowers the risk of fractures"])[0]   # SparseVector(...)
    sparse.encode_query("does vitamin D prevent fractures?")                             # values all 1.0
    sparse.fingerprint                            # recorded in a hybrid collection's metadata
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qdrant_client.models import SparseVector

__all__ = ["SPARSE_VECTOR_NAME", "SparseConfig", "SparseEncoder", "english_stemmer", "token_index"]

#: The name of the sparse vector in a hybrid collection (beside the unnamed dense vector).
SPARSE_VECTOR_NAME = "bm25"
#: Version of the token -> index hash; part of every fingerprint.
_HASH_SCHEME = "blake2b-4-le"


def english_stemmer() -> Any:
    """PyStemmer's Snowball English stemmer, or None when PyStemmer is not installed."""
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=1 << 18)
def token_index(token: str) -> int:
    """The u32 index of a token: the first 4 bytes (little-endian) of its BLAKE2b hash; stable across processes."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little")


@dataclass(frozen=True)
class SparseConfig:
    """How documents are weighted. ``k1`` and ``b`` are BM25's; ``avg_length`` is the document length (in tokens,
    after stopwords) assumed for length normalisation; ``stem`` stems words when PyStemmer is installed."""

    k1: float = 1.2
    b: float = 0.75
    avg_length: float = 128.0
    stem: bool = True

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1 or self.avg_length <= 0:
            raise ValueError(f"need k1 >= 0, 0 <= b <= 1 and avg_length > 0, got {self}")

    @property
    def stemmed(self) -> bool:
        """Whether words are really stemmed here: asked for, and PyStemmer installed."""
        return self.stem and _stemmer() is not None

    @property
    def fingerprint(self) -> str:
        """A short hash of everything that decides a sparse vector (the stemming actually applied included)."""
        described = {**dataclasses.asdict(self), "stem": self.stemmed, "tokenizer": "bm25s-en",
                     "hash": _HASH_SCHEME}
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.cache
def _stemmer() -> Any:
    return english_stemmer()


class SparseEncoder:
    """Texts -> Qdrant ``SparseVector``s (see the module docstring). Cheap to build; holds no corpus state."""

    def __init__(self, config: SparseConfig | None = None) -> None:
        self.config = config or SparseConfig()

    def __repr__(self) -> str:
        return f"SparseEncoder({self.config}, stemmed={self.config.stemmed})"

    @property
    def fingerprint(self) -> str:
        return self.config.fingerprint

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """bm25s's tokens of each text: lower case, English stopwords removed, stemmed when `SparseConfig.stemmed`."""
        import bm25s

        stemmer = _stemmer() if self.config.stem else None
        tokenized = bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer, return_ids=False,
                                   show_progress=False)
        return [[token for token in tokens if token] for tokens in tokenized]

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """One vector per text: BM25 term-frequency saturation per term (the engine adds the IDF)."""
        k1, b, avg = self.config.k1, self.config.b, self.config.avg_length
        vectors = []
        for tokens in self.tokens(texts):
            norm = k1 * (1.0 - b + b * len(tokens) / avg)
            counts = Counter(tokens)
            vectors.append(_vector({token: tf * (k1 + 1.0) / (tf + norm) for token, tf in counts.items()}))
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        """One vector per query: 1 for each unique term (empty when every word is a stopword)."""
        return [_vector(dict.fromkeys(tokens, 1.0)) for tokens in self.tokens(texts)]

    def encode_query(self, text: str) -> SparseVector:
        return self.encode_queries([text])[0]


def _vector(weights: dict[str, float]) -> SparseVector:
    """Token weights -> a SparseVector sorted by index; two tokens hashing to one index add up."""
    from qdrant_client.models import SparseVector

    merged: dict[int, float] = {}
    for token, weight in weights.items():
        index = token_index(token)
        merged[index] = merged.get(index, 0.0) + weight
    indices = sorted(merged)
    return SparseVector(indices=indices, values=[merged[i] for i in indices])
