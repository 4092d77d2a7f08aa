"""Qdrant collections that know which encoder filled them.

- `connect` gives a client: embedded local mode by default (a folder under the user data dir; one client per folder
  per process, kept in a registry, since a second client on the same folder fails), ``":memory:"``, or a server /
  cluster with ``url=`` and ``api_key=``. An unreachable server fails within ``timeout`` seconds. `release` closes
  one local client, `close_all` every one (it also runs at interpreter exit, before Python tears its modules down).
- `VectorCollection.open` records the encoder's label, fingerprint, dimension and precision in the collection's
  metadata when it creates it, and refuses (`CollectionMismatchError`) to open it for another encoder.
- `VectorCollection.index` is idempotent: a point's id is the uuid5 of its document id, ids already stored are
  skipped *before* encoding, so re-indexing adds nothing and an interrupted run resumes where it stopped.
- Hybrid search: a collection opened with ``hybrid=True`` when it is created also holds, in each point, a sparse
  lexical vector named ``"bm25"`` (`laser_rag.sparse`; declared with Qdrant's IDF modifier, so the engine keeps the
  corpus statistics), recorded in the metadata with the sparse encoder's fingerprint. `VectorCollection.search_hybrid`
  prefetches the dense and the sparse candidates and fuses them server-side (RRF or DBSF). A collection made without
  it raises `HybridNotEnabledError` when asked for hybrid search, never a silent dense-only answer;
  `VectorCollection.enable_hybrid` adds the sparse vector in place (``laser-rag upgrade-hybrid``), re-encoding no
  dense vector.

Payload layout (one point per document): LangChain's keys (``content_payload_key="text"``,
``metadata_payload_key="metadata"``) and, when llama-index-core is installed, the fields LlamaIndex's
QdrantVectorStore writes for the document's node (`llama_node`), made by LlamaIndex's own ``node_to_metadata_dict``::

    {"text": ..., "metadata": {"doc_id": ..., "title": ..., **document.metadata},
     "_node_content": ..., "_node_type": "TextNode", "doc_id": ..., ...}      # the LlamaIndex part

Without llama-index-core the LlamaIndex part is absent; LlamaIndex still reads such a point (its QdrantVectorStore
falls back to the ``text`` key for the node text). `Hit.from_point` reads every layout: ours, LlamaIndex's (points
its pipeline wrote) and LangChain's.

Example::

    client = connect()                                     # ~/.local/share/laser_rag/qdrant
    collection = VectorCollection.open(client, "pydoc-laser-k3", encoder)
    collection.index(documents, encoder, chunk=True)       # skips what is already there
    hits = collection.search(encoder.encode_queries("how do I use with?"), k=5)

    hybrid = VectorCollection.open(client, "pydoc-laser-k3-h", encoder, hybrid=True)   # dense + "bm25" sparse
    hybrid.index(documents, encoder, chunk=True)
    query = "how do I use with?"
    hits = hybrid.search_hybrid(encoder.encode_queries(query)[0], hybrid.sparse_encoder.encode_query(query), k=5)
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import platformdirs
from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from laser_rag.corpus import Document, chunk_documents, document_text
from laser_rag.errors import (
    CollectionMismatchError,
    CorpusError,
    CollectionNotFoundError,
    HybridNotEnabledError,
    QdrantUnavailableError,
    StoreError,
    TruncationWarning,
)
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseConfig, SparseEncoder

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

    from laser_rag.encoders.base import BaseEncoder

__all__ = [
    "Hit",
    "IndexReport",
    "VectorCollection",
    "close_all",
    "collection_name",
    "connect",
    "default_qdrant_path",
    "llama_node",
    "point_id",
    "recorded",
    "release",
]

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
#: Key of our entry in a collection's metadata.
METADATA_KEY = "laser_rag"
#: Version of the payload layout described in the module docstring (1: LlamaIndex's node JSON written by hand).
PAYLOAD_LAYOUT = 2
#: Namespace of point ids: ``uuid5(POINT_NAMESPACE, document.id)``.
POINT_NAMESPACE = uuid.UUID("6f1c3b7e-2a4d-5c8e-9b0f-1d2e3f4a5b6c")
_RESERVED_METADATA = ("doc_id", "title")
_LOOKUP_BATCH = 512
#: How many candidates each side (dense, sparse) of a hybrid search prefetches before fusion (at least k).
HYBRID_PREFETCH = 100
#: Fusions of `VectorCollection.search_hybrid`: reciprocal rank fusion, distribution-based score fusion.
FUSIONS = {"rrf": models.Fusion.RRF, "dbsf": models.Fusion.DBSF}
#: The default fusion, chosen on the training validation sets (``python -m laser_rag_benchmarks.fusion``): with
#: either LaSER checkpoint shipped so far, DBSF came within 0.2% of the better side (dense or BM25) on every set
#: or above it; Qdrant's RRF (k=2) lost up to 7% to BM25 on SciFact abstracts, where the dense ranking is weaker.
DEFAULT_FUSION = "dbsf"
#: The rank constant of reciprocal rank fusion: a document at rank r (from 1) of a list scores 1 / (r + RRF_K - 1).
#: Qdrant's own default is 2, which lets either list's first hits decide alone.
RRF_K = 2


def fusion_query(fusion: str = DEFAULT_FUSION, *, rrf_k: int | None = None, weights: tuple[float, float] | None = None,
                 sparse: bool = True) -> models.FusionQuery | models.RrfQuery:
    """The Qdrant query that fuses a hybrid search's prefetches (dense first, then sparse when ``sparse``)."""
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
    if fusion == "dbsf":
        if rrf_k is not None or weights is not None:
            raise ValueError("rrf_k and weights apply to fusion='rrf' only")
        return models.FusionQuery(fusion=FUSIONS[fusion])
    rrf_k = RRF_K if rrf_k is None else rrf_k
    if rrf_k < 1:
        raise ValueError(f"rrf_k must be >= 1, got {rrf_k}")
    if weights is not None:
        if len(weights) != 2 or min(weights) <= 0:
            raise ValueError(f"weights are (dense, sparse), both positive; got {weights!r}")
        weights = [float(w) for w in weights][:2 if sparse else 1]
    return models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=weights))


