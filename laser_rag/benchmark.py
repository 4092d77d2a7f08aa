"""Retrieval quality and query latency of every retrieval mode on one BEIR-style dataset (``laser-rag eval``).

Modes: ``basic``, ``laser`` and ``rewrite`` (the three of `laser_rag.retrieval`, run through its `Retriever`), and
two anchors: ``bm25`` (lexical, `laser_rag.bm25`) and ``minilm`` (all-MiniLM-L6-v2, an off-the-shelf dense model).

How it measures:

- Quality: nDCG@k, Recall@k, Recall@100 and MRR@k by pytrec_eval (`laser_rag.evaluation.score_run`) on the
  top-100 of each judged query. Search is exact (numpy inner product over every document vector): no approximate
  index stands between the encoder and its score, so Qdrant is not involved.
- Latency: the query side only, one query at a time as a user sends it (rewrite + encode + search, wall clock).
  The modes are interleaved query by query (mode order rotating) so every mode sees the same machine state; the
  rewrite/LaSER ratio of medians comes from the same run. Document encoding is not part of query latency.
- Document vectors are computed once per encoder and corpus and cached on disk (`document_vectors`), keyed by the
  encoder's fingerprint, its ``max_length`` and a hash of the corpus: a re-run encodes only the queries. A long
  encoding that is interrupted resumes from its last saved chunk.

Example::

    from laser_rag.benchmark import EvalSettings, evaluate_modes, markdown_table
    from laser_rag.datasets import load_beir

    report = evaluate_modes(load_beir("my-beir-dir", "test"), ["bm25", "basic", "laser"], EvalSettings(max_queries=50))
    print(markdown_table(report))
    report.save("results.json")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from laser_rag.datasets import LICENSES, Document, RetrievalDataset, save_beir, shared_dataset
from laser_rag.datasets import document_text
from laser_rag.evaluation import dense_search, score_run

__all__ = [
    "EvalMode",
    "EvalReport",
    "EvalSettings",
    "ExactCollection",
    "ModeResult",
    "build_retriever",
    "corpus_hash",
    "document_vectors",
    "evaluate_modes",
    "export_shared",
    "markdown_table",
    "parse_modes",
    "plot_quality_latency",
    "shared_eval",
    "shared_slice",
    "slice_dataset",
]


class EvalMode(str, Enum):
    """What ``laser-rag eval --modes`` accepts."""

    BM25 = "bm25"
    MINILM = "minilm"
    BASIC = "basic"
    LASER = "laser"
    REWRITE = "rewrite"


#: Every mode, anchors first (the order of tables).
DEFAULT_MODES = tuple(EvalMode)
#: How deep each query's ranking goes (Recall@100 needs 100).
DEPTH = 100
#: The all-MiniLM-L6-v2 encoder's name for `laser_rag.encoders.load_encoder`.
MINILM_SOURCE = "all-minilm-l6-v2"

_HEADERS = {"ndcg_cut": "nDCG", "recall": "R", "recip_rank": "MRR"}


def parse_modes(modes: str | Sequence[str | EvalMode]) -> list[EvalMode]:
    """``"bm25,laser"`` or ``["bm25", "laser"]`` -> modes, in the order given, without repeats."""
    names = [m.strip() for m in modes.split(",")] if isinstance(modes, str) else list(modes)
    parsed = []
    for name in filter(None, names):
        try:
            parsed.append(EvalMode(name.value if isinstance(name, EvalMode) else name.lower()))
        except ValueError:
            raise ValueError(f"unknown mode {name!r}; expected some of {', '.join(m.value for m in EvalMode)}") \
                from None
    if not parsed:
        raise ValueError("no mode given")
    return list(dict.fromkeys(parsed))


@dataclass
class EvalSettings:
    """What `evaluate_modes` runs with; saved in the report so a figure can be reproduced."""

    #: The cut-off of nDCG, Recall and MRR (Recall@100 is always reported).
    k: int = 10
    #: K for laser-mode queries (the per-query knob of `Retriever.retrieve`); None = the encoder's own K.
    #: Documents are always encoded with the encoder's own settings.
    num_thinking_steps: int | None = None
    #: Evaluate only the first N judged queries (in the dataset's order).
    max_queries: int | None = None
    #: Token limit of the LaSER encoders (queries and documents); None = the checkpoint's own (512 by default).
    max_length: int | None = None
    #: Encoder of laser mode (None = the embedded default) and of basic/rewrite (None = builtin:basic, else the
    #: default backbone with K=1); anything `laser_rag.encoders.load_encoder` accepts.
    laser_model: str | None = None
    basic_model: str | None = None
    #: The rewriter: anything `laser_rag.llm.as_llm` accepts as a string (None = local SmolLM2-135M-Instruct).
    llm: str | None = None
    llm_model: str = "default"
    rewrite_max_new_tokens: int = 64
    #: Documents per encoder batch when building the document vectors.
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.k < 1 or self.k > DEPTH:
            raise ValueError(f"k must be between 1 and {DEPTH}, got {self.k}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {self.max_queries}")
        if self.num_thinking_steps is not None and self.num_thinking_steps < 1:
            raise ValueError(f"num_thinking_steps must be >= 1, got {self.num_thinking_steps}")

    @property
    def metrics(self) -> tuple[str, ...]:
        """pytrec_eval names: ``ndcg_cut_10, recall_10, recall_100, recip_rank@10`` for k=10."""
        return tuple(dict.fromkeys((f"ndcg_cut_{self.k}", f"recall_{self.k}", f"recall_{DEPTH}",
                                    f"recip_rank@{self.k}")))


@dataclass
class ModeResult:
    """One mode's figures. ``latency_ms``: ``median``, ``p95``, ``mean`` of the whole query side;
    ``stages_ms``: the median of each stage (``rewrite_ms``, ``encode_ms``, ``search_ms``)."""

    mode: str
    encoder: str
    fingerprint: str | None
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    stages_ms: dict[str, float]
    num_queries: int
    #: Queries whose retrieval failed (e.g. the rewriter raised); they score 0.
    failures: int = 0
    #: Seconds spent encoding the corpus in this run (0 when the vectors came from the cache).
    index_seconds: float = 0.0
    index_cached: bool = False


@dataclass
class EvalReport:
    """Every mode on one dataset, with the settings and machine it ran on. Save with `save`, print with
    `markdown_table`."""

    dataset: str
    num_docs: int
    num_queries: int
    settings: dict[str, Any]
    results: list[ModeResult]
    environment: dict[str, Any] = field(default_factory=dict)
    license: str | None = None
    command: str | None = None

    def result(self, mode: str | EvalMode) -> ModeResult | None:
        name = mode.value if isinstance(mode, EvalMode) else mode
        return next((r for r in self.results if r.mode == name), None)

    @property
    def rewrite_laser_ratio(self) -> float | None:
        """Median query latency of rewrite over laser's, measured in the same run (the paper: ~330x, i.e. LaSER
        at 0.3% of the rewrite pipeline); None unless both modes ran."""
        rewrite, laser = self.result(EvalMode.REWRITE), self.result(EvalMode.LASER)
        if rewrite is None or laser is None or not laser.latency_ms.get("median"):
            return None
        return rewrite.latency_ms["median"] / laser.latency_ms["median"]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rewrite_laser_latency_ratio"] = self.rewrite_laser_ratio
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        data = {k: v for k, v in data.items() if k != "rewrite_laser_latency_ratio"}
        data["results"] = [ModeResult(**r) for r in data["results"]]
        return cls(**data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvalReport:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------------------------
# Datasets


def slice_dataset(dataset: RetrievalDataset, max_queries: int | None = None, max_docs: int | None = None,
                  seed: int = 0) -> RetrievalDataset:
    """A smaller copy: the first ``max_queries`` judged queries, and a corpus of their relevant documents plus
    distractors drawn at random (``seed``) up to ``max_docs`` (never fewer than the relevant ones). Corpus order
    is kept. For quick runs and tests; figures on a slice are not comparable with the full set's."""
    qids = _judged(dataset)[:max_queries] if max_queries else _judged(dataset)
    relevant = {doc_id for qid in qids for doc_id in dataset.qrels[qid]}
    keep = {doc.id for doc in dataset.corpus if doc.id in relevant}
    if max_docs is None:
        keep = {doc.id for doc in dataset.corpus}
    else:
        others = [doc.id for doc in dataset.corpus if doc.id not in keep]
        keep |= set(random.Random(seed).sample(others, max(0, min(len(others), max_docs - len(keep)))))
    return RetrievalDataset(
        f"{dataset.name}[{len(qids)}q,{len(keep)}d]",
        [doc for doc in dataset.corpus if doc.id in keep],
        {qid: dataset.queries[qid] for qid in qids},
        {qid: {d: g for d, g in dataset.qrels[qid].items() if d in keep} for qid in qids},
    )


