"""Bad input swept with Hypothesis through `Retriever.retrieve`, `RAG.ask` and the LangChain and LlamaIndex
adapters: the text cases of the encoders plus bad k, K (num_thinking_steps), instruction, fusion names, rank
constants and weights. Each call either answers (at most k hits, best first) or raises a `LaserRagError`
(`InvalidInputError` for the caller's mistake): never another exception type."""

from __future__ import annotations

from laser_rag.retrieval import RetrievalOptions

import math

import pytest
from bad_inputs import count_ok, counts, text_or_not, text_problem, texts
from hypothesis import example, given, settings
from hypothesis import strategies as st

from laser_rag.errors import InvalidInputError, LaserRagError
from laser_rag.rag import RAG
from laser_rag.retrieval import Retriever
from laser_rag.store import VectorCollection, connect

instructions = st.one_of(st.none(), st.none(), texts, st.integers())


class Echo:
    """An LLM that answers with the last words of its prompt (the answer loop's input checks are under test)."""

    name = "echo"

    def generate(self, messages, *, max_new_tokens=None):
        return messages[-1]["content"][-40:]


@pytest.fixture(scope="module")
def collection(minilm, short_passages):
    opened = VectorCollection.open(connect(":memory:"), "pydoc-minilm", minilm, hybrid=True)
    opened.index(short_passages, minilm)
    return opened


@pytest.fixture(scope="module")
def retriever(collection, minilm):
    return Retriever(collection, minilm, options=RetrievalOptions(k=3, hybrid=True))


def _instruction_ok(value) -> bool:
    return value is None or (isinstance(value, str) and text_problem(value or "x") is None)


def _check_hits(hits, k):
    assert len(hits) <= k
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


@given(query=text_or_not, k=counts, instruction=instructions)
@example(query="", k=None, instruction=None)  # `laser-rag search ""` ended in a traceback (ValueError)
@example(query="fine", k=0, instruction=None)  # k=0 fell back to the retriever's k silently
@example(query="fine", k=None, instruction="\ud800")
def test_retrieve(retriever, query, k, instruction):
    valid = text_problem(query) is None and count_ok(k) and _instruction_ok(instruction)
    if not valid:
        with pytest.raises(InvalidInputError):
            retriever.retrieve(query, k=k, instruction=instruction)
        return
    result = retriever.retrieve(query, k=k, instruction=instruction)
    _check_hits(result.hits, k or retriever.k)


@pytest.fixture(scope="module")
def laser_retriever(encoder, short_passages):
    opened = VectorCollection.open(connect(":memory:"), "pydoc-laser", encoder)
    opened.index(short_passages[:4], encoder)
    return Retriever(opened, encoder, options=RetrievalOptions(k=2))


@settings(max_examples=5)
@given(steps=counts.filter(lambda steps: not count_ok(steps) or steps is None or steps <= 3))  # a large K is slow
@example(steps=0)
def test_thinking_steps(laser_retriever, steps):
    """K applies to a LaSER encoder: a bad K is refused, a good one answers."""
    if not count_ok(steps):
        with pytest.raises(InvalidInputError, match="num_thinking_steps"):
            laser_retriever.retrieve("what does pass do?", num_thinking_steps=steps)
        return
    _check_hits(laser_retriever.retrieve("what does pass do?", num_thinking_steps=steps).hits, 2)


def test_thinking_steps_need_a_laser_encoder(retriever):
    with pytest.raises(InvalidInputError, match="needs a LaSER encoder"):
        retriever.retrieve("fine", num_thinking_steps=2)


weights = st.one_of(st.none(), st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 3)),
                    st.lists(st.floats(0.1, 2), max_size=3), st.just("1,1"), st.integers())


def _fusion_ok(fusion, rrf_k, fusion_weights) -> bool:
    if fusion == "dbsf":
        return rrf_k is None and fusion_weights is None
    if fusion != "rrf" or not count_ok(rrf_k):
        return False
    return fusion_weights is None or (isinstance(fusion_weights, tuple | list) and len(fusion_weights) == 2 and all(
        isinstance(w, float | int) and not isinstance(w, bool) and math.isfinite(w) and w > 0
        for w in fusion_weights))


