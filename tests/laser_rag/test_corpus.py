"""Corpus loaders on files written here, the pydoc corpus, and token-aware chunking with a real tokenizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from laser_rag.corpus import Document, chunk_documents, is_beir_directory, load_corpus, pydoc_corpus
from laser_rag.errors import CorpusError

LONG_PARAGRAPHS = [(f"Paragraph {n}. " + "Some words about the topic at hand. " * 12).strip() for n in range(8)]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def texts_by_id(corpus: list[Document]) -> dict[str, str]:
    return {doc.id: doc.text for doc in corpus}


def fits(encoder, doc: Document) -> bool:
    return encoder.count_tokens(encoder.document_text(doc.title, doc.text)) <= encoder.max_length


# --- the user's files -------------------------------------------------------------------------------------------


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
    with pytest.raises(CorpusError, match=rf"bad\.jsonl, line 3: .*{message}") as error:
        load_corpus(path)
    assert isinstance(error.value, ValueError)  # an except ValueError written before CorpusError still catches it


def test_parquet_columns_metadata_and_the_same_documents_as_jsonl(tmp_path, shared_data):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    scifact = load_corpus(shared_data / "scifact")[:20]  # real abstracts
    rows = [{"id": doc.id, "title": doc.title, "text": doc.text, "metadata": json.dumps({"n": n})}
            for n, doc in enumerate(scifact)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "scifact.parquet")
    write_jsonl(tmp_path / "scifact.jsonl", [{"_id": r["id"], "title": r["title"], "text": r["text"],
                                             "n": n} for n, r in enumerate(rows)])
    from_parquet = load_corpus(tmp_path / "scifact.parquet")
    assert from_parquet == load_corpus(tmp_path / "scifact.jsonl")
    assert [doc.id for doc in from_parquet] == [doc.id for doc in scifact]
    # a struct metadata column, extra columns, nulls left out, an integer id, no id (a content hash, as in JSON lines)
    table = pa.Table.from_pylist([
        {"id": 7, "text": "seven", "title": None, "lang": "en", "metadata": {"source": "web", "page": None}},
        {"id": None, "text": "no id", "title": "T", "lang": None, "metadata": None},
    ])
    pq.write_table(table, tmp_path / "mixed.parquet")
    seven, hashed = load_corpus(tmp_path / "mixed.parquet")
    assert (seven.id, seven.title, seven.text, seven.metadata) == ("7", "", "seven", {"source": "web", "lang": "en"})
    assert (hashed.title, hashed.text, hashed.metadata) == ("T", "no id", {}) and len(hashed.id) == 16


@pytest.mark.parametrize("rows, message", [
    ([{"id": "a", "text": "fine"}, {"id": "b", "text": "  "}], "row 2: no text"),
    ([{"id": "a", "text": "fine"}, {"id": "a", "text": "again"}], "row 2: id 'a' already used on row 1"),
    ([{"id": "a", "text": "fine", "metadata": "{oops"}], "row 1: the metadata is not JSON"),
    ([{"id": "a", "text": "fine", "metadata": "[1]"}], "row 1: the metadata is a list"),
])
def test_parquet_bad_row_names_file_and_row(tmp_path, rows, message):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(CorpusError, match=rf"bad\.parquet, {message}"):
        load_corpus(tmp_path / "bad.parquet")


def test_a_file_that_is_not_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    (tmp_path / "fake.parquet").write_text("not parquet at all")
    with pytest.raises(CorpusError, match=r"fake\.parquet: cannot be read as Parquet"):
        load_corpus(tmp_path / "fake.parquet")


def test_folder_of_text_files_one_document_each(tmp_path):
    root = tmp_path / "notes"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.md").write_text("Intro line\n\n```\n# not a title\n```\n\n## Setup guide ##\n\nInstall it.\n")
    (root / "nested" / "b.txt").write_text("# a .txt has no markdown title\n\nPlain text.")
    (root / "nested" / "deeper" / "long.md").write_text("\n\n".join(LONG_PARAGRAPHS) + "\n")
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
    assert [d.id for d in docs] == ["a.md", "link_in.md", "nested/b.txt", "nested/deeper/long.md"]  # no chunking
    by_id = {d.id: d for d in docs}
    assert by_id["a.md"].title == "Setup guide" and by_id["a.md"].text.endswith("Install it.")
    assert by_id["a.md"].metadata == {"source": "a.md"}
    assert by_id["nested/b.txt"].title == "b"
    long = by_id["nested/deeper/long.md"]
    assert (long.title, long.text) == ("long", "\n\n".join(LONG_PARAGRAPHS))  # whole, surrounding space dropped
    assert not any("never be read" in d.text for d in docs)
    assert load_corpus(root) == docs  # stable across loads


def test_single_text_file_and_rejections(tmp_path):
    (tmp_path / "note.txt").write_text("\ufeffOne short note.\n")
    expected = Document("note.txt", "One short note.", "note", {"source": "note.txt"})
    assert load_corpus(tmp_path / "note.txt") == [expected]
    long_file = tmp_path / "long.md"
    long_file.write_text("# Long\n\n" + "\n\n".join(LONG_PARAGRAPHS))
    assert [(d.id, d.title) for d in load_corpus(long_file)] == [("long.md", "Long")]

    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CorpusError, match="empty"):
        load_corpus(tmp_path / "empty.txt")
    (tmp_path / "paper.pdf").write_bytes(b"%PDF-1.7")
    with pytest.raises(CorpusError, match="Accepted: a BEIR directory"):
        load_corpus(tmp_path / "paper.pdf")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt: not UTF-8"):
        load_corpus(tmp_path / "latin1.txt")
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "no_text").mkdir()
    (tmp_path / "no_text" / "data.csv").write_text("a,b\n")
    with pytest.raises(CorpusError, match="no non-empty .txt or .md"):
        load_corpus(tmp_path / "no_text")


def test_is_beir_directory(tmp_path):
    assert not is_beir_directory(tmp_path)
    assert not is_beir_directory(tmp_path / "corpus.jsonl")
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "text": "x"}])
    assert is_beir_directory(tmp_path)
    assert [d.id for d in load_corpus(tmp_path)] == ["d1"]


def test_pydoc_corpus_gives_whole_topics():
    from pydoc_data.topics import topics

    docs = pydoc_corpus()
    assert [d.id for d in docs] == [f"pydoc:{topic}" for topic in sorted(topics)]
    by_id = {d.id: d for d in docs}
    assert by_id["pydoc:assert"].title == "assert"
    assert by_id["pydoc:assert"].text == topics["assert"].strip()
    assert by_id["pydoc:assert"].metadata == {"source": "pydoc", "topic": "assert"}
    assert max(len(d.text) for d in docs) > 5000  # not chunked here: that happens at index time


# --- chunking ---------------------------------------------------------------------------------------------------


def test_documents_that_fit_pass_through_unchanged(minilm):
    docs = [Document("a", "A short text.", "Title", {"k": 1}), Document("b", "No title at all.")]
    chunked = chunk_documents(docs, minilm)
    assert chunked == docs and chunked[0] is docs[0]
    padded = Document("c", "  Text with space around.\n", " Padded title ")
    assert chunk_documents([padded], minilm) == [Document("c", "Text with space around.", "Padded title")]


def test_long_documents_are_cut_to_the_encoders_token_budget(minilm):
    text = "\n\n".join(LONG_PARAGRAPHS * 3)
    long = Document("guide.md", text, "Guide", {"source": "guide.md"})
    short = Document("short.md", "Short.", "Short")
    chunked = chunk_documents([long, short], minilm)

    pieces = chunked[:-1]
    assert chunked[-1] is short
    assert len(pieces) >= 3
    assert [d.id for d in pieces] == [f"guide.md#{n}" for n in range(len(pieces))]
    assert all(d.title == "Guide" and d.metadata == {"source": "guide.md", "parent_id": "guide.md"} for d in pieces)
    assert all(fits(minilm, d) for d in pieces)
    # nothing lost: every paragraph of the original sits whole in some piece (paragraphs are shorter than a piece)
    assert all(any(paragraph in d.text for d in pieces) for paragraph in LONG_PARAGRAPHS)
    # the budget is used: pieces are not much smaller than what the encoder reads
    sizes = sorted(minilm.count_tokens(minilm.document_text(d.title, d.text)) for d in pieces)
    assert sizes[-2] > minilm.max_length * 0.6


def test_overlap_and_a_paragraph_longer_than_the_budget(minilm):
    words = [f"w{n}" for n in range(1500)]
    doc = Document("one-paragraph", " ".join(words))
    no_overlap = chunk_documents([doc], minilm, overlap=0)
    assert len(no_overlap) >= 3 and all(fits(minilm, d) for d in no_overlap)
    assert " ".join(d.text for d in no_overlap).split() == words  # cut between words, in order, nothing repeated

    overlapping = chunk_documents([doc], minilm, overlap=32)
    assert all(fits(minilm, d) for d in overlapping)
    for first, second in zip(overlapping, overlapping[1:]):
        assert first.text.split()[-1] in second.text.split()[:40]  # consecutive pieces share their border


def test_a_title_that_leaves_no_room_is_an_error(minilm):
    doc = Document("x", "Some text. " * 300, "title " * 300)
    with pytest.raises(CorpusError, match="'x'.*shorten the title"):
        chunk_documents([doc], minilm)


def test_the_splitter_is_imported_only_when_a_document_needs_cutting():
    code = ("import sys\nimport laser_rag.corpus, laser_rag.beir, laser_rag.store\n"
            "assert 'langchain_text_splitters' not in sys.modules, 'imported at module level'\n"
            "assert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