def export_shared(name: str, directory: str | Path, split: str = "validation",
                  data_dir: str | Path | None = None) -> Path:
    """Write a shared set (`laser_rag.datasets.SHARED_DATASETS`) as a BEIR directory with ``qrels/<split>.tsv``
    and a LICENSE.txt naming its licence; returns the directory."""
    directory = save_beir(shared_dataset(name, split, data_dir), directory, split=split)
    (directory / "LICENSE.txt").write_text(LICENSES[name] + "\n", encoding="utf-8")
    return directory


def _judged(dataset: RetrievalDataset) -> list[str]:
    return [qid for qid in dataset.queries if any(g > 0 for g in dataset.qrels.get(qid, {}).values())]


# ---------------------------------------------------------------------------------------------------------------
# Document vectors, cached


def corpus_hash(documents: Sequence[Document]) -> str:
    """sha256 of the corpus as the encoders see it: ids and `document_text`, in order."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(json.dumps([doc.id, document_text(doc)], ensure_ascii=False).encode())
    return digest.hexdigest()


def _default_cache_dir() -> Path:
    from laser_rag import _models

    return _models.cache_dir() / "eval-vectors"


def _max_length(encoder) -> int | None:
    config = getattr(encoder, "config", None)
    if config is not None and hasattr(config, "max_length"):
        return int(config.max_length)
    model = getattr(encoder, "model", None)
    return getattr(model, "max_seq_length", None)


def document_vectors(encoder, documents: Sequence[Document], *, cache_dir: str | Path | None = None,
                     batch_size: int = 16, chunk_size: int = 512, progress: bool = True,
                     ) -> tuple[np.ndarray, float, bool]:
    """``encoder.encode_documents`` over ``documents`` (title + text), cached on disk.

    Returns ``(vectors, seconds spent encoding now, whether everything came from the cache)``. The cache key is
    the encoder's fingerprint, its max_length and `corpus_hash`; ``cache_dir`` defaults to
    ``<laser_rag cache>/eval-vectors`` (``$LASER_RAG_CACHE`` moves it). Chunks of ``chunk_size`` documents are
    saved as they finish, so an interrupted encoding resumes.
    """
    root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    identity = {"encoder": encoder.fingerprint, "max_length": _max_length(encoder), "corpus": corpus_hash(documents)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    final = root / f"{key}.npy"
    shape = (len(documents), encoder.dimension)
    cached = _load_vectors(final, shape)
    if cached is not None:
        return cached, 0.0, True
    root.mkdir(parents=True, exist_ok=True)
    # Another process encoding the same corpus with the same encoder (two evals, a notebook beside an eval) holds
    # this lock: wait for it and read its result rather than write the same chunks at the same time.
    with FileLock(str(root / f"{key}.lock")):
        cached = _load_vectors(final, shape)
        if cached is not None:
            return cached, 0.0, True
        vectors, seconds = _encode_in_chunks(encoder, documents, root / f"{key}.partial", batch_size, chunk_size,
                                             progress)
        _save_npy(final, vectors)
        (root / f"{key}.json").write_text(json.dumps({**identity, "label": _describe(encoder),
                                                      "documents": len(documents), "seconds": round(seconds, 1)},
                                                     indent=2), encoding="utf-8")
    return vectors, seconds, False


def _load_vectors(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == shape:
            return vectors
    return None


def _encode_in_chunks(encoder, documents: Sequence[Document], parts: Path, batch_size: int, chunk_size: int,
                      progress: bool) -> tuple[np.ndarray, float]:
    """Encode ``documents`` chunk by chunk, each chunk saved under ``parts`` as it finishes (and reused by a rerun
    after an interruption); the chunks are removed once all are done."""
    parts.mkdir(parents=True, exist_ok=True)
    texts = [document_text(doc) for doc in documents]
    chunks, seconds = [], 0.0
    bar = tqdm(total=len(texts), desc=f"documents ({_describe(encoder)})", unit="doc", disable=not progress)
    for start in range(0, len(texts), chunk_size):
        part = parts / f"{start:09d}.npy"
        block = texts[start:start + chunk_size]
        if part.is_file():
            vectors = np.load(part, allow_pickle=False)
        else:
            tick = time.perf_counter()
            vectors = np.asarray(encoder.encode_documents(block, batch_size=batch_size, show_progress_bar=False),
                                 dtype=np.float32)
            seconds += time.perf_counter() - tick
            _save_npy(part, vectors)
        chunks.append(vectors)
        bar.update(len(block))
    bar.close()
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dimension), dtype=np.float32)
    for part in parts.glob("*.npy"):
        part.unlink()
    parts.rmdir()
    return vectors, seconds


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)


class ExactCollection:
    """Document vectors in memory with exact inner-product search: the part of
    `laser_rag.store.VectorCollection` a `laser_rag.retrieval.Retriever` uses (``fingerprint``, ``search``),
    without Qdrant."""

    def __init__(self, documents: Sequence[Document], vectors: np.ndarray, encoder, name: str = "exact") -> None:
        if len(documents) != len(vectors):
            raise ValueError(f"{len(documents)} documents but {len(vectors)} vectors")
        self.name = name
        self.documents = list(documents)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.doc_ids = [doc.id for doc in self.documents]
        self._by_id = {doc.id: doc for doc in self.documents}
        self.info = {"fingerprint": encoder.fingerprint, "dimension": int(self.vectors.shape[1]),
                     "encoder": _describe(encoder)}
        self.index_seconds, self.index_cached = 0.0, False  # set by `build`

    @classmethod
    def build(cls, documents: Sequence[Document], encoder, **kwargs) -> ExactCollection:
        """Encode ``documents`` (through the `document_vectors` cache; ``kwargs`` go there)."""
        vectors, seconds, cached = document_vectors(encoder, documents, **kwargs)
        collection = cls(documents, vectors, encoder)
        collection.index_seconds, collection.index_cached = seconds, cached
        return collection

    @property
    def fingerprint(self) -> str:
        return self.info["fingerprint"]

    @property
    def dimension(self) -> int:
        return self.info["dimension"]

    def count(self) -> int:
        return len(self.documents)

    def search(self, vector, k: int = 10, **_) -> list:
        from laser_rag.store import Hit

        run = dense_search(np.asarray(vector, dtype=np.float32).reshape(1, -1), self.vectors, self.doc_ids, k=k)
        return [Hit(id=doc_id, title=self._by_id[doc_id].title, text=self._by_id[doc_id].text, score=score)
                for doc_id, score in run["0"].items()]


# ---------------------------------------------------------------------------------------------------------------
# One runner per mode: retrieve(query) -> ([(doc_id, score)], stage timings in ms)


def _describe(encoder) -> str:
    from laser_rag.encoders import encoder_label

    config = getattr(encoder, "config", None)
    if config is None:
        return encoder_label(encoder)
    adapter = "trained adapter" if getattr(encoder, "_adapter_id", None) else "no adapter"
    return f"{encoder_label(encoder)} ({Path(str(config.base_model)).name}, {adapter}, max_length {config.max_length})"


class _BM25Runner:
    def __init__(self, documents: Sequence[Document]) -> None:
        from laser_rag.bm25 import BM25Index

        tick = time.perf_counter()
        self.index = BM25Index(documents)
        self.index_seconds = time.perf_counter() - tick
        self.encoder = "bm25s (k1=1.5, b=0.75, " + ("stemmed)" if self.index.stemmed else "not stemmed)")
        self.fingerprint = None
        self.index_cached = False

    def retrieve(self, query: str) -> tuple[list[tuple[str, float]], dict[str, float]]:
        tick = time.perf_counter()
        ranked = self.index.search(query, DEPTH)
        return ranked, {"search_ms": (time.perf_counter() - tick) * 1000.0}


class _RetrieverRunner:
    def __init__(self, retriever, collection: ExactCollection, num_thinking_steps: int | None) -> None:
        self.retriever = retriever
        self.encoder = collection.info["encoder"]
        self.fingerprint = collection.fingerprint
        self.index_seconds = collection.index_seconds
        self.index_cached = collection.index_cached
        self.num_thinking_steps = num_thinking_steps

    def retrieve(self, query: str) -> tuple[list[tuple[str, float]], dict[str, float]]:
        result = self.retriever.retrieve(query, k=DEPTH, num_thinking_steps=self.num_thinking_steps)
        return [(hit.id, hit.score) for hit in result.hits], dict(result.timings)


def _encoder(mode: EvalMode, settings: EvalSettings):
    from laser_rag.encoders import load_encoder
    from laser_rag.retrieval import encoder_for

    if mode is EvalMode.MINILM:
        return load_encoder(MINILM_SOURCE)
    base = EvalMode.LASER if mode is EvalMode.LASER else EvalMode.BASIC
    encoder = encoder_for(base.value, laser_source=settings.laser_model, basic_source=settings.basic_model)
    if settings.max_length is not None and hasattr(getattr(encoder, "config", None), "max_length"):
        encoder = encoder.with_config(max_length=settings.max_length)
    return encoder


def build_retriever(mode: str | EvalMode, documents: Sequence[Document], settings: EvalSettings | None = None, *,
                    cache_dir: str | Path | None = None, progress: bool = True,
                    _collections: dict | None = None):
    """A `laser_rag.retrieval.Retriever` for a dense mode (basic, laser, rewrite or minilm) over ``documents``,
    searching exactly in memory (`ExactCollection`, document vectors through the `document_vectors` cache).
    The encoders and the rewriter follow ``settings`` (`EvalSettings`)."""
    from laser_rag.retrieval import Retriever, RetrievalMode

    mode, settings = parse_modes([mode])[0], settings or EvalSettings()
    if mode is EvalMode.BM25:
        raise ValueError("bm25 is not a dense mode: use laser_rag.bm25.BM25Index")
    encoder = _encoder(mode, settings)
    collections = {} if _collections is None else _collections
    key = (encoder.fingerprint, _max_length(encoder))
    if key not in collections:
        collections[key] = ExactCollection.build(documents, encoder, cache_dir=cache_dir,
                                                 batch_size=settings.batch_size, progress=progress)
    llm = None
    if mode is EvalMode.REWRITE:
        from laser_rag.llm import as_llm

        llm = as_llm(settings.llm, model=settings.llm_model, max_new_tokens=settings.rewrite_max_new_tokens)
    retrieval_mode = RetrievalMode.BASIC if mode is EvalMode.MINILM else RetrievalMode(mode.value)
    return Retriever(collections[key], encoder, mode=retrieval_mode, llm=llm, k=DEPTH,
                     rewrite_max_new_tokens=settings.rewrite_max_new_tokens)


def _runners(modes: list[EvalMode], documents: Sequence[Document], settings: EvalSettings,
             cache_dir, progress: bool) -> dict[EvalMode, Any]:
    collections: dict[tuple, ExactCollection] = {}  # basic and rewrite share one
    runners = {}
    for mode in modes:
        if mode is EvalMode.BM25:
            runners[mode] = _BM25Runner(documents)
            continue
        retriever = build_retriever(mode, documents, settings, cache_dir=cache_dir, progress=progress,
                                    _collections=collections)
        steps = settings.num_thinking_steps if mode is EvalMode.LASER else None
        runners[mode] = _RetrieverRunner(retriever, retriever.collection, steps)
    return runners


# ---------------------------------------------------------------------------------------------------------------
# The evaluation


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def _environment() -> dict[str, Any]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": sys.version.split()[0], "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
            "load_average_at_start": [round(x, 2) for x in load] if load else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def evaluate_modes(
    dataset: RetrievalDataset,
    modes: str | Sequence[str | EvalMode] = DEFAULT_MODES,
    settings: EvalSettings | None = None,
    *,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    license: str | None = None,
    command: str | None = None,
    on_mode_ready: Callable[[str], None] | None = None,
) -> EvalReport:
    """Quality and query latency of each mode on ``dataset`` (see the module docstring for the method).

    ``license`` and ``command`` are recorded in the report as given. A query a mode fails on (the rewriter raised a
    `laser_rag.llm.GenerationError`) counts as a failure and scores 0 for that mode.
    """
    from laser_rag.llm import GenerationError

    settings = settings or EvalSettings()
    modes = parse_modes(modes)
    environment = _environment()
    qids = _judged(dataset)[:settings.max_queries] if settings.max_queries else _judged(dataset)
    if not qids:
        raise ValueError(f"{dataset.name}: no query has a relevant document in the qrels")
    runners = _runners(modes, dataset.corpus, settings, cache_dir, progress)
    for mode, runner in runners.items():  # warm-up, untimed: first-call costs are not query latency
        runner.retrieve(dataset.queries[qids[0]])
        if on_mode_ready:
            on_mode_ready(mode.value)

    runs = {mode: {} for mode in modes}
    totals = {mode: [] for mode in modes}
    stages = {mode: {} for mode in modes}
    failures = dict.fromkeys(modes, 0)
    order = list(modes)
    for number, qid in enumerate(tqdm(qids, desc="queries", unit="query", disable=not progress)):
        query = dataset.queries[qid]
        turn = number % len(order)
        for mode in order[turn:] + order[:turn]:
            tick = time.perf_counter()
            try:
                ranked, timings = runners[mode].retrieve(query)
            except GenerationError:
                failures[mode] += 1
                continue
            totals[mode].append((time.perf_counter() - tick) * 1000.0)
            for stage, ms in timings.items():
                stages[mode].setdefault(stage, []).append(ms)
            runs[mode][qid] = dict(ranked)

    qrels = {qid: dataset.qrels[qid] for qid in qids}
    results = []
    for mode in modes:
        runner = runners[mode]
        results.append(ModeResult(
            mode=mode.value,
            encoder=runner.encoder,
            fingerprint=runner.fingerprint,
            metrics=score_run(qrels, runs[mode], settings.metrics),
            latency_ms={"median": _percentile(totals[mode], 50), "p95": _percentile(totals[mode], 95),
                        "mean": float(statistics.fmean(totals[mode])) if totals[mode] else float("nan")},
            stages_ms={stage: _percentile(values, 50) for stage, values in stages[mode].items()},
            num_queries=len(qids),
            failures=failures[mode],
            index_seconds=round(runner.index_seconds, 1),
            index_cached=runner.index_cached,
        ))
    return EvalReport(dataset=dataset.name, num_docs=len(dataset.corpus), num_queries=len(qids),
                      settings=dataclasses.asdict(settings), results=results, environment=environment,
                      license=license, command=command)


# ---------------------------------------------------------------------------------------------------------------
# Tables


def _header(metric: str) -> str:
    if "@" in metric:
        name, cut = metric.split("@")
    else:
        name, _, cut = metric.rpartition("_")
    return f"{_HEADERS.get(name, name)}@{cut}"


def markdown_table(reports: EvalReport | Sequence[EvalReport]) -> str:
    """One markdown table: a row per dataset and mode with the quality metrics and query latency (median / p95),
    then one line per dataset with the rewrite/LaSER latency ratio (when both ran)."""
    reports = [reports] if isinstance(reports, EvalReport) else list(reports)
    metrics = list(dict.fromkeys(m for report in reports for r in report.results for m in r.metrics))
    header = ["dataset", "mode", *map(_header, metrics), "latency median (ms)", "latency p95 (ms)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes = []
    for report in reports:
        for r in report.results:
            cells = [report.dataset, r.mode + (f" ({r.failures} failed)" if r.failures else "")]
            cells += [f"{r.metrics[m]:.3f}" if m in r.metrics else "" for m in metrics]
            cells += [_ms(r.latency_ms["median"]), _ms(r.latency_ms["p95"])]
            lines.append("| " + " | ".join(cells) + " |")
        ratio = report.rewrite_laser_ratio
        if ratio is not None:
            notes.append(f"- {report.dataset}: rewrite/LaSER median query latency = {ratio:.1f}x "
                         f"(LaSER at {100 / ratio:.1f}% of the rewrite pipeline's latency)")
    return "\n".join(lines + ([""] + notes if notes else []))


def _ms(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


# ---------------------------------------------------------------------------------------------------------------
# The command line (`laser-rag eval`, `laser-rag convert` delegate here)


def load_dataset(data: str | Path | None = None, name: str | None = None,
                 split: str | None = None) -> tuple[RetrievalDataset, str | None]:
    """``data``: a BEIR directory (split default "test"); or ``name``: a shared set (split default "validation").
    Returns the dataset and its licence line (None for a user's directory)."""
    from laser_rag.datasets import load_beir

    if (data is None) == (name is None):
        raise ValueError("give either a BEIR directory (--data) or a shared dataset name (--dataset)")
    if data is not None:
        return load_beir(data, split or "test"), None
    return shared_dataset(name, split or "validation"), LICENSES.get(name)


def command_line(context) -> str:
    """The command a (typer/click) ``context`` ran, for the report: ``laser-rag eval --dataset hotpotqa ...``,
    options left at their defaults left out."""
    import shlex

    words = ["laser-rag", context.info_name or "eval"]
    for param in context.command.params:
        value = context.params.get(param.name)
        if value is None or value == param.default or not getattr(param, "opts", None):
            continue
        words += [param.opts[0], str(getattr(value, "value", value))]
    return shlex.join(words)


def run_eval(dataset: RetrievalDataset, modes: str | Sequence[str], settings: EvalSettings, *,
             max_docs: int | None = None, out: str | Path | None = None, license: str | None = None,
             cache_dir: str | Path | None = None, command: str | None = None,
             echo: Callable[[str], None] = print) -> EvalReport:
    """`evaluate_modes` (on a `slice_dataset` of at most ``max_docs`` documents when given), then the JSON report to
    ``out`` and the markdown table (and licence) to ``echo``."""
    if max_docs is not None:
        dataset = slice_dataset(dataset, settings.max_queries, max_docs)
    report = evaluate_modes(dataset, modes, settings, cache_dir=cache_dir, license=license, command=command)
    if out is not None:
        report.save(out)
    echo(markdown_table(report))
    notes = [f"{report.num_queries} queries, {report.num_docs} documents; exact search; latency = one query at a "
             "time, query side only (rewrite + encode + search), modes interleaved"]
    if license:
        notes.append(f"data licence: {license}")
    if out is not None:
        notes.append(f"written to {out}")
    echo("\n" + "\n".join(notes))
    return report


# ---------------------------------------------------------------------------------------------------------------
# The shared sets, as the README and notebooks/01_retrieval.ipynb report them

#: How each shared set is evaluated (benchmarks/eval_shared.sh runs the same): the split, and a cost budget for
#: 2 CPU cores: the first 50 judged queries, and a corpus of their relevant documents plus random distractors up
#: to 1,000 documents (HotpotQA's whole pool is 998). SciFact's abstracts (~310 tokens on average) are also cut to
#: 128 tokens for the LaSER encoders (BM25 and MiniLM see them whole; MiniLM's own limit is 256 word pieces).
SHARED_EVALS = {
    "strategyqa": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "hotpotqa": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "musique": {"split": "validation", "max_queries": 50, "max_docs": 1000},
    "scifact": {"split": "validation", "max_queries": 50, "max_docs": 1000, "max_length": 128},
}
RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _shared_plan(name: str, overrides: dict[str, Any]) -> tuple[RetrievalDataset, dict[str, Any]]:
    plan = {**SHARED_EVALS[name], **overrides}
    split, max_docs = plan.pop("split"), plan.pop("max_docs", None)
    dataset = shared_dataset(name, split)
    if max_docs is not None:
        dataset = slice_dataset(dataset, plan.get("max_queries"), max_docs)
    return dataset, plan


def _same_encoders(report: EvalReport, settings: EvalSettings) -> bool:
    """Whether the encoders a report used are the ones its modes load now (a checkpoint may have shipped since)."""
    return all(r.fingerprint is None or _encoder(EvalMode(r.mode), settings).fingerprint == r.fingerprint
               for r in report.results)


def shared_slice(name: str, **overrides: Any) -> RetrievalDataset:
    """The (sliced) dataset `shared_eval` evaluates for ``name``, e.g. to answer questions over the same corpus
    (its document vectors are then already cached)."""
    return _shared_plan(name, overrides)[0]


def shared_eval(name: str, *, modes: str | Sequence[str] = DEFAULT_MODES, results_dir: str | Path | None = RESULTS_DIR,
                cache_dir: str | Path | None = None, progress: bool = True, **overrides: Any) -> EvalReport:
    """One shared set evaluated as `SHARED_EVALS` says; ``overrides`` replace its ``max_queries``/``max_docs`` and
    any `EvalSettings` field (``max_docs=None`` = the whole corpus).

    Reuses ``results_dir/retrieval_<name>.json`` when that report was made on the same (sliced) dataset with the
    same modes, settings and encoder fingerprints (benchmarks/eval_shared.sh writes them); otherwise runs
    `evaluate_modes`.
    """
    dataset, plan = _shared_plan(name, overrides)
    chosen = EvalSettings(**plan)
    modes = [m.value for m in parse_modes(modes)]
    saved = Path(results_dir) / f"retrieval_{name}.json" if results_dir is not None else None
    if saved is not None and saved.is_file():
        report = EvalReport.load(saved)
        if (report.dataset == dataset.name and report.settings == dataclasses.asdict(chosen)
                and [r.mode for r in report.results] == modes and _same_encoders(report, chosen)):
            return report
    return evaluate_modes(dataset, modes, chosen, cache_dir=cache_dir, progress=progress, license=LICENSES[name])


def plot_quality_latency(reports: Sequence[EvalReport], metric: str = "ndcg_cut_10", ax=None):
    """The paper's Figure 1 (right) on our data: quality (``metric``) against median query latency (log scale);
    a colour per dataset, a marker per mode, the three modes of a dataset joined. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5))
    markers = {"bm25": "s", "minilm": "D", "basic": "o", "laser": "*", "rewrite": "^"}
    seen_modes: dict[str, None] = {}
    datasets = []
    for index, report in enumerate(reports):
        colour = f"C{index}"
        points = [(r.latency_ms["median"], r.metrics[metric], r.mode) for r in report.results
                  if metric in r.metrics and r.latency_ms["median"] == r.latency_ms["median"]]
        for latency, value, mode in points:
            ax.scatter(latency, value, color=colour, marker=markers.get(mode, "o"), s=160 if mode == "laser" else 60,
                       edgecolors="black", linewidths=0.5, zorder=3)
            seen_modes[mode] = None
        dense = sorted((p for p in points if p[2] in ("basic", "laser", "rewrite")), key=lambda p: p[0])
        if dense:
            ax.plot([p[0] for p in dense], [p[1] for p in dense], color=colour, alpha=0.35, zorder=2)
        datasets.append(Line2D([], [], color=colour, lw=3, label=report.dataset))
    mode_handles = [Line2D([], [], ls="", marker=markers.get(m, "o"), color="grey", markeredgecolor="black",
                           markersize=11 if m == "laser" else 7, label=m) for m in seen_modes]
    ax.add_artist(ax.legend(handles=datasets, fontsize=8, loc="upper right", title="dataset", title_fontsize=8))
    ax.legend(handles=mode_handles, fontsize=8, loc="center right", title="mode", title_fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median query latency, ms (log scale; rewrite + encode + search, one query at a time)")
    ax.set_ylabel(_header(metric))
    ax.set_title("Retrieval quality vs query latency")
    ax.grid(True, which="both", alpha=0.3)
    return ax.figure
