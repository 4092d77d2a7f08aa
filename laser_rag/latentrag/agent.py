"""The LatentRAG agent: think and write subqueries as latent tokens, retrieve, answer (Zheng & Worring, 2026).

Per step the LLM reads the question and its history (earlier latent blocks and the retrieved documents as text),
then m thought tokens in one forward pass; the LM head at the last thought token picks `<query>` or `<answer>`.
On `<query>` the n subquery tokens take one more pass, their last states go through the projector into the
retriever, and the vector searches the collection; the top-k documents come back as text. At most
``max_retrievals`` retrievals, then the answer is generated greedily.

Latency is split into the paper's stages: ``prefill_ms`` (question and retrieved documents), ``thought_ms``,
``subquery_ms`` (the subquery pass, the projector and the retriever: the paper counts the embedding here),
``retrieval_ms`` (the vector search), ``answer_ms``, and ``decode_ms`` when latent decoding is on.

Example::

    agent = open_agent("pydoc")                  # the shipped checkpoint, over the corpus's MiniLM collection
    answer = agent.ask("Which statement does nothing?", decode=True)
    answer.text, [s.subquery for s in answer.steps], answer.timings, answer.forward_passes
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from laser_rag.latent import position_ids_from_mask
from laser_rag.latentrag import sequence as S
from laser_rag.latentrag.config import ANSWER, QUERY
from laser_rag.rag import Answer
from laser_rag.store import Hit

#: ``search(vector, k) -> hits`` (a `VectorCollection.search`).
Search = Callable[[np.ndarray, int], list[Hit]]


@dataclass
class LatentStep:
    """One retrieval: its documents and, with latent decoding, the decoded thought and subquery."""

    number: int
    hits: list[Hit]
    thought: str | None = None
    subquery: str | None = None


@dataclass
class LatentAnswer(Answer):
    """An `Answer` with every retrieval step, the forward-pass count and (decoding on) the final decoded thought.
    ``hits`` holds all steps' documents in order (duplicates once)."""

    steps: list[LatentStep] = field(default_factory=list)
    forward_passes: int = 0
    final_thought: str | None = None


def step_hits(steps: Sequence[LatentStep]) -> list[Hit]:
    """Every step's documents in order, each once."""
    hits, seen = [], set()
    for step in steps:
        for hit in step.hits:
            if hit.id not in seen:
                seen.add(hit.id)
                hits.append(hit)
    return hits


@dataclass
class Trace:
    """What one run computed (the tests compare it with the teacher-forced pass)."""

    ids: list[int] = field(default_factory=list)
    thought_states: list[Tensor] = field(default_factory=list)  # [m, H] per block
    query_states: list[Tensor] = field(default_factory=list)  # [n, H] per retrieval
    query_vectors: list[Tensor] = field(default_factory=list)  # [D] per retrieval
    actions: list[int] = field(default_factory=list)
    answer_ids: list[int] = field(default_factory=list)
    passes: int = 0


