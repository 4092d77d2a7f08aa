"""LaSEREmbedding and the Qdrant vector store in real LlamaIndex pipelines (local Qdrant, real models), and the
promise that LlamaIndex and laser_rag index the same corpus into the same points."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import MetadataMode  # noqa: E402

from laser_rag import store as laser_store  # noqa: E402
from laser_rag.corpus import Document, chunk_documents  # noqa: E402
from laser_rag.errors import CollectionMismatchError  # noqa: E402
from laser_rag.integrations.llama_index import (  # noqa: E402
    LaSEREmbedding,
    LaSERQdrantVectorStore,
    LaSERThoughtsRetriever,
    qdrant_vector_store,
    to_llama_nodes,
)
from laser_rag.store import Hit, VectorCollection, connect, point_id, release  # noqa: E402

QUERY = "What does the await expression do?"
LONG = Document("guide.md", "\n\n".join(f"Step {n}. " + "Configure the thing, then check it works. " * 25
                                        for n in range(5)), "Setup guide", {"source": "guide.md"})


@pytest.fixture(scope="module")
def embed_model(encoder):
    return LaSEREmbedding.from_encoder(encoder)


def index_nodes(nodes, vector_store, embed_model) -> VectorStoreIndex:
    return VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=vector_store),
                            embed_model=embed_model)


def test_query_and_text_methods_use_their_templates(embed_model, encoder):
    text = "Suspend the execution of coroutine on an awaitable object."
    query_vector = np.array(embed_model.get_query_embedding(text))
    text_vector = np.array(embed_model.get_text_embedding(text))
    np.testing.assert_allclose(query_vector, encoder.encode_queries([text])[0], atol=1e-5)
    np.testing.assert_allclose(text_vector, encoder.encode_documents([text])[0], atol=1e-5)
    assert not np.allclose(query_vector, text_vector, atol=1e-3)  # the query template differs
    batch = embed_model.get_text_embedding_batch([text, "pass is a null operation"])
    assert len(batch) == 2 and len(batch[0]) == encoder.dimension


def test_query_instruction_reaches_the_encoder(encoder):
    instruction = "Given a Python question, retrieve the reference passage that answers it"
    instructed = LaSEREmbedding.from_encoder(encoder, query_instruction=instruction)
    vector = np.array(instructed.get_query_embedding(QUERY))
    np.testing.assert_allclose(vector, encoder.encode_queries([QUERY], instruction=instruction)[0], atol=1e-5)
    assert not np.allclose(vector, encoder.encode_queries([QUERY])[0], atol=1e-3)


def test_settings_are_described_pydantic_fields(encoder, minilm):
    fields = LaSEREmbedding.model_fields
    for name in ("source", "num_thinking_steps", "query_instruction", "embed_batch_size"):
        assert fields[name].description
    single = LaSEREmbedding.from_encoder(encoder, num_thinking_steps=1, embed_batch_size=4)
    assert single.encoder.num_thinking_steps == 1 and single.embed_batch_size == 4
    assert single.fingerprint != encoder.fingerprint  # K is part of what the vectors mean
    assert "_encoder" not in single.to_dict()
    assert LaSEREmbedding.from_encoder(minilm).model_name == "all-minilm-l6-v2"
    with pytest.raises(ValueError, match="LaSER encoders only"):
        LaSEREmbedding.from_encoder(minilm, num_thinking_steps=2)


def test_no_arguments_loads_the_embedded_default(encoder):
    default = LaSEREmbedding()
    assert default.fingerprint == encoder.fingerprint
    assert len(default.get_query_embedding("hello")) == encoder.dimension


def test_vector_store_takes_its_encoder_from_settings_only_when_it_is_ours(minilm):
    client = connect(":memory:")
    try:
        Settings.embed_model = None  # LlamaIndex's "no embeddings" (a MockEmbedding): not ours
        with pytest.raises(ValueError, match="no laser_rag embedding model given.*MockEmbedding"):
            qdrant_vector_store("c", client=client)
        Settings.embed_model = LaSEREmbedding.from_encoder(minilm)
        qdrant_vector_store("c", client=client)
        assert client.get_collection("c").config.metadata["laser_rag"]["fingerprint"] == minilm.fingerprint
    finally:
        Settings.embed_model = None
    with pytest.raises(TypeError, match="need a LaSEREmbedding or a laser_rag encoder"):
        qdrant_vector_store("c", "not a model", client=client)


async def test_async_methods_do_not_block_the_event_loop(embed_model, short_passages):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    vectors = await embed_model.aget_text_embedding_batch([d.text for d in short_passages[:6]])
    query = await embed_model.aget_query_embedding(QUERY)
    elapsed = time.perf_counter() - started
    task.cancel()
    assert len(vectors) == 6 and len(query) == embed_model.encoder.dimension
    assert ticks >= max(2, int(elapsed / 0.01 * 0.3))  # the loop kept running while the model worked


def test_vector_store_index_end_to_end(embed_model, encoder, minilm, short_passages):
    """LlamaIndex writes through `VectorStoreIndex` and reads back through its retriever; the same collection is
    readable by laser_rag's own search (same ids and scores) and refuses another encoder."""
    client = connect(":memory:")
    vector_store = qdrant_vector_store("li", embed_model, client=client)
    assert isinstance(vector_store, LaSERQdrantVectorStore)
    passages = short_passages[:6]
    index = index_nodes(to_llama_nodes(passages, encoder), vector_store, embed_model)
    assert client.count("li").count == len(passages)  # short passages: one node each
    meta = client.get_collection("li").config.metadata["laser_rag"]
    assert meta["fingerprint"] == encoder.fingerprint

    nodes = index.as_retriever(similarity_top_k=4).retrieve(QUERY)
    assert len(nodes) == 4
    assert {n.node.ref_doc_id for n in nodes} <= {d.id for d in passages}

    bare = VectorCollection.open(client, "li", encoder).search(encoder.encode_queries(QUERY), k=4)
    assert [h.id for h in bare] == [n.node.ref_doc_id for n in nodes]
    np.testing.assert_allclose([h.score for h in bare], [n.score for n in nodes], atol=1e-4)
    by_id = {d.id: d for d in passages}
    assert all(h.text == by_id[h.id].text and h.title == by_id[h.id].title for h in bare)

    async_nodes = asyncio.run(index.as_retriever(similarity_top_k=2).aretrieve(QUERY))  # no aclient needed
    assert [n.node.ref_doc_id for n in async_nodes] == [h.id for h in bare[:2]]

    with pytest.raises(CollectionMismatchError):
        qdrant_vector_store("li", LaSEREmbedding.from_encoder(minilm), client=client)


