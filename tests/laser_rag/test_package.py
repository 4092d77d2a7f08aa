"""The public surface of `laser_rag`: a fixed `__all__` and a light import. That it imports no layer above it is
checked with every layer's imports in tests/test_packaging.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import laser_rag

PACKAGE = Path(laser_rag.__file__).parent
PUBLIC = [
    "LaSERConfig", "LaSEREncoder", "BaseEncoder", "load_encoder",
    "LaSEREmbedding", "LaSEREmbeddings", "LaSERRetriever",
    "RetrievalMode", "Retriever", "open_retriever", "RAG", "Answer", "open_agent",
    "Document", "load_corpus",
    "LaserRagError", "ModelNotFoundError", "CollectionMismatchError", "QdrantUnavailableError", "GenerationError",
    "TruncationWarning",
    "__version__",
]
#: `laser_rag.store`'s names: the same as when it was one module, plus the engine interface (llama_node moved to
#: laser_rag.integrations.llama_index with the LlamaIndex schema).
STORE_PUBLIC = [
    "DEFAULT_FUSION", "FUSIONS", "HYBRID_PREFETCH", "PAYLOAD_LAYOUT", "QUANTIZATIONS", "RRF_K",
    "BulkLoad", "CollectionOptions", "CollectionSpec", "Engine", "Hit", "IndexReport", "PointRecord", "PointWrite", "QdrantClientEngine",
    "VectorCollection",
    "close_all", "collection_name", "connect", "default_qdrant_path", "fusion_query", "point_id", "recorded", "release",
]
HEAVY = ("torch", "transformers", "qdrant_client", "llama_index", "langchain", "langchain_core", "numpy")


def test_all_is_pinned():
    assert laser_rag.__all__ == PUBLIC
    assert sorted(dir(laser_rag)) == sorted(PUBLIC)


def test_the_stores_all_is_pinned():
    from laser_rag import store

    assert store.__all__ == STORE_PUBLIC
    assert all(getattr(store, name) is not None for name in STORE_PUBLIC)


def test_every_export_resolves_to_its_module():
    from laser_rag import errors

    for name in PUBLIC:
        assert getattr(laser_rag, name) is not None, name
    assert laser_rag.GenerationError is errors.GenerationError
    assert laser_rag.RetrievalMode.__module__ == "laser_rag.modes"
    assert issubclass(laser_rag.ModelNotFoundError, laser_rag.LaserRagError)


@pytest.mark.parametrize("module", ["laser_rag", "laser_rag.modes", "laser_rag.cli"])
def test_import_loads_no_framework(module):
    """``import laser_rag`` and what the CLI needs at start-up stay light: models load inside the commands."""
    code = (f"import sys, {module}; heavy = {HEAVY!r}; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
