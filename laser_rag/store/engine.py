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
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from laser_rag._store_options import INT8_QUANTILE, BulkLoad, CollectionOptions
from laser_rag.errors import CollectionNotFoundError, StoreError
from laser_rag.sparse import SPARSE_VECTOR_NAME
from laser_rag.store.clients import client_kind
from laser_rag.store.payload import DOC_ID_FIELD

logger = logging.getLogger(__name__)

_LOOKUP_BATCH = 512
#: Points per request of a parallel upload (`BulkLoad.parallel`).
_UPLOAD_BATCH = 256
#: The metadata key where a server collection keeps its HNSW ``m`` while a bulk load defers the index.
_BULK_KEY = "laser_rag_bulk_load"
#: Seconds between two looks at a server collection's status while its index builds.
_POLL_SECONDS = 1.0


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
    IDF modifier), its metadata (``{"laser_rag": {...}}``), which the engine keeps, and how it stores its points
    (`CollectionOptions`)."""

    dimension: int
    sparse: bool
    metadata: dict[str, Any]
    options: CollectionOptions = field(default_factory=CollectionOptions)


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
                    query_filter: models.Filter | None = None,
                    quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        """The ``k`` nearest; ``quantization``: how a quantized collection rescores (None: the engine's default)."""

    @abstractmethod
    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]: ...

    @abstractmethod
    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None,
                     quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        """The dense and the sparse top ``prefetch_limit`` fused by ``fusion``; ``sparse`` None: dense only;
        ``quantization`` applies to the dense candidates."""

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

    @contextlib.contextmanager
    def bulk_load(self, name: str, load: BulkLoad, *, progress: bool = False) -> Iterator[None]:
        """A large first load into ``name`` happens inside this context (see `BulkLoad`); on leaving it normally the
        index is complete (`build_index`). This default defers nothing and builds at the end."""
        yield
        self.build_index(name, timeout=load.timeout, progress=progress)

    def build_index(self, name: str, *, timeout: float | None = None, progress: bool = False) -> None:
        """Make ``name``'s index complete now, so that the next query does not wait for it (``progress``: a
        progress bar; ``timeout``: seconds to wait where the engine builds it elsewhere). This default has no
        index to build."""

    def read_points(self, name: str, ids: Sequence[str]) -> list[PointWrite]:
        """The stored points among ``ids`` as they would be written again: dense vector (as stored: normalised),
        payload, sparse vector (``laser-rag migrate`` copies them with it). This default raises `StoreError`."""
        raise StoreError(f"the {self.kind!r} engine cannot read its points back with their vectors (laser-rag "
                         "migrate needs it)")


