"""Retrieval evaluation: trec_eval metrics of an encoder on a BEIR-style `RetrievalDataset`, measured through the
path users run (a Qdrant collection, here an in-memory one, searched exactly).

Example::

    from laser_rag.beir import load_beir
    from laser_rag.encoders import load_encoder
    from laser_rag.evaluation import evaluate_encoder

    metrics = evaluate_encoder(load_encoder(), load_beir("my-beir-dir", "test"))
    metrics["ndcg_cut_10"], metrics["recall_10"]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.beir import RetrievalDataset
    from laser_rag.encoders.base import BaseEncoder

#: Metric names understood by `score_run` and `score_queries`: trec_eval measures written ``<measure>_<cutoff>``
#: (as pytrec_eval reports them), plus ``recip_rank@<k>`` for MRR@k (reciprocal rank on the run cut to its top k).
DEFAULT_METRICS = ("ndcg_cut_10", "recall_10", "recall_100", "recip_rank@10")

Run = dict[str, dict[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _trec_measure(name: str) -> str:
    """``ndcg_cut_10`` -> ``ndcg_cut.10`` (pytrec_eval's request syntax); ``map`` stays ``map``."""
    head, _, tail = name.rpartition("_")
    return f"{head}.{tail}" if head and tail.isdigit() else name


def _cut(run: Run, k: int) -> Run:
    return {qid: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]) for qid, docs in run.items()}


def judged_queries(qrels: Qrels, queries: Sequence[str] | None = None) -> list[str]:
    """The query ids (of ``queries``, else of ``qrels``, in that order) with at least one relevant document."""
    order = qrels if queries is None else queries
    return [qid for qid in order if any(g > 0 for g in qrels.get(qid, {}).values())]


def score_queries(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """Each judged query's trec_eval metrics: ``{qid: {metric: value}}`` for every query of ``qrels`` with at least
    one relevant document (grade > 0), in qrels order; a query the run has no results for scores 0 (pytrec_eval
    alone would silently skip it). ``recip_rank@k`` is MRR@k. `score_run` is their mean.

    Example::

        score_queries({"q": {"d1": 1}}, {"q": {"d0": 0.9, "d1": 0.5}}, ["recip_rank@10"])
        # {'q': {'recip_rank@10': 0.5}}
    """
    import pytrec_eval

    judged = {qid: {d: int(g) for d, g in qrels[qid].items()} for qid in judged_queries(qrels)}
    if not judged:
        raise ValueError("qrels hold no query with a relevant document")
    run = {qid: {d: float(s) for d, s in docs.items()} for qid, docs in run.items() if qid in judged and docs}
    plain = [m for m in metrics if "@" not in m]
    cuts = sorted({int(m.split("@")[1]) for m in metrics if "@" in m})
    per_query: dict[str, dict[str, float]] = {qid: {} for qid in judged}
    if plain:
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {_trec_measure(m) for m in plain})
        for qid, values in evaluator.evaluate(run).items():
            per_query[qid].update(values)
    for k in cuts:
        evaluator = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"})
        for qid, values in evaluator.evaluate(_cut(run, k)).items():
            per_query[qid][f"recip_rank@{k}"] = values["recip_rank"]
    unknown = [m for m in metrics if not any(m in values for values in per_query.values())] if run else []
    if unknown:
        raise ValueError(f"pytrec_eval did not compute {unknown}; names look like 'ndcg_cut_10', 'recall_100', 'map'")
    return {qid: {m: float(values.get(m, 0.0)) for m in metrics} for qid, values in per_query.items()}


def score_run(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean trec_eval metrics of ``run`` (``run[qid][doc_id] = score``) against ``qrels`` (``[qid][doc_id] = grade``):
    the mean of `score_queries` over every judged query (at least one relevant document), a query without results
    counting 0. ``recip_rank@k`` is MRR@k.

    Example::

        score_run({"q": {"d1": 1}}, {"q": {"d0": 0.9, "d1": 0.5}}, ["recip_rank@10", "recall_10"])
        # {'recip_rank@10': 0.5, 'recall_10': 1.0}
    """
    per_query = score_queries(qrels, run, metrics)
    return {m: float(np.mean([values[m] for values in per_query.values()])) for m in metrics}


def evaluate_encoder(
    encoder: BaseEncoder,
    dataset: RetrievalDataset,
    *,
    k: int = 100,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 16,
    rationales: Mapping[str, str] | None = None,
    show_progress_bar: bool | None = None,
) -> dict[str, float]:
    """Index ``dataset``'s corpus with ``encoder`` into an in-memory Qdrant collection, search each judged query's
    top ``k`` exactly, and score the run with `score_run`.

    This is the production path (`laser_rag.store.VectorCollection`: the encoder's own document text, point ids,
    payload, cosine search), so the figures are those of what users run. ``k`` is the ranking depth (Recall@100
    needs 100). The corpus is indexed as it is (BEIR corpora are already passages: no chunking). ``rationales``
    (query id -> text) scores the explicit view instead: each query read together with its rationale in one pass
    (`BaseEncoder.encode_explicit`; queries without one are left out). Returns the metrics plus ``num_queries``,
    ``num_docs`` and the wall time in seconds (``seconds``).
    """
    from laser_rag import store

    started = time.perf_counter()
    qids = [qid for qid in judged_queries(dataset.qrels, list(dataset.queries))
            if rationales is None or qid in rationales]
    if not qids:
        raise ValueError(f"{dataset.name}: no judged query to evaluate")
    texts = [dataset.queries[qid] for qid in qids]
    if rationales is None:
        vectors = encoder.encode_queries(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)
    else:
        vectors = encoder.encode_explicit(texts, [rationales[qid] for qid in qids], batch_size=batch_size)
    client = store.connect(":memory:")  # a private in-memory store, dropped when closed
    try:
        collection = store.VectorCollection.open(client, "evaluation", encoder, create=True)
        collection.index(dataset.corpus, encoder, encode_batch_size=batch_size, progress=bool(show_progress_bar))
        run = {qid: {hit.id: hit.score for hit in collection.search(vector, k, exact=True)}
               for qid, vector in zip(qids, vectors)}
    finally:
        client.close()
    result = score_run({qid: dataset.qrels[qid] for qid in qids}, run, metrics)
    result.update(num_queries=len(qids), num_docs=len(dataset.corpus), seconds=round(time.perf_counter() - started, 1))
    return result
