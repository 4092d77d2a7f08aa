"""laser_rag: retrieval with LaSER latent-thinking embeddings (Jin et al., 2026).

The way in::

    from laser_rag import LaSEREncoder, load_encoder      # encoders (LaSER, or any BaseEncoder)
    from laser_rag import LaSEREmbedding                  # LlamaIndex BaseEmbedding
    from laser_rag import LaSEREmbeddings, LaSERRetriever # LangChain
    from laser_rag import open_retriever, RAG             # the retrieval modes over Qdrant, the answer loop
    from laser_rag import open_agent                      # LatentRAG: multi-step retrieval with latent thoughts
    from laser_rag import load_corpus                     # your files as Documents

Names are imported on first use, so ``import laser_rag`` is instant and neither torch, Qdrant, LlamaIndex nor
LangChain is loaded before it is needed (and the framework adapters need only their own framework).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # encoders
    "LaSERConfig": "laser_rag.config",
    "LaSEREncoder": "laser_rag.encoders",
    "BaseEncoder": "laser_rag.encoders",
    "load_encoder": "laser_rag.encoders",
    # framework adapters
    "LaSEREmbedding": "laser_rag.integrations.llama_index",
    "LaSEREmbeddings": "laser_rag.integrations.langchain",
    "LaSERRetriever": "laser_rag.integrations.langchain",
    # retrieval modes, answer loop
    "RetrievalMode": "laser_rag.modes",
    "Retriever": "laser_rag.retrieval",
    "open_retriever": "laser_rag.retrieval",
    "RAG": "laser_rag.rag",
    "Answer": "laser_rag.rag",
    "open_agent": "laser_rag.latentrag",
    # corpora
    "Document": "laser_rag.corpus",
    "load_corpus": "laser_rag.corpus",
    # errors and warnings
    "LaserRagError": "laser_rag.errors",
    "ModelNotFoundError": "laser_rag.errors",
    "CollectionMismatchError": "laser_rag.errors",
    "QdrantUnavailableError": "laser_rag.errors",
    "GenerationError": "laser_rag.errors",
    "TruncationWarning": "laser_rag.errors",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.config import LaSERConfig
    from laser_rag.corpus import Document, load_corpus
    from laser_rag.encoders import BaseEncoder, LaSEREncoder, load_encoder
    from laser_rag.errors import (
        CollectionMismatchError,
        GenerationError,
        LaserRagError,
        ModelNotFoundError,
        QdrantUnavailableError,
        TruncationWarning,
    )
    from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever
    from laser_rag.integrations.llama_index import LaSEREmbedding
    from laser_rag.latentrag import open_agent
    from laser_rag.modes import RetrievalMode
    from laser_rag.rag import RAG, Answer
    from laser_rag.retrieval import Retriever, open_retriever


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'laser_rag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