class QdrantClientEngine(Engine):
    """An `Engine` on a qdrant-client `QdrantClient` (from `laser_rag.store.connect`): ``kind`` is ``"memory"``,
    ``"local"`` or ``"server"``. ``client`` is the client itself, for the LangChain and LlamaIndex integrations."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._tuned: set[str] = set()  # local collections whose SQLite file `_enable_local_wal` has tuned
        self._parallel: dict[str, int] = {}  # collections in a bulk load -> upload streams

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
        """Create ``name``; a server applies every `CollectionOptions`, local mode refuses any but the defaults."""
        options = spec.options
        if self.kind != "server" and options != CollectionOptions():
            given = {k: v for k, v in options.to_dict().items() if v != getattr(CollectionOptions(), k)}
            raise StoreError(f"qdrant-client's {self.kind} mode keeps every vector in Python and scans them all: it "
                             f"cannot apply {given}. Use the Qdrant Edge engine (an embedded folder) for "
                             "quantization and on-disk storage, a Qdrant server for shards and replicas")
        sparse = {SPARSE_VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)}
        self.client.create_collection(
            name,
            vectors_config=models.VectorParams(size=spec.dimension, distance=models.Distance.COSINE,
                                               on_disk=options.on_disk_vectors),
            sparse_vectors_config=sparse if spec.sparse else None,
            metadata=spec.metadata,
            shard_number=options.shard_number,
            replication_factor=options.replication_factor,
            on_disk_payload=options.on_disk_payload,
            quantization_config=_quantization(options),
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
        """Write points, waiting until they are stored; inside `bulk_load` on a server, in `BulkLoad.parallel`
        upload streams."""
        structs = [models.PointStruct(id=point.id, vector=_vectors(point), payload=point.payload) for point in points]
        parallel = self._parallel.get(name, 1)
        with self._collection(name):
            self._tune(name)
            if parallel > 1 and len(structs) > _UPLOAD_BATCH:
                self.client.upload_points(name, points=structs, batch_size=_UPLOAD_BATCH, parallel=parallel,
                                          wait=True, max_retries=3)
            else:
                self.client.upsert(name, points=structs, wait=True)

    def query_dense(self, name: str, vector: Sequence[float], k: int, *, exact: bool = False,
                    query_filter: models.Filter | None = None,
                    quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        return self._query(name, query=list(vector), limit=k, query_filter=query_filter,
                           search_params=self._search_params(exact, quantization))

    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        return self._query(name, query=vector, using=SPARSE_VECTOR_NAME, limit=k, query_filter=query_filter)

    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None,
                     quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        prefetch = [models.Prefetch(query=list(vector), limit=prefetch_limit, filter=query_filter,
                                    params=self._search_params(False, quantization))]
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

    def read_points(self, name: str, ids: Sequence[str]) -> list[PointWrite]:
        written: list[PointWrite] = []
        with self._collection(name):
            for start in range(0, len(ids), _LOOKUP_BATCH):
                for point in self.client.retrieve(name, ids=list(ids[start:start + _LOOKUP_BATCH]),
                                                  with_payload=True, with_vectors=True):
                    vector = point.vector if isinstance(point.vector, dict) else {"": point.vector}
                    sparse = vector.get(SPARSE_VECTOR_NAME)
                    written.append(PointWrite(id=str(point.id), dense=list(vector[""]), payload=point.payload or {},
                                              sparse=sparse if sparse is not None and sparse.indices else None))
        return written

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

    @contextlib.contextmanager
    def bulk_load(self, name: str, load: BulkLoad, *, progress: bool = False) -> Iterator[None]:
        """On a server: the HNSW index deferred (``m=0``) while the points arrive in ``load.parallel`` streams,
        then switched back on and waited for (`build_index`); a failed load switches it back on without waiting.
        Local mode has no index: nothing is deferred."""
        if self.kind != "server":
            yield
            return
        deferred = self._defer_index(name)
        self._parallel[name] = load.parallel
        try:
            yield
        except BaseException:
            if deferred:
                with contextlib.suppress(Exception):  # best effort: the original error is what matters
                    self._restore_index(name)
            raise
        finally:
            self._parallel.pop(name, None)
        self.build_index(name, timeout=load.timeout, progress=progress)

    def build_index(self, name: str, *, timeout: float | None = None, progress: bool = False) -> None:
        """On a server: switch a deferred index back on, then wait until the collection is green (seen twice,
        ``_POLL_SECONDS`` apart); `StoreError` after ``timeout`` seconds (None: an hour), the server goes on
        indexing. Local mode scans every vector: nothing to build."""
        if self.kind != "server":
            return
        self._restore_index(name)
        deadline = time.monotonic() + (3600.0 if timeout is None else timeout)
        greens = 0
        with self._collection(name), tqdm(desc=f"indexing {name} on the server", unit="vector",
                                          disable=not progress) as bar:
            while True:
                info = self.client.get_collection(name)
                bar.total = info.points_count or 0
                bar.n = min(info.indexed_vectors_count or 0, bar.total)
                bar.set_postfix_str(f"status {info.status.value}")
                greens = greens + 1 if info.status == models.CollectionStatus.GREEN else 0
                if greens >= 2:
                    return
                if time.monotonic() >= deadline:
                    raise StoreError(f"collection {name!r} is still {info.status.value} after {timeout} s "
                                     f"({info.indexed_vectors_count} of {info.points_count} vectors indexed); the "
                                     "server goes on indexing and answers meanwhile (more slowly)")
                time.sleep(_POLL_SECONDS)

    def _defer_index(self, name: str) -> bool:
        """Turn the HNSW index of an empty server collection off (``m=0``), keeping its ``m`` in the collection's
        metadata; True when it is off (now, or still from an interrupted bulk load)."""
        with self._collection(name):
            config = self.client.get_collection(name).config
        if (config.metadata or {}).get(_BULK_KEY):
            return True
        if self.count(name):
            logger.warning("%s already holds points: its HNSW index is not deferred during this bulk load "
                           "(changing it would rebuild the whole index)", name)
            return False
        self.client.update_collection(name, metadata={_BULK_KEY: {"m": config.hnsw_config.m}})
        self.client.update_collection(name, hnsw_config=models.HnswConfigDiff(m=0))
        return True

    def _restore_index(self, name: str) -> None:
        """Give a collection deferred by `_defer_index` its ``m`` back (nothing when it is not deferred)."""
        with self._collection(name):
            deferred = (self.client.get_collection(name).config.metadata or {}).get(_BULK_KEY)
        if deferred:
            self.client.update_collection(name, hnsw_config=models.HnswConfigDiff(m=int(deferred["m"])))
            self.client.update_collection(name, metadata={_BULK_KEY: None})

    def _search_params(self, exact: bool,
                       quantization: models.QuantizationSearchParams | None) -> models.SearchParams | None:
        # local mode always compares against every vector (and warns at any search_params): server options only
        if self.kind != "server" or not (exact or quantization is not None):
            return None
        return models.SearchParams(exact=exact or None, quantization=quantization)

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


def _quantization(options: CollectionOptions) -> models.ScalarQuantization | models.BinaryQuantization | None:
    """qdrant-client's quantization config of `CollectionOptions.quantization`."""
    if options.quantization == "int8":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=INT8_QUANTILE, always_ram=options.quantization_in_ram))
    if options.quantization == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=options.quantization_in_ram))
    return None


def _vectors(point: PointWrite) -> list[float] | dict[str, Any]:
    """A point's vectors as qdrant-client takes them: the unnamed dense one, and the sparse one when it has one."""
    dense = point.dense if isinstance(point.dense, list) else [float(value) for value in point.dense]
    return dense if point.sparse is None else {"": dense, SPARSE_VECTOR_NAME: point.sparse}


def _record(point: Any) -> PointRecord:
    return PointRecord(id=str(point.id), payload=point.payload or {}, score=float(getattr(point, "score", 0.0) or 0.0))


def as_engine(store: QdrantClient | Engine) -> Engine:
    """An `Engine` as given, a `QdrantClient` wrapped in a `QdrantClientEngine`."""
    return QdrantClientEngine(store) if isinstance(store, QdrantClient) else store
