"""Retrieval evaluation: exact dense search and trec_eval metrics over a BEIR-style `RetrievalDataset`.

Example::

    from laser_rag import LaSEREncoder
    from laser_rag.datasets import shared_dataset
    from laser_rag.evaluation import evaluate_encoder

    metrics = evaluate_encoder(LaSEREncoder.from_pretrained(), shared_dataset("strategyqa", "validation"))
    metrics["ndcg_cut_10"], metrics["recall_10"]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from laser_rag.datasets import document_text

#: Metric names understood by `score_run`: trec_eval measures written ``<measure>_<cutoff>`` (as pytrec_eval
#: reports them), plus ``recip_rank@<k>`` for MRR@k (reciprocal rank on the run cut to its top k).
DEFAULT_METRICS = ("ndcg_cut_10", "recall_10", "recall_100", "recip_rank@10")

Run = dict[str, dict[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def _trec_measure(name: str) -> str:
    """``ndcg_cut_10`` -> ``ndcg_cut.10`` (pytrec_eval's request syntax); ``map`` stays ``map``."""
    head, _, tail = name.rpartition("_")
    return f"{head}.{tail}" if head and tail.isdigit() else name


def _cut(run: Run, k: int) -> Run:
    return {qid: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]) for qid, docs in run.items()}


def score_run(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean trec_eval metrics of ``run`` (``run[qid][doc_id] = score``) against ``qrels`` (``[qid][doc_id] = grade``).

    The mean is over every query of ``qrels`` with at least one relevant document (grade > 0); a query the run
    has no results for scores 0 (pytrec_eval alone would silently skip it). ``recip_rank@k`` is MRR@k.

    Example::

        score_run({"q": {"d1": 1}}, {"q": {"d0": 0.9, "d1": 0.5}}, ["recip_rank@10", "recall_10"])
        # {'recip_rank@10': 0.5, 'recall_10': 1.0}
    """
    import pytrec_eval

    judged = {qid: {d: int(g) for d, g in docs.items()}
              for qid, docs in qrels.items() if any(g > 0 for g in docs.values())}
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
    return {m: float(np.mean([per_query[qid].get(m, 0.0) for qid in judged])) for m in metrics}


def dense_search(
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    doc_ids: Sequence[str],
    k: int = 100,
    query_ids: Sequence[str] | None = None,
    batch_size: int = 1024,
) -> Run:
    """Exact top-k by inner product (cosine for unit vectors): ``run[query_id][doc_id] = score``.

    ``query_ids`` default to ``"0", "1", ...``. Ties are broken by document order.

    Example::

        run = dense_search(q, d, ["d0", "d1", "d2"], k=2, query_ids=["q0"])
    """
    query_vecs = np.asarray(query_vecs, dtype=np.float32)
    doc_vecs = np.asarray(doc_vecs, dtype=np.float32)
    if len(doc_ids) != len(doc_vecs):
        raise ValueError(f"{len(doc_vecs)} document vectors but {len(doc_ids)} ids")
    query_ids = [str(i) for i in range(len(query_vecs))] if query_ids is None else list(query_ids)
    if len(query_ids) != len(query_vecs):
        raise ValueError(f"{len(query_vecs)} query vectors but {len(query_ids)} ids")
    k = min(k, len(doc_ids))
    run: Run = {}
    for start in range(0, len(query_vecs), batch_size):
        scores = query_vecs[start:start + batch_size] @ doc_vecs.T
        if k < len(doc_ids):
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(k), (len(scores), 1))
        for row, candidates in enumerate(top):
            order = candidates[np.lexsort((candidates, -scores[row, candidates]))]
            run[query_ids[start + row]] = {doc_ids[j]: float(scores[row, j]) for j in order}
    return run


def evaluate_encoder(
    encoder,
    dataset,
    k: int = 100,
    num_thinking_steps: int | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    batch_size: int = 16,
    show_progress_bar: bool | None = None,
    rationales: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Encode a `RetrievalDataset`'s judged queries and its corpus with ``encoder``, search exactly, score.

    ``num_thinking_steps`` overrides the encoder's K for queries and documents alike. ``rationales`` (query id ->
    text) scores the explicit view instead: each query read together with its rationale in one pass (queries
    without one are left out). Returns the metrics plus ``num_queries``, ``num_docs`` and the encoding time in
    seconds (``seconds``).
    """
    started = time.perf_counter()
    qids = [qid for qid in dataset.queries if any(g > 0 for g in dataset.qrels.get(qid, {}).values())
            and (rationales is None or qid in rationales)]
    if not qids:
        raise ValueError(f"{dataset.name}: no judged query to evaluate")
    q = encoder.encode_queries([dataset.queries[qid] for qid in qids], num_thinking_steps=num_thinking_steps,
                               rationales=None if rationales is None else [rationales[qid] for qid in qids],
                               batch_size=batch_size, show_progress_bar=show_progress_bar)
    d = encoder.encode_documents([document_text(doc) for doc in dataset.corpus], num_thinking_steps=num_thinking_steps,
                                 batch_size=batch_size, show_progress_bar=show_progress_bar)
    run = dense_search(q, d, [doc.id for doc in dataset.corpus], k=k, query_ids=qids)
    result = score_run({qid: dataset.qrels[qid] for qid in qids}, run, metrics)
    result.update(num_queries=len(qids), num_docs=len(dataset.corpus), seconds=round(time.perf_counter() - started, 1))
    return result
