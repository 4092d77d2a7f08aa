"""LlamaIndex adapter: `LaSEREmbedding` (a ``BaseEmbedding``), `LaSERRetriever` (a ``BaseRetriever`` over a
laser_rag collection on any store, the embedded Qdrant Edge default included), `qdrant_vector_store` (LlamaIndex's
own QdrantVectorStore on a collection that records its encoder: a qdrant-client store only, a server or
``":memory:"``) and `to_llama_nodes` (laser_rag documents as nodes).

Example::

    from llama_index.core import StorageContext, VectorStoreIndex
    from laser_rag.encoders import load_encoder
    from laser_rag.integrations.llama_index import LaSEREmbedding, qdrant_vector_store, to_llama_nodes

    encoder = load_encoder()                                   # the embedded default, offline
    embed_model = LaSEREmbedding.from_encoder(encoder)
    store = qdrant_vector_store("notes-laser-k3", embed_model, url="http://localhost:6333")  # fingerprint checked
    index = VectorStoreIndex(to_llama_nodes(docs, encoder), embed_model=embed_model,
                             storage_context=StorageContext.from_defaults(vector_store=store))
    nodes = index.as_retriever(similarity_top_k=5).retrieve("how do I ...?")

What LaSER thought about each query: ``LaSERThoughtsRetriever(index.as_retriever(similarity_top_k=5), embed_model)``
gives the same nodes, each with the query's latent steps in ``node.metadata["thoughts"]`` (hidden from the LLM).

On the embedded store (``laser-rag index`` without ``--qdrant-url``: Qdrant Edge, which LlamaIndex's
QdrantVectorStore cannot open), retrieve with ``LaSERRetriever("notes-laser-k3", embed_model, similarity_top_k=5)``
(``hybrid=True``: dense + BM25): nodes as `llama_node` makes them, scored as `laser_rag.retrieval.Retriever` scores.

Hybrid (dense + BM25): ``qdrant_vector_store(name, embed_model, enable_hybrid=True)`` gives LlamaIndex our sparse
function (`laser_rag.sparse`, the collection's own weights; Qdrant keeps the IDF) and our vector names; query with
``index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=5)``. A collection without sparse vectors
raises `HybridNotEnabledError`, which names the upgrade command.

`to_llama_nodes` cuts and renders documents exactly as ``VectorCollection.index(docs, encoder, chunk=True)`` does,
so both paths give the same point ids, vectors and passages. A collection filled by ``laser-rag index`` opens the
same way: ``VectorStoreIndex.from_vector_store(store, embed_model=embed_model)``.

Payloads: LlamaIndex's pipeline writes LlamaIndex's own payload (its node, serialised); laser_rag's core writes
its one layout (`laser_rag.store.payload`: ``text`` and ``metadata``), which knows nothing of LlamaIndex. This module
is where the two meet: `llama_node` is the node of a document's point, and `LaSERQdrantVectorStore` reads a point
laser_rag wrote as that node (its source document, metadata and title), where a plain QdrantVectorStore falls back
to the ``text`` key and nests the metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import MetadataMode, NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.vector_stores.qdrant import QdrantVectorStore

from laser_rag import _checks
from laser_rag import store as _store
from laser_rag.corpus import Document, chunk_documents
from laser_rag.store.collection import qdrant_client_of
from laser_rag.store.payload import Hit, is_laser_rag_payload, point_id, point_metadata
from laser_rag.errors import InvalidInputError, LaserRagError
from laser_rag.integrations import resolve_encoder
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseEncoder
from laser_rag.thoughts import DEFAULT_TOP_K, require_latent_steps

if TYPE_CHECKING:
    from laser_rag.encoders.base import BaseEncoder
    from laser_rag.thoughts import Thoughts

__all__ = ["LaSEREmbedding", "LaSERQdrantVectorStore", "LaSERRetriever", "LaSERThoughtsRetriever", "llama_node",
           "qdrant_vector_store", "sparse_functions", "to_llama_nodes"]


class LaSEREmbedding(BaseEmbedding):
    """A laser_rag encoder as a LlamaIndex embedding model: queries go through ``encode_queries`` (the query template,
    K latent steps for LaSER, ``query_instruction``), texts through ``encode_documents``. Works as
    ``Settings.embed_model`` and as ``embed_model=``; with no arguments it loads the embedded default (once per
    process). ``LaSEREmbedding.from_encoder(encoder)`` wraps an encoder already loaded.

    Async methods run the encoder in a worker thread, so the event loop is never blocked.
    """

    source: Optional[str] = Field(
        default=None,
        description="Model to load (laser_rag.encoders.load_encoder): a LaSER checkpoint directory, 'builtin:laser', "
                    "a hub id, a .gguf file, a sentence-transformers model ('all-minilm-l6-v2'), or None for the "
                    "embedded default.",
    )
    num_thinking_steps: Optional[int] = Field(
        default=None, ge=1,
        description="K, the number of latent thinking steps of a LaSER encoder; None keeps the checkpoint's K. "
                    "Changing K changes the vectors: a collection built with one K is refused for another.",
    )
    query_instruction: Optional[str] = Field(
        default=None, description="Task instruction put in front of every query (None: the encoder's default).")
    embed_batch_size: int = Field(default=16, gt=0, le=2048, description="Texts encoded per forward pass.")
    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, source: Optional[str] = None, *, encoder: BaseEncoder | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", encoder.label if encoder is not None else f"laser_rag:{source or 'default'}")
        super().__init__(source=source, **kwargs)
        self._encoder = resolve_encoder(encoder, source, self.num_thinking_steps)

    @classmethod
    def from_encoder(cls, encoder: BaseEncoder, **kwargs: Any) -> LaSEREmbedding:
        """Wrap an already-loaded encoder: no second load."""
        return cls(encoder=encoder, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "LaSEREmbedding"

    @property
    def encoder(self) -> BaseEncoder:
        return self._encoder

    @property
    def fingerprint(self) -> str:
        return self._encoder.fingerprint

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_queries([query], instruction=self.query_instruction,
                                            batch_size=self.embed_batch_size)[0].tolist()

    def query_thoughts(self, query: str, top_k: int) -> Thoughts:
        """What the encoder thought about ``query`` (`laser_rag.encoders.BaseEncoder.thoughts`): the top ``top_k``
        tokens of each latent step, and in ``.vector`` the same vector the query embedding is."""
        return self._encoder.thoughts(query, "query", top_k=top_k, instruction=self.query_instruction,
                                      batch_size=self.embed_batch_size)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode_documents(list(texts), batch_size=self.embed_batch_size).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


class LaSERThoughtsRetriever(BaseRetriever):
    """A vector retriever (``index.as_retriever(...)`` over ``embed_model``) whose nodes also carry what the encoder
    thought about the query: ``node.metadata["thoughts"]``, the top ``top_k`` tokens of each latent step with their
    probabilities (`laser_rag.thoughts.Thoughts.as_dict`), kept out of the LLM's and the embedder's text. The query
    is embedded once, by the pass that records the thoughts, so the nodes are those ``retriever`` alone finds."""

    def __init__(self, retriever: BaseRetriever, embed_model: LaSEREmbedding, top_k: int = DEFAULT_TOP_K,
                 **kwargs: Any) -> None:
        require_latent_steps(embed_model.encoder)
        self._retriever = retriever
        self._embed_model = embed_model
        self._top_k = _checks.positive_int(top_k, "top_k")
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if len(query_bundle.embedding_strs) != 1:
            raise InvalidInputError("LaSERThoughtsRetriever embeds one query text; got "
                                    f"{len(query_bundle.embedding_strs)} custom embedding strings")
        thought = self._embed_model.query_thoughts(query_bundle.embedding_strs[0], self._top_k)
        found = self._retriever.retrieve(QueryBundle(query_str=query_bundle.query_str,
                                                     custom_embedding_strs=query_bundle.custom_embedding_strs,
                                                     embedding=thought.vector.tolist()))
        steps = thought.as_dict()["steps"]
        for scored in found:
            scored.node.metadata["thoughts"] = steps
            for excluded in (scored.node.excluded_llm_metadata_keys, scored.node.excluded_embed_metadata_keys):
                if "thoughts" not in excluded:
                    excluded.append("thoughts")
        return found

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


class LaSERQdrantVectorStore(QdrantVectorStore):
    """LlamaIndex's QdrantVectorStore, plus:

    - points in laser_rag's payload layout (``laser-rag index``, `VectorCollection.index`) read as the node
      `llama_node` makes of the document (id, text, metadata, source document, title template);
    - async queries and adds without an ``aclient``: embedded mode cannot share a folder between a sync and an
      async client, so they run the sync client in a worker thread instead of failing.

    Open it with `qdrant_vector_store`, which records and checks the encoder's fingerprint."""

    _sync_only: bool = PrivateAttr(default=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_only = kwargs.get("aclient") is None and kwargs.get("client") is not None

    @classmethod
    def class_name(cls) -> str:
        return "LaSERQdrantVectorStore"

    def parse_to_query_result(self, response: list[Any]) -> Any:
        result = super().parse_to_query_result(response)
        result.nodes = [_node_of(point, node) if is_laser_rag_payload(point.payload) else node
                        for point, node in zip(response, result.nodes)]
        return result

    async def aquery(self, query, **kwargs):
        if self._sync_only:
            return await asyncio.to_thread(self.query, query, **kwargs)
        return await super().aquery(query, **kwargs)

    async def async_add(self, nodes, **kwargs):
        if self._sync_only:
            return await asyncio.to_thread(self.add, nodes, **kwargs)
        return await super().async_add(nodes, **kwargs)


def qdrant_vector_store(
    collection_name: str,
    embed_model: LaSEREmbedding | BaseEncoder | None = None,
    *,
    client: Any = None,
    path: str | Path | None = None,
    url: str | None = None,
    api_key: str | None = None,
    create: bool = True,
    enable_hybrid: bool = False,
    **kwargs: Any,
) -> LaSERQdrantVectorStore:
    """A LlamaIndex vector store on a laser_rag collection: created with the encoder's fingerprint recorded, or
    checked against it (`CollectionMismatchError`). ``embed_model``: a `LaSEREmbedding` or an encoder (default:
    ``Settings.embed_model``, which must then be a `LaSEREmbedding`). The client: ``client=``, else
    `laser_rag.store.connect` (``path`` / ``url``). Other keywords go to QdrantVectorStore.

    ``enable_hybrid=True``: the collection holds laser_rag's sparse BM25 vectors (created so, or an existing one
    that has them: else `HybridNotEnabledError`), and LlamaIndex's hybrid mode uses them through
    `sparse_functions` (``sparse_doc_fn``/``sparse_query_fn``, vector name ``"bm25"``).

    LlamaIndex's QdrantVectorStore needs a qdrant-client store: a server (``url``) or ``client=connect(":memory:")``.
    The embedded store (no ``url``) raises `StoreError`, which names `LaSERRetriever`, the retriever that works
    there."""
    encoder = _encoder_of(embed_model)
    client = client if client is not None else _store.connect(path, url=url, api_key=api_key)
    qdrant_client_of(client, collection_name)  # StoreError on the embedded store, before anything is created
    collection = _store.VectorCollection.open(client, collection_name, encoder, create=create, hybrid=enable_hybrid)
    if enable_hybrid:
        doc_fn, query_fn = sparse_functions(collection.sparse_encoder)
        kwargs = dict(enable_hybrid=True, sparse_doc_fn=doc_fn, sparse_query_fn=query_fn,
                      sparse_vector_name=SPARSE_VECTOR_NAME, **kwargs)
    return LaSERQdrantVectorStore(collection_name=collection_name, client=client, **kwargs)


class LaSERRetriever(BaseRetriever):
    """The top ``similarity_top_k`` nodes of a laser_rag collection for a query, on any store: the embedded Qdrant
    Edge default (`laser_rag.store.connect`, ``path``), a server (``url``) or ``client=``. It searches through
    laser_rag's `laser_rag.store.VectorCollection` as `laser_rag.retrieval.Retriever` does (``hybrid=True``: dense
    + BM25 fused in the engine; the collection must hold the sparse vectors, else `HybridNotEnabledError`). The
    collection's encoder fingerprint is checked against ``embed_model`` (a `LaSEREmbedding` or an encoder; default
    ``Settings.embed_model``) when it opens (`CollectionMismatchError`; `CollectionNotFoundError` when it is
    missing). Each node is `llama_node` of the hit's document, with the hit's score."""

    def __init__(self, collection_name: str, embed_model: LaSEREmbedding | BaseEncoder | None = None, *,
                 client: Any = None, path: str | Path | None = None, url: str | None = None,
                 api_key: str | None = None, similarity_top_k: int = 4, hybrid: bool = False, **kwargs: Any) -> None:
        from laser_rag.retrieval import RetrievalOptions, Retriever

        encoder = _encoder_of(embed_model)
        self._instruction = embed_model.query_instruction if isinstance(embed_model, LaSEREmbedding) else None
        client = client if client is not None else _store.connect(path, url=url, api_key=api_key)
        collection = _store.VectorCollection.open(client, collection_name, encoder, create=False, hybrid=hybrid)
        self._retriever = Retriever(collection, encoder, options=RetrievalOptions(k=similarity_top_k, hybrid=hybrid))
        super().__init__(**kwargs)

    @property
    def collection(self) -> _store.VectorCollection:
        return self._retriever.collection

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._retriever.retrieve(query_bundle.query_str, instruction=self._instruction)
        return [NodeWithScore(node=llama_node(hit.document()), score=hit.score) for hit in result.hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _encoder_of(embed_model: LaSEREmbedding | BaseEncoder | None) -> BaseEncoder:
    """The laser_rag encoder of an embedding model (default ``Settings.embed_model``); `TypeError` for another."""
    from laser_rag.encoders.base import BaseEncoder

    if embed_model is None:
        embed_model = _settings_embed_model()
    encoder = embed_model.encoder if isinstance(embed_model, LaSEREmbedding) else embed_model
    if not isinstance(encoder, BaseEncoder):
        raise TypeError(f"need a LaSEREmbedding or a laser_rag encoder, got {type(embed_model).__name__}")
    return encoder


def sparse_functions(encoder: SparseEncoder | None = None):
    """LlamaIndex's ``(sparse_doc_fn, sparse_query_fn)`` from laser_rag's sparse encoder: each maps texts to
    ``(indices per text, values per text)``."""
    encoder = encoder or SparseEncoder()

    def split(vectors) -> tuple[list[list[int]], list[list[float]]]:
        return [list(v.indices) for v in vectors], [list(v.values) for v in vectors]

    def doc_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        return split(encoder.encode_documents(texts))

    def query_fn(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
        return split(encoder.encode_queries(texts))

    return doc_fn, query_fn


def llama_node(doc: Document) -> TextNode:
    """The LlamaIndex ``TextNode`` of a document's point.

    Its id is the point id, its source document (``ref_doc_id``) the document the passage was cut from
    (``metadata["parent_id"]``, else the document itself), its metadata the point's. Only the title is embedded or
    shown to an LLM beside the text, as ``"title\\ntext"``: the node's text template renders what
    ``encoder.document_text(title, text)`` gives, so LlamaIndex embeds what laser_rag embeds.
    """
    metadata = point_metadata(doc)
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


def _node_of(point: Any, read: TextNode) -> TextNode:
    """The node of a point in laser_rag's layout, with the embedding LlamaIndex read (if any)."""
    node = llama_node(Hit.from_point(point).document())
    node.embedding = read.embedding
    return node


def _settings_embed_model() -> LaSEREmbedding:
    """``Settings.embed_model`` when it is a `LaSEREmbedding`; else a clear error (not LlamaIndex's OpenAI default)."""
    from llama_index.core import Settings

    try:
        current = Settings.embed_model
    except (ImportError, ValueError):  # nothing set: LlamaIndex tried its OpenAI default and could not build it
        current = None
    if not isinstance(current, LaSEREmbedding):
        found = "none" if current is None else type(current).__name__
        raise ValueError(f"no laser_rag embedding model given (Settings.embed_model: {found}): pass embed_model= "
                         "(a LaSEREmbedding or an encoder), or set Settings.embed_model = LaSEREmbedding() first")
    return current


def to_llama_nodes(documents: Iterable[Document], encoder: BaseEncoder) -> list[TextNode]:
    """laser_rag documents -> LlamaIndex ``TextNode``s, as laser_rag indexes them: cut by
    `laser_rag.corpus.chunk_documents` for ``encoder``, one node per passage (`llama_node`: the
    point's id, metadata and source document), each embedding exactly ``encoder.document_text(title, text)``.
    Index them with ``VectorStoreIndex(nodes, ...)``, not ``from_documents`` (which would split them again)."""
    nodes = []
    for doc in chunk_documents(documents, encoder):
        node = llama_node(doc)
        embedded, expected = node.get_content(MetadataMode.EMBED), encoder.document_text(doc.title, doc.text)
        if embedded != expected:
            raise LaserRagError(f"document {doc.id!r}: LlamaIndex would embed {embedded[:80]!r}, the encoder reads "
                                f"{expected[:80]!r}; this encoder's document_text is not 'title\\ntext'")
        nodes.append(node)
    return nodes
