"""laser_rag.evaluation: trec_eval metrics against values computed by hand, and `evaluate_encoder` through the
production path (an in-memory Qdrant collection searched exactly)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laser_rag.beir import RetrievalDataset
from laser_rag.corpus import Document
from laser_rag.encoders.base import BaseEncoder
from laser_rag.evaluation import DEFAULT_METRICS, evaluate_encoder, judged_queries, score_queries, score_run

QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d2": 2, "d4": 1}, "q3": {"d5": 1}, "q4": {"d1": 0}}
RUN = {
    "q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7},  # relevant at ranks 1 and 3
    "q2": {"d1": 0.9, "d4": 0.8, "d2": 0.4},  # grade 1 at rank 2, grade 2 at rank 3
    # q3: nothing retrieved -> 0 everywhere; q4: no relevant document -> not counted
}


def _log2(x: float) -> float:
    return math.log(x) / math.log(2)


def test_score_run_by_hand():
    # trec_eval's nDCG uses the grade itself as the gain: DCG = sum grade / log2(rank + 1)
    ndcg_q1 = (1 / _log2(2) + 1 / _log2(4)) / (1 / _log2(2) + 1 / _log2(3))
    ndcg_q2 = (1 / _log2(3) + 2 / _log2(4)) / (2 / _log2(2) + 1 / _log2(3))
    got = score_run(QRELS, RUN, ["ndcg_cut_10", "recall_10", "recall_1", "recip_rank@10", "recip_rank@1"])
    assert got["ndcg_cut_10"] == pytest.approx((ndcg_q1 + ndcg_q2 + 0) / 3, rel=1e-4)
    assert got["recall_10"] == pytest.approx((1 + 1 + 0) / 3)
    assert got["recall_1"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert got["recip_rank@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert got["recip_rank@1"] == pytest.approx((1 + 0 + 0) / 3)  # q2's first relevant document is at rank 2


def test_score_queries_are_what_score_run_averages():
    metrics = ["ndcg_cut_10", "recall_1", "recip_rank@1"]
    per_query = score_queries(QRELS, RUN, metrics)
    assert list(per_query) == ["q1", "q2", "q3"]  # judged queries only, in qrels order
    assert per_query["q1"]["recall_1"] == pytest.approx(0.5) and per_query["q2"]["recip_rank@1"] == 0.0
    assert per_query["q3"] == dict.fromkeys(metrics, 0.0)  # nothing retrieved: 0, not missing
    means = score_run(QRELS, RUN, metrics)
    assert means == {m: pytest.approx(np.mean([v[m] for v in per_query.values()])) for m in metrics}


def test_score_run_rejects_unknown_metrics_and_empty_qrels():
    with pytest.raises(ValueError):
        score_run(QRELS, RUN, ["ndcg_at_ten"])
    with pytest.raises(ValueError):
        score_run({"q": {"d": 0}}, RUN)


def test_judged_queries_keep_the_given_order():
    assert judged_queries(QRELS) == ["q1", "q2", "q3"]
    assert judged_queries(QRELS, ["q4", "q3", "q9", "q1"]) == ["q3", "q1"]


class LookupEncoder(BaseEncoder):
    """Vectors looked up by text: evaluation logic without a model (rationales append `` | <rationale>``)."""

    label = "lookup"
    max_length = 32
    tokenizer = None

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls: list[tuple[str, int]] = []

    @property
    def dimension(self) -> int:
        return len(next(iter(self.vectors.values())))

    @property
    def fingerprint(self) -> str:
        return f"lookup-{self.dimension}"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _lookup(self, kind: str, texts: list[str]) -> np.ndarray:
        self.calls.append((kind, len(texts)))
        vectors = np.array([self.vectors[t] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar):
        return self._lookup("queries", texts)

    def _encode_documents(self, texts, *, batch_size, show_progress_bar):
        return self._lookup("documents", texts)

    def _encode_explicit(self, queries, rationales, *, batch_size):
        return self._lookup("explicit", [f"{q} | {r}" for q, r in zip(queries, rationales)])


def test_evaluate_encoder_end_to_end():
    dataset = RetrievalDataset(
        name="tiny",
        corpus=[Document("d1", "alpha"), Document("d2", "beta", title="B"), Document("d3", "gamma")],
        queries={"q1": "find alpha", "q2": "find beta", "q3": "unjudged"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}},
    )
    encoder = LookupEncoder({
        "find alpha": [1, 0, 0], "find beta": [0, 0, 1],
        "alpha": [1, 0, 0], "B\nbeta": [0, 1, 0], "gamma": [0, 0.6, 0.8],  # documents read as "title\ntext"
    })
    got = evaluate_encoder(encoder, dataset, k=10)
    # q1: d1 first -> 1. q2: gamma (rel) rank 1, beta (rel) ties with alpha at 0 -> recall 1, MRR 1, nDCG 1
    assert got["recall_10"] == 1.0 and got["recip_rank@10"] == 1.0 and got["ndcg_cut_10"] == pytest.approx(1.0)
    assert got["num_queries"] == 2 and got["num_docs"] == 3 and set(DEFAULT_METRICS) <= set(got)
    assert sorted(encoder.calls) == [("documents", 3), ("queries", 2)]  # q3 has no relevant document: not encoded


def test_evaluate_encoder_scores_the_explicit_view_with_rationales():
    dataset = RetrievalDataset(
        name="tiny", corpus=[Document("d1", "alpha"), Document("d2", "beta")],
        queries={"q1": "which", "q2": "other"}, qrels={"q1": {"d2": 1}, "q2": {"d1": 1}},
    )
    encoder = LookupEncoder({"which": [1, 0], "which | it is beta": [0, 1], "alpha": [1, 0], "beta": [0, 1]})
    assert evaluate_encoder(encoder, dataset, k=10, rationales={"q1": "it is beta"}) | {"seconds": 0} == {
        "ndcg_cut_10": 1.0, "recall_10": 1.0, "recall_100": 1.0, "recip_rank@10": 1.0,
        "num_queries": 1, "num_docs": 2, "seconds": 0}  # q2 has no rationale: left out
    assert ("explicit", 1) in encoder.calls
    with pytest.raises(ValueError, match="no judged query"):
        evaluate_encoder(encoder, dataset, rationales={})


def test_evaluate_encoder_ranks_exactly_as_brute_force_cosine(minilm, short_passages):
    """A real encoder through Qdrant gives the figures of an exact cosine ranking of the same vectors."""
    queries = {f"q{i}": f"{doc.title}: what does it say?" for i, doc in enumerate(short_passages)}
    qrels = {f"q{i}": {doc.id: 1} for i, doc in enumerate(short_passages)}
    dataset = RetrievalDataset("pydoc-12", list(short_passages), queries, qrels)
    got = evaluate_encoder(minilm, dataset, k=5, metrics=("ndcg_cut_5", "recip_rank@5"))

    docs = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in short_passages])
    scores = minilm.encode_queries(list(queries.values())) @ docs.T
    run = {qid: {short_passages[j].id: float(row[j]) for j in np.argsort(-row)[:5]}
           for qid, row in zip(queries, scores)}
    expected = score_run(qrels, run, ("ndcg_cut_5", "recip_rank@5"))
    assert got["ndcg_cut_5"] == pytest.approx(expected["ndcg_cut_5"], abs=1e-6)
    assert got["recip_rank@5"] == pytest.approx(expected["recip_rank@5"], abs=1e-6)
    assert got["recip_rank@5"] > 0.5  # the title in the query finds its passage
