"""The answer loop: retrieve top-k passages, number them into a prompt with the question, generate.

Example::

    rag = RAG(open_retriever("laser", corpus="pydoc"))          # local SmolLM2 answers by default
    answer = rag.ask("What does the pass statement do?")
    print(answer.text, answer.timings)   # rewrite_ms (0 here), encode_ms, search_ms, generate_ms, total_ms

A failing or timed-out generator raises `GenerationError` / `GenerationTimeout`; the exception's ``retrieval``
attribute keeps what was retrieved, so an app can still show the passages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from laser_rag.llm import GenerationError, as_llm
from laser_rag.retrieval import Retrieval, RetrievalMode, Retriever
from laser_rag.store import Hit

ANSWER_INSTRUCTION = (
    "Answer the question using only the numbered passages below. Cite the passages you use like [1]. "
    "If they do not contain the answer, say that you don't know."
)
PASSAGE_CHARS = 1000  # each passage is cut to this many characters in the prompt


def build_prompt(question: str, hits: Sequence[Hit], *, passage_chars: int = PASSAGE_CHARS) -> list[dict[str, str]]:
    """Chat messages: an instruction, then the numbered passages and the question."""
    passages = []
    for number, hit in enumerate(hits, start=1):
        text = hit.text if len(hit.text) <= passage_chars else hit.text[:passage_chars].rstrip() + " ..."
        heading = f"[{number}] {hit.title}".rstrip()
        passages.append(f"{heading}\n{text}")
    context = "\n\n".join(passages) if passages else "(no passages were found)"
    return [
        {"role": "system", "content": ANSWER_INSTRUCTION},
        {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {question}\nAnswer:"},
    ]


@dataclass
class Answer:
    """An answer with its passages and the time of each stage in ms: ``rewrite_ms`` (0 unless rewriting),
    ``encode_ms``, ``search_ms``, ``generate_ms``, ``total_ms``."""

    question: str
    text: str
    mode: RetrievalMode
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None
    llm: str = ""


class RAG:
    """Retrieve-then-generate over a `Retriever`. ``llm``: anything `laser_rag.llm.as_llm` accepts (default: the
    local SmolLM2; in rewrite mode the retriever's own LLM is reused unless another is given)."""

    def __init__(self, retriever: Retriever, llm: Any = None, *, k: int = 4, max_new_tokens: int = 128,
                 time_limit: float = 60.0) -> None:
        self.retriever = retriever
        if llm is None and retriever.llm is not None:
            self.llm = retriever.llm
        else:
            self.llm = as_llm(llm, max_new_tokens=max_new_tokens, timeout=time_limit)
        self.k = k
        self.max_new_tokens = max_new_tokens

    def ask(self, question: str, *, k: int | None = None, num_thinking_steps: int | None = None,
            max_new_tokens: int | None = None) -> Answer:
        started = time.perf_counter()
        retrieval = self.retriever.retrieve(question, k=k or self.k, num_thinking_steps=num_thinking_steps)
        return self._generate(retrieval, started, max_new_tokens or self.max_new_tokens)

    async def aask(self, question: str, **kwargs) -> Answer:
        """`ask` in a worker thread: the event loop keeps running while the models work."""
        return await asyncio.to_thread(self.ask, question, **kwargs)

    def _generate(self, retrieval: Retrieval, started: float, max_new_tokens: int) -> Answer:
        messages = build_prompt(retrieval.query, retrieval.hits)
        tick = time.perf_counter()
        try:
            text = self.llm.generate(messages, max_new_tokens=max_new_tokens)
        except GenerationError as exc:
            exc.retrieval = retrieval
            raise
        except Exception as exc:  # a third-party LLM object raising its own error type
            error = GenerationError(f"{getattr(self.llm, 'name', 'the LLM')} failed: {type(exc).__name__}: {exc}")
            error.retrieval = retrieval
            raise error from exc
        timings = {**retrieval.timings, "generate_ms": (time.perf_counter() - tick) * 1000.0}
        timings["total_ms"] = (time.perf_counter() - started) * 1000.0
        return Answer(question=retrieval.query, text=text, mode=retrieval.mode, hits=retrieval.hits,
                      timings=timings, rationale=retrieval.rationale, llm=getattr(self.llm, "name", ""))
