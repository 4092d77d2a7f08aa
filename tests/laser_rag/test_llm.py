"""Generators: one source of generation defaults, the local model, OpenAI-compatible servers and framework models."""

from __future__ import annotations

import dataclasses
import time

import pytest

from laser_rag.errors import GenerationError, GenerationTimeout, LaserRagError
from laser_rag.llm import (
    LLM,
    GenerationConfig,
    LangChainLLM,
    LlamaIndexLLM,
    TransformersLLM,
    as_llm,
    openai_compatible,
)


def test_generation_config_is_the_one_source_of_defaults():
    config = GenerationConfig()
    assert (config.max_new_tokens, config.time_limit, config.rewrite_max_new_tokens) == (128, 60.0, 64)
    assert all(f.metadata.get("help") for f in dataclasses.fields(GenerationConfig))  # the CLI reads them
    with pytest.raises(ValueError, match="max_new_tokens must be positive"):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match="time_limit"):
        GenerationConfig(time_limit=-1)


def test_local_model_reads_the_config_and_shares_weights(local_llm):
    assert isinstance(local_llm, TransformersLLM) and isinstance(local_llm, LLM)
    assert local_llm.name == "smollm2-135m-instruct" and local_llm.config.max_new_tokens == 8
    other = as_llm("local", config=GenerationConfig(max_new_tokens=3, time_limit=5))
    assert other.model is local_llm.model and other.config.time_limit == 5  # one copy of the weights
    assert as_llm(None).config == GenerationConfig()


def test_local_model_dtype_is_the_device_default(local_llm):
    from laser_rag import runtime

    assert local_llm.model.dtype == runtime.default_dtype(local_llm.model.device)


def test_local_generation(local_llm):
    text = local_llm.generate("Name a prime number.", max_new_tokens=4)
    assert isinstance(text, str) and text


def test_time_limit_keeps_the_partial_text(local_llm):
    slow = TransformersLLM(local_llm.model, local_llm.tokenizer, config=GenerationConfig(max_new_tokens=64,
                                                                                       time_limit=1e-3))
    with pytest.raises(GenerationTimeout, match="time limit") as err:
        slow.generate("Count from one to one hundred.")
    assert isinstance(err.value, LaserRagError) and isinstance(err.value.partial, str)
    assert err.value.retrieval is None


def test_openai_compatible_reads_the_config():
    config = GenerationConfig(max_new_tokens=17, time_limit=3)
    llm = openai_compatible("http://127.0.0.1:1/v1", "any", config=config)
    assert llm.chat_model.max_tokens == 17 and llm.chat_model.request_timeout == 3
    assert llm.chat_model.max_retries == 0


def test_unreachable_openai_compatible_server_fails_fast():
    llm = as_llm("http://127.0.0.1:1/v1", model="any", config=GenerationConfig(time_limit=3))  # no OpenAI key
    assert isinstance(llm, LangChainLLM) and llm.name == "any@http://127.0.0.1:1/v1"
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="127.0.0.1:1"):
        llm.generate("Say hello.")
    assert time.perf_counter() - started < 10


def test_framework_models_plug_in():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    langchain_llm = as_llm(FakeListChatModel(responses=["It suspends the coroutine [1]."]))
    assert isinstance(langchain_llm, LangChainLLM)
    assert langchain_llm.generate([{"role": "user", "content": "What does await do?"}]) == \
        "It suspends the coroutine [1]."
    llama_llm = as_llm(MockLLM(max_tokens=4))
    assert isinstance(llama_llm, LlamaIndexLLM)
    assert isinstance(llama_llm.generate("Hello", max_new_tokens=4), str)


def test_any_object_with_generate_is_an_llm():
    class Echo:
        name = "echo"

        def generate(self, messages, *, max_new_tokens=None):
            return messages if isinstance(messages, str) else messages[-1]["content"]

    echo = Echo()
    assert as_llm(echo) is echo
    with pytest.raises(TypeError, match="cannot use"):
        as_llm(42)


def test_framework_errors_become_generation_errors():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Broken(FakeListChatModel):
        def _call(self, *args, **kwargs):
            raise TimeoutError("took too long")

        def _stream(self, *args, **kwargs):  # what generate uses: the stream, joined
            raise TimeoutError("took too long")

    with pytest.raises(GenerationTimeout, match="took too long"):
        as_llm(Broken(responses=["x"])).generate("hi")


def _greedy_reference(llm, messages, budget: int) -> str:
    """The non-streamed greedy answer, straight from transformers' generate (no streamer)."""
    inputs = llm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
    output = llm.model.generate(**inputs, do_sample=False, max_new_tokens=budget, temperature=None, top_p=None,
                                top_k=None, pad_token_id=llm.tokenizer.pad_token_id,
                                eos_token_id=llm.tokenizer.eos_token_id)
    return llm.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


STREAMED = [{"role": "user", "content": "What is a Python list? Answer in one sentence."}]


def test_local_stream_joined_is_the_greedy_answer(local_llm):
    chunks = list(local_llm.stream(STREAMED, max_new_tokens=12))
    assert len(chunks) >= 2 and all(isinstance(chunk, str) and chunk for chunk in chunks)
    assert "".join(chunks) == _greedy_reference(local_llm, STREAMED, 12) == local_llm.generate(STREAMED,
                                                                                                max_new_tokens=12)


def test_leaving_a_stream_early_frees_the_model(local_llm):
    stream = local_llm.stream(STREAMED, max_new_tokens=64)
    assert next(stream)
    stream.close()  # the generation stops at its next token and gives the model back
    assert local_llm.generate("Name a prime number.", max_new_tokens=2)


def test_openai_compatible_server_streams(local_llm):
    from chat_server import chat_server

    with chat_server(local_llm) as url:
        served = as_llm(url, model="smollm2", config=GenerationConfig(max_new_tokens=12, time_limit=60))
        chunks = list(served.stream(STREAMED))
        assert len(chunks) >= 2 and "".join(chunks) == local_llm.generate(STREAMED, max_new_tokens=12)
        assert served.generate(STREAMED) == "".join(chunks)


def test_framework_models_stream():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from llama_index.core.llms import MockLLM

    langchain_llm = as_llm(FakeListChatModel(responses=["  It suspends the coroutine [1].\n"]))
    chunks = list(langchain_llm.stream("What does await do?"))
    assert len(chunks) >= 2 and "".join(chunks) == "It suspends the coroutine [1]."  # stripped as a whole
    llama_llm = as_llm(MockLLM(max_tokens=4))
    assert "".join(llama_llm.stream("Hello there friend", max_new_tokens=4)) == llama_llm.generate(
        "Hello there friend", max_new_tokens=4)