# ---------------------------------------------------------------------------------------------------------------
# Clients


def default_qdrant_path() -> Path:
    """Where the embedded store lives: ``$LASER_RAG_QDRANT_PATH`` or ``<user data dir>/laser_rag/qdrant``."""
    return Path(os.environ.get("LASER_RAG_QDRANT_PATH") or Path(platformdirs.user_data_dir("laser_rag")) / "qdrant")


_local_clients: dict[str, QdrantClient] = {}  # folder -> the open client of that folder: closed ones are removed
_registry_lock = threading.Lock()


def connect(
    path: str | Path | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 5.0,
    prefer_grpc: bool = False,
) -> QdrantClient:
    """A Qdrant client.

    - ``url`` (and ``api_key``): a Qdrant server or cluster. Reachability is checked at once: an unreachable
      server raises `QdrantUnavailableError` within about ``timeout`` seconds instead of hanging later.
    - ``path="\\:memory:"``: a new, private in-memory store (tests, evaluation).
    - otherwise the embedded store in ``path`` (default `default_qdrant_path`). One client per folder per process:
      calling again returns the same client (qdrant-client allows one per folder); `release` closes it.
    """
    if url:
        return _remote_client(url, api_key, timeout, prefer_grpc)
    if str(path) == MEMORY:
        return QdrantClient(location=MEMORY)
    folder = Path(path).expanduser() if path is not None else default_qdrant_path()
    key = str(folder.resolve())
    with _registry_lock:
        client = _local_clients.get(key)
        if client is not None and _still_open(client):
            return client
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file there, or a folder this user cannot write
            raise StoreError(f"cannot use {folder} as an embedded Qdrant folder ({exc.strerror}); pass another "
                             "--qdrant-path") from exc
        try:
            client = QdrantClient(path=key)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise QdrantUnavailableError(
                f"the local Qdrant store {key} is in use by another process (one process at a time can open an "
                "embedded store). Close the other process, use another --qdrant-path, or share one store through "
                "a Qdrant server (--qdrant-url)."
            ) from exc
        _local_clients[key] = client
        return client


