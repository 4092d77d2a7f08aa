"""Qdrant Edge (``qdrant-edge-py``) as an in-process engine of the store: Qdrant's own Rust engine (WAL, HNSW,
sparse vectors with IDF, fusion) inside this process, instead of qdrant-client's pure-Python local mode.

- One folder holds many collections, one Edge shard per sub-folder (``<folder>/<name>/shard``), each with its
  ``collection.json`` beside it (dimension, sparse vector, the laser_rag metadata), written atomically. A
  collection exists once that file does, so a crash half-way through `EdgeEngine.create` leaves no collection.
- One process opens a folder at a time: the engine holds a file lock on ``<folder>/.lock`` while it is open; a
  second process (or a second engine on the same folder) gets `QdrantUnavailableError` at once.
- Points: the unnamed dense vector (cosine, float32) and, in a hybrid collection, the sparse vector ``"bm25"``
  declared with Qdrant's IDF modifier; payloads as given. Every write goes through the shard's write-ahead log
  before `EdgeEngine.upsert` returns, so a killed process loses nothing that an upsert had returned.
- The HNSW index: Edge runs no background optimiser, so the engine runs it itself (``EdgeShard.optimize``, which
  indexes the segments larger than the indexing threshold and merges small ones) on the first query after at least
  ``EdgeIndexConfig.optimize_after`` points were written since the last run, and on `EdgeEngine.close` after any
  write. Points written since still answer queries (searched exactly in the appendable segment).
- Free space: Edge memory-maps its files, and a write into a full disk kills the process (SIGBUS) instead of
  raising. So the engine refuses every write and index build (`StoreError`, nothing written) while less than
  ``min_free_mb`` (`MIN_FREE_MB`) is free under its folder; a query that would build the index then searches
  without building it.
- Queries: ``query_hybrid`` prefetches the dense and the sparse candidates and fuses them with Qdrant's RRF or
  DBSF, as ``QdrantClient.query_points(prefetch=..., query=FusionQuery(...))`` does. Filters are
  ``qdrant_client.models.Filter``s, converted (payload matches, ranges, ids, empty/null, nested).

Example::

    engine = EdgeEngine("/data/laser_rag/edge")
    engine.create("docs", CollectionSpec(dimension=576, sparse=True, metadata={"laser_rag": {}}))
    engine.upsert("docs", [PointWrite(id=point_id("d1"), dense=vector, payload={"text": "..."}, sparse=bm25)])
    hits = engine.query_dense("docs", query_vector, k=10)
    engine.close()
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import qdrant_edge as edge
from filelock import FileLock, Timeout
from qdrant_client import models
from tqdm.auto import tqdm

from laser_rag.util import atomic_write
from laser_rag.errors import CollectionNotFoundError, QdrantUnavailableError, StoreError
from laser_rag.sparse import SPARSE_VECTOR_NAME
from laser_rag._store_options import INT8_QUANTILE, CollectionOptions
from laser_rag.store.engine import CollectionSpec, Engine, PointRecord, PointWrite

__all__ = ["MIN_FREE_MB", "EdgeEngine", "EdgeIndexConfig"]

logger = logging.getLogger(__name__)

#: Below this many MB free under its folder, an `EdgeEngine` refuses to write (see the module docstring).
MIN_FREE_MB = 64

#: Version of ``collection.json``.
_FORMAT = 1
_SPEC_FILE = "collection.json"
_SHARD_DIR = "shard"
_LOCK_FILE = ".lock"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_WRITE_BATCH = 1024
_LOOKUP_BATCH = 1024
#: Qdrant's rank constant of RRF when a ``FusionQuery(fusion=RRF)`` names none.
_QDRANT_RRF_K = 2


@dataclass(frozen=True)
class EdgeIndexConfig:
    """How an Edge collection is indexed and searched. ``m`` and ``ef_construct`` shape the HNSW graph (fixed when
    a collection is created); ``hnsw_ef`` is the search breadth at query time (None: Qdrant's default, the
    graph's ef_construct); ``full_scan_threshold_kb`` and ``indexing_threshold_kb`` are Qdrant's (segments below
    them are searched exactly, not indexed); ``optimize_after`` is how many points written since the last
    optimisation make the next query build the index first. The defaults are the settings docs/scale.md chose
    from measured recall."""

    m: int = 32
    ef_construct: int = 256
    hnsw_ef: int | None = 128
    full_scan_threshold_kb: int = 10_000
    indexing_threshold_kb: int = 10_000
    optimize_after: int = 1_000
    max_indexing_threads: int = 0  # 0: Qdrant's choice (every core)

    def __post_init__(self) -> None:
        if self.m < 2 or self.ef_construct < 4 or (self.hnsw_ef is not None and self.hnsw_ef < 1):
            raise ValueError(f"need m >= 2, ef_construct >= 4 and hnsw_ef >= 1 (or None), got {self}")

    def shard_config(self, spec: CollectionSpec) -> edge.EdgeConfig:
        """The Edge shard configuration of a new collection (with its `CollectionOptions`: on-disk vectors and
        payload, quantization; `StoreError` for the server-only shards and replicas)."""
        options = spec.options
        if options.server_only:
            raise StoreError(f"{options.server_only} need a Qdrant server or cluster (--qdrant-url): an embedded "
                             "Qdrant Edge store is one shard in this process")
        sparse = {SPARSE_VECTOR_NAME: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)} if spec.sparse else None
        return edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=spec.dimension, distance=edge.Distance.Cosine,
                                          memory=_memory(options.on_disk_vectors)),
            sparse_vectors=sparse,
            payload_memory=_memory(options.on_disk_payload),
            quantization_config=_edge_quantization(options),
            hnsw_config=edge.HnswIndexConfig(m=self.m, ef_construct=self.ef_construct,
                                             full_scan_threshold=self.full_scan_threshold_kb,
                                             max_indexing_threads=self.max_indexing_threads),
            optimizers=edge.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb),
        )

    def search_params(self, exact: bool = False,
                      quantization: models.QuantizationSearchParams | None = None) -> edge.SearchParams:
        """Edge's search parameters: ``hnsw_ef``, ``exact``, and how a quantized collection rescores."""
        rescoring = None if quantization is None else edge.QuantizationSearchParams(
            ignore=bool(quantization.ignore), rescore=quantization.rescore, oversampling=quantization.oversampling)
        return edge.SearchParams(hnsw_ef=self.hnsw_ef, exact=exact, quantization=rescoring)


@dataclass
class _Open:
    """An open collection: its shard, its recorded description, and the writes not optimised yet."""

    shard: edge.EdgeShard
    described: dict[str, Any]
    pending: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


# ------------------------------------------------------------------------------------------------- the engine


class EdgeEngine(Engine):
    """Collections of one folder, each a Qdrant Edge shard in this process (see the module docstring).

    Holds the folder's lock from construction to `close` (also a context manager). Raises
    `QdrantUnavailableError` when another process (or another engine) has the folder open. ``min_free_mb``: the
    free space under the folder below which it refuses to write (`StoreError`).
    """

    kind: ClassVar[str] = "edge"

    def __init__(self, path: str | Path, config: EdgeIndexConfig | None = None, *,
                 min_free_mb: int = MIN_FREE_MB) -> None:
        self.path = Path(path).expanduser().resolve()
        self.config = config or EdgeIndexConfig()
        self.min_free_mb = min_free_mb
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / _LOCK_FILE), timeout=0)
        try:
            self._lock.acquire()
        except Timeout as exc:
            raise QdrantUnavailableError(
                f"the Qdrant Edge store {self.path} is in use by another process (one process at a time can open "
                "an embedded store). Close the other process, use another folder, or share one store through a "
                "Qdrant server (--qdrant-url)."
            ) from exc
        self._open: dict[str, _Open] = {}
        self._registry = threading.Lock()
        self._closed = False

    def __enter__(self) -> EdgeEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EdgeEngine({str(self.path)!r}, {self.config})"

    @property
    def closed(self) -> bool:
        """Whether `close` ran (the folder's lock is released; open a new engine to use it again)."""
        return self._closed

    # -------------------------------------------------------------- collections
    def collection_names(self) -> list[str]:
        self._check_open()
        return sorted(p.name for p in self.path.iterdir() if (p / _SPEC_FILE).is_file())

    def exists(self, name: str) -> bool:
        self._check_open()
        return (self._folder(name) / _SPEC_FILE).is_file()

    def create(self, name: str, spec: CollectionSpec) -> None:
        """Create an empty collection; `StoreError` when it exists (delete it first)."""
        if self.exists(name):
            raise StoreError(f"collection {name!r} already exists in {self.path}: delete it first, or open it")
        if spec.dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {spec.dimension}")
        config = self.config.shard_config(spec)  # StoreError for server-only options, before any file
        self._check_room(f"create the collection {name!r}")
        folder = self._folder(name)
        shutil.rmtree(folder, ignore_errors=True)  # what a create that crashed before its spec file left
        shard = edge.EdgeShard.create(str(folder / _SHARD_DIR), config)
        described = {"format": _FORMAT, "dimension": spec.dimension, "sparse": spec.sparse,
                     "index": {"m": self.config.m, "ef_construct": self.config.ef_construct},
                     "options": spec.options.to_dict(), "metadata": spec.metadata}
        shard.flush()
        self._write_spec(name, described)
        with self._registry:
            self._open[name] = _Open(shard, described)

    def delete(self, name: str) -> None:
        """Delete a collection and its files; `CollectionNotFoundError` when there is none."""
        self._described(name)
        with self._registry:
            opened = self._open.pop(name, None)
        if opened is not None:
            opened.shard.close()
        folder = self._folder(name)
        (folder / _SPEC_FILE).unlink()  # first: from here on the collection does not exist, whatever remains
        shutil.rmtree(folder)

    def metadata(self, name: str) -> dict[str, Any]:
        return dict(self._described(name).get("metadata") or {})

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        opened = self._shard(name)
        opened.described = {**opened.described, "metadata": metadata}
        self._write_spec(name, opened.described)

    def dense_size(self, name: str) -> int:
        dimension = self._described(name).get("dimension")
        if not dimension:
            raise StoreError(f"collection {name!r} has no unnamed dense vector")
        return int(dimension)

    def count(self, name: str) -> int:
        return int(self._shard(name).shard.count(edge.CountRequest(exact=True)))

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        shard = self._shard(name).shard
        found: set[str] = set()
        ids = list(ids)
        for start in range(0, len(ids), _LOOKUP_BATCH):
            records = shard.retrieve(ids[start:start + _LOOKUP_BATCH], with_payload=False, with_vector=False)
            found.update(str(record.id) for record in records)
        return found

    # -------------------------------------------------------------- writes
    def upsert(self, name: str, points: Sequence[PointWrite]) -> None:
        """Write points (a point with an existing id replaces it); durable (in the write-ahead log) on return."""
        opened = self._shard(name)
        self._check_room(f"write {len(points)} points to {name!r}")
        sparse = opened.described.get("sparse", False)
        for start in range(0, len(points), _WRITE_BATCH):
            batch = _edge_points(name, points[start:start + _WRITE_BATCH], sparse)
            self._update(name, opened, edge.UpdateOperation.upsert_points(batch))
            opened.pending += len(batch)

    def add_sparse(self, name: str) -> None:
        """Declare the ``"bm25"`` sparse vector (IDF modifier) on an existing collection; nothing when it has it."""
        opened = self._shard(name)
        if opened.described.get("sparse"):
            return
        self._check_room(f"add the sparse vector to {name!r}")
        self._update(name, opened, edge.UpdateOperation.create_sparse_vector(SPARSE_VECTOR_NAME,
                                                                             modifier=edge.Modifier.Idf))
        opened.shard.flush()
        opened.described = {**opened.described, "sparse": True}
        self._write_spec(name, opened.described)

    def set_sparse(self, name: str, vectors: Sequence[tuple[str, models.SparseVector]]) -> None:
        """Set the ``"bm25"`` vector of existing points (an empty vector is left out, as at upsert)."""
        opened = self._shard(name)
        if not opened.described.get("sparse"):
            raise StoreError(f"collection {name!r} has no sparse vector {SPARSE_VECTOR_NAME!r}: add_sparse first")
        self._check_room(f"write {len(vectors)} sparse vectors to {name!r}")
        updates = [edge.PointVectors(point, {SPARSE_VECTOR_NAME: _edge_sparse(vector)})
                   for point, vector in vectors if vector.indices]
        for start in range(0, len(updates), _WRITE_BATCH):
            self._update(name, opened, edge.UpdateOperation.update_vectors(updates[start:start + _WRITE_BATCH]))

    # -------------------------------------------------------------- reads
    def query_dense(self, name: str, vector: Sequence[float], k: int, *, exact: bool = False,
                    query_filter: models.Filter | None = None,
                    quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        request = edge.QueryRequest(limit=k, query=edge.Query.Nearest(_dense(vector)), filter=_edge_filter(query_filter),
                                    params=self.config.search_params(exact, quantization), with_payload=True,
                                    with_vector=False)
        return self._query(name, request)

    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        self._need_sparse(name)
        request = edge.QueryRequest(limit=k, query=edge.Query.Nearest(_edge_sparse(vector), using=SPARSE_VECTOR_NAME),
                                    filter=_edge_filter(query_filter), with_payload=True, with_vector=False)
        return self._query(name, request)

    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None,
                     quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        """The dense candidates (and the sparse ones, unless ``sparse`` is None or empty), ``prefetch_limit`` each,
        fused by ``fusion``; the filter applies to each prefetch, as `VectorCollection.search_hybrid` sends it."""
        condition = _edge_filter(query_filter)
        prefetches = [edge.Prefetch(limit=prefetch_limit, query=edge.Query.Nearest(_dense(vector)),
                                    params=self.config.search_params(False, quantization), filter=condition)]
        if sparse is not None and sparse.indices:
            self._need_sparse(name)
            prefetches.append(edge.Prefetch(limit=prefetch_limit, filter=condition,
                                            query=edge.Query.Nearest(_edge_sparse(sparse), using=SPARSE_VECTOR_NAME)))
        request = edge.QueryRequest(limit=k, prefetches=prefetches, query=_edge_fusion(fusion), with_payload=True,
                                    with_vector=False)
        return self._query(name, request)

    def scroll(self, name: str, *, limit: int, offset: Any = None) -> tuple[list[PointRecord], Any]:
        """Points in id order, ``limit`` at a time; pass the returned offset back for the next page (None: done)."""
        records, following = self._shard(name).shard.scroll(
            edge.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=False))
        return [PointRecord(str(r.id), dict(r.payload or {})) for r in records], \
            (None if following is None else str(following))

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored dense vectors (normalised, as cosine stores them) of the points that exist among ``ids``."""
        shard = self._shard(name).shard
        found: dict[str, list[float]] = {}
        ids = list(ids)
        for start in range(0, len(ids), _LOOKUP_BATCH):
            for record in shard.retrieve(ids[start:start + _LOOKUP_BATCH], with_payload=False, with_vector=True):
                vector = record.vector
                found[str(record.id)] = list(vector[""] if isinstance(vector, dict) else vector)
        return found

    def read_points(self, name: str, ids: Sequence[str]) -> list[PointWrite]:
        shard = self._shard(name).shard
        written: list[PointWrite] = []
        ids = list(ids)
        for start in range(0, len(ids), _LOOKUP_BATCH):
            for record in shard.retrieve(ids[start:start + _LOOKUP_BATCH], with_payload=True, with_vector=True):
                vector = record.vector if isinstance(record.vector, dict) else {"": record.vector}
                lexical = vector.get(SPARSE_VECTOR_NAME)
                sparse = None if lexical is None else models.SparseVector(indices=list(lexical.indices),
                                                                          values=list(lexical.values))
                written.append(PointWrite(id=str(record.id), dense=list(vector[""]), payload=dict(record.payload or {}),
                                          sparse=sparse))
        return written

    def build_index(self, name: str, *, timeout: float | None = None, progress: bool = False) -> None:
        """Build the HNSW index (and the quantized vectors) of what was written since the last optimisation now,
        blocking (``timeout`` does not apply: Edge's build cannot be interrupted), with a one-line progress bar
        when ``progress``; nothing when nothing was written. Otherwise the first query would."""
        opened = self._shard(name)
        with opened.lock:
            if not opened.pending:
                return
            self._check_room(f"build the index of {name!r}")
            with tqdm(total=opened.pending, desc=f"building the index of {name}", unit="point",
                      disable=not progress) as bar:
                opened.shard.optimize()
                bar.update(opened.pending)
            opened.pending = 0

    def close(self) -> None:
        """Optimise what was written since the last optimisation, close every shard and release the folder."""
        if self._closed:
            return
        with self._registry:
            opened, self._open = list(self._open.values()), {}
        try:
            for collection in opened:
                if collection.pending and self._has_room("build the index before closing"):
                    collection.shard.optimize()
                collection.shard.close()
        finally:
            self._closed = True
            self._lock.release()

    # -------------------------------------------------------------- private
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the Qdrant Edge store {self.path} was closed: open a new EdgeEngine")

    def _check_room(self, doing: str) -> None:
        """`StoreError` when less than ``min_free_mb`` is free under the folder (see the module docstring)."""
        free = shutil.disk_usage(self.path).free
        if free < self.min_free_mb * 2**20:
            raise StoreError(f"refusing to {doing}: the disk under {self.path} is (nearly) full, {free / 2**20:.0f} MB "
                             f"free, and Qdrant Edge needs {self.min_free_mb} MB (it memory-maps its files: a write "
                             "into a full disk would kill the process). Free space and run the same command again; "
                             "what was stored is kept")

    def _has_room(self, doing: str) -> bool:
        """Whether an index build may run now: False (and a warning) when `_check_room` would refuse it."""
        try:
            self._check_room(doing)
        except StoreError as exc:
            logger.warning("%s; the collection is searched without its index meanwhile", exc)
            return False
        return True

    def _folder(self, name: str) -> Path:
        if not _NAME.match(name) or name in (".", ".."):
            raise StoreError(f"collection name {name!r} is not allowed in an Edge store: use letters, digits, "
                             "'-', '_' and '.', not starting with '.' or '-'")
        return self.path / name

    def _described(self, name: str) -> dict[str, Any]:
        with self._registry:
            opened = self._open.get(name)
        if opened is not None:
            return opened.described
        return self._read_spec(name)

    def _read_spec(self, name: str) -> dict[str, Any]:
        self._check_open()
        path = self._folder(name) / _SPEC_FILE
        if not path.is_file():
            raise CollectionNotFoundError(f"collection {name!r} not found in the Qdrant Edge store {self.path}; "
                                          "index a corpus into it first")
        described = json.loads(path.read_text(encoding="utf-8"))
        if described.get("format") != _FORMAT:
            raise StoreError(f"collection {name!r} was written by another version of laser_rag's Edge engine "
                             f"(format {described.get('format')}, this one reads {_FORMAT}): re-index it")
        return described

    def _write_spec(self, name: str, described: dict[str, Any]) -> None:
        atomic_write(self._folder(name) / _SPEC_FILE, json.dumps(described, indent=2, sort_keys=True))

    def _shard(self, name: str) -> _Open:
        """The open collection ``name`` (loaded on first use)."""
        with self._registry:
            opened = self._open.get(name)
            if opened is None:
                described = self._read_spec(name)
                shard = edge.EdgeShard.load(str(self._folder(name) / _SHARD_DIR))
                opened = self._open[name] = _Open(shard, described)
            return opened

    def _need_sparse(self, name: str) -> None:
        if not self._described(name).get("sparse"):
            raise StoreError(f"collection {name!r} has no sparse vector {SPARSE_VECTOR_NAME!r}: add it first "
                             "(`laser-rag upgrade-hybrid`), or query the dense vector only")

    def _update(self, name: str, opened: _Open, operation: edge.UpdateOperation) -> None:
        try:
            opened.shard.update(operation)
        except Exception as exc:  # qdrant_edge raises plain Exceptions with Qdrant's message
            raise StoreError(f"Qdrant Edge refused a write to {name!r}: {exc}") from exc

    def _query(self, name: str, request: edge.QueryRequest) -> list[PointRecord]:
        opened = self._shard(name)
        if opened.pending >= self.config.optimize_after and self._has_room(f"build the index of {name!r}"):
            with opened.lock:
                if opened.pending >= self.config.optimize_after:
                    opened.shard.optimize()
                    opened.pending = 0
        try:
            points = opened.shard.query(request)
        except Exception as exc:
            raise StoreError(f"Qdrant Edge could not query {name!r}: {exc}") from exc
        return [PointRecord(str(p.id), dict(p.payload or {}), float(p.score)) for p in points]



# ------------------------------------------------------------------------------------- qdrant-client -> Edge


def _edge_points(name: str, points: Sequence[PointWrite], sparse_declared: bool) -> list[edge.Point]:
    """Points as Edge takes them: dense vectors given as float lists (as `VectorCollection.upsert` gives them) and
    each sparse vector's lists pass as they are, not copied. `StoreError` for a sparse vector in a collection
    without one."""
    dense = _dense_rows([point.dense for point in points])
    converted = []
    for point, vector in zip(points, dense):
        lexical = point.sparse
        if lexical is None or not lexical.indices:
            converted.append(edge.Point(point.id, vector, point.payload))
            continue
        if not sparse_declared:
            raise StoreError(f"collection {name!r} has no sparse vector {SPARSE_VECTOR_NAME!r}: add_sparse first, "
                             "or write the points without one")
        converted.append(edge.Point(point.id, {"": vector, SPARSE_VECTOR_NAME: _edge_sparse(lexical)},
                                    point.payload))
    return converted


def _dense_rows(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Dense vectors as float lists: a list passes as it is (no float32 round trip), anything else (a numpy row)
    is converted once."""
    return [vector if type(vector) is list else _dense(vector) for vector in vectors]


def _dense(vector: Sequence[float]) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def _edge_sparse(vector: models.SparseVector) -> edge.SparseVector:
    # the model's fields are lists of int and float already (pydantic validated them): no copy
    return edge.SparseVector(indices=vector.indices, values=vector.values)


def _memory(on_disk: bool | None) -> edge.Memory | None:
    """Edge's memory placement of `CollectionOptions.on_disk_*`: on disk (Cold), memory-mapped and cached, or
    Edge's default (None)."""
    return None if on_disk is None else edge.Memory.Cold if on_disk else edge.Memory.Cached


def _edge_quantization(options: CollectionOptions) -> Any:
    """Edge's quantization config of `CollectionOptions.quantization` (None: not quantized)."""
    memory = edge.Memory.Pinned if options.quantization_in_ram else None
    if options.quantization == "int8":
        return edge.ScalarQuantizationConfig(type=edge.ScalarType.Int8, quantile=INT8_QUANTILE, memory=memory)
    if options.quantization == "binary":
        return edge.BinaryQuantizationConfig(memory=memory)
    return None


def _edge_fusion(fusion: models.FusionQuery | models.RrfQuery) -> edge.Fusion.Rrf | edge.Fusion.Dbsf:
    """Qdrant's fusion of a qdrant-client query: RRF with its k (Qdrant's 2 when unnamed) and weights, or DBSF."""
    if isinstance(fusion, models.RrfQuery):
        rrf = fusion.rrf
        return edge.Fusion.Rrf(k=_QDRANT_RRF_K if rrf.k is None else int(rrf.k),
                               weights=None if rrf.weights is None else [float(w) for w in rrf.weights])
    if isinstance(fusion, models.FusionQuery):
        if fusion.fusion == models.Fusion.DBSF:
            return edge.Fusion.Dbsf()
        if fusion.fusion == models.Fusion.RRF:
            return edge.Fusion.Rrf(k=_QDRANT_RRF_K)
    raise StoreError(f"the Qdrant Edge engine fuses with RRF or DBSF only, got {fusion!r}")


def _edge_filter(query_filter: models.Filter | None) -> edge.Filter | None:
    """A qdrant-client ``Filter`` as Edge's; `StoreError` for a condition Edge cannot take here."""
    if query_filter is None:
        return None

    def conditions(value: Any) -> list[Any] | None:
        if value is None:
            return None
        return [_edge_condition(c) for c in (value if isinstance(value, list) else [value])]

    min_should = None
    if query_filter.min_should is not None:
        min_should = edge.MinShould(conditions=conditions(query_filter.min_should.conditions),
                                    min_count=query_filter.min_should.min_count)
    return edge.Filter(must=conditions(query_filter.must), should=conditions(query_filter.should),
                       must_not=conditions(query_filter.must_not), min_should=min_should)


def _edge_condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return _edge_filter(condition)
    if isinstance(condition, models.FieldCondition):
        unsupported = [part for part in ("geo_bounding_box", "geo_radius", "geo_polygon", "values_count")
                       if getattr(condition, part) is not None]
        if unsupported:
            raise StoreError(f"the Qdrant Edge engine cannot convert the filter condition {condition!r} "
                             f"({', '.join(unsupported)}); use payload matches, ranges, ids or is_empty/is_null")
        return edge.FieldCondition(key=condition.key, match=_edge_match(condition.match),
                                   range=_edge_range(condition.range), is_empty=condition.is_empty,
                                   is_null=condition.is_null)
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition(point_ids={str(i) for i in condition.has_id})
    if isinstance(condition, models.IsEmptyCondition):
        return edge.IsEmptyCondition(key=condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return edge.IsNullCondition(key=condition.is_null.key)
    if isinstance(condition, models.HasVectorCondition):
        return edge.HasVectorCondition(vector=condition.has_vector)
    if isinstance(condition, models.NestedCondition):
        return edge.NestedCondition(key=condition.nested.key, filter=_edge_filter(condition.nested.filter))
    raise StoreError(f"the Qdrant Edge engine cannot convert the filter condition {condition!r}; use payload "
                     "matches, ranges, ids, is_empty/is_null or nested filters")


def _edge_match(match: Any) -> Any:
    if match is None:
        return None
    if isinstance(match, models.MatchValue):
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return edge.MatchAny(list(match.any))
    if isinstance(match, models.MatchExcept):
        return edge.MatchExcept(list(match.except_))
    if isinstance(match, models.MatchText):
        return edge.MatchText(match.text)
    if isinstance(match, models.MatchPhrase):
        return edge.MatchPhrase(match.phrase)
    if isinstance(match, models.MatchTextAny):
        return edge.MatchTextAny(match.text_any)
    raise StoreError(f"the Qdrant Edge engine cannot convert the match {match!r}")


def _edge_range(value: Any) -> edge.RangeFloat | None:
    if value is None:
        return None
    if isinstance(value, models.Range):
        return edge.RangeFloat(gte=value.gte, gt=value.gt, lte=value.lte, lt=value.lt)
    raise StoreError(f"the Qdrant Edge engine converts numeric ranges only, got {value!r}")
