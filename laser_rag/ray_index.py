"""Bulk indexing on Ray (``pip install 'laser-rag[distributed]'``): `RayIndexing` says where and how wide, and
``VectorCollection.index(..., ray=RayIndexing(...))`` (or ``Retriever.index``, or ``laser-rag index --ray``) encodes
the documents in a Ray Data actor pool instead of this process. docs/ray-indexing.md describes it.

Everything but the dense encoding stays as in the single-process `laser_rag.store.VectorCollection.index`, so both
give the same points: the driver (this process) checks the encoder's fingerprint against the collection, chunks
with the same chunker, drops the ids already stored *before* anything is encoded, and writes the batches as they
stream back (`Dataset.iter_batches`), with their BM25 vectors from the collection's own sparse encoder. The
embedded store (one process holds its folder) needs that; a Qdrant server by URL gets the same writes.

Each actor of the pool (``workers`` of them; ``num_gpus=gpus_per_worker`` each, else one CPU each) loads the encoder
once from its source (`laser_rag.encoders.BaseEncoder.source`, at the same K and dtype) and refuses to encode when
what it loaded has another fingerprint. Ray Data restarts an actor that dies and retries the batches it held (its
actor pools' defaults: ``max_restarts=-1``, ``max_task_retries=-1``); a driver that dies loses only the batches not
yet written: the same call again adds the rest.

Importing this module loads no Ray (nor numpy: the CLI builds its options from `RayIndexing`): indexing does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


from laser_rag import _checks
from laser_rag.corpus import Document
from laser_rag.errors import InvalidInputError, RayError, TruncationWarning

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from laser_rag.encoders.base import BaseEncoder

__all__ = ["RayIndexing"]

#: The addresses that mean "a Ray instance started here, for this call".
LOCAL = ("local",)
_INSTALL_HINT = "pip install 'laser-rag[distributed]'"


@dataclass(frozen=True)
class RayIndexing:
    """Where and how wide `VectorCollection.index` encodes on Ray.

    - ``address``: None or ``"local"``: a Ray instance started for this call on this machine (``max(2, workers)``
      CPUs, no dashboard) and stopped after it; ``"auto"``: the cluster this machine belongs to (``ray start``,
      ``$RAY_ADDRESS``); else a cluster address (``"10.0.0.5:6379"``, ``"ray://head:10001"``). A Ray instance this
      process initialised already is used as it is. Every node needs laser_rag and the encoder's model.
    - ``workers``: actors in the encoding pool, each loading the encoder once.
    - ``gpus_per_worker``: GPUs per actor (fractions share a GPU); 0 (the default): CPU actors, one core each.
    - ``batch_size``: documents per actor call (default: the index call's ``batch_size``).
    - ``dtype``: what the actors compute in (default: the encoder's own `precision`, the one the collection
      records; e.g. ``"bfloat16"`` on GPUs).
    """

    address: str | None = None
    workers: int = field(default=1, metadata={"help": "With --ray: actors encoding in parallel.", "min": 1})
    gpus_per_worker: float = field(default=0.0, metadata={
        "help": "With --ray: GPUs per actor (0: CPU actors, one core each).", "min": 0.0})
    batch_size: int | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        for name in ("address", "dtype"):
            if getattr(self, name) is not None:
                _checks.text(getattr(self, name), name)
        _checks.positive_int(self.workers, "workers")
        _checks.optional_positive_int(self.batch_size, "batch_size")
        gpus = self.gpus_per_worker
        if isinstance(gpus, bool) or not isinstance(gpus, int | float) or not 0 <= gpus < float("inf"):
            raise InvalidInputError(f"gpus_per_worker must be a number >= 0, got {gpus!r}")

    @property
    def local(self) -> bool:
        """Whether a Ray instance is started here for the call (no address, or ``"local"``)."""
        return self.address is None or self.address in LOCAL


@contextlib.contextmanager
def encoded_batches(documents: list[Document], encoder: BaseEncoder, options: RayIndexing, *, batch_size: int,
                    encode_batch_size: int, truncations: list[warnings.WarningMessage],
                    progress: bool) -> Iterator[Iterator[tuple[list[Document], np.ndarray]]]:
    """`VectorCollection.index`'s Ray path: Ray connected (and the start-up line on stderr when ``progress``), then
    an iterator of (documents, their dense vectors), ``batch_size`` at a time as the actor pool encodes them (in
    any order); Ray stopped at the end if it was started here. An actor's `TruncationWarning` is collected into
    ``truncations``, one per batch it cut."""
    import numpy as np

    from laser_rag import runtime

    source = _source(encoder)
    dtype = options.dtype or encoder.precision
    runtime.parse_dtype(dtype)  # a bad name fails here, not in every actor
    if not documents:
        yield iter(())
        return
    ray = ray_module()
    started = _connect(ray, options)
    context = ray.data.DataContext.get_current()
    quiet = {"enable_progress_bars": False, "print_on_execution_start": False}  # the driver shows one bar
    before = {name: getattr(context, name) for name in quiet}
    try:
        for name, value in quiet.items():
            setattr(context, name, value)
        _check_resources(ray, options)
        if progress:
            print(_startup_line(ray, options, encoder, dtype), file=sys.stderr, flush=True)
        rows = [{"row": n, "title": doc.title, "text": doc.text} for n, doc in enumerate(documents)]
        per_call = options.batch_size or batch_size
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // per_call)))
        encoded = dataset.map_batches(
            _EncodeWorker, batch_size=per_call, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=options.workers), num_cpus=1,
            num_gpus=options.gpus_per_worker or None, runtime_env={"env_vars": {runtime.DTYPE_ENV: dtype}},
            fn_constructor_kwargs={"source": source, "steps": _steps(encoder), "fingerprint": encoder.fingerprint,
                                   "batch_size": encode_batch_size})

        def batches() -> Iterator[tuple[list[Document], np.ndarray]]:
            for batch in encoded.iter_batches(batch_size=batch_size, batch_format="numpy"):
                cut = [str(message) for message in batch["truncated"] if message]
                if cut:
                    truncations.append(warnings.WarningMessage(cut[0], TruncationWarning, __file__, 0))
                yield [documents[int(n)] for n in batch["row"]], np.asarray(batch["vector"], dtype=np.float32)

        yield batches()
    finally:
        for name, value in before.items():
            setattr(context, name, value)
        if started:
            ray.shutdown()


class _EncodeWorker:
    """One actor of the pool: the encoder loaded once, then batches of rows -> their vectors."""

    def __init__(self, source: str, steps: int | None, fingerprint: str, batch_size: int) -> None:
        from laser_rag.encoders import load_encoder

        self.encoder = load_encoder(source, num_thinking_steps=steps)
        self.batch_size = batch_size
        if self.encoder.fingerprint != fingerprint:
            raise RayError(f"the encoder a Ray worker loads from {source!r} has the fingerprint "
                           f"{self.encoder.fingerprint}, not the collection's {fingerprint}: the encoder passed to "
                           "index has settings its source does not give; index without ray")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import numpy as np

        from laser_rag.store.collection import encode_documents

        documents = [Document("", str(text), str(title)) for title, text in zip(batch["title"], batch["text"])]
        truncations: list[warnings.WarningMessage] = []
        vectors = encode_documents(self.encoder, documents, self.batch_size, truncations)
        message = str(truncations[0].message) if truncations else ""
        return {"row": batch["row"], "vector": vectors, "truncated": np.array([message] * len(documents))}


def ray_module() -> Any:
    """The ``ray`` module with Ray Data, or `RayError` with the install hint."""
    try:
        import ray
        import ray.data  # noqa: F401 -- the extra installs both
    except ImportError as exc:
        raise RayError(f"indexing on Ray needs Ray Data, which is not installed: {_INSTALL_HINT}") from exc
    return ray


def _connect(ray: Any, options: RayIndexing) -> bool:
    """Initialise Ray for ``options`` (usage stats off) unless this process did already; whether it started here."""
    if ray.is_initialized():
        return False
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no telemetry, read by ray.init
    try:
        if options.local:
            ray.init(num_cpus=max(2, options.workers), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=options.address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayError(f"cannot reach the Ray cluster at {options.address!r} ({exc}); start one with "
                       "`ray start --head`, or index with --ray local") from exc
    return True


def _check_resources(ray: Any, options: RayIndexing) -> None:
    """`RayError` when the cluster has fewer CPUs or GPUs than the pool needs (Ray Data would wait for them)."""
    have = ray.cluster_resources()
    need = {"CPU": float(options.workers), "GPU": options.workers * float(options.gpus_per_worker)}
    short = {name: (count, have.get(name, 0.0)) for name, count in need.items() if count > have.get(name, 0.0)}
    if short:
        described = ", ".join(f"{count:g} {name}s needed, {found:g} in the cluster"
                              for name, (count, found) in short.items())
        raise RayError(f"the Ray cluster is too small for {options.workers} workers ({described}); use fewer "
                       "--workers or --gpus-per-worker, or add nodes first")


def _startup_line(ray: Any, options: RayIndexing, encoder: BaseEncoder, dtype: str) -> str:
    """The one line that says where the pool runs: workers, device, dtype, encoder."""
    have = ray.cluster_resources()
    where = "a local Ray instance" if options.local else f"the Ray cluster at {options.address}"
    device = (f"{options.gpus_per_worker:g} GPU each" if options.gpus_per_worker else "1 CPU each")
    return (f"laser-rag: encoding on {where} ({have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs): "
            f"{options.workers} worker{'s' if options.workers != 1 else ''} x {device}, {dtype}, "
            f"encoder {encoder.label}")


def _source(encoder: BaseEncoder) -> str:
    if encoder.source is None:
        raise InvalidInputError(f"indexing on Ray loads the encoder in each worker from its source; {encoder!r} "
                                "has none: load it with laser_rag.encoders.load_encoder")
    return encoder.source


def _steps(encoder: BaseEncoder) -> int | None:
    """The encoder's K, for a worker to load the same view (None for a single-pass model)."""
    return encoder.num_thinking_steps if encoder.supports_thinking_steps else None