def release(path: str | Path | None = None) -> None:
    """Close the registry's client for a local folder (e.g. so another process can open it)."""
    folder = Path(path).expanduser() if path is not None else default_qdrant_path()
    with _registry_lock:
        client = _local_clients.pop(str(folder.resolve()), None)
    if client is not None:
        client.close()


def close_all() -> None:
    """Close every local client `connect` opened. Runs at interpreter exit too: a local client left to the garbage
    collector would close itself while Python is tearing its modules down, and print a traceback."""
    with _registry_lock:
        clients = list(_local_clients.values())
        _local_clients.clear()
    for client in clients:
        client.close()


atexit.register(close_all)


def _still_open(client: QdrantClient) -> bool:
    """False when someone closed the registry's client behind its back (``client.close()``): asked through the
    public API, since a closed local client refuses every call."""
    try:
        client.get_collections()
    except RuntimeError:
        return False
    return True


def _is_local(client: QdrantClient) -> bool:
    """An embedded client (a folder or ``:memory:``), from the options it was created with."""
    options = client.init_options
    return options.get("location") == MEMORY or options.get("path") is not None


def _remote_client(url: str, api_key: str | None, timeout: float, prefer_grpc: bool) -> QdrantClient:
    from qdrant_client.http.exceptions import UnexpectedResponse

    kwargs = dict(url=url, api_key=api_key, prefer_grpc=prefer_grpc, check_compatibility=False)
    try:
        probe = QdrantClient(timeout=max(1, round(timeout)), **kwargs)
    except ValueError as exc:  # urllib3's LocationParseError and the client's own checks
        raise QdrantUnavailableError(f"{url!r} is not a Qdrant URL ({exc}); expected e.g. http://localhost:6333") \
            from exc
    started = time.perf_counter()
    try:
        probe.get_collections()
    except UnexpectedResponse as exc:
        hint = "the API key was rejected" if exc.status_code in (401, 403) else "is this a Qdrant server?"
        raise QdrantUnavailableError(f"Qdrant at {url} answered HTTP {exc.status_code} ({hint})") from exc
    except Exception as exc:  # ResponseHandlingException, httpx or grpc errors: they differ by transport
        raise QdrantUnavailableError(
            f"cannot reach a Qdrant server at {url} ({type(exc).__name__}: {exc}; gave up after "
            f"{time.perf_counter() - started:.1f} s). Check the URL and that the server runs, or leave out the "
            "URL to use the embedded local store."
        ) from exc
    finally:
        probe.close()
    return QdrantClient(timeout=max(30, round(timeout)), **kwargs)


def _enable_local_wal(client: QdrantClient, name: str) -> bool:
    """Put the SQLite file of a local collection in WAL mode with synchronous=NORMAL; True when it is.

    Embedded (local-path) mode commits once per point; in WAL mode a commit skips the fsync and writes are ~10x
    faster. A committed point still survives a crash of the process (only an OS crash or power loss can lose the
    last commits). qdrant-client has no public hook for this, so this is the one function that reads its internals
    (the client's ``_client.collections[name].storage.storage`` sqlite3 connection); when they change it logs and
    returns False (writes stay correct, only slower), and tests/laser_rag/test_store.py fails loudly."""
    if not _is_local(client) or client.init_options.get("location") == MEMORY:
        return False
    try:
        connection = client._client.collections[name].storage.storage
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except Exception as exc:  # changed qdrant-client internals
        logger.debug("could not put the local Qdrant collection %s in WAL mode: %s", name, exc)
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# Points


def recorded(client: QdrantClient, name: str) -> dict[str, Any] | None:
    """What an existing collection's metadata records about it (encoder, fingerprint, dimension, sparse vector),
    or None when laser_rag did not make it."""
    return (client.get_collection(name).config.metadata or {}).get(METADATA_KEY)


