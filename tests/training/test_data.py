"""laser_rag_training.data: split hygiene of the training examples, their rationales, and the seeded batch plan."""

from __future__ import annotations

import random

import pytest

from laser_rag_datasets import shared
from laser_rag_datasets.shared import shared_dataset
from laser_rag_datasets.subsets import validation_set
from laser_rag_training.data import (
    HELD_OUT_SPLITS,
    SOURCES,
    build_training_set,
    make_batch,
    plan_batches,
    rationales,
)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _text(doc) -> str:
    return _norm(f"{doc.title}\n{doc.text}")


@pytest.fixture(scope="module")
def training_set(shared_data):
    return build_training_set(SOURCES)


def _held_out(source: str):
    """Every query set the training examples of ``source`` must stay out of (validation, test, evaluation)."""
    if source == "scifact":  # claims_dev (the shared evaluation queries) and claims_train's held-out parts
        return [shared_dataset("scifact", "validation"), *(validation_set("scifact", s) for s in ("validation", "test"))]
    if source == "ircot":  # all training; the shared evaluation sets it could overlap with
        return [shared_dataset("hotpotqa", "all"), shared_dataset("musique", "all")]
    return [shared_dataset(source, split) for split in HELD_OUT_SPLITS[source]]


def test_no_held_out_query_is_trained_on_and_negatives_are_never_positives(training_set):
    for source in SOURCES:
        examples = [e for e in training_set.examples if e.source == source]
        assert examples, source
        held_out = _held_out(source)
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


def test_no_training_query_is_a_shared_evaluation_query(training_set):
    evaluation = [shared_dataset("hotpotqa", "all"), shared_dataset("musique", "all"),
                  shared_dataset("scifact", "validation"), shared_dataset("strategyqa", "validation"),
                  shared_dataset("strategyqa", "test")]
    asked = {_norm(text) for ds in evaluation for text in ds.queries.values()}
    assert not {_norm(e.query) for e in training_set.examples} & asked


def test_ircot_demos_are_paragraph_length_with_their_chain_of_thought(shared_data):
    corpus, records = shared.ircot_records()
    assert len(records) == 89 and {r["dataset"] for r in records} == set(shared.IRCOT_SETS)
    by_id = {doc.id: doc for doc in corpus}
    for r in records:
        assert r["reasoning"] and r["reasoning"][-1].startswith("So the answer is")
        assert r["positives"] and {d for d, _ in r["positives"]} <= set(r["paragraphs"])
        assert all(by_id[d].title and len(by_id[d].text.split()) >= 5 for d in r["paragraphs"])
    words = [len(doc.text.split()) for doc in corpus]
    assert sum(words) / len(words) > 40  # paragraphs, not sentences


def test_long_document_validation_set_holds_out_its_claims(training_set):
    valid = validation_set("scifact")
    trained = {e.qid for e in training_set.examples if e.source == "scifact"}
    assert valid.queries and not set(valid.queries) & trained
    assert len(valid.corpus) == 1000
    ids = {doc.id for doc in valid.corpus}
    assert all(set(docs) <= ids for docs in valid.qrels.values())
    words = [len(doc.text.split()) for doc in valid.corpus]
    assert sum(words) / len(words) > 150  # abstracts
    assert set(rationales("scifact", "validation")) <= set(valid.queries)
