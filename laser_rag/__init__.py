"""laser_rag: retrieval with LaSER latent-thinking embeddings (Jin et al., 2026).

The way in::

    from laser_rag import LaSEREncoder            # the encoder
    from laser_rag import LaSEREmbedding          # LlamaIndex BaseEmbedding
    from laser_rag import LaSEREmbeddings, LaSERRetriever   # LangChain
    from laser_rag import open_retriever, RAG     # the three retrieval modes over Qdrant, the answer loop

Names are imported on first use, so ``import laser_rag`` is instant and neither torch, LlamaIndex nor LangChain is
loaded before it is needed (and the framework adapters need only their own framework).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # the encoder
    "LaSERConfig": "laser_rag.config",
    "LaSEREncoder": "laser_rag.encoder",
    "TruncationWarning": "laser_rag.encoder",
    "ModelNotFoundError": "laser_rag._models",
    # framework adapters
    "LaSEREmbedding": "laser_rag.integrations.llama_index",
    "LaSEREmbeddings": "laser_rag.integrations.langchain",
    "LaSERRetriever": "laser_rag.integrations.langchain",
    # store, retrieval modes, answer loop
    "CollectionMismatchError": "laser_rag.store",
    "QdrantUnavailableError": "laser_rag.store",
    "RetrievalMode": "laser_rag.retrieval",
    "Retriever": "laser_rag.retrieval",
    "open_retriever": "laser_rag.retrieval",
    "RAG": "laser_rag.rag",
    "Answer": "laser_rag.rag",
    "GenerationError": "laser_rag.llm",
    # data
    "Document": "laser_rag.datasets",
    "load_corpus": "laser_rag.datasets",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag._models import ModelNotFoundError
    from laser_rag.config import LaSERConfig
    from laser_rag.datasets import Document, load_corpus
    from laser_rag.encoder import LaSEREncoder, TruncationWarning
    from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever
    from laser_rag.integrations.llama_index import LaSEREmbedding
    from laser_rag.llm import GenerationError
    from laser_rag.rag import RAG, Answer
    from laser_rag.retrieval import RetrievalMode, Retriever, open_retriever
    from laser_rag.store import CollectionMismatchError, QdrantUnavailableError


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'laser_rag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
