"""laser_rag_training.data: split hygiene of the training examples, their rationales, and the seeded batch plan."""

from __future__ import annotations

import random

import pytest

from laser_rag_benchmarks.datasets import shared_dataset
from laser_rag_training.data import HELD_OUT_SPLITS, SOURCES, build_training_set, make_batch, plan_batches, rationales


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _text(doc) -> str:
    return _norm(f"{doc.title}\n{doc.text}")


@pytest.fixture(scope="module")
def training_set(shared_data):
    return build_training_set(SOURCES)


def test_no_held_out_query_is_trained_on_and_negatives_are_never_positives(training_set):
    for source in SOURCES:
        examples = [e for e in training_set.examples if e.source == source]
        assert examples, source
        held_out = [shared_dataset(source, split) for split in HELD_OUT_SPLITS[source]]
        held_ids = {qid for ds in held_out for qid in ds.queries}
        held_texts = {_norm(text) for ds in held_out for text in ds.queries.values()}
        held_docs = {d for ds in held_out for docs in ds.qrels.values() for d in docs}
        assert not {e.qid for e in examples} & held_ids
        assert not {_norm(e.query) for e in examples} & held_texts
        assert sum(bool(e.negatives) for e in examples) >= 0.95 * len(examples)  # BM25 finds a word in common
        for e in examples:
            assert e.segments and set(e.targets) <= set(e.positives)
            assert not set(e.negatives) & set(e.positives)
            assert not {_text(training_set.documents[d]) for d in e.negatives} & {
                _text(training_set.documents[p]) for p in e.positives}
            assert not set(e.negatives) & held_docs


def test_held_out_rationales_are_the_explicit_views_input(shared_data):
    for source in ("strategyqa", "hotpotqa_evidence"):
        by_query = rationales(source, "validation")
        dataset = shared_dataset(source, "validation")
        judged = {q for q, docs in dataset.qrels.items() if any(g > 0 for g in docs.values())}
        assert by_query and set(by_query) == judged
        assert all(text.strip() for text in by_query.values())


def test_plan_is_seeded_single_source_and_follows_the_mix(training_set):
    mix = {"strategyqa": 1.0, "hotpotqa_evidence": 0.5}
    examples = [e for e in training_set.examples if e.source in mix]
    plan = plan_batches(examples, mix, 8)
    assert plan == plan_batches(examples, mix, 8)
    assert plan != plan_batches(examples, mix, 8, seed=1)
    assert all(len({examples[i].source for i in batch}) == 1 for batch in plan)
    used = [examples[i].source for batch in plan for i in batch]
    n_sqa = sum(e.source == "strategyqa" for e in examples)
    n_hpe = sum(e.source == "hotpotqa_evidence" for e in examples)
    assert used.count("strategyqa") == n_sqa
    assert abs(used.count("hotpotqa_evidence") - n_hpe / 2) <= 8
    assert len(plan_batches(examples, mix, 8, max_steps=7)) == 7


def test_limit_and_batches(training_set):
    small = training_set.limit(3)
    assert [e.source for e in small.examples] == [s for s in SOURCES for _ in range(3)]
    assert training_set.limit(0) is training_set
    examples = small.examples[:3]
    batch = make_batch(examples, 1, random.Random(0))
    assert len(batch.positive_index) == 3 and batch.exclude.shape == (3, len(batch.doc_ids))
    for row, e in enumerate(examples):
        assert batch.doc_ids[batch.positive_index[row]] in e.targets
        assert all(batch.exclude[row, col] == (d in e.positives) for col, d in enumerate(batch.doc_ids))
    assert len(set(batch.doc_ids)) == len(batch.doc_ids)