def test_nodes_embed_exactly_the_encoders_document_text(minilm):
    corpus = [LONG, Document("plain", "No title here."), Document("titled", "Body.\n", " Padded title ")]
    nodes = to_llama_nodes(corpus, minilm)
    pieces = [n for n in nodes if n.metadata["doc_id"].startswith("guide.md#")]
    assert len(pieces) >= 2 and len(nodes) == len(pieces) + 2
    for node in nodes:
        title, text = node.metadata["title"], node.text
        assert node.get_content(MetadataMode.EMBED) == minilm.document_text(title, text)
        assert node.node_id == point_id(node.metadata["doc_id"])
    assert {n.ref_doc_id for n in pieces} == {"guide.md"}  # LlamaIndex's source document: the one that was cut
    assert nodes[-1].get_content(MetadataMode.EMBED) == "Padded title\nBody."
    assert nodes[-1].get_content(MetadataMode.LLM) == "Padded title\nBody."  # an LLM sees the title too


def test_llama_index_path_and_laser_rag_path_give_the_same_points(minilm, short_passages):
    """The same corpus indexed by `VectorCollection.index(chunk=True)` and by LlamaIndex over `to_llama_nodes`:
    the same point ids, vectors, texts and metadata, and LlamaIndex reads both as the same nodes (each tool writes
    its own payload: laser_rag's layout, LlamaIndex's serialised node)."""
    corpus = [LONG, *short_passages[:5]]
    client = connect(":memory:")
    VectorCollection.open(client, "ours", minilm).index(corpus, minilm, chunk=True)
    embed_model = LaSEREmbedding.from_encoder(minilm)
    index_nodes(to_llama_nodes(corpus, minilm), qdrant_vector_store("theirs", embed_model, client=client),
                embed_model)

    def points(name):
        records, _ = client.scroll(name, limit=1000, with_payload=True, with_vectors=True)
        return {str(record.id): record for record in records}

    ours, theirs = points("ours"), points("theirs")
    assert ours.keys() == theirs.keys() and len(ours) > len(corpus)
    reader = qdrant_vector_store("ours", embed_model, client=client)
    for key, mine in ours.items():
        other = theirs[key]
        np.testing.assert_allclose(mine.vector, other.vector, atol=1e-5)
        assert Hit.from_point(mine) == Hit.from_point(other)
        assert set(mine.payload) == {"text", "metadata"} and "_node_content" in other.payload
        read, written = reader.parse_to_query_result([mine, other]).nodes
        assert (read.node_id, read.text, read.metadata, read.ref_doc_id) == (
            written.node_id, written.text, written.metadata, written.ref_doc_id)
        for mode in (MetadataMode.EMBED, MetadataMode.LLM):
            assert read.get_content(mode) == written.get_content(mode)
        np.testing.assert_allclose(read.embedding, written.embedding, atol=1e-5)


