"""LatentRAG (Zheng & Worring, 2026): agentic multi-step retrieval with latent thought and subquery tokens.

The way in::

    from laser_rag.latentrag import open_agent
    agent = open_agent("pydoc")                          # the shipped checkpoint over the corpus's collection
    answer = agent.ask("How do I open a file?", decode=True)

It is the ``latentrag`` mode of `laser_rag.modes.MODES`: its documents are indexed by the checkpoint's reference
retriever (all-MiniLM-L6-v2 by default), so its collection is that encoder's ``<corpus>-all-minilm-l6-v2``, the
same one the naive single-step baseline (``open_retriever("latentrag", corpus)``) searches.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from laser_rag import _builtin
from laser_rag.latentrag.agent import LatentAnswer, LatentRAG, LatentStep, decode_latents
from laser_rag.latentrag.config import LatentRAGConfig
from laser_rag.latentrag.model import LatentRAGModel, Projector

__all__ = ["LatentAnswer", "LatentRAG", "LatentRAGConfig", "LatentRAGModel", "LatentStep", "Projector",
           "decode_latents", "load_model", "open_agent", "resolve_checkpoint", "BUILTIN_CHECKPOINT",
           "EXPLICIT_CHECKPOINT"]

BUILTIN_CHECKPOINT = _builtin.SHIPPED["latentrag"]
#: The shipped explicit agent (`laser_rag.latentrag.explicit`), the baseline the eval compares LatentRAG with.
EXPLICIT_CHECKPOINT = _builtin.SHIPPED["explicit-agent"]


def resolve_checkpoint(source: str | Path | None, default: Path = BUILTIN_CHECKPOINT) -> Path:
    """A checkpoint source as a folder: None or ``builtin`` is ``default`` (the shipped LatentRAG checkpoint), a
    ``builtin:<name>`` a shipped one (`laser_rag._builtin.resolve_builtin`), anything else a path (``~``
    expanded). Whether the folder holds a checkpoint is not checked here."""
    if source is None or str(source) == "builtin":
        return default
    return Path(_builtin.resolve_builtin(str(source))).expanduser()


@functools.cache
def _cached_model(path: str, device: str | None, dtype: str | None) -> LatentRAGModel:
    return LatentRAGModel.from_pretrained(path, device=device, dtype=dtype)


def load_model(source: str | Path | None = None, *, device: str | None = None,
               dtype: str | None = None) -> LatentRAGModel:
    """A trained LatentRAG checkpoint (default: the shipped one, ``builtin:latentrag``), loaded once per process."""
    return _cached_model(str(resolve_checkpoint(source).resolve()), device, dtype)


def open_agent(corpus: str = "default", *, client: Any = None, checkpoint: str | Path | None = None,
               collection: str | None = None, decode: bool = False, model: LatentRAGModel | None = None) -> LatentRAG:
    """The LatentRAG agent over the collection ``<corpus>-<reference retriever label>`` (or ``collection``). The
    collection must exist and have been built by the checkpoint's reference retriever (index it with the
    ``latentrag`` mode, or with that encoder): `CollectionNotFoundError` / `CollectionMismatchError` otherwise."""
    from laser_rag import store
    from laser_rag.encoders import load_encoder

    model = model if model is not None else load_model(checkpoint)
    reference = load_encoder(model.config.retriever)
    client = client if client is not None else store.connect()
    name = collection or store.collection_name(corpus, reference.label)
    opened = store.VectorCollection.open(client, name, reference)
    return LatentRAG(model, opened, decode=decode)
