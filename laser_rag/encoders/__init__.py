"""Encoders: `BaseEncoder` (the interface), `LaSEREncoder`, `SentenceTransformerEncoder`, and `load_encoder`, the
process-wide cache of loaded ones (one copy of each model per process).

Importing this package (or `laser_rag.encoders.base`) loads no torch; the encoder classes load it on first use.

Example::

    from laser_rag.encoders import load_encoder

    laser = load_encoder()                        # the embedded LaSER default (loaded once per process)
    minilm = load_encoder("all-minilm-l6-v2")     # a sentence-transformers baseline
    single = load_encoder(num_thinking_steps=1)   # the same weights as `laser`, one pass
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from laser_rag.encoders.base import BaseEncoder
from laser_rag.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.encoders.laser import BUILTIN_CHECKPOINTS, LaSEREncoder
    from laser_rag.encoders.sentence_transformer import SentenceTransformerEncoder

__all__ = ["BUILTIN_CHECKPOINTS", "BaseEncoder", "LaSEREncoder", "SentenceTransformerEncoder", "load_encoder",
           "with_thinking_steps"]

_cache: dict[str, BaseEncoder] = {}
_cache_lock = threading.Lock()


def __getattr__(name: str):
    """The encoder classes load torch: they are imported on first use (PEP 562)."""
    if name in ("LaSEREncoder", "BUILTIN_CHECKPOINTS"):
        from laser_rag.encoders import laser as module
    elif name == "SentenceTransformerEncoder":
        from laser_rag.encoders import sentence_transformer as module
    else:
        raise AttributeError(f"module 'laser_rag.encoders' has no attribute {name!r}")
    return getattr(module, name)


def load_encoder(source: str | Path | None = None, *, num_thinking_steps: int | None = None) -> BaseEncoder:
    """A loaded encoder, shared across the process: the second call with the same source costs nothing.

    ``source``: None (the embedded default, ``builtin:laser``), ``builtin:laser`` / ``builtin:basic``, a hub id,
    a model or checkpoint directory, a ``.gguf`` file, or a sentence-transformers model (``all-minilm-l6-v2``, an
    ``st:`` name, a directory with ``modules.json``). ``num_thinking_steps`` gives a view with another K on the same
    weights (no second copy); a sentence-transformers model takes none.
    """
    from laser_rag.encoders.laser import LaSEREncoder
    from laser_rag.encoders.sentence_transformer import SentenceTransformerEncoder, is_sentence_transformers

    key = _cache_key(source)
    with _cache_lock:
        encoder = _cache.get(key)
        if encoder is None:
            if is_sentence_transformers(key):
                encoder = SentenceTransformerEncoder.from_pretrained(key)
            else:
                encoder = LaSEREncoder.from_pretrained(key)
            _cache[key] = encoder
    return with_thinking_steps(encoder, num_thinking_steps)


def with_thinking_steps(encoder: BaseEncoder, num_thinking_steps: int | None) -> BaseEncoder:
    """``encoder`` thinking ``num_thinking_steps`` latent steps: a view on the same weights (the encoder itself when
    None or already at that K). An encoder without latent steps (sentence-transformers) raises ValueError."""
    from laser_rag.encoders.laser import LaSEREncoder

    if num_thinking_steps is None:
        return encoder
    if not isinstance(encoder, LaSEREncoder):
        raise InvalidInputError(f"num_thinking_steps applies to LaSER encoders only: {encoder.label!r} is a "
                                "single-pass model")
    return encoder.with_config(num_thinking_steps=num_thinking_steps)


def _cache_key(source: str | Path | None) -> str:
    """One key per model: builtin names and local paths resolve to the directory, MiniLM aliases to one name."""
    from laser_rag.encoders.laser import default_source, resolve_builtin
    from laser_rag.encoders.sentence_transformer import MINILM_ALIASES, ST_PREFIX

    text = resolve_builtin(str(source)) if source is not None else default_source()
    if text.lower().removeprefix(ST_PREFIX) in MINILM_ALIASES:
        return MINILM_ALIASES[0]
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def __dir__() -> list[str]:
    return sorted(__all__)
