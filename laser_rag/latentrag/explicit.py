"""The explicit baselines LatentRAG is measured against, on the same LLM, retriever, index, top-k and step cap.

`ExplicitAgent` is the explicit iterative agent (the paper's teacher role): the same LLM, fine-tuned on the same
trajectories written as text, generates its thoughts and subqueries token by token::

    <prompt + question>\\n <think> thought </think>\\n<search> subquery </search>\\n <information> .. </information>\\n
    ... <think> final thought </think>\\n<answer> answer </answer>

Each subquery is embedded by the reference retriever (the one that indexed the documents) and searched. The same
model answers ``direct`` (no retrieval: ``<answer>`` right after the question) and ``naive`` (one retrieval with the
question itself, then ``<answer>``): all three share one short-answer fine-tuning.

Stages are timed like LatentRAG's, with the paper's attribution rule for explicit methods: embedding a text
subquery counts as ``retrieval_ms``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from laser_rag import backbones, runtime
from laser_rag.errors import ModelNotFoundError
from laser_rag.latentrag import sequence as S
from laser_rag.latentrag.agent import LatentAnswer, LatentStep, StageClock, step_hits
from laser_rag.latentrag.config import LatentRAGConfig
from laser_rag.latentrag.model import LLM_ADAPTER, decoder_pass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SEARCH_OPEN, SEARCH_CLOSE = "<search>", "</search>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


def _clean(text: str) -> str:
    return " ".join(text.split())


def explicit_sequence(tokenizer, config: LatentRAGConfig, question: str, steps, final_thought: str | None,
                      answer: str, documents=()) -> tuple[list[int], list[bool]]:
    """A text trajectory as ids and a mask of the ids the model writes (trained on): ``steps`` are (thought,
    subquery, documents) triples; ``final_thought`` None gives the direct / naive format (``<answer>`` follows the
    question, or ``documents`` retrieved for it). The answer tag is its own piece, as the baselines feed it."""
    ids: list[int] = []
    written: list[bool] = []

    def add(piece: list[int], trained: bool) -> None:
        ids.extend(piece)
        written.extend([trained] * len(piece))

    add(S.prompt_ids(tokenizer, question), False)
    if documents:
        add(S.text_ids(tokenizer, S.documents_text(documents, config.document_chars)), False)
    for thought, subquery, found in steps:
        add(S.text_ids(tokenizer, f"{THINK_OPEN} {_clean(thought)} {THINK_CLOSE}\n{SEARCH_OPEN} {_clean(subquery)} "
                                  f"{SEARCH_CLOSE}\n"), True)
        add(S.text_ids(tokenizer, S.documents_text(found, config.document_chars)), False)
    if final_thought is not None:
        add(S.text_ids(tokenizer, f"{THINK_OPEN} {_clean(final_thought)} {THINK_CLOSE}\n{ANSWER_OPEN}"), True)
    else:
        add(S.text_ids(tokenizer, ANSWER_OPEN), False)
    add(S.text_ids(tokenizer, f" {_clean(answer)} {ANSWER_CLOSE}") + [tokenizer.eos_token_id], True)
    return ids, written


@dataclass
class ExplicitModel:
    """An LLM (LoRA merged) with the duck-typed pieces the greedy loops need."""

    config: LatentRAGConfig
    llm: Any
    tokenizer: Any

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | None = None,
                        dtype: str | torch.dtype | None = None) -> ExplicitModel:
        """A folder with ``latentrag_config.json`` and ``llm_adapter/`` (what the explicit trainer writes)."""
        directory = Path(directory)
        if not (directory / LLM_ADAPTER / "adapter_config.json").is_file():
            raise ModelNotFoundError(f"{directory} is not an explicit-agent checkpoint (no {LLM_ADAPTER}/)")
        config = LatentRAGConfig.load(directory)
        place = torch.device(device) if device is not None else runtime.default_device()
        chosen, _ = runtime.dtype_choice(place, dtype)
        backbone = backbones.load_backbone(config.base_model or backbones.DEFAULT_BASE, device=place, dtype=torch.float32)
        llm = backbones.merge_adapter(backbone.model, directory / LLM_ADAPTER).to(dtype=chosen)  # eval, no grad
        return cls(config, llm, backbone.tokenizer)

    @property
    def device(self) -> torch.device:
        return self.llm.get_input_embeddings().weight.device

    def embed(self, ids: Tensor) -> Tensor:
        return self.llm.get_input_embeddings()(ids)

    def decoder(self):
        return self.llm.get_decoder()

    def run(self, embeds: Tensor, cache=None):
        return decoder_pass(self.decoder(), embeds, cache)

    def lm_logits(self, hidden: Tensor) -> Tensor:
        from laser_rag.latent import next_token_logits

        return next_token_logits(self.llm, hidden)


class ExplicitAgent:
    """The explicit iterative agent, and the direct / naive-RAG answers of the same model (module docstring).
    ``encoder``: the reference retriever (a `BaseEncoder`) that indexed ``collection``."""

    def __init__(self, model: ExplicitModel, collection: Any, encoder: Any) -> None:
        self.model = model
        self.collection = collection
        self.encoder = encoder

    # ------------------------------------------------------------------ systems
    def ask(self, question: str) -> LatentAnswer:
        """Think, search (at most ``max_retrievals`` times) and answer, all as generated text."""
        return self._run(question, "explicit", searches=self.model.config.max_retrievals, think=True)

    def naive(self, question: str) -> LatentAnswer:
        """One retrieval with the question itself, then the answer (single-step RAG)."""
        return self._run(question, "naive", searches=1, think=False)

    def direct(self, question: str) -> LatentAnswer:
        """The answer from the question alone (no retrieval)."""
        return self._run(question, "direct", searches=0, think=False)

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def _run(self, question: str, mode: str, *, searches: int, think: bool) -> LatentAnswer:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty")
        model, config, tokenizer = self.model, self.model.config, self.model.tokenizer
        started = time.perf_counter()
        clock = StageClock()
        state = {"cache": None, "passes": 0, "hidden": None}

        def feed(ids: list[int]) -> None:
            hidden, state["cache"] = model.run(model.embed(torch.tensor([ids], device=model.device)), state["cache"])
            state["hidden"] = hidden[0, -1]
            state["passes"] += 1

        def retrieve(query: str) -> list:
            vector = self.encoder.encode_queries([query])[0]
            return list(self.collection.search(vector, config.top_k))

        tick = time.perf_counter()
        feed(S.prompt_ids(tokenizer, question))
        tick = clock.add("prefill_ms", tick)
        steps: list[LatentStep] = []
        answer, final_thought = "", None
        if not think:  # direct / naive: the answer format the same fine-tuning taught
            if searches:
                hits = retrieve(question)
                tick = clock.add("retrieval_ms", tick)
                steps.append(LatentStep(1, hits, subquery=question))
                feed(S.text_ids(tokenizer, S.documents_text([(h.title, h.text) for h in hits], config.document_chars)))
                tick = clock.add("prefill_ms", tick)
            feed(S.text_ids(tokenizer, ANSWER_OPEN))
            answer, tick = self._generate(state, feed, [ANSWER_CLOSE], "answer_ms", clock, tick)
        else:
            while True:
                text, tick = self._generate(state, feed, [SEARCH_CLOSE, ANSWER_CLOSE], None, clock, tick,
                                            forced_answer=len(steps) >= searches)
                thought = _between(text, THINK_OPEN, THINK_CLOSE)
                if SEARCH_OPEN in text and len(steps) < searches:
                    subquery = _between(text, SEARCH_OPEN, SEARCH_CLOSE) or question
                    hits = retrieve(subquery)
                    tick = clock.add("retrieval_ms", tick)
                    steps.append(LatentStep(len(steps) + 1, hits, thought=thought, subquery=subquery))
                    feed(S.text_ids(tokenizer, S.documents_text([(h.title, h.text) for h in hits],
                                                                config.document_chars)))
                    tick = clock.add("prefill_ms", tick)
                    continue
                final_thought, answer = thought, _between(text, ANSWER_OPEN, ANSWER_CLOSE)
                break
        timings = dict(clock.ms)
        timings["total_ms"] = (time.perf_counter() - started) * 1000.0
        return LatentAnswer(question=question, text=answer.strip(), mode=mode, hits=step_hits(steps), timings=timings,
                            llm=config.name, steps=steps, forward_passes=state["passes"], final_thought=final_thought)

    def _generate(self, state: dict, feed, stops: list[str], stage: str | None, clock: StageClock, tick: float,
                  *, forced_answer: bool = False) -> tuple[str, float]:
        """Greedy text until a stop string or EOS; each token's time goes to ``stage`` or, when None, to the stage
        of the tag it is inside (thought / subquery / answer). ``forced_answer``: at the step cap, ``<answer>`` is
        written for the model after its thought."""
        model, tokenizer, config = self.model, self.model.tokenizer, self.model.config
        eos = tokenizer.eos_token_id
        ids: list[int] = []
        budget = config.max_answer_tokens if stage == "answer_ms" else (
            config.max_decode_tokens * 2 + config.max_answer_tokens)
        text = ""
        forced = False
        for _ in range(budget):
            token = int(model.lm_logits(state["hidden"][None]).argmax(-1))
            if token == eos:
                break
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            here = stage or _stage_of(text)
            feed([token])  # the cache holds what was written
            tick = clock.add(here, tick)
            if any(text.rstrip().endswith(stop) for stop in stops):
                break
            if forced_answer and not forced and text.rstrip().endswith(THINK_CLOSE):
                # the step cap: the answer tag is written for the model right after its thought
                tag = S.text_ids(tokenizer, "\n" + ANSWER_OPEN)
                feed(tag)
                ids += tag
                text = tokenizer.decode(ids, skip_special_tokens=True)
                forced = True
        return text, tick


def _stage_of(text: str) -> str:
    last = max(((text.rfind(tag), name) for tag, name in ((THINK_OPEN, "thought_ms"), (SEARCH_OPEN, "subquery_ms"),
                                                          (ANSWER_OPEN, "answer_ms"))), default=(-1, "thought_ms"))
    return last[1] if last[0] >= 0 else "thought_ms"


def _between(text: str, start: str, end: str) -> str:
    if start not in text:
        return text.split(end)[0].strip() if end in text else ""
    return text.rsplit(start, 1)[1].split(end)[0].strip()
