"""The narrow interface `VectorCollection` talks to (`Engine`), and `QdrantClientEngine`, its qdrant-client
implementation (``":memory:"``, an embedded folder, a server or cluster).

An engine stores named collections of points, each with one unnamed dense vector (float32, cosine), an optional
sparse vector ``"bm25"`` (Qdrant's IDF modifier) and a payload; it keeps each collection's metadata. It knows
nothing of encoders or of the payload's layout. Types from `qdrant_client.models` (SparseVector, Filter,
FusionQuery, RrfQuery) appear in it; an engine that is not qdrant-client converts them. A missing collection
raises `CollectionNotFoundError`; an operation an engine cannot do raises `StoreError` saying what to do instead.
Query results are best first.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from qdrant_client import QdrantClient, models

from laser_rag.errors import CollectionNotFoundError, StoreError
from laser_rag.sparse import SPARSE_VECTOR_NAME
from laser_rag.store.clients import client_kind
from laser_rag.store.payload import DOC_ID_FIELD

logger = logging.getLogger(__name__)

_LOOKUP_BATCH = 512


@dataclass(frozen=True)
class PointRecord:
    """What an engine returns: a point's id (the Qdrant point id, a uuid string), payload and score."""

    id: str
    payload: dict[str, Any]
    score: float = 0.0


@dataclass(frozen=True)
class PointWrite:
    """What an engine writes: the unnamed dense vector, the payload, and the ``"bm25"`` sparse vector (None: the
    point has none)."""

    id: str
    dense: Sequence[float]
    payload: dict[str, Any]
    sparse: models.SparseVector | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """A collection to create: the dense dimension, whether it declares the sparse ``"bm25"`` vector (with Qdrant's
    IDF modifier), and its metadata (``{"laser_rag": {...}}``), which the engine keeps."""

    dimension: int
    sparse: bool
    metadata: dict[str, Any]


class Engine(ABC):
    """Where a `VectorCollection` keeps its points. ``kind``: ``"memory"``, ``"local"``, ``"server"``, ``"edge"``."""

    kind: ClassVar[str]

    @abstractmethod
    def collection_names(self) -> list[str]: ...

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def create(self, name: str, spec: CollectionSpec) -> None: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    @abstractmethod
    def metadata(self, name: str) -> dict[str, Any]:
        """The collection's metadata; {} when it has none."""

    @abstractmethod
    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None: ...

    @abstractmethod
    def dense_size(self, name: str) -> int:
        """The dimension of the unnamed dense vector; StoreError when the collection has none."""

    @abstractmethod
    def count(self, name: str) -> int:
        """How many points the collection holds (exact)."""

    @abstractmethod
    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        """Which of these point ids are stored."""

    @abstractmethod
    def upsert(self, name: str, points: Sequence[PointWrite]) -> None:
        """Write points; durable when it returns."""

    @abstractmethod
    def query_dense(self, name: str, vector: Sequence[float], k: int, *, exact: bool = False,
                    query_filter: models.Filter | None = None) -> list[PointRecord]: ...

    @abstractmethod
    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]: ...

    @abstractmethod
    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        """The dense and the sparse top ``prefetch_limit`` fused by ``fusion``; ``sparse`` None: dense only."""

    @abstractmethod
    def scroll(self, name: str, *, limit: int, offset: Any = None) -> tuple[list[PointRecord], Any]:
        """A page of points (no vectors) and the offset of the next page (None after the last)."""

    @abstractmethod
    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, list[float]]:
        """The dense vectors of these point ids (those stored)."""

    @abstractmethod
    def add_sparse(self, name: str) -> None:
        """Declare the ``"bm25"`` sparse vector on an existing collection."""

    @abstractmethod
    def set_sparse(self, name: str, vectors: Sequence[tuple[str, models.SparseVector]]) -> None:
        """Set the ``"bm25"`` vector of existing points, by point id."""

    @abstractmethod
    def close(self) -> None: ...


