"""The embedded store of a folder, what `laser_rag.store.connect` gives without a URL: `EmbeddedEngine`.

- Qdrant Edge (`laser_rag.store.edge.EdgeEngine`) in ``<folder>/edge`` holds every collection created here.
- A collection the folder still holds in qdrant-client's local mode (the embedded store before Edge: ``meta.json``
  and ``collection/<name>/`` in the folder itself) is used there, with a one-time warning naming
  ``laser-rag migrate``, until it is migrated (`laser_rag.store.migrate`). So no name ever has two live copies: the
  local-mode one wins while it exists, and migrating sets it aside (`set_aside`) into ``<folder>/local-mode.migrated``
  (a local-mode store of its own, kept, not deleted) once Edge holds all of it.
- The local-mode client is opened only when a local-mode collection is used (it loads every point into memory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from qdrant_client import models

from laser_rag._store_options import BulkLoad
from laser_rag.errors import StoreError
from laser_rag.store.edge import EdgeEngine, EdgeIndexConfig
from laser_rag.store.engine import CollectionSpec, Engine, PointRecord, PointWrite, QdrantClientEngine
from laser_rag.util import atomic_write

logger = logging.getLogger(__name__)

#: The sub-folder of an embedded folder where Qdrant Edge keeps its collections.
EDGE_DIR = "edge"
#: The sub-folder where migrated local-mode collections are set aside (a qdrant-client local-mode store).
MIGRATED_DIR = "local-mode.migrated"
#: qdrant-client local mode's catalogue of its collections, and the folder of their points.
_LOCAL_META = "meta.json"
_LOCAL_COLLECTIONS = "collection"


def local_mode_collections(folder: str | Path) -> list[str]:
    """The collections qdrant-client's local mode holds in ``folder`` (from its ``meta.json``; none without one)."""
    meta = Path(folder) / _LOCAL_META
    if not meta.is_file():
        return []
    return sorted(json.loads(meta.read_text(encoding="utf-8")).get("collections") or {})


