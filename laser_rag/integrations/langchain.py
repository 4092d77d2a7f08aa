"""LangChain adapter: `LaSEREmbeddings` (``Embeddings``), `LaSERSparseEmbeddings` (langchain-qdrant's
``SparseEmbeddings``: laser_rag's BM25 sparse vectors) and `LaSERRetriever` (``BaseRetriever`` over a laser_rag
collection, dense or hybrid, on any store: through laser_rag's own `laser_rag.store.VectorCollection` on the
embedded Qdrant Edge store, through langchain-qdrant's ``QdrantVectorStore`` on a qdrant-client one).

Example::

    from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever
    from laser_rag.store import connect

    embeddings = LaSEREmbeddings()                       # the embedded default, offline
    retriever = LaSERRetriever(client=connect(), collection_name="pydoc-laser-k3", embeddings=embeddings, k=5)
    # connect(): the embedded Qdrant Edge store; connect(url=...) a server (then `retriever.vectorstore` is
    # langchain-qdrant's QdrantVectorStore, for MMR and its filters)
    docs = retriever.invoke("how do I open a file?", k=3)   # Documents; metadata has doc_id, title, score

    # hybrid (dense + BM25, fused by Qdrant): the collection holds sparse vectors (indexed or upgraded hybrid)
    hybrid = LaSERRetriever(client=connect(), collection_name="pydoc-laser-k3", embeddings=embeddings,
                            retrieval_mode=RetrievalMode.HYBRID)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from laser_rag import _checks
from laser_rag import store as _store
from laser_rag.errors import InvalidInputError
from laser_rag.integrations import resolve_encoder
from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseEncoder
from laser_rag.thoughts import require_latent_steps
from laser_rag.store.collection import qdrant_client_of
from laser_rag.store.engine import QdrantClientEngine

if TYPE_CHECKING:
    from laser_rag.encoders.base import BaseEncoder
    from laser_rag.thoughts import Thoughts

__all__ = ["LaSEREmbeddings", "LaSERRetriever", "LaSERSparseEmbeddings", "RetrievalMode"]

#: Where laser_rag's payload keeps the passage text and its metadata (see `laser_rag.store`).
CONTENT_PAYLOAD_KEY = "text"
METADATA_PAYLOAD_KEY = "metadata"


class LaSEREmbeddings(BaseModel, Embeddings):
    """A laser_rag encoder as LangChain embeddings: ``embed_query`` goes through ``encode_queries`` (the query
    template, K latent steps for LaSER, ``query_instruction``), ``embed_documents`` through ``encode_documents``.
    Async methods run in a worker thread.

    With no arguments it loads the embedded default (once per process); ``LaSEREmbeddings.from_encoder(enc)``
    wraps an encoder already loaded.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    source: Optional[str] = Field(
        default=None,
        description="Model to load (laser_rag.encoders.load_encoder): a LaSER checkpoint directory, 'builtin:laser', "
                    "a hub id, a .gguf file, a sentence-transformers model ('all-minilm-l6-v2'), or None for the "
                    "embedded default.",
    )
    num_thinking_steps: Optional[int] = Field(
        default=None, ge=1, description="K latent thinking steps of a LaSER encoder; None keeps the checkpoint's K.")
    query_instruction: Optional[str] = Field(
        default=None, description="Task instruction put in front of every query (None: the encoder's default).")
    batch_size: int = Field(default=16, gt=0, description="Texts encoded per forward pass.")
    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, source: Optional[str] = None, *, encoder: BaseEncoder | None = None, **data: Any) -> None:
        super().__init__(source=source, **data)
        self._encoder = resolve_encoder(encoder, source, self.num_thinking_steps)

    @classmethod
    def from_encoder(cls, encoder: BaseEncoder, **data: Any) -> LaSEREmbeddings:
        """Wrap an already-loaded encoder: no second load."""
        return cls(encoder=encoder, **data)

    @property
    def encoder(self) -> BaseEncoder:
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode_documents(list(texts), batch_size=self.batch_size).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._encoder.encode_queries([text], instruction=self.query_instruction,
                                            batch_size=self.batch_size)[0].tolist()

    def query_thoughts(self, text: str, top_k: int) -> Thoughts:
        """What the encoder thought about the query ``text`` (`laser_rag.encoders.BaseEncoder.thoughts`): the top
        ``top_k`` tokens of each latent step, and in ``.vector`` the same vector `embed_query` gives."""
        return self._encoder.thoughts(text, "query", top_k=top_k, instruction=self.query_instruction,
                                      batch_size=self.batch_size)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


