"""Every error and warning laser_rag raises on purpose, in one light module (no torch, no Qdrant import).

All errors derive from `LaserRagError`, so an application (and the ``laser-rag`` CLI) can catch what laser_rag
raises on purpose without also swallowing programming errors. Each also derives from the closest built-in
(``FileNotFoundError``, ``ConnectionError``, ``ValueError``, ...), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from typing import Any


class LaserRagError(Exception):
    """Base of every error laser_rag raises on purpose; the message says what to do."""


class TruncationWarning(UserWarning):
    """Some inputs were longer than ``max_length`` tokens and were cut. Escalate with ``warnings.simplefilter``."""


# --------------------------------------------------------------------------------------------------- input


class InvalidInputError(LaserRagError, ValueError):
    """An argument the caller passed cannot be used (an empty query, a k below 1, an unknown fusion, a text that is
    not valid Unicode); the message names the argument (and the index, in a list) and what is accepted."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """An argument of the wrong type (a number where a text is expected, None inside a list of texts)."""


# --------------------------------------------------------------------------------------------------- models


class ModelNotFoundError(LaserRagError, FileNotFoundError):
    """A model source that cannot be found or loaded; the message says what to do."""


# --------------------------------------------------------------------------------------------------- corpora


class CorpusError(LaserRagError, ValueError):
    """A corpus file that cannot be read as documents (bad JSON, no text, an empty file); names file and line."""


class CorpusNotFoundError(CorpusError, FileNotFoundError):
    """The corpus path (or a file a BEIR directory needs) does not exist."""


# --------------------------------------------------------------------------------------------------- the store


class StoreError(LaserRagError, RuntimeError):
    """A Qdrant store problem the user can act on; the message says what to do."""


class QdrantUnavailableError(StoreError, ConnectionError):
    """The Qdrant server cannot be reached, or the local folder is held by another process."""


class CollectionNotFoundError(StoreError, LookupError):
    """The collection does not exist (index a corpus into it first)."""


class CollectionMismatchError(StoreError, ValueError):
    """The collection holds vectors of another encoder (fingerprint) or another dimension."""

    def __init__(self, collection: str, stored: dict[str, Any], expected: dict[str, Any], reason: str) -> None:
        self.collection = collection
        self.stored_fingerprint = stored.get("fingerprint")
        self.expected_fingerprint = expected.get("fingerprint")
        super().__init__(
            f"collection {collection!r} {reason}: it holds vectors of encoder {self.stored_fingerprint} "
            f"({stored.get('encoder', '?')}, dim {stored.get('dimension', '?')}), but this encoder is "
            f"{self.expected_fingerprint} ({expected.get('encoder', '?')}, dim {expected.get('dimension', '?')}). "
            "Vectors of different encoders must never share a collection: use another collection name, or "
            "rebuild this one (recreate=True; `laser-rag index ... --recreate`)."
        )


class HybridNotEnabledError(StoreError, ValueError):
    """Hybrid search was asked of a collection without the sparse (BM25) vector, or whose upgrade did not finish.
    The message names the one command that adds it (no dense vector is re-encoded)."""

    def __init__(self, collection: str, reason: str = "has no sparse (BM25) vectors") -> None:
        self.collection = collection
        super().__init__(
            f"collection {collection!r} {reason}, so it cannot do hybrid search. Add them once, without "
            f"re-encoding any dense vector: `laser-rag upgrade-hybrid --collection {collection}` (Python: "
            f"`VectorCollection.open_existing(client, {collection!r}).enable_hybrid()`), or search without hybrid."
        )


class MigrationError(StoreError):
    """``laser-rag migrate`` copied a collection but the copy does not match its source (point counts, or a sampled
    point's vectors or payload); the source is left as it was. The message names what differs."""


# --------------------------------------------------------------------------------------------------- training


class TrainingError(LaserRagError, RuntimeError):
    """A training run that cannot start or go on (another process holds its run folder, a config that does not
    match the run being resumed); the message says what to do."""


# --------------------------------------------------------------------------------------------------- generation


class GenerationError(LaserRagError, RuntimeError):
    """The generator failed; the message says which one and why.

    ``retrieval`` holds what had been retrieved before the failure when it happened inside the answer loop
    (`laser_rag.rag.RAG.ask`), else None: an app can still show the passages.
    """

    def __init__(self, message: str, *, retrieval: Any = None) -> None:
        super().__init__(message)
        self.retrieval = retrieval


class GenerationTimeout(GenerationError, TimeoutError):
    """The generator ran out of time. ``partial`` holds what it had written by then (may be empty)."""

    def __init__(self, message: str, partial: str = "", *, retrieval: Any = None) -> None:
        super().__init__(message, retrieval=retrieval)
        self.partial = partial


# --------------------------------------------------------------------------------------------------- the service


class ServeConfigError(LaserRagError, ValueError):
    """A setting of the embeddings service (`laser_rag.serving.ServeConfig`) out of range; the message names it."""


class RayError(LaserRagError, RuntimeError):
    """Indexing on Ray (`laser_rag.ray_index`) cannot run: Ray is not installed, its cluster cannot be reached or is
    too small, or a worker loads another encoder; the message says which."""


class EmbeddingServiceError(LaserRagError, RuntimeError):
    """An embeddings service (``laser-rag serve``) that cannot be reached or refused a request; says which and why."""
