"""``laser-rag migrate``: copy collections between engines without re-encoding anything (`migrate`,
`copy_collection`).

- From a folder's qdrant-client local mode to its Qdrant Edge store (the default): each collection's points are
  copied, checked, then its local-mode data is set aside into ``<folder>/local-mode.migrated``
  (`laser_rag.store.embedded.EmbeddedEngine.set_aside`; kept, not deleted), so the folder's collection is Edge's.
- From a folder's embedded store (Edge, or local mode not migrated yet) to a Qdrant server (``to_url``): the
  embedded copy is kept; point ``--qdrant-url`` at the server from then on.

A copy takes each point as stored (id, dense vector, sparse ``"bm25"`` vector, payload) and the collection's
metadata (the encoder fingerprint laser_rag checks, the sparse config, the options). It is resumable: points whose
id the target holds already are skipped, so an interrupted run is finished by running it again. At the end the
point counts must be equal and a random sample of points must have the same vectors and payload in both
(`MigrationError` otherwise, and nothing is set aside).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from laser_rag._store_options import CollectionOptions
from laser_rag.errors import CollectionNotFoundError, MigrationError
from laser_rag.store.collection import METADATA_KEY
from laser_rag.store.engine import CollectionSpec, Engine, PointWrite

logger = logging.getLogger(__name__)

#: Points read and written per step.
BATCH = 256
#: Points whose vectors and payload are compared at the end.
SAMPLE = 64
#: The least cosine between a sampled point's two dense vectors (both are stored normalised).
_MIN_COSINE = 0.9999


@dataclass
class MigrationReport:
    """One collection's copy: points ``copied`` now, ``skipped`` (the target had them), ``total`` in the source,
    ``checked`` (the sampled points compared), and where the local-mode data was set aside (None: it was not)."""

    collection: str
    source: str
    target: str
    copied: int = 0
    skipped: int = 0
    total: int = 0
    checked: int = 0
    set_aside: Path | None = None


def migrate(path: str | Path | None = None, *, collections: Sequence[str] | None = None, to_url: str | None = None,
            api_key: str | None = None, prefer_grpc: bool = False, batch_size: int = BATCH,
            progress: bool = False) -> list[MigrationReport]:
    """Migrate the collections of the embedded folder ``path`` (default `laser_rag.store.default_qdrant_path`):
    without ``to_url``, its local-mode collections (``collections``, default all) to its Edge store; with
    ``to_url``, its embedded collections (default all) to that Qdrant server. Returns one report per collection."""
    from laser_rag.store.clients import connect
    from laser_rag.store.engine import QdrantClientEngine

    embedded = connect(path)
    if to_url is None:
        local = [name for name in embedded.collection_names() if embedded.in_local_mode(name)]
        names = list(collections) if collections else local
        if not names:
            raise CollectionNotFoundError(f"nothing to migrate: {embedded.folder} holds no collection in "
                                          "qdrant-client's local mode (its collections are Qdrant Edge's already)")
        missing = [name for name in names if name not in local]
        if missing:
            raise CollectionNotFoundError(f"{', '.join(map(repr, missing))} not in {embedded.folder}'s local mode "
                                          f"(local-mode collections: {local or 'none'})")
        reports = []
        for name in names:
            report = copy_collection(embedded.local_mode(), embedded.edge, name, batch_size=batch_size,
                                     progress=progress, source_label=f"local mode in {embedded.folder}",
                                     target_label=f"Qdrant Edge in {embedded.edge.path}")
            report.set_aside = embedded.set_aside(name)
            reports.append(report)
        return reports
    server = QdrantClientEngine(connect(url=to_url, api_key=api_key, prefer_grpc=prefer_grpc))
    names = list(collections) if collections else embedded.collection_names()
    if not names:
        raise CollectionNotFoundError(f"nothing to migrate: {embedded.folder} holds no collection")
    try:
        return [copy_collection(embedded, server, name, batch_size=batch_size, progress=progress,
                                source_label=f"the embedded store {embedded.folder}", target_label=to_url)
                for name in names]
    finally:
        server.close()


def copy_collection(source: Engine, target: Engine, name: str, *, batch_size: int = BATCH, sample: int = SAMPLE,
                    progress: bool = False, seed: int | None = None, source_label: str = "the source",
                    target_label: str = "the target") -> MigrationReport:
    """Copy collection ``name`` from ``source`` to ``target`` (module docstring): created in the target with the
    source's dimension, sparse vector, metadata and options, or resumed there when it holds a copy of the same
    collection (same encoder fingerprint and dimension; `MigrationError` for another one). Then checked: equal
    counts, and ``sample`` random points alike in both (``seed``: the sample's random seed)."""
    if not source.exists(name):
        raise CollectionNotFoundError(f"no collection {name!r} in {source_label}")
    report = MigrationReport(collection=name, source=source_label, target=target_label, total=source.count(name))
    spec = _spec(source, name)
    if target.exists(name):
        _check_same_collection(source, target, name, spec, target_label)
    else:
        target.create(name, spec)
    rng = random.Random(seed)
    sampled: list[str] = []
    seen = 0
    offset = None
    with tqdm(total=report.total, desc=f"migrating {name}", unit="point", disable=not progress) as bar:
        while True:
            page, offset = source.scroll(name, limit=batch_size, offset=offset)
            ids = [point.id for point in page]
            for point in ids:  # reservoir sampling: every point equally likely, one pass, `sample` ids kept
                seen += 1
                if len(sampled) < sample:
                    sampled.append(point)
                elif (slot := rng.randrange(seen)) < sample:
                    sampled[slot] = point
            there = target.existing_ids(name, ids) if ids else set()
            todo = [point for point in ids if point not in there]
            if todo:
                target.upsert(name, _writable(source.read_points(name, todo), spec))
            report.copied += len(todo)
            report.skipped += len(ids) - len(todo)
            bar.update(len(ids))
            if offset is None:
                break
    target.build_index(name, progress=progress)
    report.checked = _check_copy(source, target, name, sampled, source_label, target_label)
    logger.info("%s: %d points copied, %d already there, %d sampled points checked", name, report.copied,
                report.skipped, report.checked)
    return report


def _spec(source: Engine, name: str) -> CollectionSpec:
    """The target's collection: the source's dimension, metadata and options; the sparse vector when the metadata
    records one (laser_rag's collections say so; another tool's collection is copied dense-only)."""
    metadata = source.metadata(name)
    info = metadata.get(METADATA_KEY) or {}
    return CollectionSpec(dimension=source.dense_size(name), sparse=bool(info.get("sparse")), metadata=metadata,
                          options=CollectionOptions.from_dict(info.get("options")))


def _check_same_collection(source: Engine, target: Engine, name: str, spec: CollectionSpec, label: str) -> None:
    """A target that holds ``name`` already must hold (part of) this collection: same fingerprint and dimension."""
    ours = (spec.metadata.get(METADATA_KEY) or {}).get("fingerprint")
    theirs = (target.metadata(name).get(METADATA_KEY) or {}).get("fingerprint")
    if ours != theirs or target.dense_size(name) != spec.dimension:
        raise MigrationError(f"{label} already holds another collection {name!r} (encoder fingerprint {theirs}, "
                             f"dimension {target.dense_size(name)}; the source's: {ours}, {spec.dimension}): delete "
                             "it there first, or migrate into another store")
    if spec.sparse and not (target.metadata(name).get(METADATA_KEY) or {}).get("sparse"):
        target.add_sparse(name)  # the source was upgraded to hybrid after an interrupted copy
        target.set_metadata(name, spec.metadata)


def _writable(points: list[PointWrite], spec: CollectionSpec) -> list[PointWrite]:
    """The points to write: a sparse vector only where the target declares one."""
    if spec.sparse:
        return points
    return [PointWrite(id=p.id, dense=p.dense, payload=p.payload) for p in points]


def _check_copy(source: Engine, target: Engine, name: str, sampled: list[str], source_label: str,
                target_label: str) -> int:
    """`MigrationError` unless both hold as many points and the sampled ones alike; returns how many were compared."""
    counts = source.count(name), target.count(name)
    if counts[0] != counts[1]:
        raise MigrationError(f"{name!r}: {source_label} holds {counts[0]} points, {target_label} {counts[1]} after "
                             "the copy; run the same migrate again (it copies what is missing), or delete the "
                             "target's collection and migrate again")
    theirs = {point.id: point for point in target.read_points(name, sampled)}
    differ = []
    for point in source.read_points(name, sampled):
        other = theirs.get(point.id)
        if other is None or _cosine(point.dense, other.dense) < _MIN_COSINE or point.payload != other.payload \
                or _sparse(point) != _sparse(other):
            differ.append(point.id)
    if differ:
        raise MigrationError(f"{name!r}: {len(differ)} of {len(sampled)} sampled points differ between {source_label} "
                             f"and {target_label} (ids {differ[:5]}); the source is left as it was")
    return len(sampled)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b)) / norms if norms else float(len(a) == len(b))


def _sparse(point: PointWrite) -> dict[int, float]:
    """A point's sparse vector as {index: value}, rounded to float32's precision (engines sort the indices)."""
    if point.sparse is None:
        return {}
    return {int(i): round(float(v), 5) for i, v in zip(point.sparse.indices, point.sparse.values)}


def describe(report: MigrationReport) -> str:
    """One line of ``laser-rag migrate``'s output."""
    line = (f"{report.collection}: {report.copied} points copied, {report.skipped} already there, {report.total} in "
            f"total, {report.checked} sampled points checked; now in {report.target}")
    if report.set_aside is not None:
        line += f"; the local-mode data is kept in {report.set_aside}"
    return line


__all__: Any = ["BATCH", "SAMPLE", "MigrationReport", "copy_collection", "describe", "migrate"]
