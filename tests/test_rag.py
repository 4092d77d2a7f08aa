"""The answer loop: prompt, generation with the local model, pluggable LLMs, and clear errors per stage."""

from __future__ import annotations

import time

import pytest

from laser_rag.llm import GenerationError, GenerationTimeout, LangChainLLM, LlamaIndexLLM, TransformersLLM, as_llm
from laser_rag.rag import RAG, build_prompt
from laser_rag.retrieval import Retriever
from laser_rag.store import VectorCollection, connect

QUESTION = "What does the await expression do?"
STAGES = {"rewrite_ms", "encode_ms", "search_ms", "generate_ms", "total_ms"}


@pytest.fixture(scope="module")
def retriever(encoder, short_passages, laser_vectors):
    collection = VectorCollection.open(connect(":memory:"), "pydoc-laser-k3", encoder)
    collection.upsert(short_passages, laser_vectors)
    return Retriever(collection, encoder, mode="laser")


def test_prompt_numbers_the_passages(retriever):
    hits = retriever.retrieve(QUESTION, k=3).hits
    system, user = build_prompt(QUESTION, hits)
    assert system["role"] == "system" and "only the numbered passages" in system["content"]
    for number, hit in enumerate(hits, start=1):
        assert f"[{number}] {hit.title}" in user["content"]
    assert user["content"].rstrip().endswith(f"Question: {QUESTION}\nAnswer:")
    assert "no passages" in build_prompt(QUESTION, [])[1]["content"]


def test_answer_with_the_local_model(retriever, local_llm):
    answer = RAG(retriever, local_llm, k=2, max_new_tokens=8).ask(QUESTION)
    assert isinstance(answer.text, str) and answer.text
    assert len(answer.hits) == 2 and answer.llm == "smollm2-135m-instruct"
    assert set(answer.timings) == STAGES and answer.timings["rewrite_ms"] == 0.0
    assert answer.timings["generate_ms"] > 0
    assert answer.timings["total_ms"] >= answer.timings["generate_ms"] + answer.timings["encode_ms"]


async def test_aask(retriever, local_llm):
    answer = await RAG(retriever, local_llm, k=1, max_new_tokens=4).aask(QUESTION)
    assert len(answer.hits) == 1 and set(answer.timings) == STAGES


def test_time_limit_raises_with_the_retrieval_attached(retriever, local_llm):
    slow = TransformersLLM(local_llm.model, local_llm.tokenizer, max_new_tokens=64, time_limit=1e-3)
    with pytest.raises(GenerationTimeout) as err:
        RAG(retriever, slow, k=2).ask(QUESTION)
    assert err.value.retrieval is not None and len(err.value.retrieval.hits) == 2
    assert "time limit" in str(err.value)


def test_unreachable_openai_compatible_server_fails_fast(retriever):
    llm = as_llm("http://127.0.0.1:1/v1", model="any", timeout=3)  # no OpenAI key needed
    assert isinstance(llm, LangChainLLM)
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="127.0.0.1:1"):
        llm.generate("Say hello.")
    assert time.perf_counter() - started < 10
    with pytest.raises(GenerationError) as err:
        RAG(retriever, llm, k=1).ask(QUESTION)
    assert err.value.retrieval is not None


def test_framework_models_plug_in(retriever):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    langchain_llm = as_llm(FakeListChatModel(responses=["It suspends the coroutine [1]."]))
    assert isinstance(langchain_llm, LangChainLLM)
    assert RAG(retriever, langchain_llm, k=1).ask(QUESTION).text == "It suspends the coroutine [1]."
    llama_llm = as_llm(MockLLM(max_tokens=4))
    assert isinstance(llama_llm, LlamaIndexLLM)
    assert isinstance(RAG(retriever, llama_llm, k=1).ask(QUESTION).text, str)
    with pytest.raises(TypeError, match="cannot use"):
        as_llm(42)
