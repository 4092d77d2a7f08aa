"""BEIR directories: reading (plain and gzipped corpora), errors that name the file, and a lossless round trip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from laser_rag.beir import RetrievalDataset, load_beir, save_beir
from laser_rag.corpus import Document, load_corpus
from laser_rag.errors import CorpusError


def write_jsonl(path: Path, rows, opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    return path


@pytest.mark.parametrize("corpus_name", ["corpus.jsonl", "corpus.jsonl.gz"])
def test_beir_directory(tmp_path, corpus_name):
    opener = gzip.open if corpus_name.endswith(".gz") else open
    write_jsonl(tmp_path / corpus_name, [
        {"_id": "d1", "title": "Cats", "text": "Cats purr.", "year": 2001},
        {"_id": 2, "title": "Dogs", "text": "Dogs bark."},
        {"_id": "d3", "title": "Only a title", "text": ""},
    ], opener)
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "what purrs"}, {"_id": "q2", "text": "unjudged"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t0\n")

    corpus = load_corpus(tmp_path)
    assert [(d.id, d.title, d.text) for d in corpus] == [
        ("d1", "Cats", "Cats purr."), ("2", "Dogs", "Dogs bark."), ("d3", "Only a title", "")]
    assert corpus[0].metadata == {"year": 2001}

    dataset = load_beir(tmp_path)
    assert dataset.name == f"{tmp_path.name}/test"
    assert dataset.corpus == corpus
    assert dataset.queries == {"q1": "what purrs"}  # q2 has no qrels
    assert dataset.qrels == {"q1": {"d1": 2, "2": 0}}
    with pytest.raises(CorpusError, match=r"qrels/dev\.tsv"):
        load_beir(tmp_path, split="dev")


def test_beir_missing_or_bad_files_are_named(tmp_path):
    with pytest.raises(CorpusError, match="corpus.jsonl"):
        load_beir(tmp_path)
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    with pytest.raises(CorpusError, match="queries.jsonl"):
        load_beir(tmp_path)
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "x"}, {"text": "no id"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(CorpusError, match=r"queries\.jsonl, line 2: a query needs _id and text"):
        load_beir(tmp_path)
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "x"}])
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tone\n")
    with pytest.raises(CorpusError, match=r"test\.tsv, line 2"):
        load_beir(tmp_path)


def test_qrels_for_unknown_queries_are_dropped_with_a_warning(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "x"}])
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1 d1 1\nq9 d1 1\n")  # spaces instead of tabs, no header
    with pytest.warns(UserWarning, match="1 queries in qrels/test.tsv are not in queries.jsonl"):
        dataset = load_beir(tmp_path)
    assert dataset.qrels == {"q1": {"d1": 1}}


def test_save_beir_round_trip(tmp_path):
    dataset = RetrievalDataset(
        name="mine/test",
        corpus=[Document("d1", "Zürich est une ville.", "Zürich", {"lang": "fr", "tags": ["city"]}),
                Document("d 2", "Tabs\tand\nnewlines.", "")],
        queries={"q1": "où est Zürich ?", "q2": "tabs"},
        qrels={"q1": {"d1": 1}, "q2": {"d 2": 2, "d1": 0}},
    )
    directory = save_beir(dataset, tmp_path / "mine", split="test")
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()) == [
        "corpus.jsonl", "qrels/test.tsv", "queries.jsonl"]
    assert load_beir(directory, split="test") == dataset
    with pytest.raises(ValueError, match="clash"):
        save_beir(RetrievalDataset("x", [Document("d", "t", "", {"text": "no"})], {}, {}), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # checked before anything is written