def point_id(doc_id: str) -> str:
    """The Qdrant point id of a document: stable across runs, machines and processes."""
    return str(uuid.uuid5(POINT_NAMESPACE, str(doc_id)))


def collection_name(corpus: str, label: str) -> str:
    """``<corpus>-<encoder label>``, lower case, characters Qdrant and file systems accept."""
    def clean(text: str) -> str:
        kept = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.strip().lower())
        return "-".join(part for part in kept.split("-") if part) or "default"

    return f"{clean(corpus)}-{clean(label)}"


def _point_metadata(doc: Document) -> dict[str, Any]:
    return {**{k: v for k, v in doc.metadata.items() if k not in _RESERVED_METADATA}, "doc_id": doc.id,
            "title": doc.title}


def llama_node(doc: Document) -> TextNode:
    """The LlamaIndex ``TextNode`` of a document's point (needs llama-index-core).

    Its id is the point id, its source document (``ref_doc_id``) the document the passage was cut from
    (``metadata["parent_id"]``, else the document itself), its metadata the point's. Only the title is embedded or
    shown to an LLM beside the text, as ``"title\\ntext"``: the node's text template renders what
    ``encoder.document_text(title, text)`` gives, so LlamaIndex embeds what laser_rag embeds.
    """
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    metadata = _point_metadata(doc)
    hidden = [key for key in metadata if key != "title"]
    source = str(doc.metadata.get("parent_id", doc.id))
    return TextNode(
        id_=point_id(doc.id),
        text=doc.text,
        metadata=metadata,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=source)},
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
        text_template="{metadata_str}\n{content}",
        metadata_template="{value}",
        metadata_separator="\n",
    )


@functools.cache
def _llama_index_installed() -> bool:
    try:
        return importlib.util.find_spec("llama_index.core") is not None
    except ModuleNotFoundError:  # no llama_index namespace at all
        return False


def _payload(doc: Document) -> dict[str, Any]:
    """The payload of a document's point (layout in the module docstring)."""
    payload = {"text": doc.text, "metadata": _point_metadata(doc)}
    if not _llama_index_installed():
        return payload
    from llama_index.core.vector_stores.utils import node_to_metadata_dict

    return {**node_to_metadata_dict(llama_node(doc), remove_text=False), **payload}


@dataclass(frozen=True)
class Hit:
    """One retrieved passage. ``id`` is the document id (not the Qdrant point id)."""

    id: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_point(cls, point: Any) -> Hit:
        """A Qdrant point (a search result or a retrieved record) as a `Hit`. Reads laser_rag's layout, LlamaIndex's
        (the node in ``_node_content``: points its own pipeline wrote) and LangChain's (``page_content``)."""
        payload = point.payload or {}
        text = payload.get("text", payload.get("page_content"))
        metadata = payload.get("metadata")
        if (not isinstance(text, str) or not isinstance(metadata, dict)) and "_node_content" in payload:
            node = json.loads(payload["_node_content"])  # a serialised LlamaIndex node: its text and metadata fields
            text = text if isinstance(text, str) else node.get("text")
            metadata = metadata if isinstance(metadata, dict) else node.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        source = payload.get("doc_id")  # LlamaIndex's ref_doc_id when the node carries no doc_id of ours
        doc_id = metadata.pop("doc_id", None) or (source if source not in (None, "None") else None) or point.id
        title = metadata.pop("title", "") or ""
        score = getattr(point, "score", None)
        return cls(id=str(doc_id), title=str(title), text=text or "", score=float(score or 0.0), metadata=metadata)


