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

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from laser_rag.encoders.base import BaseEncoder

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.encoders.laser import BUILTIN_CHECKPOINTS, LaSEREncoder
    from laser_rag.encoders.sentence_transformer import SentenceTransformerEncoder

__all__ = ["BUILTIN_CHECKPOINTS", "BaseEncoder", "LaSEREncoder", "SentenceTransformerEncoder", "load_encoder",
           "register_encoder", "with_thinking_steps"]

_cache: dict[str, BaseEncoder] = {}
_cache_lock = threading.Lock()
#: The encoder kinds, (accepts, load) pairs, asked in order (the most recently registered first); `LaSEREncoder`,
#: which loads any causal LM, is asked last.
_kinds: list[tuple[Callable[[str], bool], Callable[[str], BaseEncoder]]] = []
_fallback: list[Callable[[str], BaseEncoder]] = []
#: The modules whose encoder classes register themselves when imported (loaded before the first encoder is).
_BUILTIN_KINDS = ("laser_rag.encoders.laser", "laser_rag.encoders.sentence_transformer")


def __getattr__(name: str):
    """The encoder classes load torch: they are imported on first use (PEP 562)."""
    if name in ("LaSEREncoder", "BUILTIN_CHECKPOINTS"):
        from laser_rag.encoders import laser as module
    elif name == "SentenceTransformerEncoder":
        from laser_rag.encoders import sentence_transformer as module
    else:
        raise AttributeError(f"module 'laser_rag.encoders' has no attribute {name!r}")
    return getattr(module, name)


def register_encoder(accepts: Callable[[str], bool], load: Callable[[str], BaseEncoder], *,
                     fallback: bool = False) -> None:
    """Teach `load_encoder` a kind of encoder: ``accepts(source)`` says whether a source (a str, ``builtin:``
    names resolved, local paths absolute) is one, ``load(source)`` loads it (a `BaseEncoder`). Kinds are asked
    newest first; ``fallback=True`` (the LaSER encoder: any causal LM) is asked after every other kind."""
    if fallback:
        _fallback[:] = [load]
    else:
        _kinds.insert(0, (accepts, load))


def load_encoder(source: str | Path | None = None, *, num_thinking_steps: int | None = None) -> BaseEncoder:
    """A loaded encoder, shared across the process: the second call with the same source costs nothing.

    ``source``: None (the embedded default, ``builtin:laser``), ``builtin:laser`` / ``builtin:basic``, a hub id,
    a model or checkpoint directory, a ``.gguf`` file, a sentence-transformers model (``all-minilm-l6-v2``, an
    ``st:`` name, a directory with ``modules.json``), or anything a kind added with `register_encoder` accepts.
    ``num_thinking_steps`` gives a view with another K on the same weights (no second copy); an encoder without
    latent steps (`BaseEncoder.supports_thinking_steps`) takes none.
    """
    _import_builtin_kinds()
    key = _cache_key(source)
    with _cache_lock:
        encoder = _cache.get(key)
        if encoder is None:
            load = next((load for accepts, load in _kinds if accepts(key)), None) or _fallback[0]
            encoder = load(key)
            encoder.source = key
            _cache[key] = encoder
    return with_thinking_steps(encoder, num_thinking_steps)


def with_thinking_steps(encoder: BaseEncoder, num_thinking_steps: int | None) -> BaseEncoder:
    """``encoder`` thinking ``num_thinking_steps`` latent steps: a view on the same weights (the encoder itself when
    None or already at that K; `BaseEncoder.with_thinking_steps`). An encoder without latent steps raises
    ValueError."""
    return encoder if num_thinking_steps is None else encoder.with_thinking_steps(num_thinking_steps)


def _import_builtin_kinds() -> None:
    for name in _BUILTIN_KINDS:
        importlib.import_module(name)


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
