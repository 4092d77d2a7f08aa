"""Corpus loaders on files written here, and the shared-set converters checked against the raw files."""

from __future__ import annotations

import collections
import gzip
import json
from pathlib import Path

import pytest

from laser_rag import datasets
from laser_rag.datasets import (
    LICENSES,
    SHARED_DATASETS,
    Document,
    RetrievalDataset,
    hotpotqa_evidence_records,
    load_beir,
    load_corpus,
    pydoc_corpus,
    save_beir,
    scifact_claims,
    shared_data_dir,
    shared_dataset,
    split_of,
    strategyqa_records,
)

LONG_PARAGRAPHS = [(f"Paragraph {n}. " + "Some words about the topic at hand. " * 12).strip() for n in range(8)]


def write_jsonl(path: Path, rows, opener=open) -> Path:
    with opener(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(row) + "\n" for row in rows)
    return path


def texts_by_id(corpus: list[Document]) -> dict[str, str]:
    return {doc.id: doc.text for doc in corpus}


# --- the user's files -------------------------------------------------------------------------------------------


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
    assert dataset.corpus == corpus
    assert dataset.queries == {"q1": "what purrs"}  # q2 has no qrels
    assert dataset.qrels == {"q1": {"d1": 2, "2": 0}}
    with pytest.raises(FileNotFoundError, match=r"qrels/dev\.tsv"):
        load_beir(tmp_path, split="dev")


def test_beir_missing_file_is_named(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        load_beir(tmp_path)


def test_jsonl_ids_text_keys_and_metadata(tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", [
        {"id": 7, "contents": "seven", "lang": "en"},
        {"doc_id": "b", "page_content": "bee", "title": "B"},
        {"content": "no id here", "source": "web"},
        {"text": "no id either"},
        {"text": "text wins", "content": "ignored", "source": "web"},
        {"content": "no id here", "source": "elsewhere"},  # same content: the same document, kept once
    ])
    docs = load_corpus(path)
    assert [d.id for d in docs[:2]] == ["7", "b"]
    assert (docs[0].text, docs[0].metadata) == ("seven", {"lang": "en"})
    assert (docs[1].title, docs[1].text) == ("B", "bee")
    derived = docs[2:]
    assert [d.text for d in derived] == ["no id here", "no id either", "text wins"]
    assert len({d.id for d in derived}) == 3 and all(len(d.id) == 16 for d in derived)
    assert derived[2].metadata == {"content": "ignored", "source": "web"}
    # the same content always gets the same id; a second identical line is the same document
    assert texts_by_id(load_corpus(path)) == texts_by_id(docs)
    write_jsonl(tmp_path / "twice.jsonl", [{"text": "same"}, {"text": "same"}, {"text": "other"}])
    assert [d.text for d in load_corpus(tmp_path / "twice.jsonl")] == ["same", "other"]


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "invalid JSON"),
    ('["a list"]', "expected a JSON object"),
    ('{"_id": "x", "title": "t"}', "no text"),
    ('{"_id": "x", "text": "   "}', "no text"),
    ('{"_id": "x", "text": 5}', "no text"),
    ('{"_id": "a", "text": "again"}', "already used on line 1"),
])
def test_jsonl_bad_line_names_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"_id": "a", "text": "fine"}\n\n' + bad_line + "\n")
    with pytest.raises(ValueError, match=rf"bad\.jsonl, line 3: .*{message}"):
        load_corpus(path)


def test_folder_of_text_files(tmp_path):
    root = tmp_path / "notes"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.md").write_text("Intro line\n\n```\n# not a title\n```\n\n## Setup guide ##\n\nInstall it.\n")
    (root / "nested" / "b.txt").write_text("# a .txt has no markdown title\n\nPlain text.")
    (root / "nested" / "deeper" / "long.md").write_text("\n\n".join(LONG_PARAGRAPHS))
    (root / "empty.md").write_text("  \n\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n")
    (root / "script.py").write_text("print('not a document')\n")
    (root / ".hidden.md").write_text("hidden")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("must never be read")
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "dir_out").symlink_to(outside, target_is_directory=True)
    (root / "link_in.md").symlink_to(root / "a.md")

    docs = load_corpus(root)
    ids = [d.id for d in docs]
    long_ids = [f"nested/deeper/long.md#{n}" for n in range(len(ids) - 3)]
    assert ids == ["a.md", "link_in.md", "nested/b.txt", *long_ids]
    assert len(long_ids) >= 3
    by_id = {d.id: d for d in docs}
    assert by_id["a.md"].title == "Setup guide" and by_id["a.md"].text.endswith("Install it.")
    assert by_id["nested/b.txt"].title == "b"
    assert {by_id[i].title for i in long_ids} == {"long"}
    assert all(len(d.text) <= 1200 for d in docs)
    assert "\n\n".join(by_id[i].text for i in long_ids) == "\n\n".join(LONG_PARAGRAPHS)  # nothing lost
    assert not any("never be read" in d.text for d in docs)
    assert load_corpus(root) == docs  # stable across loads


def test_single_text_file_and_rejections(tmp_path):
    (tmp_path / "note.txt").write_text("\ufeffOne short note.\n")
    expected = Document("note.txt", "One short note.", "note", {"source": "note.txt"})
    assert load_corpus(tmp_path / "note.txt") == [expected]
    long_file = tmp_path / "long.md"
    long_file.write_text("# Long\n\n" + "\n\n".join(LONG_PARAGRAPHS))
    assert load_corpus(long_file)[0].id == "long.md#0"

    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_corpus(tmp_path / "empty.txt")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.7")
    with pytest.raises(ValueError, match="Accepted: a BEIR directory"):
        load_corpus(tmp_path / "paper.pdf")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: not UTF-8"):
        load_corpus(tmp_path / "latin1.txt")
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "missing")
    (tmp_path / "no_text").mkdir()
    (tmp_path / "no_text" / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="no non-empty .txt or .md"):
        load_corpus(tmp_path / "no_text")


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


def test_pydoc_corpus():
    docs = pydoc_corpus()
    assert len(docs) > 100
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.id.startswith(f"pydoc:{d.title}") and d.text.strip() and len(d.text) <= 1200 for d in docs)
    assert any(d.id == "pydoc:assert" for d in docs) and any(d.id.endswith("#1") for d in docs)


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
    assert all(callable(getattr(datasets, name)) or name.isupper() for name in datasets.__all__)


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
