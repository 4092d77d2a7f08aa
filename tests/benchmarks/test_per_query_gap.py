"""benchmarks/per_query_gap.py: two modes compared query by query, by how much of each query's wording its relevant
document holds; on real SciFact claims with BM25 and MiniLM rankings from the eval harness."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from laser_rag_benchmarks.per_query_gap import gap_by_overlap, query_overlap


def _texts(dataset):
    return {doc.id: f"{doc.title} {doc.text}" for doc in dataset.corpus}


def test_overlap_is_the_share_of_query_terms_its_relevant_document_holds(scifact_slice):
    texts = _texts(scifact_slice)
    overlap = query_overlap(scifact_slice.queries, scifact_slice.qrels, texts)
    assert len(overlap) == 12 and all(0.0 <= value <= 1.0 for value in overlap.values())
    assert 0.0 < float(np.mean(list(overlap.values()))) < 1.0  # claims paraphrase their abstracts, in part
    doc = next(d for d, grade in scifact_slice.qrels[next(iter(overlap))].items() if grade > 0)
    words = texts[doc].split()
    assert query_overlap({"q": " ".join(words[:12])}, {"q": {doc: 1}}, texts) == {"q": 1.0}  # its own words
    half = query_overlap({"q": "qwzxv vbnmq " + " ".join(words[:2])}, {"q": {doc: 1}}, texts)["q"]
    assert 0.0 < half < 1.0
    assert query_overlap({"q": "qwzxv vbnmq"}, {"q": {doc: 1}}, texts) == {"q": 0.0}
    assert query_overlap({"q": "the and of"}, {"q": {doc: 1}}, texts) == {}  # only stopwords: no terms to match
    assert query_overlap({"q": "anything"}, {"q": {"not-in-the-pool": 1}}, texts) == {}


def test_the_gap_splits_every_query_into_ordered_bins_that_average_back(minilm, scifact_slice, tmp_path):
    from laser_rag_benchmarks.harness import evaluate_modes

    report = evaluate_modes(scifact_slice, "bm25,minilm", cache_dir=tmp_path, progress=False)
    overlap = query_overlap(scifact_slice.queries, scifact_slice.qrels, _texts(scifact_slice))
    gap = gap_by_overlap(report, "bm25", "minilm", overlap, bins=3)
    bins = gap["bins"]
    assert [row["queries"] for row in bins] == [4, 4, 4] and gap["queries"] == 12
    assert all(a["overlap_max"] <= b["overlap_min"] for a, b in zip(bins, bins[1:]))
    for mode in ("bm25", "minilm"):  # the bins' means, weighted by size, are the report's means
        assert np.average([row[mode] for row in bins], weights=[4, 4, 4]) == pytest.approx(
            report.result(mode).metrics["ndcg_cut_10"])
    assert all(row["difference"] == pytest.approx(row["minilm"] - row["bm25"]) for row in bins)
    assert all(row["minilm_wins"] + row["bm25_wins"] <= row["queries"] for row in bins)
    assert -1.0 <= gap["spearman_overlap_vs_difference"] <= 1.0
    json.dumps(gap, allow_nan=False)  # the report is plain JSON

    same = gap_by_overlap(report, "bm25", "bm25", overlap, bins=3)
    assert all(row["difference"] == 0.0 and row["bm25_wins"] == 0 for row in same["bins"])
    assert same["spearman_overlap_vs_difference"] is None  # no difference to correlate with

    report.results[1] = dataclasses.replace(report.results[1], per_query={})  # a report written before per_query
    with pytest.raises(ValueError, match="no per-query figures"):
        gap_by_overlap(report, "bm25", "minilm", overlap)
    with pytest.raises(ValueError, match="cannot fill"):
        gap_by_overlap(report, "bm25", "bm25", overlap, bins=13)