def test_reads_a_collection_indexed_by_laser_rag(embed_model, encoder, short_passages, laser_vectors):
    client = connect(":memory:")
    collection = VectorCollection.open(client, "pydoc-laser", encoder)
    collection.upsert(short_passages, laser_vectors)

    index = VectorStoreIndex.from_vector_store(qdrant_vector_store("pydoc-laser", embed_model, client=client),
                                               embed_model=embed_model)
    nodes = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    bare = collection.search(encoder.encode_queries(QUERY), k=3)
    assert [n.node.ref_doc_id for n in nodes] == [h.id for h in bare]
    by_id = {d.id: d for d in short_passages}
    for node in nodes:
        assert node.node.get_content() == by_id[node.node.ref_doc_id].text
        assert node.node.metadata["title"] == by_id[node.node.ref_doc_id].title


def test_our_retriever_reads_the_embedded_edge_store(embed_model, encoder, minilm, short_passages, laser_vectors,
                                                    scifact_slice, tmp_path):
    """On the embedded default (Qdrant Edge, which LlamaIndex's QdrantVectorStore cannot open), `LaSERRetriever`
    returns the nodes laser_rag's own search finds, dense and hybrid; qdrant_vector_store says to use it."""
    from laser_rag.errors import CollectionNotFoundError, HybridNotEnabledError, StoreError
    from laser_rag.integrations.llama_index import LaSERRetriever

    client = connect(tmp_path / "qdrant")
    collection = VectorCollection.open(client, "pydoc-laser", encoder)
    collection.upsert(short_passages, laser_vectors)
    retriever = LaSERRetriever("pydoc-laser", embed_model, client=client, similarity_top_k=3)
    nodes = retriever.retrieve(QUERY)
    bare = collection.search(encoder.encode_queries(QUERY), k=3)
    assert [n.node.ref_doc_id for n in nodes] == [h.id for h in bare]
    assert [n.score for n in nodes] == pytest.approx([h.score for h in bare], abs=1e-6)
    by_id = {d.id: d for d in short_passages}
    for node in nodes:
        assert node.node.node_id == point_id(node.node.ref_doc_id)
        assert node.node.get_content() == by_id[node.node.ref_doc_id].text
        assert node.node.metadata["title"] == by_id[node.node.ref_doc_id].title
    assert [n.node.node_id for n in asyncio.run(retriever.aretrieve(QUERY))] == [n.node.node_id for n in nodes]

    vectors = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in scifact_slice.corpus])
    hybrid = VectorCollection.open(client, "sf-hybrid", minilm, hybrid=True)
    hybrid.upsert(scifact_slice.corpus, vectors)
    query = next(iter(scifact_slice.queries.values()))
    found = LaSERRetriever("sf-hybrid", minilm, client=client, similarity_top_k=3, hybrid=True).retrieve(query)
    ours = hybrid.search_hybrid(minilm.encode_queries([query])[0], hybrid.sparse_encoder.encode_query(query), 3)
    assert [n.node.ref_doc_id for n in found] == [h.id for h in ours]

    with pytest.raises(CollectionMismatchError):
        LaSERRetriever("pydoc-laser", minilm, client=client)
    with pytest.raises(CollectionNotFoundError):
        LaSERRetriever("nope", minilm, client=client)
    with pytest.raises(HybridNotEnabledError):
        LaSERRetriever("pydoc-laser", embed_model, client=client, hybrid=True)
    with pytest.raises(StoreError, match="LaSERRetriever"):
        qdrant_vector_store("new", embed_model, client=client)
    assert not client.exists("new")  # refused before anything was created
    release(tmp_path / "qdrant")


