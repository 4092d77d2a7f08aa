"""`VectorCollection`: a collection bound to one encoder (its fingerprint and dimension recorded and checked),
idempotent indexing (`IndexReport`), dense, sparse and hybrid search, and the in-place hybrid upgrade. It talks to
an `laser_rag.store.engine.Engine` only."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from laser_rag import _checks
from laser_rag.corpus import Document, chunk_documents, document_text
from laser_rag.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    CorpusError,
    HybridNotEnabledError,
    StoreError,
    TruncationWarning,
)
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseConfig, SparseEncoder
from laser_rag._store_options import BulkLoad, CollectionOptions
from laser_rag.store.engine import CollectionSpec, Engine, PointWrite, QdrantClientEngine, as_engine
from laser_rag.store.fusion import DEFAULT_FUSION, HYBRID_PREFETCH, fusion_query
from laser_rag.store.payload import PAYLOAD_LAYOUT, Hit, payload, point_id

if TYPE_CHECKING:
    from laser_rag.encoders.base import BaseEncoder
    from laser_rag.ray_index import RayIndexing

logger = logging.getLogger(__name__)

#: Key of our entry in a collection's metadata.
METADATA_KEY = "laser_rag"


def recorded(store: QdrantClient | Engine, name: str) -> dict[str, Any] | None:
    """What an existing collection's metadata records about it (encoder, fingerprint, dimension, sparse vector),
    or None when laser_rag did not make it. ``store``: a qdrant-client client or an `Engine`."""
    return as_engine(store).metadata(name).get(METADATA_KEY)


def qdrant_client_of(store: QdrantClient | Engine, name: str) -> QdrantClient:
    """The qdrant-client client of a store, for langchain-qdrant's and LlamaIndex's Qdrant vector stores, which need
    one; `StoreError` naming what works instead on another engine (the embedded Qdrant Edge store)."""
    engine = as_engine(store)
    if not isinstance(engine, QdrantClientEngine):
        raise StoreError(f"collection {name!r} is on the {engine.kind!r} engine (the embedded store), which has no "
                         "qdrant-client client: langchain-qdrant's QdrantVectorStore and LlamaIndex's "
                         "QdrantVectorStore need a Qdrant server (connect(url=...)) or connect(':memory:'). On the "
                         "embedded store, retrieve with laser_rag's own retrievers "
                         "(laser_rag.integrations.langchain.LaSERRetriever, "
                         "laser_rag.integrations.llama_index.LaSERRetriever) and index with laser-rag index")
    return engine.client


def collection_name(corpus: str, label: str) -> str:
    """``<corpus>-<encoder label>``, lower case, characters Qdrant and file systems accept."""
    def clean(text: str) -> str:
        kept = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.strip().lower())
        return "-".join(part for part in kept.split("-") if part) or "default"

    return f"{clean(corpus)}-{clean(label)}"


@dataclass
class IndexReport:
    """What one `VectorCollection.index` call did; times in seconds."""

    total: int = 0
    added: int = 0
    skipped: int = 0
    encode_seconds: float = 0.0
    sparse_seconds: float = 0.0
    upsert_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def documents_per_second(self) -> float:
        return self.added / self.seconds if self.seconds else 0.0


class VectorCollection:
    """A collection bound to one encoder: its fingerprint and dimension are recorded and checked.

    Open with `open`; the constructor does no checks. ``engine`` is where the points live (a qdrant-client client
    is wrapped in a `QdrantClientEngine`).
    """

    def __init__(self, engine: Engine | QdrantClient, name: str, info: dict[str, Any]) -> None:
        self.engine = as_engine(engine)
        self.name = name
        self.info = info  # what the collection's metadata records: encoder label, fingerprint, dimension, precision

    @property
    def client(self) -> QdrantClient:
        """The qdrant-client client underneath, for tools that take one (langchain-qdrant, LlamaIndex's
        QdrantVectorStore). `StoreError` on an engine that is not qdrant-client (`qdrant_client_of`)."""
        return qdrant_client_of(self.engine, self.name)

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    @property
    def dimension(self) -> int:
        return int(self.info["dimension"])

    @property
    def options(self) -> CollectionOptions:
        """How the collection stores its points, as recorded when it was created (`CollectionOptions`; the
        defaults for a collection made before they were recorded)."""
        return CollectionOptions.from_dict(self.info.get("options"))

    @property
    def hybrid(self) -> bool:
        """Whether every point carries the sparse vector (created hybrid, or an upgrade that finished)."""
        sparse = self.info.get("sparse")
        return bool(sparse) and bool(sparse.get("complete", True))

    @functools.cached_property
    def sparse_encoder(self) -> SparseEncoder:
        """The sparse encoder this collection's sparse vectors were made with (from its recorded config).

        Raises `HybridNotEnabledError` when it has none (or its upgrade was interrupted), `StoreError` when this
        process would weight words differently (e.g. stemmed there, PyStemmer missing here)."""
        if not self.hybrid:
            reason = ("has an unfinished sparse (BM25) upgrade" if self.info.get("sparse")
                      else "has no sparse (BM25) vectors")
            raise HybridNotEnabledError(self.name, reason)
        stored = self.info["sparse"]
        encoder = SparseEncoder(SparseConfig(**stored["config"]))
        if encoder.fingerprint != stored["fingerprint"]:
            raise StoreError(f"collection {self.name!r} holds sparse vectors of {stored['config']} "
                             f"(fingerprint {stored['fingerprint']}), which this process cannot reproduce "
                             f"({encoder!r}: {encoder.fingerprint}); install PyStemmer if the collection is stemmed")
        return encoder

    def __repr__(self) -> str:
        return (f"VectorCollection({self.name!r}, encoder={self.info.get('encoder')!r}, "
                f"fingerprint={self.fingerprint[:12]}, dim={self.dimension}, hybrid={self.hybrid})")

    def check_encoder(self, encoder: BaseEncoder) -> None:
        """Raise `CollectionMismatchError` unless ``encoder`` made this collection's vectors (same fingerprint)."""
        if encoder.fingerprint != self.fingerprint:
            raise CollectionMismatchError(self.name, self.info, {"fingerprint": encoder.fingerprint,
                                                                 "dimension": encoder.dimension,
                                                                 "encoder": encoder.label},
                                          "was built by another encoder")

    @classmethod
    def open(
        cls,
        store: QdrantClient | Engine,
        name: str,
        encoder: BaseEncoder | None = None,
        *,
        fingerprint: str | None = None,
        dimension: int | None = None,
        label: str | None = None,
        create: bool = True,
        recreate: bool = False,
        hybrid: bool = False,
        sparse: SparseConfig | None = None,
        options: CollectionOptions | None = None,
    ) -> VectorCollection:
        """Open ``name`` for ``encoder`` (or an explicit ``fingerprint`` and ``dimension``), creating it if needed.
        ``store``: a qdrant-client client (`laser_rag.store.connect`) or an `Engine`.

        Raises `CollectionMismatchError` when it was made by another encoder or holds another dimension,
        `CollectionNotFoundError` when it is missing and ``create`` is false. ``recreate`` drops it first.
        An existing collection without our metadata (made by another tool) is adopted only while it is empty.
        The precision the vectors are computed in is recorded but not checked: a collection built in bfloat16
        stays queryable in float32.

        ``hybrid=True``: a collection created now also gets the sparse ``"bm25"`` vector (weighted by ``sparse``,
        default `SparseConfig()`); an existing one must already have it, else `HybridNotEnabledError` (which names
        the upgrade command). An existing hybrid collection keeps its own sparse config.

        ``options`` (`CollectionOptions`: shards, replicas, on-disk storage, quantization) shape a collection
        created now and are recorded in its metadata (`options`); an engine that cannot apply them raises
        `StoreError` before creating anything. An existing collection keeps its own, and says so in the log when
        they differ.
        """
        engine = as_engine(store)
        precision = None
        if encoder is not None:
            fingerprint = fingerprint or encoder.fingerprint
            dimension = dimension or encoder.dimension
            label = label or encoder.label
            precision = encoder.precision
        if not fingerprint or not dimension:
            raise ValueError("pass an encoder, or both fingerprint= and dimension=")
        options = options if options is not None else CollectionOptions()
        expected = {"fingerprint": fingerprint, "dimension": int(dimension), "encoder": label or "unknown",
                    "precision": precision, "payload_layout": PAYLOAD_LAYOUT, "options": options.to_dict()}
        if recreate and engine.exists(name):
            engine.delete(name)
        if not engine.exists(name):
            if not create:
                raise CollectionNotFoundError(f"no collection {name!r} in this Qdrant store; index a corpus into it "
                                              f"first (`laser-rag index PATH`). Existing: {engine.collection_names()}")
            if hybrid:
                expected["sparse"] = _sparse_info(SparseEncoder(sparse), complete=True)
            engine.create(name, CollectionSpec(dimension=expected["dimension"], sparse=hybrid,
                                               metadata={METADATA_KEY: expected}, options=options))
            return cls(engine, name, expected)
        opened = cls._open_recorded(engine, name, expected)
        if opened.options != options and options != CollectionOptions():
            logger.warning("%s exists with %s: the options asked for now (%s) apply to new collections only "
                           "(recreate it to change them)", name, opened.options, options)
        if hybrid:
            opened.sparse_encoder  # noqa: B018 -- raises HybridNotEnabledError with the upgrade command
        return opened

    @classmethod
    def open_existing(cls, store: QdrantClient | Engine, name: str) -> VectorCollection:
        """Open a laser_rag collection by what its metadata records, without an encoder (e.g. to upgrade it).
        Raises `CollectionNotFoundError` when it is missing, `StoreError` when laser_rag did not make it."""
        engine = as_engine(store)
        stored = recorded(engine, name)  # CollectionNotFoundError when missing
        if not stored:
            raise StoreError(f"collection {name!r} was not made by laser_rag (no {METADATA_KEY!r} metadata)")
        return cls(engine, name, stored)

    @classmethod
    def _open_recorded(cls, engine: Engine, name: str, expected: dict[str, Any]) -> VectorCollection:
        """An existing collection, checked against what ``expected`` says (adopted when foreign and empty)."""
        stored = recorded(engine, name)
        size = engine.dense_size(name)
        if stored is None:
            if engine.count(name):
                found = {"fingerprint": "none recorded", "dimension": size, "encoder": "not made by laser_rag"}
                raise CollectionMismatchError(name, found, expected, "was not made by laser_rag and is not empty")
            if size != expected["dimension"]:
                found = {"fingerprint": "none recorded", "dimension": size}
                raise CollectionMismatchError(name, found, expected, "has another vector dimension")
            adopted = {key: value for key, value in expected.items() if key != "options"}  # not made with ours
            engine.set_metadata(name, {METADATA_KEY: adopted})
            return cls(engine, name, adopted)
        if stored.get("fingerprint") != expected["fingerprint"]:
            raise CollectionMismatchError(name, stored, expected, "was built by another encoder")
        if size != expected["dimension"] or int(stored.get("dimension", size)) != expected["dimension"]:
            raise CollectionMismatchError(name, {**stored, "dimension": size}, expected,
                                          "has another vector dimension")
        return cls(engine, name, stored)

    # ------------------------------------------------------------------ contents
    def count(self) -> int:
        return self.engine.count(self.name)

    def __len__(self) -> int:
        return self.count()

    def stored_ids(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of these document ids already have a point."""
        by_point = {point_id(doc_id): doc_id for doc_id in doc_ids}
        return {by_point[point] for point in self.engine.existing_ids(self.name, list(by_point))}

    def sparse_vectors(self, documents: Sequence[Document]) -> list[models.SparseVector] | None:
        """The sparse vectors of documents for this collection (None when it is not hybrid): the words of
        ``document_text(title, text)``, what the dense encoder reads."""
        if not self.info.get("sparse"):
            return None
        return self.sparse_encoder.encode_documents([document_text(doc.title, doc.text) for doc in documents])

    def upsert(self, documents: Sequence[Document], vectors: np.ndarray,
               sparse: Sequence[models.SparseVector] | None = None) -> None:
        """Write documents with their vectors (already computed by this collection's encoder). A hybrid collection
        also gets each document's sparse vector: ``sparse`` as given, else computed here (`sparse_vectors`); a text
        with no word left after stopwords gets none."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(documents), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(documents)}, {self.dimension}), got {vectors.shape}")
        sparse = self.sparse_vectors(documents) if sparse is None else sparse
        lexical = [None] * len(documents) if sparse is None else [vector if vector.indices else None
                                                                   for vector in sparse]
        self.engine.upsert(self.name, [PointWrite(id=point_id(doc.id), dense=vector, payload=payload(doc),
                                                  sparse=words)
                                       for doc, vector, words in zip(documents, vectors.tolist(), lexical)])

    def index(
        self,
        documents: Iterable[Document],
        encoder: BaseEncoder,
        *,
        batch_size: int = 64,
        chunk: bool = False,
        progress: bool = False,
        encode_batch_size: int = 16,
        on_batch: Callable[[IndexReport], None] | None = None,
        bulk: BulkLoad | None = None,
        ray: RayIndexing | None = None,
    ) -> IndexReport:
        """Encode and store the documents not stored yet, ``batch_size`` at a time (each batch is written before
        the next is encoded, so a crash loses at most one batch of work). A hybrid collection also gets each
        document's sparse vector (`sparse_vectors`; its time is ``report.sparse_seconds``).

        ``chunk=True`` first cuts documents longer than the encoder reads (`laser_rag.corpus.chunk_documents`).
        Raises `CollectionMismatchError` for another encoder and `CorpusError` for duplicate ids or empty texts,
        both before any work. ``on_batch`` is called with the running report after each batch is stored. The
        encoder's `TruncationWarning` is given once per call, not per batch.

        ``bulk`` (`BulkLoad`): a large first load. The engine defers its index while the points arrive (a Qdrant
        server: no HNSW graph until the end, ``bulk.parallel`` upload streams) and builds it before this returns
        (`build_index`, with a progress bar when ``progress``), so the first search does not wait for it.

        ``ray`` (`laser_rag.ray_index.RayIndexing`): encode in a Ray Data actor pool instead of this process; the
        checks, the chunking, the skipping and the writes stay here, so the points are the same. Its time waiting for
        the pool is ``report.encode_seconds``.
        """
        started = time.perf_counter()
        self.check_encoder(encoder)
        documents = list(documents)
        if chunk:
            documents = chunk_documents(documents, encoder)
        documents = _checked(documents)
        report = IndexReport(total=len(documents))
        stored = self.stored_ids([doc.id for doc in documents])
        todo = [doc for doc in documents if doc.id not in stored]
        report.skipped = len(documents) - len(todo)
        if report.skipped:
            logger.info("%s: %d of %d documents already stored, skipped", self.name, report.skipped, len(documents))
        truncations: list[warnings.WarningMessage] = []
        loading = self.engine.bulk_load(self.name, bulk, progress=progress) if bulk else contextlib.nullcontext()
        if ray is not None:
            from laser_rag.ray_index import encoded_batches  # loads Ray only when asked

            encoding = encoded_batches(todo, encoder, ray, batch_size=batch_size,
                                       encode_batch_size=encode_batch_size, truncations=truncations, progress=progress)
        else:
            encoding = contextlib.nullcontext(
                (batch, encode_documents(encoder, batch, encode_batch_size, truncations))
                for batch in (todo[start:start + batch_size] for start in range(0, len(todo), batch_size)))
        with (encoding as batches, loading,
              tqdm(total=len(todo), desc=f"indexing {self.name}", unit="doc", disable=not progress) as bar):
            while True:
                tick = time.perf_counter()
                batch, vectors = next(batches, (None, None))
                report.encode_seconds += time.perf_counter() - tick
                if batch is None:
                    break
                tick = time.perf_counter()
                sparse = self.sparse_vectors(batch)
                report.sparse_seconds += time.perf_counter() - tick
                tick = time.perf_counter()
                self.upsert(batch, vectors, sparse)
                report.upsert_seconds += time.perf_counter() - tick
                report.added += len(batch)
                report.seconds = time.perf_counter() - started
                bar.update(len(batch))
                if on_batch is not None:
                    on_batch(report)
        report.seconds = time.perf_counter() - started
        if truncations:  # one warning per run, not one per batch
            first = truncations[0]
            warnings.warn(f"{first.message} (in {len(truncations)} of {-(-len(todo) // batch_size)} batches of this "
                          "run; index with chunk=True to cut long documents instead)", first.category, stacklevel=2)
        return report

    # ------------------------------------------------------------------ search
    def search(self, vector: np.ndarray | Sequence[float], k: int = 10, *, exact: bool = False,
               query_filter: models.Filter | None = None, rescore: bool = True,
               oversampling: float | None = None) -> list[Hit]:
        """The ``k`` nearest documents to a query vector (cosine), best first. ``exact=True`` compares against
        every vector instead of the HNSW index (evaluation: what the encoder gives, not what the index finds).

        A quantized collection (`CollectionOptions.quantization`) searches its quantized vectors, then rescores
        the best ``k * oversampling`` candidates with the original vectors (``rescore=False``: the quantized
        scores as they are; ``oversampling`` None: Qdrant's default, 1). Ignored by a collection that is not
        quantized."""
        points = self.engine.query_dense(self.name, self._dense_query(vector, k), k, exact=exact,
                                         query_filter=query_filter,
                                         quantization=self._rescoring(rescore, oversampling))
        return [Hit.from_point(point) for point in points]

    def search_sparse(self, sparse: models.SparseVector, k: int = 10, *,
                      query_filter: models.Filter | None = None) -> list[Hit]:
        """The ``k`` best documents for a sparse query vector (``sparse_encoder.encode_query(text)``) alone: BM25
        with the engine's IDF. Raises `HybridNotEnabledError` on a collection without sparse vectors."""
        self.sparse_encoder  # noqa: B018 -- the clear error on a dense-only collection
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        points = self.engine.query_sparse(self.name, sparse, k, query_filter=query_filter)
        return [Hit.from_point(point) for point in points]

    def search_hybrid(self, vector: np.ndarray | Sequence[float], sparse: models.SparseVector, k: int = 10, *,
                      fusion: str = DEFAULT_FUSION, prefetch_limit: int | None = None, rrf_k: int | None = None,
                      weights: tuple[float, float] | None = None,
                      query_filter: models.Filter | None = None, rescore: bool = True,
                      oversampling: float | None = None) -> list[Hit]:
        """Dense + lexical: the top ``max(k, prefetch_limit)`` (default `HYBRID_PREFETCH`) candidates of the dense
        vector and of the sparse one (``sparse_encoder.encode_query(text)``), fused by the engine with ``fusion``
        (default `DEFAULT_FUSION`): ``"dbsf"`` (distribution-based score fusion: each list's scores rescaled by
        their mean +- 3 standard deviations, then summed) or ``"rrf"`` (reciprocal rank fusion,
        ``sum w / (rank / w + rrf_k - 1)`` over the two lists; ``rrf_k`` defaults to `RRF_K`, ``weights`` =
        (dense, sparse) to equal). A query with no word left after stopwords fuses the dense candidates alone. Raises
        `HybridNotEnabledError` on a collection without sparse vectors (see `enable_hybrid`). ``rescore`` and
        ``oversampling`` apply to the dense candidates of a quantized collection, as in `search`."""
        self.sparse_encoder  # noqa: B018 -- the clear error on a dense-only collection
        words = sparse if sparse.indices else None
        query = fusion_query(fusion, rrf_k=rrf_k, weights=weights, sparse=words is not None)
        dense = self._dense_query(vector, k)
        points = self.engine.query_hybrid(self.name, dense, words, k, fusion=query,
                                          prefetch_limit=max(k, prefetch_limit or HYBRID_PREFETCH),
                                          query_filter=query_filter,
                                          quantization=self._rescoring(rescore, oversampling))
        return [Hit.from_point(point) for point in points]

    def build_index(self, *, timeout: float | None = None, progress: bool = False) -> None:
        """Make the engine's index of this collection complete now (Qdrant Edge builds what was written since its
        last build; a server switches a deferred index back on and waits for it, up to ``timeout`` seconds), so
        that the next search does not wait. ``laser-rag index`` ends with it."""
        self.engine.build_index(self.name, timeout=timeout, progress=progress)

    def _rescoring(self, rescore: bool, oversampling: float | None) -> models.QuantizationSearchParams | None:
        """The engine's rescoring parameters for a quantized collection (None for one that is not)."""
        _checks.rescoring(rescore, oversampling)
        if self.options.quantization is None:
            return None
        return models.QuantizationSearchParams(rescore=rescore, oversampling=oversampling)

    def _dense_query(self, vector: np.ndarray | Sequence[float], k: int) -> list[float]:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dimension:
            raise ValueError(f"query vector has {vector.shape[0]} dimensions, collection {self.name!r} "
                             f"has {self.dimension}")
        return vector.tolist()

    # ------------------------------------------------------------------ the hybrid upgrade
    def enable_hybrid(self, sparse: SparseConfig | None = None, *, batch_size: int = 256,
                      progress: bool = False) -> int:
        """Add the sparse ``"bm25"`` vector to this collection in place, computed from each point's stored title
        and text; no dense vector is read or re-encoded. Returns how many points got one (0 when it was already
        hybrid).

        Safe to interrupt: the metadata says the upgrade is unfinished until every point is done (hybrid search
        refuses meanwhile), and running it again redoes it (``laser-rag upgrade-hybrid``). Needs an engine that can
        add a vector to an existing collection (the embedded store; a Qdrant server that cannot raises
        `StoreError`: re-index with ``--hybrid --recreate`` there).
        """
        if self.hybrid:
            return 0
        stored = self.info.get("sparse")
        encoder = SparseEncoder(SparseConfig(**stored["config"]) if stored else sparse)
        self._record({**self.info, "sparse": _sparse_info(encoder, complete=False)})
        self.engine.add_sparse(self.name)
        done = 0
        offset = None
        with tqdm(total=self.count(), desc=f"sparse vectors for {self.name}", unit="point",
                  disable=not progress) as bar:
            while True:
                points, offset = self.engine.scroll(self.name, limit=batch_size, offset=offset)
                hits = [Hit.from_point(point) for point in points]
                lexical = encoder.encode_documents([document_text(hit.title, hit.text) for hit in hits])
                updates = [(point.id, vector) for point, vector in zip(points, lexical) if vector.indices]
                if updates:
                    self.engine.set_sparse(self.name, updates)
                done += len(updates)
                bar.update(len(points))
                if offset is None:
                    break
        self._record({**self.info, "sparse": _sparse_info(encoder, complete=True)})
        return done

    def _record(self, info: dict[str, Any]) -> None:
        """Write ``info`` as this collection's metadata entry (and forget the cached sparse encoder)."""
        self.engine.set_metadata(self.name, {METADATA_KEY: info})
        self.info = info
        self.__dict__.pop("sparse_encoder", None)


def encode_documents(encoder: BaseEncoder, batch: list[Document], batch_size: int,
                     truncations: list[warnings.WarningMessage]) -> np.ndarray:
    """Encode a batch; the encoder's TruncationWarning is collected into ``truncations``, other warnings pass."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vectors = encoder.encode_documents([encoder.document_text(doc.title, doc.text) for doc in batch],
                                           batch_size=batch_size, show_progress_bar=False)
    for warning in caught:
        if issubclass(warning.category, TruncationWarning):
            truncations.append(warning)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return vectors


def _sparse_info(encoder: SparseEncoder, *, complete: bool) -> dict[str, Any]:
    """What a collection's metadata records about its sparse vector."""
    return {"name": SPARSE_VECTOR_NAME, "fingerprint": encoder.fingerprint, "config": encoder.config.to_dict(),
            "stemmed": encoder.config.stemmed, "complete": complete}


def _checked(documents: list[Document]) -> list[Document]:
    seen: set[str] = set()
    duplicates = [doc.id for doc in documents if doc.id in seen or seen.add(doc.id)]
    if duplicates:
        raise CorpusError(f"{len(duplicates)} duplicate document ids (ids must be unique): {duplicates[:5]}")
    empty = [doc.id for doc in documents if not isinstance(doc.text, str) or not doc.text.strip()]
    if empty:
        raise CorpusError(f"{len(empty)} documents have empty text: {empty[:5]}")
    return documents