class StageClock:
    """Milliseconds spent per stage of one answer (prefill, thoughts, sub-queries, retrievals, the answer)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = dict.fromkeys(("prefill_ms", "thought_ms", "subquery_ms", "retrieval_ms",
                                                   "answer_ms"), 0.0)

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - since) * 1000.0
        return now


class LatentRAG:
    """The agent over a trained `LatentRAGModel` and a search function (or a collection built by the model's
    reference retriever). ``decode=True`` turns every latent block back into text (batched, after the answer)."""

    def __init__(self, model, collection: Any = None, *, search: Search | None = None, decode: bool = False,
                 mode: str = "latentrag") -> None:
        if (collection is None) == (search is None):
            raise ValueError("give LatentRAG a collection or a search function (one of them)")
        self.model = model
        self.collection = collection
        self.search = search if search is not None else collection.search
        self.decode = decode
        self.mode = mode

    def __repr__(self) -> str:
        where = getattr(self.collection, "name", "a search function")
        return f"LatentRAG({self.model.config.name!r}, {where!r}, decode={self.decode})"

    # ------------------------------------------------------------------ public
    def ask(self, question: str, *, decode: bool | None = None, max_retrievals: int | None = None) -> LatentAnswer:
        """Answer ``question`` (see the module docstring); ``max_retrievals`` lowers the cap for this call."""
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty")
        started = time.perf_counter()
        clock = StageClock()
        trace, steps = self._run(question, clock, max_retrievals)
        answer = self.model.tokenizer.decode(trace.answer_ids, skip_special_tokens=True).strip()
        final_thought = None
        if self.decode if decode is None else decode:
            tick = time.perf_counter()
            texts = decode_latents(self.model, [("thought", s) for s in trace.thought_states]
                                   + [("query", s) for s in trace.query_states])
            clock.add("decode_ms", tick)
            blocks = len(trace.thought_states)
            for number, step in enumerate(steps):
                step.thought, step.subquery = texts[number], texts[blocks + number]
            final_thought = texts[blocks - 1]
        timings = dict(clock.ms)
        timings["total_ms"] = (time.perf_counter() - started) * 1000.0
        return LatentAnswer(question=question, text=answer, mode=self.mode, hits=step_hits(steps), timings=timings,
                            llm=self.model.config.name, steps=steps, forward_passes=trace.passes,
                            final_thought=final_thought)

    async def aask(self, question: str, **kwargs) -> LatentAnswer:
        return await asyncio.to_thread(self.ask, question, **kwargs)

    def trace(self, question: str, *, max_retrievals: int | None = None) -> tuple[Trace, list[LatentStep]]:
        """Run the loop and return its ids and latent states (for tests and analysis)."""
        return self._run(question, StageClock(), max_retrievals)

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def _run(self, question: str, clock: StageClock, max_retrievals: int | None) -> tuple[Trace, list[LatentStep]]:
        model, config = self.model, self.model.config
        cap = config.max_retrievals if max_retrievals is None else min(max_retrievals, config.max_retrievals)
        trace = Trace()
        steps: list[LatentStep] = []
        cache = None

        def feed(ids: list[int]) -> Tensor:
            nonlocal cache
            trace.ids.extend(ids)
            trace.passes += 1
            tensor = torch.tensor([ids], device=model.device)
            hidden, cache = model.run(model.embed(tensor), cache)
            return hidden[0]

        tick = time.perf_counter()
        feed(S.prompt_ids(model.tokenizer, question))
        tick = clock.add("prefill_ms", tick)
        while True:
            thought = feed(model.thought_ids())
            trace.thought_states.append(thought.float().cpu())
            action = int(model.action_logits(thought[-1]).argmax())
            if len(steps) >= cap:
                action = ANSWER  # the step cap forces the answer
            trace.actions.append(action)
            tick = clock.add("thought_ms", tick)
            if action != QUERY:
                break
            states = feed(model.query_ids())
            vector = model.latent_query_vectors(states[None])[0]
            trace.query_states.append(states.float().cpu())
            trace.query_vectors.append(vector.float().cpu())
            tick = clock.add("subquery_ms", tick)
            hits = self.search(vector.float().cpu().numpy(), config.top_k)
            steps.append(LatentStep(number=len(steps) + 1, hits=list(hits)))
            tick = clock.add("retrieval_ms", tick)
            documents = [(hit.title, hit.text) for hit in hits]
            feed(S.text_ids(model.tokenizer, S.documents_text(documents, config.document_chars)))
            tick = clock.add("prefill_ms", tick)
        hidden = feed([model.action_id(ANSWER)])
        tokens, passes = _greedy(model, hidden[-1:], cache, config.max_answer_tokens)
        trace.passes += passes
        trace.answer_ids = tokens[0]
        clock.add("answer_ms", tick)
        return trace, steps


def _greedy(model, last_hidden: Tensor, cache, max_tokens: int, *, attention_mask: Tensor | None = None,
            positions: Tensor | None = None) -> tuple[list[list[int]], int]:
    """Greedy tokens from the states ``[B, H]`` after a prefill, until EOS or ``max_tokens`` (EOS not kept);
    returns the tokens and the number of forward passes it took. With left padding give the mask and the last
    positions ``[B, 1]``."""
    eos = model.tokenizer.eos_token_id
    batch = last_hidden.shape[0]
    out: list[list[int]] = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=last_hidden.device)
    logits = model.lm_logits(last_hidden)
    passes = 0
    for produced in range(max_tokens):
        token = logits.argmax(-1)
        for row in range(batch):
            if not done[row] and int(token[row]) != eos:
                out[row].append(int(token[row]))
        done |= token == eos
        if bool(done.all()) or produced == max_tokens - 1:
            break
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(batch, 1)], dim=1)
            positions = positions + 1
        hidden, cache = model.run(model.embed(token[:, None]), cache, attention_mask=attention_mask,
                                  position_ids=positions)
        passes += 1
        logits = model.lm_logits(hidden[:, -1])
    return out, passes


@torch.inference_mode()
def decode_latents(model, blocks: Sequence[tuple[str, Tensor]]) -> list[str]:
    """Parallel latent decoding (§4.3): each block (``"thought"`` ``[m, H]`` or ``"query"`` ``[n, H]`` states) goes
    through its projector into the LLM's input space after Prompt D.2/D.3, and all blocks are decoded greedily as
    one left-padded batch. Each block depends on its own latents only, so the batch changes no text."""
    if not blocks:
        return []
    rows = [decode_inputs(model, kind, states.to(model.device)) for kind, states in blocks]
    width = max(row.shape[0] for row in rows)
    hidden_size = rows[0].shape[1]
    embeds = rows[0].new_zeros(len(rows), width, hidden_size)
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=model.device)
    for i, row in enumerate(rows):
        embeds[i, width - row.shape[0]:] = row
        mask[i, width - row.shape[0]:] = 1
    positions = position_ids_from_mask(mask)
    hidden, cache = model.run(embeds, None, attention_mask=mask, position_ids=positions)
    tokens, _ = _greedy(model, hidden[:, -1], cache, model.config.max_decode_tokens, attention_mask=mask,
                        positions=positions[:, -1:])
    return [model.tokenizer.decode(t, skip_special_tokens=True).strip() for t in tokens]


def decode_inputs(model, kind: str, states: Tensor) -> Tensor:
    """The decoder's input embeddings of one block: the D.2/D.3 prompt, the projected latents, a newline."""
    if kind not in ("thought", "query"):
        raise ValueError(f"unknown latent kind {kind!r}")
    projector = model.proj_thought if kind == "thought" else model.proj_query
    prefix = torch.tensor(S.decode_prompt_ids(model.tokenizer, kind), device=model.device)
    newline = torch.tensor(S.text_ids(model.tokenizer, "\n"), device=model.device)
    latents = projector(states.to(model.special.dtype)[None])[0]
    head = model.embed(prefix)
    return torch.cat([head, latents.to(head.dtype), model.embed(newline)], dim=0)
