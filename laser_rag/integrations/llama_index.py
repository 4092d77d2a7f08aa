"""LlamaIndex adapter: `LaSEREmbedding` (a ``BaseEmbedding``) and a Qdrant vector store that records the encoder.

Example::

    from llama_index.core import Settings, StorageContext, VectorStoreIndex
    from laser_rag.integrations.llama_index import LaSEREmbedding, qdrant_vector_store, to_llama_documents

    Settings.embed_model = LaSEREmbedding()              # the embedded default, offline
    store = qdrant_vector_store("notes-laser-k3")        # embedded Qdrant; fingerprint recorded and checked
    index = VectorStoreIndex.from_documents(to_llama_documents(docs),
                                            storage_context=StorageContext.from_defaults(vector_store=store))
    nodes = index.as_retriever(similarity_top_k=5).retrieve("how do I ...?")

A collection filled by ``laser-rag index`` opens the same way: ``VectorStoreIndex.from_vector_store(store)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Optional

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import Document as LlamaDocument
from llama_index.vector_stores.qdrant import QdrantVectorStore

from laser_rag import store as _store
from laser_rag.datasets import Document
from laser_rag.encoders import resolve_encoder


class LaSEREmbedding(BaseEmbedding):
    """LaSER embeddings for LlamaIndex: queries get the query template and K latent steps, texts the document
    template. Works as ``Settings.embed_model`` and in ``VectorStoreIndex.from_documents(..., embed_model=...)``;
    with no arguments it loads the embedded default (once per process).

    Async methods run the encoder in a worker thread, so the event loop is never blocked.
    """

    source: Optional[str] = Field(
        default=None,
        description="Model to load: a LaSER checkpoint directory, 'builtin:laser', a hub id, a .gguf file, a "
                    "sentence-transformers model ('all-minilm-l6-v2'), or None for the embedded default.",
    )
    num_thinking_steps: Optional[int] = Field(
        default=None, ge=1,
        description="K, the number of latent thinking steps for queries and texts; None keeps the checkpoint's K. "
                    "Changing K changes the vectors: a collection built with one K is refused for another.",
    )
    embed_batch_size: int = Field(default=16, gt=0, le=2048, description="Texts encoded per forward pass.")
    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, source: Optional[str] = None, *, encoder: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", f"laser:{source or 'default'}")
        super().__init__(source=source, **kwargs)
        self._encoder = resolve_encoder(encoder, source, self.num_thinking_steps)

    @classmethod
    def from_encoder(cls, encoder: Any, **kwargs: Any) -> LaSEREmbedding:
        """Wrap an already-loaded encoder (a `LaSEREncoder` or any encoder with its protocol): no second load."""
        kwargs.setdefault("model_name", repr(encoder))
        return cls(encoder=encoder, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "LaSEREmbedding"

    @property
    def encoder(self) -> Any:
        return self._encoder

    @property
    def fingerprint(self) -> str:
        return self._encoder.fingerprint

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_queries([query], batch_size=self.embed_batch_size)[0].tolist()

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


class LaSERQdrantVectorStore(QdrantVectorStore):
    """LlamaIndex's QdrantVectorStore with two additions for laser_rag collections:

    - points LlamaIndex writes also carry ``text`` and ``metadata`` (laser_rag's payload layout), so LangChain's
      retriever and laser_rag's own search read them too;
    - without an ``aclient`` (embedded mode cannot share a folder between a sync and an async client), async
      queries and adds run the sync client in a worker thread instead of failing.

    Open it with `qdrant_vector_store`, which records and checks the encoder's fingerprint.
    """

    @classmethod
    def class_name(cls) -> str:
        return "LaSERQdrantVectorStore"

    def _build_points(self, nodes, sparse_vector_name):
        points, ids = super()._build_points(nodes, sparse_vector_name)
        for point, node in zip(points, nodes):
            metadata = {**node.metadata, "doc_id": node.ref_doc_id or node.node_id}
            metadata.setdefault("title", "")
            point.payload.setdefault("text", node.get_content())
            point.payload.setdefault("metadata", metadata)
        return points, ids

    async def aquery(self, query, **kwargs):
        if self._aclient is None:
            return await asyncio.to_thread(self.query, query, **kwargs)
        return await super().aquery(query, **kwargs)

    async def async_add(self, nodes, **kwargs):
        if self._aclient is None:
            return await asyncio.to_thread(self.add, nodes, **kwargs)
        return await super().async_add(nodes, **kwargs)


def qdrant_vector_store(
    collection_name: str,
    embed_model: LaSEREmbedding | Any | None = None,
    *,
    client: Any = None,
    path: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    create: bool = True,
    **kwargs: Any,
) -> LaSERQdrantVectorStore:
    """A LlamaIndex vector store on a laser_rag collection: created with the encoder's fingerprint recorded, or
    checked against it (`CollectionMismatchError`). ``embed_model``: a `LaSEREmbedding` or an encoder (default:
    ``Settings.embed_model``). The client: ``client=``, else `laser_rag.store.connect` (``path`` / ``url``)."""
    if embed_model is None:
        from llama_index.core import Settings

        embed_model = Settings._embed_model  # not .embed_model: that would fall back to OpenAI's
    encoder = embed_model.encoder if isinstance(embed_model, LaSEREmbedding) else embed_model
    if not hasattr(encoder, "fingerprint"):
        raise TypeError(f"need a LaSEREmbedding or a laser_rag encoder, got {type(embed_model).__name__}: pass "
                        "embed_model=, or set Settings.embed_model = LaSEREmbedding() first")
    client = client if client is not None else _store.connect(path, url=url, api_key=api_key)
    _store.VectorCollection.open(client, collection_name, encoder, create=create)
    return LaSERQdrantVectorStore(collection_name=collection_name, client=client, **kwargs)


def to_llama_documents(documents: Sequence[Document]) -> list[LlamaDocument]:
    """laser_rag documents -> LlamaIndex documents (same ids; the title is the only metadata that is embedded)."""
    out = []
    for doc in documents:
        metadata = {**doc.metadata, "title": doc.title}
        out.append(LlamaDocument(
            id_=doc.id, text=doc.text, metadata=metadata,
            excluded_embed_metadata_keys=[key for key in metadata if key != "title"],
            excluded_llm_metadata_keys=[key for key in metadata if key != "title"],
        ))
    return out
