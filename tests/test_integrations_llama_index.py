"""LaSEREmbedding and the Qdrant vector store in real LlamaIndex pipelines (local Qdrant, the real default model)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Settings, StorageContext, VectorStoreIndex  # noqa: E402

from laser_rag.integrations.llama_index import (  # noqa: E402
    LaSEREmbedding,
    LaSERQdrantVectorStore,
    qdrant_vector_store,
    to_llama_documents,
)
from laser_rag.store import CollectionMismatchError, VectorCollection, connect, release  # noqa: E402

QUERY = "What does the await expression do?"


@pytest.fixture(scope="module")
def embed_model(encoder):
    return LaSEREmbedding.from_encoder(encoder)


def test_query_and_text_methods_use_their_templates(embed_model, encoder):
    text = "Suspend the execution of coroutine on an awaitable object."
    query_vector = np.array(embed_model.get_query_embedding(text))
    text_vector = np.array(embed_model.get_text_embedding(text))
    np.testing.assert_allclose(query_vector, encoder.encode_queries([text])[0], atol=1e-5)
    np.testing.assert_allclose(text_vector, encoder.encode_documents([text])[0], atol=1e-5)
    assert not np.allclose(query_vector, text_vector, atol=1e-3)  # the query template differs
    batch = embed_model.get_text_embedding_batch([text, "pass is a null operation"])
    assert len(batch) == 2 and len(batch[0]) == encoder.dimension


def test_settings_are_described_pydantic_fields(encoder):
    fields = LaSEREmbedding.model_fields
    for name in ("source", "num_thinking_steps", "embed_batch_size"):
        assert fields[name].description
    single = LaSEREmbedding.from_encoder(encoder, num_thinking_steps=1, embed_batch_size=4)
    assert single.encoder.config.num_thinking_steps == 1 and single.embed_batch_size == 4
    assert single.fingerprint != encoder.fingerprint  # K is part of what the vectors mean
    assert "_encoder" not in single.to_dict()


def test_no_arguments_loads_the_embedded_default(encoder):
    previous = Settings._embed_model
    try:
        Settings.embed_model = LaSEREmbedding()
        assert Settings.embed_model.fingerprint == encoder.fingerprint
        assert len(Settings.embed_model.get_query_embedding("hello")) == encoder.dimension
    finally:
        Settings._embed_model = previous


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
    """LlamaIndex writes through `VectorStoreIndex.from_documents` and reads back through its retriever; the same
    collection is readable by laser_rag's own search (same ids and scores) and refuses another encoder."""
    client = connect(":memory:")
    store = qdrant_vector_store("li", embed_model, client=client)
    assert isinstance(store, LaSERQdrantVectorStore)
    passages = short_passages[:6]
    index = VectorStoreIndex.from_documents(to_llama_documents(passages),
                                            storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=embed_model)
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
    # LlamaIndex's splitter strips the passages' surrounding whitespace
    assert all(h.text == by_id[h.id].text.strip() and h.title == by_id[h.id].title for h in bare)

    async_nodes = asyncio.run(index.as_retriever(similarity_top_k=2).aretrieve(QUERY))  # no aclient needed
    assert [n.node.ref_doc_id for n in async_nodes] == [h.id for h in bare[:2]]

    with pytest.raises(CollectionMismatchError):
        qdrant_vector_store("li", LaSEREmbedding.from_encoder(minilm), client=client)


def test_reads_a_collection_indexed_by_laser_rag(embed_model, encoder, short_passages, laser_vectors, tmp_path):
    client = connect(tmp_path / "qdrant")
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
    release(tmp_path / "qdrant")