class LaSERSparseEmbeddings(SparseEmbeddings):
    """laser_rag's lexical sparse vectors (`laser_rag.sparse.SparseEncoder`: BM25 term weights; Qdrant adds the
    IDF) as langchain-qdrant sparse embeddings. Pass the collection's own encoder
    (``VectorCollection.sparse_encoder``) so documents and queries are weighted as the stored points are."""

    def __init__(self, encoder: SparseEncoder | None = None) -> None:
        self.encoder = encoder or SparseEncoder()

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [SparseVector(indices=v.indices, values=v.values) for v in self.encoder.encode_documents(texts)]

    def embed_query(self, text: str) -> SparseVector:
        vector = self.encoder.encode_query(text)
        return SparseVector(indices=vector.indices, values=vector.values)


class LaSERRetriever(BaseRetriever):
    """Top-``k`` passages of a laser_rag collection for a query, as LangChain Documents.

    ``client``: any laser_rag store (`laser_rag.store.connect`). On the embedded Qdrant Edge store (the default, or
    any engine that is not qdrant-client) it searches through laser_rag's `laser_rag.store.VectorCollection` (the
    same search as `laser_rag.retrieval.Retriever`); on a qdrant-client store (a server, ``":memory:"``) through
    langchain-qdrant's ``QdrantVectorStore`` (`vectorstore`), which gives the same ranking.

    The collection's recorded encoder fingerprint is checked against ``embeddings`` on construction
    (`CollectionMismatchError`). ``k`` is set here and can be overridden per call: ``invoke(query, k=3)``.
    Each Document has ``id`` = the document id and metadata ``doc_id``, ``title``, ``score`` plus the corpus's own.
    ``thoughts=n`` (dense retrieval, an encoder with latent steps) also puts in each Document's metadata
    ``thoughts``: the query's latent steps, the top ``n`` tokens of each with its probability, from the pass that
    embeds the query (`laser_rag.thoughts.Thoughts.as_dict`).
    ``retrieval_mode=RetrievalMode.HYBRID`` (or ``SPARSE``) also uses the collection's BM25 sparse vectors
    (`LaSERSparseEmbeddings`, fused by Qdrant as `laser_rag.store.VectorCollection.search_hybrid` fuses: the same
    fusion, `laser_rag.store.DEFAULT_FUSION`, over the same `laser_rag.store.HYBRID_PREFETCH` candidates per side);
    a collection without them raises `HybridNotEnabledError`, which names the upgrade command.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: Any = Field(description="The store (laser_rag.store.connect()): the embedded engine, or a "
                                    "qdrant_client.QdrantClient.")
    collection_name: str = Field(description="The Qdrant collection, filled by laser_rag or LlamaIndex.")
    embeddings: LaSEREmbeddings = Field(description="Embeds the query; must be the collection's encoder.")
    k: int = Field(default=4, ge=1, description="How many documents to return.")
    retrieval_mode: RetrievalMode = Field(default=RetrievalMode.DENSE, description="DENSE, or HYBRID / SPARSE with "
                                          "the collection's BM25 sparse vectors.")
    thoughts: Optional[int] = Field(default=None, ge=1, description="Also put the query's latent steps (the top n "
                                    "tokens of each) in each Document's metadata, as 'thoughts' (dense mode).")
    _vectorstore: Optional[QdrantVectorStore] = PrivateAttr(default=None)
    _retriever: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.thoughts is not None and self.retrieval_mode != RetrievalMode.DENSE:
            raise InvalidInputError("thoughts apply to dense retrieval (RetrievalMode.DENSE) only")
        if self.thoughts is not None:
            require_latent_steps(self.embeddings.encoder)
        # after validation, so a CollectionMismatchError is not wrapped into a pydantic ValidationError
        from laser_rag.retrieval import RetrievalOptions, Retriever

        lexical = self.retrieval_mode != RetrievalMode.DENSE
        collection = _store.VectorCollection.open(self.client, self.collection_name, self.embeddings.encoder,
                                                  create=False, hybrid=lexical)
        if not isinstance(collection.engine, QdrantClientEngine):  # Qdrant Edge: laser_rag's own search
            self._retriever = Retriever(collection, self.embeddings.encoder, options=RetrievalOptions(
                k=self.k, hybrid=self.retrieval_mode == RetrievalMode.HYBRID))
            return
        sparse = dict(sparse_embedding=LaSERSparseEmbeddings(collection.sparse_encoder),
                      sparse_vector_name=SPARSE_VECTOR_NAME) if lexical else {}
        self._vectorstore = QdrantVectorStore(
            client=self.client,
            collection_name=self.collection_name,
            embedding=self.embeddings,
            content_payload_key=CONTENT_PAYLOAD_KEY,
            metadata_payload_key=METADATA_PAYLOAD_KEY,
            validate_collection_config=False,  # checked above, by fingerprint; saves an embedding call
            retrieval_mode=self.retrieval_mode,
            **sparse,
        )

    @property
    def vectorstore(self) -> QdrantVectorStore:
        """The langchain-qdrant vector store underneath (for MMR, filters, ...): on a qdrant-client store only
        (`StoreError` on the embedded Qdrant Edge store, which langchain-qdrant cannot open)."""
        if self._vectorstore is None:
            qdrant_client_of(self.client, self.collection_name)  # raises, saying what works
        return self._vectorstore

    def _search(self, query: str, k: Optional[int]) -> list[LCDocument]:
        _checks.text(query, "the query")
        k = self.k if k is None else _checks.positive_int(k, "k")
        if self._retriever is not None:
            return self._search_collection(query, k)
        fusion, fetch = None, k
        if self.retrieval_mode == RetrievalMode.HYBRID:
            # langchain-qdrant prefetches as many candidates per side as it returns: ask it for laser_rag's prefetch
            # depth and keep the top k, so the fused ranking is `VectorCollection.search_hybrid`'s, not a shallower one
            fusion, fetch = _store.fusion_query(), max(k, _store.HYBRID_PREFETCH)
        thought = None
        if self.thoughts is not None:  # one pass gives the query's vector and its thoughts
            thought = self.embeddings.query_thoughts(query, self.thoughts)
            found = self._vectorstore.similarity_search_with_score_by_vector(thought.vector.tolist(), k=fetch)
        else:
            found = self._vectorstore.similarity_search_with_score(query, k=fetch, hybrid_fusion=fusion)[:k]
        foreign = self._foreign_points([doc for doc, _ in found if "doc_id" not in doc.metadata])
        documents = []
        for doc, score in found:
            hit = foreign.get(str(doc.metadata.get("_id")))
            if hit is not None:  # a point LlamaIndex's pipeline wrote: no "text"/"metadata" keys, read it as a Hit
                doc.page_content = hit.text
                doc.metadata.update(hit.metadata, doc_id=hit.id, title=hit.title)
            doc.metadata["score"] = score
            if thought is not None:
                doc.metadata["thoughts"] = thought.as_dict()["steps"]
            doc.id = str(doc.metadata.get("doc_id", doc.metadata.get("_id")))
            documents.append(doc)
        return documents

    def _search_collection(self, query: str, k: int) -> list[LCDocument]:
        """The search through laser_rag's `VectorCollection` (any engine): dense and hybrid as
        `laser_rag.retrieval.Retriever` searches, sparse alone with `VectorCollection.search_sparse`."""
        if self.retrieval_mode == RetrievalMode.SPARSE:
            collection = self._retriever.collection
            hits = collection.search_sparse(collection.sparse_encoder.encode_query(query), k)
            thought = None
        else:
            found = self._retriever.retrieve(query, k=k, instruction=self.embeddings.query_instruction,
                                             thoughts=self.thoughts)
            hits, thought = found.hits, found.thoughts
        extra = {"thoughts": thought.as_dict()["steps"]} if thought is not None else {}
        return [LCDocument(page_content=hit.text, id=hit.id, metadata={
                    **hit.metadata, "doc_id": hit.id, "title": hit.title, "score": hit.score, **extra})
                for hit in hits]

    def _foreign_points(self, documents: list[LCDocument]) -> dict[str, _store.Hit]:
        """Points written without laser_rag's keys, re-read through `laser_rag.store.Hit.from_point`."""
        if not documents:
            return {}
        points = self.client.retrieve(self.collection_name, ids=[doc.metadata["_id"] for doc in documents],
                                      with_payload=True, with_vectors=False)
        return {str(point.id): _store.Hit.from_point(point) for point in points}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: Optional[int] = None) -> list[LCDocument]:
        return self._search(query, k)

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: Optional[int] = None) -> list[LCDocument]:
        return await asyncio.to_thread(self._search, query, k)