# ---------------------------------------------------------------------------------------------------------------
# Collections


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
    """A Qdrant collection bound to one encoder: its fingerprint and dimension are recorded and checked.

    Open with `open`; the constructor does no checks.
    """

    def __init__(self, client: QdrantClient, name: str, info: dict[str, Any]) -> None:
        self.client = client
        self.name = name
        self.info = info  # what the collection's metadata records: encoder label, fingerprint, dimension, precision

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    @property
    def dimension(self) -> int:
        return int(self.info["dimension"])

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
        recorded = self.info["sparse"]
        encoder = SparseEncoder(SparseConfig(**recorded["config"]))
        if encoder.fingerprint != recorded["fingerprint"]:
            raise StoreError(f"collection {self.name!r} holds sparse vectors of {recorded['config']} "
                             f"(fingerprint {recorded['fingerprint']}), which this process cannot reproduce "
                             f"({encoder!r}: {encoder.fingerprint}); install PyStemmer if the collection is stemmed")
        return encoder

    def __repr__(self) -> str:
        return (f"VectorCollection({self.name!r}, encoder={self.info.get('encoder')!r}, "
                f"fingerprint={self.fingerprint[:12]}, dim={self.dimension}, hybrid={self.hybrid})")

    @classmethod
    def open(
        cls,
        client: QdrantClient,
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
    ) -> VectorCollection:
        """Open ``name`` for ``encoder`` (or an explicit ``fingerprint`` and ``dimension``), creating it if needed.

        Raises `CollectionMismatchError` when it was made by another encoder or holds another dimension,
        `CollectionNotFoundError` when it is missing and ``create`` is false. ``recreate`` drops it first.
        An existing collection without our metadata (made by another tool) is adopted only while it is empty.
        The precision the vectors are computed in is recorded but not checked: a collection built in bfloat16
        stays queryable in float32.

        ``hybrid=True``: a collection created now also gets the sparse ``"bm25"`` vector (weighted by ``sparse``,
        default `SparseConfig()`); an existing one must already have it, else `HybridNotEnabledError` (which names
        the upgrade command). An existing hybrid collection keeps its own sparse config.
        """
        precision = None
        if encoder is not None:
            fingerprint = fingerprint or encoder.fingerprint
            dimension = dimension or encoder.dimension
            label = label or encoder.label
            precision = encoder.precision
        if not fingerprint or not dimension:
            raise ValueError("pass an encoder, or both fingerprint= and dimension=")
        expected = {"fingerprint": fingerprint, "dimension": int(dimension), "encoder": label or "unknown",
                    "precision": precision, "payload_layout": PAYLOAD_LAYOUT}
        if recreate and client.collection_exists(name):
            client.delete_collection(name)
        if not client.collection_exists(name):
            if not create:
                existing = sorted(c.name for c in client.get_collections().collections)
                raise CollectionNotFoundError(f"no collection {name!r} in this Qdrant store; index a corpus into it "
                                              f"first (`laser-rag index PATH`). Existing: {existing}")
            if hybrid:
                expected["sparse"] = _sparse_info(SparseEncoder(sparse), complete=True)
            return cls._create(client, name, expected)
        opened = cls._open_recorded(client, name, expected)
        if hybrid:
            opened.sparse_encoder  # noqa: B018 -- raises HybridNotEnabledError with the upgrade command
        return opened

    @classmethod
    def open_existing(cls, client: QdrantClient, name: str) -> VectorCollection:
        """Open a laser_rag collection by what its metadata records, without an encoder (e.g. to upgrade it).
        Raises `CollectionNotFoundError` when it is missing, `StoreError` when laser_rag did not make it."""
        if not client.collection_exists(name):
            existing = sorted(c.name for c in client.get_collections().collections)
            raise CollectionNotFoundError(f"no collection {name!r} in this Qdrant store. Existing: {existing}")
        stored = recorded(client, name)
        if not stored:
            raise StoreError(f"collection {name!r} was not made by laser_rag (no {METADATA_KEY!r} metadata)")
        return cls(client, name, stored)

    @classmethod
    def _open_recorded(cls, client: QdrantClient, name: str, expected: dict[str, Any]) -> VectorCollection:
        """An existing collection, checked against what ``expected`` says (adopted when foreign and empty)."""
        fingerprint = expected["fingerprint"]
        config = client.get_collection(name).config
        stored = (config.metadata or {}).get(METADATA_KEY)
        size = _vector_size(config.params.vectors, name)
        if stored is None:
            if client.count(name, exact=True).count:
                found = {"fingerprint": "none recorded", "dimension": size, "encoder": "not made by laser_rag"}
                raise CollectionMismatchError(name, found, expected, "was not made by laser_rag and is not empty")
            if size != expected["dimension"]:
                found = {"fingerprint": "none recorded", "dimension": size}
                raise CollectionMismatchError(name, found, expected, "has another vector dimension")
            client.update_collection(name, metadata={METADATA_KEY: expected})
            return cls(client, name, expected)
        if stored.get("fingerprint") != fingerprint:
            raise CollectionMismatchError(name, stored, expected, "was built by another encoder")
        if size != expected["dimension"] or int(stored.get("dimension", size)) != expected["dimension"]:
            raise CollectionMismatchError(name, {**stored, "dimension": size}, expected,
                                          "has another vector dimension")
        return cls(client, name, stored)

    @classmethod
    def _create(cls, client: QdrantClient, name: str, info: dict[str, Any]) -> VectorCollection:
        sparse_config = {SPARSE_VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)}
        client.create_collection(
            name,
            vectors_config=models.VectorParams(size=info["dimension"], distance=models.Distance.COSINE),
            sparse_vectors_config=sparse_config if info.get("sparse") else None,
            metadata={METADATA_KEY: info},
        )
        stored = recorded(client, name)
        if stored != info:
            client.delete_collection(name)
            raise StoreError(f"this Qdrant server does not keep collection metadata (needed to record the encoder "
                             f"fingerprint of {name!r}); use Qdrant 1.16 or newer")
        if not _is_local(client):  # payload indexes have no effect (and warn) in local mode
            client.create_payload_index(name, "metadata.doc_id", field_schema=models.PayloadSchemaType.KEYWORD)
        return cls(client, name, info)

    # ------------------------------------------------------------------ contents
    def count(self) -> int:
        return int(self.client.count(self.name, exact=True).count)

    def __len__(self) -> int:
        return self.count()

    def stored_ids(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of these document ids already have a point."""
        found: set[str] = set()
        for start in range(0, len(doc_ids), _LOOKUP_BATCH):
            chunk = list(doc_ids[start:start + _LOOKUP_BATCH])
            by_point = {point_id(doc_id): doc_id for doc_id in chunk}
            points = self.client.retrieve(self.name, ids=list(by_point), with_payload=False, with_vectors=False)
            found.update(by_point[str(p.id)] for p in points)
        return found

    def sparse_vectors(self, documents: Sequence[Document]) -> list[models.SparseVector] | None:
        """The sparse vectors of documents for this collection (None when it is not hybrid): the words of
        ``document_text(title, text)``, what the dense encoder reads."""
        if not self.info.get("sparse"):
            return None
        return self.sparse_encoder.encode_documents([document_text(doc.title, doc.text) for doc in documents])

    def upsert(self, documents: Sequence[Document], vectors: np.ndarray,
               sparse: Sequence[models.SparseVector] | None = None) -> None:
        """Write documents with their vectors (already computed by this collection's encoder). A hybrid collection
        also gets each document's sparse vector: ``sparse`` as given, else computed here (`sparse_vectors`)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(documents), self.dimension):
            raise ValueError(f"expected vectors of shape ({len(documents)}, {self.dimension}), got {vectors.shape}")
        sparse = self.sparse_vectors(documents) if sparse is None else sparse
        dense = [vector.tolist() for vector in vectors]
        if sparse is not None:
            dense = [_named(vector, lexical) for vector, lexical in zip(dense, sparse)]
        points = [models.PointStruct(id=point_id(doc.id), vector=vector, payload=_payload(doc))
                  for doc, vector in zip(documents, dense)]
        _enable_local_wal(self.client, self.name)
        self.client.upsert(self.name, points=points, wait=True)

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
    ) -> IndexReport:
        """Encode and store the documents not stored yet, ``batch_size`` at a time (each batch is written before
        the next is encoded, so a crash loses at most one batch of work). A hybrid collection also gets each
        document's sparse vector (`sparse_vectors`; its time is ``report.sparse_seconds``).

        ``chunk=True`` first cuts documents longer than the encoder reads (`laser_rag.corpus.chunk_documents`).
        Raises `CorpusError` before any work for duplicate ids or empty texts. ``on_batch`` is called with the running
        report after each batch is stored. The encoder's `TruncationWarning` is given once per call, not per batch.
        """
        started = time.perf_counter()
        if encoder.fingerprint != self.fingerprint:
            raise CollectionMismatchError(self.name, self.info, {"fingerprint": encoder.fingerprint,
                                                                 "dimension": encoder.dimension,
                                                                 "encoder": encoder.label},
                                          "was built by another encoder")
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
        with tqdm(total=len(todo), desc=f"indexing {self.name}", unit="doc", disable=not progress) as bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start:start + batch_size]
                tick = time.perf_counter()
                vectors = _encode_documents(encoder, batch, encode_batch_size, truncations)
                report.encode_seconds += time.perf_counter() - tick
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

    def search(self, vector: np.ndarray | Sequence[float], k: int = 10, *, exact: bool = False,
               query_filter: models.Filter | None = None) -> list[Hit]:
        """The ``k`` nearest documents to a query vector (cosine), best first. ``exact=True`` compares against
        every vector instead of the HNSW index (evaluation: what the encoder gives, not what the index finds)."""
        dense = self._dense_query(vector, k)
        params = models.SearchParams(exact=True) if exact and not _is_local(self.client) else None  # local: exact
        points = self.client.query_points(self.name, query=dense, limit=k, query_filter=query_filter,
                                          search_params=params, with_payload=True, with_vectors=False).points
        return [Hit.from_point(point) for point in points]

    def search_sparse(self, sparse: models.SparseVector, k: int = 10, *,
                      query_filter: models.Filter | None = None) -> list[Hit]:
        """The ``k`` best documents for a sparse query vector (``sparse_encoder.encode_query(text)``) alone: BM25
        with the engine's IDF. Raises `HybridNotEnabledError` on a collection without sparse vectors."""
        self.sparse_encoder  # noqa: B018 -- the clear error on a dense-only collection
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        points = self.client.query_points(self.name, query=sparse, using=SPARSE_VECTOR_NAME, limit=k,
                                          query_filter=query_filter, with_payload=True, with_vectors=False).points
        return [Hit.from_point(point) for point in points]

    def search_hybrid(self, vector: np.ndarray | Sequence[float], sparse: models.SparseVector, k: int = 10, *,
                      fusion: str = DEFAULT_FUSION, prefetch_limit: int | None = None, rrf_k: int | None = None,
                      weights: tuple[float, float] | None = None,
                      query_filter: models.Filter | None = None) -> list[Hit]:
        """Dense + lexical: the top ``max(k, prefetch_limit)`` (default `HYBRID_PREFETCH`) candidates of the dense
        vector and of the sparse one (``sparse_encoder.encode_query(text)``), fused server-side by ``fusion``
        (default `DEFAULT_FUSION`): ``"dbsf"`` (distribution-based score fusion: each list's scores rescaled by
        their mean +- 3 standard deviations, then summed) or ``"rrf"`` (reciprocal rank fusion,
        ``sum w / (rank / w + rrf_k - 1)`` over the two lists; ``rrf_k`` defaults to `RRF_K`, ``weights`` =
        (dense, sparse) to equal). A query with no word left after stopwords fuses the dense candidates alone. Raises
        `HybridNotEnabledError` on a collection without sparse vectors (see `enable_hybrid`)."""
        self.sparse_encoder  # noqa: B018 -- the clear error on a dense-only collection
        query = fusion_query(fusion, rrf_k=rrf_k, weights=weights, sparse=bool(sparse.indices))
        limit = max(k, prefetch_limit or HYBRID_PREFETCH)
        prefetch = [models.Prefetch(query=self._dense_query(vector, k), limit=limit, filter=query_filter)]
        if sparse.indices:
            prefetch.append(models.Prefetch(query=sparse, using=SPARSE_VECTOR_NAME, limit=limit,
                                            filter=query_filter))
        points = self.client.query_points(self.name, prefetch=prefetch, query=query, limit=k, with_payload=True,
                                          with_vectors=False).points
        return [Hit.from_point(point) for point in points]

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
        refuses meanwhile), and running it again redoes it (``laser-rag upgrade-hybrid``). Needs a store that can
        add a vector to an existing collection (the embedded store; a Qdrant server that cannot raises
        `StoreError`: re-index with ``--hybrid --recreate`` there).
        """
        if self.hybrid:
            return 0
        recorded = self.info.get("sparse")
        encoder = SparseEncoder(SparseConfig(**recorded["config"]) if recorded else sparse)
        self._record({**self.info, "sparse": _sparse_info(encoder, complete=False)})
        try:
            self.client.create_vector_name(self.name, SPARSE_VECTOR_NAME, models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))
        except Exception as exc:  # an older server (the embedded store supports it): say what to do instead
            raise StoreError(f"this Qdrant store cannot add the sparse vector to {self.name!r} in place "
                             f"({type(exc).__name__}: {exc}); re-index it with `laser-rag index ... --hybrid "
                             "--recreate` instead") from exc
        done = 0
        offset = None
        _enable_local_wal(self.client, self.name)
        with tqdm(total=self.count(), desc=f"sparse vectors for {self.name}", unit="point",
                  disable=not progress) as bar:
            while True:
                points, offset = self.client.scroll(self.name, limit=batch_size, offset=offset, with_payload=True,
                                                    with_vectors=False)
                hits = [Hit.from_point(point) for point in points]
                lexical = encoder.encode_documents([document_text(hit.title, hit.text) for hit in hits])
                updates = [models.PointVectors(id=point.id, vector={SPARSE_VECTOR_NAME: vector})
                           for point, vector in zip(points, lexical) if vector.indices]
                if updates:
                    self.client.update_vectors(self.name, points=updates, wait=True)
                done += len(updates)
                bar.update(len(points))
                if offset is None:
                    break
        self._record({**self.info, "sparse": _sparse_info(encoder, complete=True)})
        return done

    def _record(self, info: dict[str, Any]) -> None:
        """Write ``info`` as this collection's metadata entry (and forget the cached sparse encoder)."""
        self.client.update_collection(self.name, metadata={METADATA_KEY: info})
        self.info = info
        self.__dict__.pop("sparse_encoder", None)


