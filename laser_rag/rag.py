"""The answer loop: retrieve top-k passages, number them into a prompt with the question, generate.

Example::

    rag = RAG(open_retriever("laser", "pydoc"))                 # local SmolLM2 answers by default
    answer = rag.ask("What does the pass statement do?")
    print(answer.text, answer.timings)   # rewrite_ms (0 here), encode_ms, search_ms, generate_ms, total_ms

A failing or timed-out generator raises `GenerationError` / `GenerationTimeout` with ``retrieval`` set to what was
retrieved, so an app can still show the passages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from laser_rag import _checks
from laser_rag.errors import GenerationError, GenerationTimeout
from laser_rag.llm import GenerationConfig, as_llm
from laser_rag.retrieval import Retrieval, Retriever
from laser_rag.store import Hit
from laser_rag.thoughts import Thoughts

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
    ``encode_ms``, ``search_ms``, ``generate_ms``, ``total_ms``. ``thoughts``: the query's latent steps, when
    asked for (``ask(..., thoughts=n)``, `laser_rag.retrieval.Retrieval.thoughts`)."""

    question: str
    text: str
    mode: str
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None
    llm: str = ""
    thoughts: Thoughts | None = None


class RAG:
    """Retrieve-then-generate over a `Retriever`. ``llm``: anything `laser_rag.llm.as_llm` accepts (default: the
    retriever's rewriter LLM if it has one, else the local SmolLM2). ``generation`` sets the answer's token budget
    and the time limit (default `GenerationConfig()`)."""

    def __init__(self, retriever: Retriever, llm: Any = None, *, k: int = 4,
                 generation: GenerationConfig | None = None) -> None:
        self.retriever = retriever
        self.generation = generation or GenerationConfig()
        if llm is None and retriever.rewriter is not None:
            self.llm = retriever.rewriter.llm
        else:
            self.llm = as_llm(llm, config=self.generation)
        self.k = _checks.positive_int(k, "k")

    def __repr__(self) -> str:
        return f"RAG({self.retriever!r}, llm={getattr(self.llm, 'name', self.llm)!r}, k={self.k})"

    def ask(self, question: str, *, k: int | None = None, instruction: str | None = None,
            num_thinking_steps: int | None = None, max_new_tokens: int | None = None,
            thoughts: int | None = None) -> Answer:
        """Retrieve ``k`` passages for ``question`` (see `Retriever.retrieve`, also for ``thoughts``), then
        generate at most ``max_new_tokens`` (default ``generation.max_new_tokens``)."""
        started = time.perf_counter()
        k = self.k if k is None else _checks.positive_int(k, "k")
        max_new_tokens = (self.generation.max_new_tokens if max_new_tokens is None
                          else _checks.positive_int(max_new_tokens, "max_new_tokens"))
        retrieval = self.retriever.retrieve(question, k=k, instruction=instruction,
                                            num_thinking_steps=num_thinking_steps, thoughts=thoughts)
        return self._generate(retrieval, started, max_new_tokens)

    async def aask(self, question: str, **kwargs) -> Answer:
        """`ask` in a worker thread: the event loop keeps running while the models work."""
        return await asyncio.to_thread(self.ask, question, **kwargs)

    def _generate(self, retrieval: Retrieval, started: float, max_new_tokens: int) -> Answer:
        messages = build_prompt(retrieval.query, retrieval.hits)
        name = getattr(self.llm, "name", "the LLM")
        tick = time.perf_counter()
        try:
            text = self.llm.generate(messages, max_new_tokens=max_new_tokens)
        except GenerationTimeout as exc:
            raise GenerationTimeout(str(exc), exc.partial, retrieval=retrieval) from exc
        except GenerationError as exc:
            raise GenerationError(str(exc), retrieval=retrieval) from exc
        except Exception as exc:  # a third-party LLM object raising its own error type
            raise GenerationError(f"{name} failed: {type(exc).__name__}: {exc}", retrieval=retrieval) from exc
        timings = {**retrieval.timings, "generate_ms": (time.perf_counter() - tick) * 1000.0}
        timings["total_ms"] = (time.perf_counter() - started) * 1000.0
        return Answer(question=retrieval.query, text=text, mode=retrieval.mode, hits=retrieval.hits,
                      timings=timings, rationale=retrieval.rationale, llm=getattr(self.llm, "name", ""),
                      thoughts=retrieval.thoughts)
