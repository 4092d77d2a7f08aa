"""laser_rag_datasets.shared: the shared-set converters checked against the raw files, splits, licences."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from laser_rag.beir import RetrievalDataset, load_beir
from laser_rag.corpus import Document
from laser_rag_datasets import shared
from laser_rag_datasets.shared import (
    LICENSES,
    SHARED_DATASETS,
    hotpotqa_evidence_records,
    scifact_claims,
    shared_data_dir,
    shared_dataset,
    split_of,
    strategyqa_records,
)


def texts_by_id(corpus: list[Document]) -> dict[str, str]:
    return {doc.id: doc.text for doc in corpus}


# --- splits -----------------------------------------------------------------------------------------------------


def test_split_of_is_a_fixed_80_10_10_hash():
    # pinned: changing the scheme would silently move questions between train and evaluation
    assert {k: split_of(k) for k in ("7", "8", "11", "26")} == {
        "7": "train", "8": "test", "11": "validation", "26": "test"}
    counts = collections.Counter(split_of(f"key-{n}") for n in range(20_000))
    assert 0.78 < counts["train"] / 20_000 < 0.82
    assert 0.09 < counts["validation"] / 20_000 < 0.11 and 0.09 < counts["test"] / 20_000 < 0.11


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match="unknown shared dataset"):
        shared_dataset("msmarco")
    with pytest.raises(ValueError, match="unknown split"):
        strategyqa_records("dev", data_dir=".")


def test_shared_data_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("LASER_RAG_SHARED_DATA", str(tmp_path / "nowhere"))
    assert shared_data_dir() is None
    with pytest.raises(FileNotFoundError, match=r"strategyqa/train_gdsent\.json.*LASER_RAG_SHARED_DATA"):
        strategyqa_records("train")
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "scifact" / "corpus.jsonl.gz")):
        scifact_claims("train", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"evidence_train_500\.jsonl"):
        hotpotqa_evidence_records("train", data_dir=tmp_path)
    monkeypatch.setenv("LASER_RAG_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path


def test_licences_and_public_names():
    assert set(SHARED_DATASETS) <= set(LICENSES)
    assert "CC BY-NC" in LICENSES["scifact"] and "non-commercial" in LICENSES["scifact"]
    assert all(callable(getattr(shared, name)) or name.isupper() for name in shared.__all__)


# --- the shared sets, checked against the raw files ---------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def relevant_texts(dataset: RetrievalDataset) -> dict[str, set[str]]:
    texts = texts_by_id(dataset.corpus)
    return {qid: {texts[doc_id] for doc_id in docs} for qid, docs in dataset.qrels.items()}


def assert_splits_partition(name, data_dir, key=lambda dataset, qid: qid):
    parts = {split: shared_dataset(name, split, data_dir) for split in ("train", "validation", "test")}
    everything = shared_dataset(name, "all", data_dir)
    assert all(part.corpus == everything.corpus for part in parts.values())  # queries split, corpus pooled
    keys = {split: {key(part, qid) for qid in part.queries} for split, part in parts.items()}
    assert not (keys["train"] & keys["validation"] or keys["train"] & keys["test"] or keys["validation"] & keys["test"])
    merged = {qid: docs for part in parts.values() for qid, docs in part.qrels.items()}
    assert merged == everything.qrels
    assert shared_dataset(name, "validation", data_dir) == parts["validation"]  # deterministic
    return parts, everything


def test_scifact_train_matches_beir_files(shared_data):
    train = shared_dataset("scifact", "train", shared_data)
    beir = load_beir(shared_data / "scifact", split="train")
    assert len(train.corpus) == 5183
    assert train.queries == beir.queries and train.qrels == beir.qrels
    rows = (shared_data / "scifact" / "qrels" / "train.tsv").read_text().splitlines()[1:]
    assert sum(map(len, train.qrels.values())) == len(rows) == 919
    assert {(q, d) for q, docs in train.qrels.items() for d in docs} == {tuple(r.split("\t")[:2]) for r in rows}


def test_scifact_validation_and_claims(shared_data):
    dev = shared_dataset("scifact", "validation", shared_data)
    raw = read_jsonl(shared_data / "scifact" / "claims_dev.jsonl")
    assert {(q, d) for q, docs in dev.qrels.items() for d in docs} == {
        (row["_id"], doc_id) for row in raw for doc_id in row["cited_doc_ids"]}
    assert not set(dev.queries) & set(shared_dataset("scifact", "train", shared_data).queries)

    claims = scifact_claims("validation", shared_data)
    assert [c["id"] for c in claims] == [row["_id"] for row in raw]
    texts = texts_by_id(dev.corpus)
    assert all(texts[doc_id] == text for c in claims for doc_id, _, text in c["positives"])
    cited_sentences = sum(len(e["sentence_idx"]) for row in raw for e in row["evidence"])
    assert 0 < sum(len(c["rationale_sentences"]) for c in claims) <= cited_sentences
    assert all(s in " ".join(t for _, _, t in c["positives"]) for c in claims for s in c["rationale_sentences"])
    with pytest.raises(ValueError, match="unknown split"):
        shared_dataset("scifact", "test", shared_data)


def test_strategyqa_keeps_every_golden_sentence(shared_data):
    raw = json.loads((shared_data / "strategyqa" / "train_gdsent.json").read_text(encoding="utf-8"))
    gold = {item["qid"]: {s.strip() for group in item["golden_sentence"] for s in group if s.strip()} for item in raw}
    gold = {qid: sentences for qid, sentences in gold.items() if sentences}

    parts, everything = assert_splits_partition("strategyqa", shared_data,
                                                key=lambda part, qid: part.queries[qid].lower())
    assert relevant_texts(everything) == gold
    assert {d.text for d in everything.corpus} == set().union(*gold.values())
    assert len({d.id for d in everything.corpus}) == len(everything.corpus)
    assert sum(len(p.queries) for p in parts.values()) == len(gold) == 1767
    assert 0.7 < len(parts["train"].queries) / len(gold) < 0.9

    records = strategyqa_records("validation", shared_data)
    assert {r["qid"] for r in records if r["positives"]} == set(parts["validation"].queries)
    assert all(set(everything.qrels[r["qid"]]) == {d for d, _ in r["positives"]} for r in records if r["positives"])
    assert all(isinstance(r["answer"], bool) and r["decomposition"] and r["facts"] for r in records)
    assert sum(len(strategyqa_records(s, shared_data)) for s in ("train", "validation", "test")) == len(raw)


def test_hotpotqa_supporting_paragraphs(shared_data):
    raw = read_jsonl(shared_data / "hotpotqa" / "dev_100.jsonl")
    dataset = shared_dataset("hotpotqa", "validation", shared_data)
    paragraphs = {(title, "".join(sentences).strip()) for row in raw for title, sentences in row["context"]}
    assert {(d.title, d.text) for d in dataset.corpus} == paragraphs and len(dataset.corpus) == len(paragraphs)
    titles = {d.id: d.title for d in dataset.corpus}
    assert {qid: {titles[d] for d in docs} for qid, docs in dataset.qrels.items()} == {
        row["_id"]: {fact[0] for fact in row["supporting_facts"]} for row in raw}
    assert sum(map(len, dataset.qrels.values())) == 200
    assert shared_dataset("hotpotqa", "test", shared_data).qrels == dataset.qrels
    with pytest.raises(ValueError, match="evaluation-only"):
        shared_dataset("hotpotqa", "train", shared_data)


def test_musique_supporting_paragraphs(shared_data):
    raw = read_jsonl(shared_data / "musique" / "musique_full_v1.0_train_first100.jsonl")
    dataset = shared_dataset("musique", "all", shared_data)
    supporting = {row["id"]: {(p["title"], p["paragraph_text"].strip())
                              for p in row["paragraphs"] if p["is_supporting"]} for row in raw}
    pairs = {d.id: (d.title, d.text) for d in dataset.corpus}
    assert {qid: {pairs[d] for d in docs} for qid, docs in dataset.qrels.items()} == {
        qid: s for qid, s in supporting.items() if s}
    assert len(dataset.corpus) == len({(p["title"], p["paragraph_text"].strip()) for r in raw for p in r["paragraphs"]})
    with pytest.raises(ValueError, match="evaluation-only"):
        shared_dataset("musique", "train", shared_data)


def test_hotpotqa_evidence_sentences(shared_data):
    raw = read_jsonl(shared_data / "hotpotqa" / "evidence_train_500.jsonl")
    parts, everything = assert_splits_partition("hotpotqa_evidence", shared_data)
    by_question = {everything.queries[qid]: texts for qid, texts in relevant_texts(everything).items()}
    assert by_question == {row["question"]: {s.strip() for s in row["evidence"]} for row in raw}
    assert sum(map(len, everything.qrels.values())) == sum(len(set(row["evidence"])) for row in raw)
    records = hotpotqa_evidence_records("test", shared_data)
    assert [r["id"] for r in records] == list(parts["test"].queries)
    assert all(r["evidence"] and r["answer"] for r in records)