def test_thoughts_retriever_adds_the_querys_thoughts_to_the_same_nodes(embed_model, encoder, short_passages,
                                                                      laser_vectors, minilm):
    client = connect(":memory:")
    VectorCollection.open(client, "pydoc-laser", encoder).upsert(short_passages, laser_vectors)
    index = VectorStoreIndex.from_vector_store(qdrant_vector_store("pydoc-laser", embed_model, client=client),
                                               embed_model=embed_model)
    plain = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    thinking = LaSERThoughtsRetriever(index.as_retriever(similarity_top_k=3), embed_model, top_k=2).retrieve(QUERY)
    assert [n.node.ref_doc_id for n in thinking] == [n.node.ref_doc_id for n in plain]
    np.testing.assert_allclose([n.score for n in thinking], [n.score for n in plain], atol=1e-6)
    assert "thoughts" not in plain[0].node.metadata
    steps = thinking[0].node.metadata["thoughts"]
    assert steps == [[{"token": t, "probability": p} for t, p in step] for step in encoder.thoughts(QUERY, top_k=2).steps]
    assert "probability" not in thinking[0].node.get_content(metadata_mode=MetadataMode.LLM)
    with pytest.raises(ValueError, match="single-pass"):
        LaSERThoughtsRetriever(index.as_retriever(), LaSEREmbedding.from_encoder(minilm))


def test_a_plain_qdrant_vector_store_reads_laser_rags_layout(minilm, short_passages):
    """LlamaIndex's own QdrantVectorStore (not ours) on a collection laser_rag filled: a point without
    ``_node_content`` is read through its fallback (legacy_metadata_dict_to_node): the node text from the ``text``
    key, our metadata nested under ``metadata``; it still finds the right passages."""
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    client = connect(":memory:")
    collection = VectorCollection.open(client, "plain", minilm)
    collection.index(short_passages, minilm)
    embed_model = LaSEREmbedding.from_encoder(minilm)
    index = VectorStoreIndex.from_vector_store(QdrantVectorStore(collection_name="plain", client=client),
                                               embed_model=embed_model)
    nodes = index.as_retriever(similarity_top_k=3).retrieve(QUERY)
    bare = collection.search(minilm.encode_queries(QUERY), k=3)
    assert [n.node.node_id for n in nodes] == [point_id(h.id) for h in bare]
    assert [n.node.get_content() for n in nodes] == [h.text for h in bare]
    assert [n.node.metadata["metadata"]["doc_id"] for n in nodes] == [h.id for h in bare]
    np.testing.assert_allclose([n.score for n in nodes], [h.score for h in bare], atol=1e-5)


def test_hybrid_vector_store_writes_and_reads_our_sparse_vectors(minilm, scifact_slice):
    """LlamaIndex's own hybrid pipeline, with our sparse function and vector names: it writes the sparse vectors
    laser_rag would write, and its hybrid retriever finds the cited abstracts."""
    from laser_rag.errors import HybridNotEnabledError

    client = connect(":memory:")
    embed = LaSEREmbedding.from_encoder(minilm)
    vector_store = qdrant_vector_store("li-hybrid", embed, client=client, enable_hybrid=True)
    assert vector_store.enable_hybrid and vector_store.sparse_vector_name == "bm25"
    passages = chunk_documents(scifact_slice.corpus, minilm)  # what to_llama_nodes indexes
    index = index_nodes(to_llama_nodes(passages, minilm), vector_store, embed)
    assert vector_store.dense_vector_name == ""  # the unnamed vector laser_rag and LangChain share

    ours = VectorCollection.open(client, "li-hybrid", minilm, hybrid=True)
    reference = VectorCollection.open(connect(":memory:"), "ref", minilm, hybrid=True)  # laser_rag's own upsert
    reference.upsert(passages, np.full((len(passages), minilm.dimension), 0.1))
    for query in list(scifact_slice.queries.values())[:3]:
        sparse = ours.sparse_encoder.encode_query(query)
        mine, theirs = ours.search_sparse(sparse, 10), reference.search_sparse(sparse, 10)
        assert [h.id for h in mine] == [h.id for h in theirs]
        np.testing.assert_allclose([h.score for h in mine], [h.score for h in theirs], rtol=1e-5)

    retriever = index.as_retriever(vector_store_query_mode="hybrid", similarity_top_k=3)
    found = sum(any(n.node.ref_doc_id in scifact_slice.qrels[qid] for n in retriever.retrieve(text))
                for qid, text in scifact_slice.queries.items())
    assert found >= 8  # SciFact's own qrels define relevance

    laser_store.VectorCollection.open(client, "li-dense", minilm)
    with pytest.raises(HybridNotEnabledError, match="upgrade-hybrid --collection li-dense"):
        qdrant_vector_store("li-dense", embed, client=client, enable_hybrid=True)
