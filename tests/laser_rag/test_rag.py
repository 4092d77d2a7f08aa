"""The answer loop: prompt, generation with the local model, pluggable LLMs, and errors that keep the retrieval."""

from __future__ import annotations

import pytest

from laser_rag.errors import GenerationError, GenerationTimeout, InvalidInputError
from laser_rag.llm import GenerationConfig, TransformersLLM, as_llm
from laser_rag.rag import RAG, Answer, build_prompt
from laser_rag.retrieval import QueryRewriter, Retriever
from laser_rag.store import VectorCollection, connect

QUESTION = "What does the await expression do?"
STAGES = {"rewrite_ms", "encode_ms", "search_ms", "generate_ms", "first_token_ms", "total_ms"}


class Recorder:
    """An LLM that answers with a fixed text and records the token budgets it was given."""

    name = "recorder"

    def __init__(self, reply: str = "It suspends the coroutine [1].", error: Exception | None = None) -> None:
        self.reply, self.error, self.budgets = reply, error, []

    def generate(self, messages, *, max_new_tokens=None):
        self.budgets.append(max_new_tokens)
        if self.error is not None:
            raise self.error
        return self.reply


@pytest.fixture(scope="module")
def retriever(minilm, short_passages):
    collection = VectorCollection.open(connect(":memory:"), "pydoc-all-minilm-l6-v2", minilm)
    collection.index(short_passages, minilm)
    return Retriever(collection, minilm, mode="basic")


def test_prompt_numbers_the_passages(retriever):
    hits = retriever.retrieve(QUESTION, k=3).hits
    system, user = build_prompt(QUESTION, hits)
    assert system["role"] == "system" and "only the numbered passages" in system["content"]
    for number, hit in enumerate(hits, start=1):
        assert f"[{number}] {hit.title}" in user["content"]
    assert user["content"].rstrip().endswith(f"Question: {QUESTION}\nAnswer:")
    assert "no passages" in build_prompt(QUESTION, [])[1]["content"]
    long = build_prompt(QUESTION, hits[:1], passage_chars=10)[1]["content"]
    assert hits[0].text[:10].rstrip() + " ..." in long


def test_answer_with_the_local_model(retriever, local_llm):
    answer = RAG(retriever, local_llm, k=2, generation=GenerationConfig(max_new_tokens=8)).ask(QUESTION)
    assert isinstance(answer, Answer) and isinstance(answer.text, str) and answer.text
    assert len(answer.hits) == 2 and answer.llm == "smollm2-135m-instruct" and answer.mode == "basic"
    assert set(answer.timings) == STAGES and answer.timings["rewrite_ms"] == 0.0
    assert answer.timings["generate_ms"] > 0
    assert answer.timings["total_ms"] >= answer.timings["generate_ms"] + answer.timings["encode_ms"]


async def test_aask(retriever, local_llm):
    answer = await RAG(retriever, local_llm, k=1, generation=GenerationConfig(max_new_tokens=4)).aask(QUESTION)
    assert len(answer.hits) == 1 and set(answer.timings) == STAGES


def test_the_querys_thoughts_reach_the_answer(encoder, short_passages, laser_vectors):
    collection = VectorCollection.open(connect(":memory:"), "pydoc-laser-k3", encoder)
    collection.upsert(short_passages, laser_vectors)
    rag = RAG(Retriever(collection, encoder, mode="laser"), Recorder(), k=1)
    answer = rag.ask(QUESTION, thoughts=2)
    assert len(answer.thoughts.steps) == encoder.num_thinking_steps and len(answer.thoughts.steps[0]) == 2
    assert rag.ask(QUESTION).thoughts is None