class EmbeddedEngine(Engine):
    """The embedded store of one folder (module docstring): Qdrant Edge, plus the folder's local-mode collections
    not migrated yet. Holds Edge's folder lock until `close` (`QdrantUnavailableError` for a second process)."""

    kind: ClassVar[str] = "edge"

    def __init__(self, folder: str | Path, config: EdgeIndexConfig | None = None) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.edge = EdgeEngine(self.folder / EDGE_DIR, config)
        self._local_names = set(local_mode_collections(self.folder))
        self._local: QdrantClientEngine | None = None
        self._warned: set[str] = set()
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        legacy = f", local mode: {sorted(self._local_names)}" if self._local_names else ""
        return f"EmbeddedEngine({str(self.folder)!r}{legacy})"

    @property
    def closed(self) -> bool:
        return self.edge.closed

    def local_mode(self) -> QdrantClientEngine:
        """The folder's qdrant-client local-mode store (opened on first use)."""
        with self._guard:
            if self._local is None:
                from laser_rag.store.clients import local_mode_client

                self._local = QdrantClientEngine(local_mode_client(self.folder))
            return self._local

    def in_local_mode(self, name: str) -> bool:
        """Whether ``name`` is still a local-mode collection of the folder (not migrated to Edge yet)."""
        return name in self._local_names

    def _engine(self, name: str) -> Engine:
        if name not in self._local_names:
            return self.edge
        if name not in self._warned:
            self._warned.add(name)
            logger.warning("collection %r in %s is still in qdrant-client's local mode (every query scans every "
                           "point in Python): move it to Qdrant Edge once with `laser-rag migrate --qdrant-path %s "
                           "--collection %s` (no re-encoding)", name, self.folder, self.folder, name)
        return self.local_mode()

    # ------------------------------------------------------------------ the interface, routed by name
    def collection_names(self) -> list[str]:
        return sorted(set(self.edge.collection_names()) | self._local_names)

    def exists(self, name: str) -> bool:
        return name in self._local_names or self.edge.exists(name)

    def create(self, name: str, spec: CollectionSpec) -> None:
        if name in self._local_names:
            raise StoreError(f"collection {name!r} exists in {self.folder} (qdrant-client local mode): delete it "
                             "first, or open it")
        self.edge.create(name, spec)

    def delete(self, name: str) -> None:
        """Delete ``name``: its local-mode collection (and the partial Edge copy an interrupted migration left, so
        that it never surfaces in its place), or its Edge collection."""
        if name not in self._local_names:
            self.edge.delete(name)
            return
        self._engine(name).delete(name)
        self._local_names.discard(name)
        if self.edge.exists(name):
            self.edge.delete(name)

    def metadata(self, name: str) -> dict[str, Any]:
        return self._engine(name).metadata(name)

    def set_metadata(self, name: str, metadata: dict[str, Any]) -> None:
        self._engine(name).set_metadata(name, metadata)

    def dense_size(self, name: str) -> int:
        return self._engine(name).dense_size(name)

    def count(self, name: str) -> int:
        return self._engine(name).count(name)

    def existing_ids(self, name: str, ids: Sequence[str]) -> set[str]:
        return self._engine(name).existing_ids(name, ids)

    def upsert(self, name: str, points: Sequence[PointWrite]) -> None:
        self._engine(name).upsert(name, points)

    def query_dense(self, name: str, vector: Sequence[float], k: int, *, exact: bool = False,
                    query_filter: models.Filter | None = None,
                    quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        return self._engine(name).query_dense(name, vector, k, exact=exact, query_filter=query_filter,
                                              quantization=quantization)

    def query_sparse(self, name: str, vector: models.SparseVector, k: int, *,
                     query_filter: models.Filter | None = None) -> list[PointRecord]:
        return self._engine(name).query_sparse(name, vector, k, query_filter=query_filter)

    def query_hybrid(self, name: str, vector: Sequence[float], sparse: models.SparseVector | None, k: int, *,
                     fusion: models.FusionQuery | models.RrfQuery, prefetch_limit: int,
                     query_filter: models.Filter | None = None,
                     quantization: models.QuantizationSearchParams | None = None) -> list[PointRecord]:
        return self._engine(name).query_hybrid(name, vector, sparse, k, fusion=fusion, prefetch_limit=prefetch_limit,
                                               query_filter=query_filter, quantization=quantization)

    def scroll(self, name: str, *, limit: int, offset: Any = None) -> tuple[list[PointRecord], Any]:
        return self._engine(name).scroll(name, limit=limit, offset=offset)

    def vectors(self, name: str, ids: Sequence[str]) -> dict[str, list[float]]:
        return self._engine(name).vectors(name, ids)

    def read_points(self, name: str, ids: Sequence[str]) -> list[PointWrite]:
        return self._engine(name).read_points(name, ids)

    def add_sparse(self, name: str) -> None:
        self._engine(name).add_sparse(name)

    def set_sparse(self, name: str, vectors: Sequence[tuple[str, models.SparseVector]]) -> None:
        self._engine(name).set_sparse(name, vectors)

    @contextlib.contextmanager
    def bulk_load(self, name: str, load: BulkLoad, *, progress: bool = False) -> Iterator[None]:
        with self._engine(name).bulk_load(name, load, progress=progress):
            yield

    def build_index(self, name: str, *, timeout: float | None = None, progress: bool = False) -> None:
        self._engine(name).build_index(name, timeout=timeout, progress=progress)

    def close(self) -> None:
        """Close Edge (building the index of what was written since its last build) and the local-mode client."""
        with self._guard:
            local, self._local = self._local, None
        try:
            self.edge.close()
        finally:
            if local is not None:
                local.close()

    # ------------------------------------------------------------------ after a migration
    def set_aside(self, name: str) -> Path:
        """Move the local-mode collection ``name`` out of the folder's local-mode store into
        ``<folder>/local-mode.migrated`` (itself a local-mode store, which `laser_rag.store.clients.local_mode_client`
        opens), so that the folder's ``name`` is Edge's from now on. Returns that folder.

        qdrant-client has no public call that moves a collection without copying it, so this is the one function
        that writes its on-disk layout (``meta.json``: the collections' configs; ``collection/<name>/``: the points;
        tests/laser_rag/store/test_migrate.py fails loudly if it changes). The local-mode client is closed first."""
        if name not in self._local_names:
            raise StoreError(f"collection {name!r} is not a local-mode collection of {self.folder}")
        with self._guard:
            local, self._local = self._local, None
        if local is not None:
            local.close()
        aside = self.folder / MIGRATED_DIR
        (aside / _LOCAL_COLLECTIONS).mkdir(parents=True, exist_ok=True)
        source_meta = json.loads((self.folder / _LOCAL_META).read_text(encoding="utf-8"))
        target_path = aside / _LOCAL_META
        target_meta = (json.loads(target_path.read_text(encoding="utf-8")) if target_path.is_file()
                       else {"collections": {}, "aliases": {}})
        points, moved = self.folder / _LOCAL_COLLECTIONS / name, aside / _LOCAL_COLLECTIONS / name
        if name in target_meta["collections"] or moved.exists():
            raise StoreError(f"{aside} already holds a collection {name!r} set aside by an earlier migration: move "
                             "it elsewhere first (nothing is deleted)")
        target_meta["collections"][name] = source_meta["collections"].pop(name)
        for meta in (source_meta, target_meta):
            meta.setdefault("text_indexes", {})
        if name in source_meta["text_indexes"]:
            target_meta["text_indexes"][name] = source_meta["text_indexes"].pop(name)
        # the catalogues first, the target's before the source's, then the points: a crash in between leaves the
        # collection either still in local mode (as before) or Edge's with its points kept under one of the two
        atomic_write(target_path, json.dumps(target_meta))
        atomic_write(self.folder / _LOCAL_META, json.dumps(source_meta))
        if points.exists():
            shutil.move(str(points), str(moved))
        self._local_names.discard(name)
        return aside
