"""laser_rag.evaluation against metrics computed by hand on a tiny fixture."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laser_rag.datasets import Document, RetrievalDataset
from laser_rag.datasets import document_text
from laser_rag.evaluation import dense_search, evaluate_encoder, score_run

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


def test_score_run_rejects_unknown_metrics_and_empty_qrels():
    with pytest.raises(ValueError):
        score_run(QRELS, RUN, ["ndcg_at_ten"])
    with pytest.raises(ValueError):
        score_run({"q": {"d": 0}}, RUN)


def test_dense_search_exact_top_k():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = np.array([[0.0, 1.0], [1.0, 0.0], [0.8, 0.6], [0.6, 0.8]])
    run = dense_search(q, d, ["a", "b", "c", "e"], k=2, query_ids=["x", "y"])
    assert list(run["x"]) == ["b", "c"] and run["x"]["b"] == pytest.approx(1.0)
    assert list(run["y"]) == ["a", "e"]
    assert list(dense_search(q, d, ["a", "b", "c", "e"], k=10)["0"]) == ["b", "c", "e", "a"]  # k > N: all, sorted


class _LookupEncoder:
    """Vectors looked up by text: evaluation logic without a model."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls = []

    def _encode(self, texts, num_thinking_steps=None, rationales=None, **_):
        self.calls.append(num_thinking_steps)
        if rationales is not None:
            texts = [f"{t} | {r}" for t, r in zip(texts, rationales)]
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)

    encode_queries = encode_documents = _encode


def test_evaluate_encoder_end_to_end():
    dataset = RetrievalDataset(
        name="tiny",
        corpus=[Document("d1", "alpha"), Document("d2", "beta", title="B"), Document("d3", "gamma")],
        queries={"q1": "find alpha", "q2": "find beta", "q3": "unjudged"},
        qrels={"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}},
    )
    encoder = _LookupEncoder({
        "find alpha": [1, 0, 0], "find beta": [0, 0, 1],
        "alpha": [1, 0, 0], "B\nbeta": [0, 1, 0], "gamma": [0, 0.6, 0.8],
    })
    got = evaluate_encoder(encoder, dataset, k=10, num_thinking_steps=1)
    # q1: d1 first -> 1. q2: gamma (rel) rank 1, beta (rel) rank 2 -> recall 1, MRR 1, nDCG 1
    assert got["recall_10"] == 1.0 and got["recip_rank@10"] == 1.0 and got["ndcg_cut_10"] == pytest.approx(1.0)
    assert got["num_queries"] == 2 and got["num_docs"] == 3
    assert encoder.calls == [1, 1]
    assert document_text(dataset.corpus[1]) == "B\nbeta"


def test_evaluate_encoder_scores_the_explicit_view_with_rationales():
    dataset = RetrievalDataset(
        name="tiny", corpus=[Document("d1", "alpha"), Document("d2", "beta")],
        queries={"q1": "which", "q2": "other"}, qrels={"q1": {"d2": 1}, "q2": {"d1": 1}},
    )
    encoder = _LookupEncoder({"which": [1, 0], "which | it is beta": [0, 1], "alpha": [1, 0], "beta": [0, 1]})
    assert evaluate_encoder(encoder, dataset, k=10, rationales={"q1": "it is beta"}) | {"seconds": 0} == {
        "ndcg_cut_10": 1.0, "recall_10": 1.0, "recall_100": 1.0, "recip_rank@10": 1.0,
        "num_queries": 1, "num_docs": 2, "seconds": 0}  # q2 has no rationale: left out
    with pytest.raises(ValueError, match="no judged query"):
        evaluate_encoder(encoder, dataset, rationales={})