def test_stream_yields_the_answer_as_it_is_generated(retriever, local_llm):
    rag = RAG(retriever, local_llm, k=2, generation=GenerationConfig(max_new_tokens=12))
    items = list(rag.stream(QUESTION))
    *chunks, answer = items
    assert len(chunks) >= 2 and all(isinstance(chunk, str) and chunk for chunk in chunks)
    assert isinstance(answer, Answer) and set(answer.timings) == STAGES
    assert "".join(chunks) == answer.text == rag.ask(QUESTION).text  # greedy: streamed = not streamed
    assert answer.text == local_llm.generate(build_prompt(QUESTION, answer.hits), max_new_tokens=12)
    assert answer.timings["encode_ms"] <= answer.timings["first_token_ms"] <= answer.timings["total_ms"]


async def test_astream_and_a_retrieval_made_before(retriever, local_llm):
    rag = RAG(retriever, local_llm, k=1, generation=GenerationConfig(max_new_tokens=6))
    items = [item async for item in rag.astream(QUESTION)]
    retrieval = retriever.retrieve(QUESTION, k=1)
    again = list(rag.stream(retrieval))
    assert items[:-1] == again[:-1] and items[-1].text == again[-1].text
    assert again[-1].timings["total_ms"] >= sum(retrieval.timings.values())
    with pytest.raises(InvalidInputError, match="k cannot apply"):
        list(rag.stream(retrieval, k=2))


def test_the_generation_config_sets_the_budget(retriever):
    llm = Recorder()
    rag = RAG(retriever, llm, k=1, generation=GenerationConfig(max_new_tokens=11))
    assert rag.ask(QUESTION).text == "It suspends the coroutine [1]."
    rag.ask(QUESTION, max_new_tokens=5)
    assert llm.budgets == [11, 5]
    assert RAG(retriever, Recorder()).generation == GenerationConfig()


def test_time_limit_raises_with_the_retrieval_attached(retriever, local_llm):
    slow = TransformersLLM(local_llm.model, local_llm.tokenizer,
                           config=GenerationConfig(max_new_tokens=64, time_limit=1e-3))
    with pytest.raises(GenerationTimeout) as err:
        RAG(retriever, slow, k=2).ask(QUESTION)
    assert err.value.retrieval is not None and len(err.value.retrieval.hits) == 2
    assert "time limit" in str(err.value) and isinstance(err.value.partial, str)


def test_unreachable_server_raises_with_the_retrieval_attached(retriever):
    llm = as_llm("http://127.0.0.1:1/v1", model="any", config=GenerationConfig(time_limit=3))
    with pytest.raises(GenerationError, match="127.0.0.1:1") as err:
        RAG(retriever, llm, k=1).ask(QUESTION)
    assert err.value.retrieval is not None and err.value.retrieval.query == QUESTION


def test_a_foreign_error_becomes_a_generation_error(retriever):
    with pytest.raises(GenerationError, match="recorder failed: KeyError") as err:
        RAG(retriever, Recorder(error=KeyError("boom")), k=1).ask(QUESTION)
    assert len(err.value.retrieval.hits) == 1 and isinstance(err.value.__cause__, KeyError)


def test_framework_models_answer(retriever):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    langchain_llm = FakeListChatModel(responses=["It suspends the coroutine [1]."])
    assert RAG(retriever, langchain_llm, k=1).ask(QUESTION).text == "It suspends the coroutine [1]."
    assert isinstance(RAG(retriever, MockLLM(max_tokens=4), k=1).ask(QUESTION).text, str)


def test_rewriting_retriever_lends_its_llm(retriever):
    llm = Recorder(reply="The await expression suspends a coroutine.")
    rewriting = Retriever(retriever.collection, retriever.encoder, QueryRewriter(llm, max_new_tokens=6))
    answer = RAG(rewriting, k=2, generation=GenerationConfig(max_new_tokens=9)).ask(QUESTION)
    assert answer.mode == "rewrite" and answer.rationale == "The await expression suspends a coroutine."
    assert answer.llm == "recorder" and llm.budgets == [6, 9]
    assert answer.timings["rewrite_ms"] > 0 and set(answer.timings) == STAGES
