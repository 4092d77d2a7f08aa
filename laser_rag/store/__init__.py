"""Qdrant collections that know which encoder filled them (docs/store.md describes the package).

- `connect` gives the embedded store by default: an `Engine` running Qdrant Edge in ``<folder>/edge`` (a folder
  under the user data dir; one per folder per process; `laser_rag.store.embedded`), which still reads the folder's
  qdrant-client local-mode collections until ``laser-rag migrate`` moves them (`laser_rag.store.migrate`); or a
  qdrant-client client of ``":memory:"`` or of a server / cluster with ``url=`` and ``api_key=``
  (`laser_rag.store.clients`).
- `VectorCollection.open` records the encoder's label, fingerprint, dimension and precision in the collection's
  metadata when it creates it, and refuses (`CollectionMismatchError`) to open it for another encoder. It talks to
  an `Engine` only (`laser_rag.store.engine`); a client is wrapped in a `QdrantClientEngine`.
- `VectorCollection.index` is idempotent: a point's id is the uuid5 of its document id, ids already stored are
  skipped *before* encoding, so re-indexing adds nothing and an interrupted run resumes where it stopped.
- Hybrid search: a collection opened with ``hybrid=True`` when it is created also holds the sparse lexical vector
  ``"bm25"`` (`laser_rag.sparse`); `VectorCollection.search_hybrid` fuses dense and sparse candidates in the engine
  (`laser_rag.store.fusion`); `VectorCollection.enable_hybrid` adds the sparse vector in place.
- Scale (docs/qdrant-server.md): `CollectionOptions` (shards, replicas, on-disk vectors and payload, int8 or binary
  quantization) shape a new collection, `VectorCollection.search`'s ``rescore`` / ``oversampling`` its quantized
  search, and `BulkLoad` a large first load (`VectorCollection.index(..., bulk=...)`: the index deferred, then
  built before it returns).
- One payload layout (`laser_rag.store.payload`): LangChain's ``text`` and ``metadata`` keys; `Hit.from_point`
  reads it, the older layouts, and points written by LlamaIndex's and LangChain's own pipelines.

Example::

    client = connect()                                     # Qdrant Edge in ~/.local/share/laser_rag/qdrant/edge
    collection = VectorCollection.open(client, "pydoc-laser-k3", encoder)
    collection.index(documents, encoder, chunk=True)       # skips what is already there
    hits = collection.search(encoder.encode_queries("how do I use with?"), k=5)
"""

from laser_rag.store.clients import close_all, connect, default_qdrant_path, release
from laser_rag._store_options import QUANTIZATIONS, BulkLoad, CollectionOptions
from laser_rag.store.collection import IndexReport, VectorCollection, collection_name, recorded
from laser_rag.store.engine import CollectionSpec, Engine, PointRecord, PointWrite, QdrantClientEngine
from laser_rag.store.fusion import DEFAULT_FUSION, FUSIONS, HYBRID_PREFETCH, RRF_K, fusion_query
from laser_rag.store.payload import PAYLOAD_LAYOUT, Hit, point_id

__all__ = [
    "DEFAULT_FUSION",
    "FUSIONS",
    "HYBRID_PREFETCH",
    "PAYLOAD_LAYOUT",
    "QUANTIZATIONS",
    "RRF_K",
    "BulkLoad",
    "CollectionOptions",
    "CollectionSpec",
    "Engine",
    "Hit",
    "IndexReport",
    "PointRecord",
    "PointWrite",
    "QdrantClientEngine",
    "VectorCollection",
    "close_all",
    "collection_name",
    "connect",
    "default_qdrant_path",
    "fusion_query",
    "point_id",
    "recorded",
    "release",
]