def _encode_documents(encoder: BaseEncoder, batch: list[Document], batch_size: int,
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


def _named(dense: list[float], sparse: models.SparseVector) -> dict[str, Any]:
    """A hybrid point's vectors: the unnamed dense one (shared with LlamaIndex and LangChain) and the sparse one
    (left out when the text has no word after stopwords)."""
    return {"": dense, SPARSE_VECTOR_NAME: sparse} if sparse.indices else {"": dense}


def _checked(documents: list[Document]) -> list[Document]:
    seen: set[str] = set()
    duplicates = [doc.id for doc in documents if doc.id in seen or seen.add(doc.id)]
    if duplicates:
        raise CorpusError(f"{len(duplicates)} duplicate document ids (ids must be unique): {duplicates[:5]}")
    empty = [doc.id for doc in documents if not isinstance(doc.text, str) or not doc.text.strip()]
    if empty:
        raise CorpusError(f"{len(empty)} documents have empty text: {empty[:5]}")
    return documents


def _vector_size(vectors: Any, name: str) -> int:
    if isinstance(vectors, dict):  # named vectors: only the unnamed default is shared by both integrations
        if "" in vectors:
            return int(vectors[""].size)
        raise StoreError(f"collection {name!r} uses named vectors {sorted(vectors)}; laser_rag, LlamaIndex and "
                         "LangChain share the unnamed default vector")
    return int(vectors.size)
