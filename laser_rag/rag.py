"""The answer loop: retrieve top-k passages, number them into a prompt with the question, generate.

Example::

    rag = RAG(open_retriever("laser", "pydoc"))                 # local SmolLM2 answers by default
    answer = rag.ask("What does the pass statement do?")
    print(answer.text, answer.timings)   # rewrite_ms (0 here), encode_ms, search_ms, generate_ms, first_token_ms,
                                         # total_ms

    for item in rag.stream("What does the pass statement do?"):   # the text as it is generated, then the Answer
        print(item if isinstance(item, str) else f"\n{item.timings}", end="", flush=True)

`ask` is `stream` run to its end (`aask` / `astream` the same, for an event loop).

A failing or timed-out generator raises `GenerationError` / `GenerationTimeout` with ``retrieval`` set to what was
retrieved, so an app can still show the passages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from laser_rag import _checks
from laser_rag.errors import GenerationError, GenerationTimeout, InvalidInputError
from laser_rag.llm import GenerationConfig, as_llm, text_chunks
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
    ``encode_ms``, ``search_ms``, ``generate_ms``, ``total_ms``; and ``first_token_ms``, the time from the question
    to the answer's first text chunk (retrieval included; ``total_ms`` when the answer is empty). ``thoughts``: the
    query's latent steps, when asked for (``ask(..., thoughts=n)``, `laser_rag.retrieval.Retrieval.thoughts`)."""

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

    def ask(self, question: str | Retrieval, *, k: int | None = None, instruction: str | None = None,
            num_thinking_steps: int | None = None, max_new_tokens: int | None = None,
            thoughts: int | None = None) -> Answer:
        """Retrieve ``k`` passages for ``question`` (see `Retriever.retrieve`, also for ``thoughts``), then generate
        at most ``max_new_tokens`` (default ``generation.max_new_tokens``): `stream` run to its end."""
        for item in self.stream(question, k=k, instruction=instruction, num_thinking_steps=num_thinking_steps,
                                max_new_tokens=max_new_tokens, thoughts=thoughts):
            pass
        return item

    async def aask(self, question: str | Retrieval, **kwargs) -> Answer:
        """`ask` for an event loop (`astream` run to its end): the loop keeps running while the models work."""
        async for item in self.astream(question, **kwargs):
            pass
        return item

    def stream(self, question: str | Retrieval, *, k: int | None = None, instruction: str | None = None,
               num_thinking_steps: int | None = None, max_new_tokens: int | None = None,
               thoughts: int | None = None) -> Iterator[str | Answer]:
        """`ask`, streamed: yields the answer's text chunks (``str``) as the LLM generates them, then the `Answer`
        (its ``text`` is the chunks joined). ``question`` may be a `Retrieval` already made (then nothing is
        retrieved again, and ``k``, ``instruction``, ``num_thinking_steps``, ``thoughts`` must be left out): an app
        can show the passages before the answer. An LLM without ``stream`` yields its whole text as one chunk."""
        started = time.perf_counter()
        max_new_tokens = (self.generation.max_new_tokens if max_new_tokens is None
                          else _checks.positive_int(max_new_tokens, "max_new_tokens"))
        if isinstance(question, Retrieval):
            given = [name for name, value in (("k", k), ("instruction", instruction),
                                              ("num_thinking_steps", num_thinking_steps), ("thoughts", thoughts))
                     if value is not None]
            if given:
                raise InvalidInputError(f"{' and '.join(given)} cannot apply to a Retrieval already made")
            retrieval, before = question, sum(question.timings.values())
        else:
            k = self.k if k is None else _checks.positive_int(k, "k")
            retrieval = self.retriever.retrieve(question, k=k, instruction=instruction,
                                                num_thinking_steps=num_thinking_steps, thoughts=thoughts)
            before = 0.0
        yield from self._generate(retrieval, started, before, max_new_tokens)

    async def astream(self, question: str | Retrieval, **kwargs) -> AsyncIterator[str | Answer]:
        """`stream` for an event loop: each step runs in a worker thread, so the loop keeps running."""
        iterator = self.stream(question, **kwargs)
        done = object()
        try:
            while (item := await asyncio.to_thread(next, iterator, done)) is not done:
                yield item
        finally:
            try:
                iterator.close()
            except ValueError:  # cancelled while a worker thread runs it: it finishes within its limits
                pass

    def _generate(self, retrieval: Retrieval, started: float, before: float,
                  max_new_tokens: int) -> Iterator[str | Answer]:
        """Generate from ``retrieval``; ``before``: ms spent retrieving before ``started`` (a given Retrieval)."""
        def since_start(moment: float) -> float:
            return before + (moment - started) * 1000.0

        messages = build_prompt(retrieval.query, retrieval.hits)
        name = getattr(self.llm, "name", "the LLM")
        tick = time.perf_counter()
        pieces: list[str] = []
        first_token_ms = None
        try:
            for piece in text_chunks(self.llm, messages, max_new_tokens=max_new_tokens):
                if not piece:
                    continue
                if first_token_ms is None:
                    first_token_ms = since_start(time.perf_counter())
                pieces.append(piece)
                yield piece
        except GenerationTimeout as exc:
            raise GenerationTimeout(str(exc), exc.partial, retrieval=retrieval) from exc
        except GenerationError as exc:
            raise GenerationError(str(exc), retrieval=retrieval) from exc
        except Exception as exc:  # a third-party LLM object raising its own error type
            raise GenerationError(f"{name} failed: {type(exc).__name__}: {exc}", retrieval=retrieval) from exc
        done = time.perf_counter()
        total_ms = since_start(done)
        timings = {**retrieval.timings, "generate_ms": (done - tick) * 1000.0,
                   "first_token_ms": total_ms if first_token_ms is None else first_token_ms, "total_ms": total_ms}
        yield Answer(question=retrieval.query, text="".join(pieces), mode=retrieval.mode, hits=retrieval.hits,
                     timings=timings, rationale=retrieval.rationale, llm=getattr(self.llm, "name", ""),
                     thoughts=retrieval.thoughts)