@given(fusion=st.one_of(st.sampled_from(["rrf", "dbsf", "RRF", "", "sum"]), st.none(), st.lists(st.text(), max_size=1)),
       rrf_k=counts, fusion_weights=weights)
@example(fusion=[], rrf_k=None, fusion_weights=None)  # an unhashable fusion: TypeError from a dict lookup
@example(fusion="rrf", rrf_k=None, fusion_weights=(math.nan, 1.0))  # NaN weights reached Qdrant
@example(fusion="rrf", rrf_k=None, fusion_weights=5)  # len() of an int: TypeError
def test_fusion_options(collection, minilm, fusion, rrf_k, fusion_weights):
    if not _fusion_ok(fusion, rrf_k, fusion_weights):
        with pytest.raises(InvalidInputError):
            Retriever(collection, minilm, options=RetrievalOptions(hybrid=True, fusion=fusion, rrf_k=rrf_k, fusion_weights=fusion_weights))
        return
    hybrid = Retriever(collection, minilm, options=RetrievalOptions(k=2, hybrid=True, fusion=fusion, rrf_k=rrf_k, fusion_weights=fusion_weights))
    _check_hits(hybrid.retrieve("the pass statement").hits, 2)


@given(k=counts)
def test_retriever_k(collection, minilm, k):
    if not count_ok(k, optional=False):
        with pytest.raises(InvalidInputError, match="k must be"):
            Retriever(collection, minilm, options=RetrievalOptions(k=k))
    else:
        assert Retriever(collection, minilm, options=RetrievalOptions(k=k)).k == k


@given(question=text_or_not, k=counts, max_new_tokens=counts)
@example(question=" ", k=None, max_new_tokens=None)
@example(question="fine", k=None, max_new_tokens=0)  # max_new_tokens=0 fell back to the default silently
def test_ask(retriever, question, k, max_new_tokens):
    rag = RAG(retriever, Echo(), k=2)
    if not (text_problem(question) is None and count_ok(k) and count_ok(max_new_tokens)):
        with pytest.raises(InvalidInputError):
            rag.ask(question, k=k, max_new_tokens=max_new_tokens)
        return
    answer = rag.ask(question, k=k, max_new_tokens=max_new_tokens)
    assert isinstance(answer.text, str)
    _check_hits(answer.hits, k or 2)


@given(query=text_or_not, k=counts)
@example(query="fine", k=0)
def test_langchain_retriever(collection, minilm, query, k):
    pytest.importorskip("langchain_qdrant")
    from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever

    lc = LaSERRetriever(client=collection.client, collection_name=collection.name,
                        embeddings=LaSEREmbeddings.from_encoder(minilm), k=2)
    if not (text_problem(query) is None and count_ok(k)):
        with pytest.raises(LaserRagError):
            lc.invoke(query, k=k)
        return
    assert len(lc.invoke(query, k=k)) <= (k or 2)


@given(texts_in=st.lists(text_or_not, min_size=1, max_size=3))
def test_adapter_embeddings(minilm, texts_in):
    pytest.importorskip("llama_index.core")
    pytest.importorskip("langchain_core")
    from laser_rag.integrations.langchain import LaSEREmbeddings
    from laser_rag.integrations.llama_index import LaSEREmbedding

    lc, li = LaSEREmbeddings.from_encoder(minilm), LaSEREmbedding.from_encoder(minilm)
    calls = [lambda: lc.embed_documents(texts_in), lambda: lc.embed_query(texts_in[0]),
             lambda: li.get_text_embedding_batch(texts_in), lambda: li.get_query_embedding(texts_in[0])]
    bad = any(text_problem(text) for text in texts_in)
    for number, call in enumerate(calls):
        if bad if number % 2 == 0 else text_problem(texts_in[0]):
            with pytest.raises(LaserRagError):
                call()
        else:
            assert len(call()) > 0
