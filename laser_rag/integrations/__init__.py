"""Thin adapters for LlamaIndex (`laser_rag.integrations.llama_index`) and LangChain
(`laser_rag.integrations.langchain`). Each module imports its framework; import the one you use. Both wrap any
laser_rag encoder (`laser_rag.encoders.BaseEncoder`) and read and write the store's one payload layout."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from laser_rag.errors import InvalidInputError

if TYPE_CHECKING:
    from laser_rag.encoders.base import BaseEncoder

__all__ = ["resolve_encoder"]


def resolve_encoder(encoder: BaseEncoder | None = None, source: str | Path | None = None,
                    num_thinking_steps: int | None = None) -> BaseEncoder:
    """The encoder an adapter wraps: ``encoder`` as given (a view with another K when ``num_thinking_steps`` is set:
    LaSER encoders only), else `laser_rag.encoders.load_encoder` of ``source`` (None: the embedded default)."""
    from laser_rag.encoders import load_encoder, with_thinking_steps

    if encoder is None:
        return load_encoder(source, num_thinking_steps=num_thinking_steps)
    if source is not None:
        raise InvalidInputError("pass a source to load or an encoder already loaded, not both")
    return with_thinking_steps(encoder, num_thinking_steps)  # shares the weights
