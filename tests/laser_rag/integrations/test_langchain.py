"""LaSEREmbeddings and LaSERRetriever: langchain-tests' standard suites, plus what the suites don't check."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from laser_rag.errors import CollectionMismatchError, CollectionNotFoundError  # noqa: E402
from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever  # noqa: E402
from laser_rag.store import VectorCollection, connect, release  # noqa: E402

QUERY = "What does the await expression do?"
_shared: dict = {}  # the session's encoder and a filled collection, for the suites' parameter properties


@pytest.fixture(scope="module", autouse=True)
def laser_collection(encoder, short_passages, laser_vectors):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "pydoc-laser", encoder)
    collection.upsert(short_passages, laser_vectors)
    _shared.update(encoder=encoder, client=client, embeddings=LaSEREmbeddings.from_encoder(encoder))
    return collection


class TestLaSEREmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self):
        return LaSEREmbeddings

    @property
    def embedding_model_params(self):
        return {"encoder": _shared["encoder"], "batch_size": 8}


class TestLaSEREmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return LaSEREmbeddings

    @property
    def embedding_model_params(self):
        return {"encoder": _shared["encoder"]}


@pytest.fixture(scope="module", autouse=True)
def edge_collection(encoder, short_passages, laser_vectors, tmp_path_factory):
    """The same collection on the embedded default (Qdrant Edge: laser_rag's own search, no langchain-qdrant)."""
    folder = tmp_path_factory.mktemp("edge")
    client = connect(folder)
    collection = VectorCollection.open(client, "pydoc-laser", encoder)
    collection.upsert(short_passages, laser_vectors)
    _shared.update(edge=client)
    yield collection
    release(folder)


class _RetrieverSuite(RetrieversIntegrationTests):
    """langchain-tests' standard retriever suite on the store named by ``store`` (a key of ``_shared``)."""

    store = "client"

    @property
    def retriever_constructor(self):
        return LaSERRetriever

    @property
    def retriever_constructor_params(self):
        return {"client": _shared[self.store], "collection_name": "pydoc-laser", "embeddings": _shared["embeddings"]}

    @property
    def retriever_query_example(self):
        return QUERY


class TestLaSERRetrieverStandardEdge(_RetrieverSuite):
    store = "edge"  # the embedded default: laser_rag's own search over Qdrant Edge


class TestLaSERRetrieverStandard(_RetrieverSuite):
    store = "client"  # qdrant-client in memory: langchain-qdrant's QdrantVectorStore


def test_embeddings_use_query_and_document_templates(encoder):
    embeddings = LaSEREmbeddings.from_encoder(encoder)
    text = "The pass statement is a null operation."
    query, document = np.array(embeddings.embed_query(text)), np.array(embeddings.embed_documents([text])[0])
    np.testing.assert_allclose(query, encoder.encode_queries([text])[0], atol=1e-5)
    np.testing.assert_allclose(document, encoder.encode_documents([text])[0], atol=1e-5)
    assert not np.allclose(query, document, atol=1e-3)
    assert LaSEREmbeddings.from_encoder(encoder, num_thinking_steps=1).encoder.num_thinking_steps == 1


def test_query_instruction_reaches_the_encoder(encoder):
    instruction = "Given a Python question, retrieve the reference passage that answers it"
    instructed = LaSEREmbeddings.from_encoder(encoder, query_instruction=instruction).embed_query(QUERY)
    expected = encoder.encode_queries(QUERY, instruction=instruction)
    assert np.allclose(instructed, expected, atol=1e-5)
    assert not np.allclose(instructed, LaSEREmbeddings.from_encoder(encoder).embed_query(QUERY), atol=1e-3)
    assert LaSEREmbeddings.model_fields["query_instruction"].description


def test_wraps_any_encoder(minilm):
    embeddings = LaSEREmbeddings.from_encoder(minilm)
    assert len(embeddings.embed_query("hello")) == minilm.dimension == 384
    with pytest.raises(ValueError, match="LaSER encoders only"):
        LaSEREmbeddings.from_encoder(minilm, num_thinking_steps=2)


def test_empty_text_is_a_clear_error(encoder):
    with pytest.raises(ValueError, match="document at index 1 is empty"):
        LaSEREmbeddings.from_encoder(encoder).embed_documents(["fine", " "])


async def test_retriever_documents_match_the_bare_path(encoder, laser_collection, short_passages):
    retriever = LaSERRetriever(client=_shared["client"], collection_name="pydoc-laser",
                               embeddings=_shared["embeddings"], k=3)
    documents = retriever.invoke(QUERY)
    bare = laser_collection.search(encoder.encode_queries(QUERY), k=3)
    assert [d.id for d in documents] == [h.id for h in bare]
    np.testing.assert_allclose([d.metadata["score"] for d in documents], [h.score for h in bare], atol=1e-5)
    by_id = {p.id: p for p in short_passages}
    for doc in documents:
        assert doc.page_content == by_id[doc.id].text
        assert doc.metadata["doc_id"] == doc.id and doc.metadata["title"] == by_id[doc.id].title
    assert [d.id for d in await retriever.ainvoke(QUERY, k=2)] == [h.id for h in bare[:2]]


def test_retriever_puts_the_querys_thoughts_in_metadata_when_asked(encoder, laser_collection, minilm):
    plain = LaSERRetriever(client=_shared["client"], collection_name="pydoc-laser", embeddings=_shared["embeddings"],
                           k=2).invoke(QUERY)
    documents = LaSERRetriever(client=_shared["client"], collection_name="pydoc-laser",
                               embeddings=_shared["embeddings"], k=2, thoughts=3).invoke(QUERY)
    assert [d.id for d in documents] == [d.id for d in plain]  # the same vector: scores to float32 rounding
    np.testing.assert_allclose([d.metadata["score"] for d in documents], [d.metadata["score"] for d in plain],
                               atol=1e-6)
    assert "thoughts" not in plain[0].metadata
    steps = documents[0].metadata["thoughts"]
    assert len(steps) == encoder.num_thinking_steps and len(steps[0]) == 3
    assert steps == [[{"token": t, "probability": p} for t, p in step]
                     for step in encoder.thoughts(QUERY, top_k=3).steps]
    with pytest.raises(ValueError, match="single-pass"):
        LaSERRetriever(client=connect(":memory:"), collection_name="x", embeddings=LaSEREmbeddings.from_encoder(minilm),
                       thoughts=3)


async def test_retriever_on_the_embedded_store_matches_the_qdrant_client_path(minilm, edge_collection):
    """On Qdrant Edge the retriever searches through laser_rag's VectorCollection: the same documents, metadata and
    scores as the langchain-qdrant path on a qdrant-client store; it has no langchain-qdrant vector store."""
    from laser_rag.errors import StoreError

    on_edge = LaSERRetriever(client=_shared["edge"], collection_name="pydoc-laser", embeddings=_shared["embeddings"],
                             k=3)
    on_client = LaSERRetriever(client=_shared["client"], collection_name="pydoc-laser",
                               embeddings=_shared["embeddings"], k=3)
    edge_docs, client_docs = on_edge.invoke(QUERY), on_client.invoke(QUERY)
    assert [d.id for d in edge_docs] == [d.id for d in client_docs]
    assert [d.page_content for d in edge_docs] == [d.page_content for d in client_docs]
    assert [d.metadata["score"] for d in edge_docs] == pytest.approx([d.metadata["score"] for d in client_docs],
                                                                     abs=1e-5)
    for ours, theirs in zip(edge_docs, client_docs):
        assert {k: v for k, v in theirs.metadata.items() if not k.startswith("_") and k != "score"} == \
            {k: v for k, v in ours.metadata.items() if k != "score"}
    assert [d.id for d in await on_edge.ainvoke(QUERY, k=2)] == [d.id for d in edge_docs[:2]]
    with pytest.raises(StoreError, match="LaSERRetriever"):
        on_edge.vectorstore  # noqa: B018 -- langchain-qdrant cannot open the embedded store
    with pytest.raises(CollectionMismatchError):
        LaSERRetriever(client=_shared["edge"], collection_name="pydoc-laser",
                       embeddings=LaSEREmbeddings.from_encoder(minilm))


def test_retriever_reads_a_collection_filled_by_llama_index(minilm, short_passages):
    """Points LlamaIndex's own pipeline wrote carry no ``text``/``metadata`` keys; the retriever still returns
    their text and metadata (re-read through `Hit.from_point`)."""
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import StorageContext, VectorStoreIndex

    from laser_rag.integrations.llama_index import LaSEREmbedding, qdrant_vector_store

    client = connect(":memory:")
    embed_model = LaSEREmbedding.from_encoder(minilm)
    vector_store = qdrant_vector_store("li", embed_model, client=client)
    llama_docs = [LlamaDocument(id_=d.id, text=d.text, metadata={"title": d.title}) for d in short_passages[:6]]
    VectorStoreIndex.from_documents(llama_docs, storage_context=StorageContext.from_defaults(vector_store=vector_store),
                                    embed_model=embed_model)

    retriever = LaSERRetriever(client=client, collection_name="li", embeddings=LaSEREmbeddings.from_encoder(minilm))
    documents = retriever.invoke(QUERY, k=3)
    bare = VectorCollection.open(client, "li", minilm).search(minilm.encode_queries(QUERY), k=3)
    assert [d.id for d in documents] == [h.id for h in bare]  # LlamaIndex's ref_doc_id: the source document
    assert [d.page_content for d in documents] == [h.text for h in bare] and all(h.text for h in bare)
    assert [d.metadata["title"] for d in documents] == [h.title for h in bare]


def test_retriever_refuses_another_encoder_or_a_missing_collection(minilm):
    with pytest.raises(CollectionMismatchError):
        LaSERRetriever(client=_shared["client"], collection_name="pydoc-laser",
                       embeddings=LaSEREmbeddings.from_encoder(minilm))
    with pytest.raises(CollectionNotFoundError):
        LaSERRetriever(client=_shared["client"], collection_name="nope", embeddings=_shared["embeddings"])


def test_hybrid_retriever_uses_our_sparse_vectors_and_finds_cited_abstracts(minilm, scifact_slice):
    from langchain_qdrant import RetrievalMode

    from laser_rag.errors import HybridNotEnabledError
    from laser_rag.integrations.langchain import LaSERSparseEmbeddings
    from laser_rag.sparse import SparseEncoder

    client = connect(":memory:")
    vectors = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in scifact_slice.corpus])
    VectorCollection.open(client, "sf-hybrid", minilm, hybrid=True).upsert(scifact_slice.corpus, vectors)
    VectorCollection.open(client, "sf-dense", minilm).upsert(scifact_slice.corpus, vectors)
    embeddings = LaSEREmbeddings.from_encoder(minilm)
    retriever = LaSERRetriever(client=client, collection_name="sf-hybrid", embeddings=embeddings, k=3,
                               retrieval_mode=RetrievalMode.HYBRID)
    assert retriever.vectorstore.sparse_vector_name == "bm25"
    found = sum(any(d.id in scifact_slice.qrels[qid] for d in retriever.invoke(query))
                for qid, query in scifact_slice.queries.items())
    assert found >= 8  # SciFact's own qrels define relevance
    query = next(iter(scifact_slice.queries.values()))
    docs = retriever.invoke(query)
    assert len(docs) == 3 and all(d.metadata["doc_id"] == d.id and d.page_content for d in docs)
    # the fusion and its prefetch depth are laser_rag's: the same ranking and scores as our own hybrid search
    hybrid = VectorCollection.open(client, "sf-hybrid", minilm, hybrid=True)
    ours = hybrid.search_hybrid(minilm.encode_queries([query])[0], hybrid.sparse_encoder.encode_query(query), 3)
    assert [d.id for d in docs] == [h.id for h in ours]
    assert [d.metadata["score"] for d in docs] == pytest.approx([h.score for h in ours], abs=1e-6)
    shallow = hybrid.search_hybrid(minilm.encode_queries([query])[0], hybrid.sparse_encoder.encode_query(query), 3,
                                   prefetch_limit=3)
    assert [h.score for h in shallow] != pytest.approx([h.score for h in ours])  # so the depth is what matters

    # on the embedded store (Qdrant Edge, laser_rag's own search): the same fused ranking, and BM25 alone
    edge = _shared["edge"]
    VectorCollection.open(edge, "sf-hybrid", minilm, hybrid=True).upsert(scifact_slice.corpus, vectors)
    on_edge = LaSERRetriever(client=edge, collection_name="sf-hybrid", embeddings=embeddings, k=3,
                             retrieval_mode=RetrievalMode.HYBRID)
    assert [d.id for d in on_edge.invoke(query)] == [h.id for h in ours]
    lexical = LaSERRetriever(client=edge, collection_name="sf-hybrid", embeddings=embeddings, k=3,
                             retrieval_mode=RetrievalMode.SPARSE).invoke(query)
    alone = hybrid.search_sparse(hybrid.sparse_encoder.encode_query(query), 3)
    assert [d.id for d in lexical] == [h.id for h in alone]

    sparse = LaSERSparseEmbeddings(SparseEncoder())
    ours = SparseEncoder().encode_query("vitamin D fractures")
    assert sparse.embed_query("vitamin D fractures").indices == ours.indices
    assert [v.values for v in sparse.embed_documents(["a b c", "vitamin vitamin"])][1] != [1.0]

    with pytest.raises(HybridNotEnabledError, match="upgrade-hybrid --collection sf-dense"):
        LaSERRetriever(client=client, collection_name="sf-dense", embeddings=embeddings,
                       retrieval_mode=RetrievalMode.HYBRID)