class QdrantClientEngine(Engine):
    """An `Engine` on a qdrant-client `QdrantClient` (from `laser_rag.store.connect`): ``kind`` is ``"memory"``,
    ``"local"`` or ``"server"``. ``client`` is the client itself, for the LangChain and LlamaIndex integrations."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._tuned: set[str] = set()  # local collections whose SQLite file `_enable_local_wal` has tuned

    @property
    def kind(self) -> str:  # type: ignore[override]  # one class, three kinds of qdrant-client store
        return client_kind(self.client)

    def __repr__(self) -> str:
        return f"QdrantClientEngine({self.kind})"

    def collection_names(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def exists(self, name: str) -> bool:
        return self.client.collection_exists(name)

    def create(self, name: str, spec: CollectionSpec) -> None:
        sparse = {SPARSE_VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)}
        self.client.create_collection(
            name,
            vectors_config=models.VectorParams(size=spec.dimension, distance=models.Distance.COSINE),
            sparse_vectors_config=sparse if spec.sparse else None,
            metadata=spec.metadata,
        )
        self._tuned.discard(name)
        if self.metadata(name) != spec.metadata:
            self.client.delete_collection(name)
            raise StoreError(f"this Qdrant server does not keep collection metadata (needed to record the encoder "
                             f"fingerprint of {name!r}); use Qdrant 1.16 or newer")
        if self.kind == "server":  # payload indexes have no effect (and warn) in the embedded store
            self.client.create_payload_index(name, DOC_ID_FIELD, field_schema=models.PayloadSchemaType.KEYWORD)

    def delete(self, name: str) -> None:
        with self._collection(name):
            if not self.client.delete_collection(name):
                raise LookupError(name)
        self._tuned.discard(name)

    def metadata(self, name: str) -> dict[str, Any]:
        with self._collection(name):
            return dict(self.client.get_collection(name).config.metadata or {})

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        with self._collection(name):
            self.client.update_collection(name, metadata=metadata)

    def dense_size(self, name: str) -> int:
        with self._collection(name):
            vectors = self.client.get_collection(name).config.params.vectors
        if isinstance(vectors, dict):  # named vectors: only the unnamed default is shared by both integrations
            if "" in vectors:
                return int(vectors[""].size)
            raise StoreError(f"collection {name!r} uses named vectors {sorted(vectors)}; laser_rag, LlamaIndex and "
                             "LangChain share the unnamed default vector")
        return int(vectors.size)

    def count(self, name: str) -> int:
        with self._collection(name):
            return int(self.client.count(name, exact=True).count)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._collection(name):
            for start in range(0, len(ids), _LOOKUP_BATCH):
                points = self.client.retrieve(name, ids=list(ids[start:start + _LOOKUP_BATCH]), with_payload=False,
                                              with_vectors=False)
                found.update(str(point.id) for point in points)
        return found

    def upsert(self, name: str, points: Sequence[PointWrite]) -> None:
        structs = [models.PointStruct(id=point.id, vector=_vectors(point), payload=point.payload) for point in points]
        with self._collection(name):
            self._tune(name)
            self.client.upsert(name, points=structs, wait=True)

    def query_dense(self, name: str, vector: Sequence[float], k: int, *, exact: bool = False,
                    query_filter: models.Filter | None = None) -> list[PointRecord]:
        # the embedded store always compares against every vector: exact search is a server option only
        params = models.SearchParams(exact=True) if exact and self.kind == "server" else None
        return self._query(name, query=list(vector), limit=k, query_filter=query_filter, search_params=params)

    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        return self._query(name, query=vector, using=SPARSE_VECTOR_NAME, limit=k, query_filter=query_filter)

    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        prefetch = [models.Prefetch(query=list(vector), limit=prefetch_limit, filter=query_filter)]
        if sparse is not None:
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE_VECTOR_NAME, limit=prefetch_limit,
                                            filter=query_filter))
        return self._query(name, prefetch=prefetch, query=fusion, limit=k)

    def scroll(self, name: str, *, limit: int, offset: Any = None) -> tuple[list[PointRecord], Any]:
        with self._collection(name):
            points, following = self.client.scroll(name, limit=limit, offset=offset, with_payload=True,
                                                   with_vectors=False)
        return [_record(point) for point in points], following

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, list[float]]:
        with self._collection(name):
            points = self.client.retrieve(name, ids=list(ids), with_payload=False, with_vectors=True)
        return {str(point.id): list(point.vector[""] if isinstance(point.vector, dict) else point.vector)
                for point in points}

    def add_sparse(self, name: str) -> None:
        config = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF))
        with self._collection(name):
            try:
                self.client.create_vector_name(name, SPARSE_VECTOR_NAME, config)
            except Exception as exc:  # an older server (the embedded store supports it): say what to do instead
                if not self.exists(name):
                    raise
                raise StoreError(f"this Qdrant store cannot add the sparse vector to {name!r} in place "
                                 f"({type(exc).__name__}: {exc}); re-index it with `laser-rag index ... --hybrid "
                                 "--recreate` instead") from exc

    def set_sparse(self, name: str, vectors: Sequence[tuple[str, models.SparseVector]]) -> None:
        updates = [models.PointVectors(id=point, vector={SPARSE_VECTOR_NAME: vector}) for point, vector in vectors]
        with self._collection(name):
            self._tune(name)
            self.client.update_vectors(name, points=updates, wait=True)

    def close(self) -> None:
        self.client.close()

    def _query(self, name: str, **kwargs: Any) -> list[PointRecord]:
        with self._collection(name):
            points = self.client.query_points(name, with_payload=True, with_vectors=False, **kwargs).points
        return [_record(point) for point in points]

    @contextlib.contextmanager
    def _collection(self, name: str) -> Iterator[None]:
        """Turns qdrant-client's error for a missing collection (it differs by transport) into
        `CollectionNotFoundError`; asks whether the collection exists only once a call has failed."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if self.exists(name):
                raise
            raise CollectionNotFoundError(f"no collection {name!r} in this Qdrant store. Existing: "
                                          f"{self.collection_names()}") from exc

    def _tune(self, name: str) -> None:
        """Tunes a local collection's storage once, before this engine's first write to it."""
        if self.kind == "local" and name not in self._tuned:
            _enable_local_wal(self.client, name)
            self._tuned.add(name)


