"""The options of a Qdrant collection at scale, `CollectionOptions` (how a new collection stores its points) and
`BulkLoad` (a large first load), public as ``laser_rag.store.CollectionOptions`` and ``laser_rag.store.BulkLoad``.
They live in this light module (no qdrant-client import) so that the ``laser-rag`` CLI can build its options from
them at import time and ``laser-rag --help`` stays fast; docs/qdrant-server.md describes them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from laser_rag import _checks
from laser_rag.errors import InvalidInputError

#: The quantizations a collection can be created with (`CollectionOptions.quantization`).
QUANTIZATIONS = ("int8", "binary")
#: The share of values int8 quantization covers exactly (the rest are clipped), on every engine.
INT8_QUANTILE = 0.99


@dataclass(frozen=True)
class CollectionOptions:
    """How a new collection stores its points: fixed when it is created, recorded in its laser_rag metadata
    (``info["options"]``) so that a reopen knows them. The defaults are each engine's own.

    - ``shard_number``, ``replication_factor``: a Qdrant server or cluster only (None: the server's defaults). An
      embedded engine is one shard in one process and refuses them (`StoreError`).
    - ``on_disk_vectors``, ``on_disk_payload``: keep the original vectors / the payloads on disk (memory-mapped)
      instead of in RAM (None: the engine's default; a server keeps vectors in RAM and payloads on disk, Qdrant
      Edge memory-maps both).
    - ``quantization``: ``"int8"`` (scalar, a quarter of float32's memory) or ``"binary"`` (one bit per dimension):
      searched first, then the best candidates rescored with the original vectors (`VectorCollection.search`'s
      ``rescore`` and ``oversampling``). ``quantization_in_ram`` keeps the quantized vectors in RAM (Qdrant's
      ``always_ram``), the usual pairing with ``on_disk_vectors``.

    qdrant-client's local mode (``":memory:"`` and local-mode folders) keeps every vector in Python and scans them
    all: it takes none of these options (`StoreError` names the engines that do).

    Example::

        CollectionOptions(quantization="int8", on_disk_vectors=True)              # Edge or a server
        CollectionOptions(shard_number=6, replication_factor=2)                   # a Qdrant cluster
    """

    shard_number: Optional[int] = field(default=None, metadata={
        "help": "Shards of a new collection (a Qdrant server or cluster only).", "min": 1})
    replication_factor: Optional[int] = field(default=None, metadata={
        "help": "Copies of each shard (a Qdrant cluster only).", "min": 1})
    on_disk_vectors: Optional[bool] = field(default=None, metadata={
        "flags": ("--on-disk-vectors/--in-ram-vectors",),
        "help": "Keep a new collection's original vectors on disk (default: the engine's own)."})
    on_disk_payload: Optional[bool] = field(default=None, metadata={
        "flags": ("--on-disk-payload/--in-ram-payload",),
        "help": "Keep a new collection's payloads on disk (default: the engine's own)."})
    quantization: Optional[Literal["int8", "binary"]] = field(default=None, metadata={
        "help": "Quantize a new collection's vectors (int8 or binary), rescored at query time."})
    quantization_in_ram: bool = field(default=True, metadata={
        "help": "Keep the quantized vectors in RAM (with --quantization)."})

    def __post_init__(self) -> None:
        for name in ("shard_number", "replication_factor"):
            _checks.optional_positive_int(getattr(self, name), f"CollectionOptions.{name}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise InvalidInputError(f"CollectionOptions.quantization must be one of {QUANTIZATIONS} or None, got "
                                    f"{self.quantization!r}")

    @property
    def server_only(self) -> dict[str, int]:
        """The options set here that only a Qdrant server or cluster can apply (shards, replicas)."""
        return {name: getattr(self, name) for name in ("shard_number", "replication_factor")
                if getattr(self, name) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The options as the collection's metadata records them."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, recorded: dict[str, Any] | None) -> CollectionOptions:
        """Options from a collection's metadata (unknown keys are ignored; None: the defaults)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (recorded or {}).items() if key in names})


@dataclass(frozen=True)
class BulkLoad:
    """A large first load (`VectorCollection.index(..., bulk=BulkLoad())`, ``laser-rag index --bulk-load``).

    On a Qdrant server the HNSW index is not built while the points arrive (the collection's ``m`` is 0 meanwhile)
    and each write goes out in ``parallel`` upload streams (qdrant-client's ``upload_points(parallel=...)``; worth it
    for writes of thousands of points: pass a large ``batch_size`` to `VectorCollection.index`); afterwards the
    index is switched back on and the load waits, with a progress bar, up to ``timeout`` seconds for the
    collection to turn green. Qdrant Edge builds its index once at the end (it defers the build anyway); local
    mode has no index. A collection that already holds points is not deferred (changing its HNSW settings would
    rebuild its whole index); an interrupted bulk load is finished by the next one.
    """

    parallel: int = field(default=1, metadata={"flags": ("--upload-parallel",), "min": 1,
                                               "help": "Upload streams to a Qdrant server (with --bulk-load)."})
    timeout: float = field(default=3600.0, metadata={"flags": ("--index-timeout",), "min": 0.0,
                                                     "help": "Seconds to wait for a server's index after a bulk load."})

    def __post_init__(self) -> None:
        _checks.positive_int(self.parallel, "BulkLoad.parallel")
        if not self.timeout >= 0:
            raise InvalidInputError(f"BulkLoad.timeout must be >= 0 seconds, got {self.timeout!r}")