def _enable_local_wal(client: QdrantClient, name: str) -> bool:
    """Put the SQLite file of an embedded (folder) collection in WAL mode with synchronous=NORMAL; True when it is.

    Embedded mode commits once per point; in WAL mode a commit skips the fsync, so writes are much faster
    (``python -m laser_rag_benchmarks.framework_overhead`` measures both). A committed point still survives a crash
    of the process (only an OS crash or power loss can lose the last commits). qdrant-client has no public hook for
    this, so this is the one function that reads its internals (the client's
    ``_client.collections[name].storage.storage`` sqlite3 connection); when they change it logs and returns False
    (writes stay correct, only slower), and tests/laser_rag/store/test_engine.py fails loudly."""
    if client_kind(client) != "local":
        return False
    try:
        connection = client._client.collections[name].storage.storage
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except Exception as exc:  # changed qdrant-client internals
        logger.debug("could not put the local Qdrant collection %s in WAL mode: %s", name, exc)
        return False
    return True


def _vectors(point: PointWrite) -> list[float] | dict[str, Any]:
    """A point's vectors as qdrant-client takes them: the unnamed dense one, and the sparse one when it has one."""
    dense = point.dense if isinstance(point.dense, list) else [float(value) for value in point.dense]
    return dense if point.sparse is None else {"": dense, SPARSE_VECTOR_NAME: point.sparse}


def _record(point: Any) -> PointRecord:
    return PointRecord(id=str(point.id), payload=point.payload or {}, score=float(getattr(point, "score", 0.0) or 0.0))


def as_engine(store: QdrantClient | Engine) -> Engine:
    """An `Engine` as given, a `QdrantClient` wrapped in a `QdrantClientEngine`."""
    return QdrantClientEngine(store) if isinstance(store, QdrantClient) else store
