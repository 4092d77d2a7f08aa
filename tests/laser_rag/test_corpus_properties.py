"""Bad corpora swept with Hypothesis: JSON-lines files (bad JSON, missing or mistyped fields, duplicate ids, lone
surrogate escapes, huge lines, blank lines), folders (wrong encodings, binary files, empty files, symlinks out of
the folder), BEIR directories and the app's uploads. Each load either gives clean documents or raises a
`CorpusError` naming the file (and the line, for JSON lines); an upload that fails leaves nothing behind."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest
from bad_inputs import mixed_scripts, text_problem, texts
from hypothesis import example, given, settings
from hypothesis import strategies as st

from laser_rag.beir import load_beir
from laser_rag.corpus import load_corpus
from laser_rag.errors import CorpusError

good_text = texts.filter(lambda t: text_problem(t) is None)
_BROKEN_LINES = {
    "bad_json": '{"_id": "x", "text": ',
    "not_object": "[1, 2, 3]",
    "no_text": '{"_id": "n", "title": ""}',
    "text_not_str": '{"_id": "n", "text": 5}',
    "title_not_str": '{"_id": "n", "text": "fine", "title": ["a"]}',
    "bad_id": '{"_id": [1], "text": "fine"}',
    "blank_id": '{"_id": "  ", "text": "fine"}',
    "surrogate": '{"_id": "s", "text": "half a pair \\ud800 here"}',
}
good_row = st.fixed_dictionaries({"_id": st.sampled_from(["a", "b", "c", "long"]), "text": good_text},
                                 optional={"title": st.sampled_from(["", "A title", "Ελλάδα 😀"]),
                                           "year": st.integers()})
line = st.one_of(good_row, good_row, st.sampled_from(sorted(_BROKEN_LINES)), st.just("blank"), st.just("huge"))


def _render(item) -> tuple[str, str | None]:
    """(the line, the id it holds if it is a good document)."""
    if isinstance(item, dict):
        return json.dumps(item, ensure_ascii=bool(item["_id"] == "c")), item["_id"]  # both escapings of JSON
    if item == "blank":
        return "   ", None
    if item == "huge":
        return json.dumps({"_id": "huge", "text": "word " * 60_000}), "huge"
    return _BROKEN_LINES[item], None


def _expected_failure(items) -> int | None:
    """The line number (from 1) of the first line that must be refused, or None."""
    seen = set()
    for number, item in enumerate(items, 1):
        rendered, doc_id = _render(item)
        if item == "blank":
            continue
        if doc_id is None:
            return number
        if doc_id in seen:
            return number  # a duplicate id
        if isinstance(item, dict) and not (item["text"].strip() or item.get("title", "").strip()):
            return number
        seen.add(doc_id)
    return None


@given(items=st.lists(line, min_size=1, max_size=8), gz=st.booleans())
@example(items=["surrogate"], gz=False)  # a lone \ud800 escape loaded as text; Qdrant and tokenizers refuse it
@example(items=[{"_id": "a", "text": "x"}, {"_id": "a", "text": "y"}], gz=True)
def test_jsonl_files(items, gz):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "corpus.jsonl.gz" if gz else "corpus.jsonl")
        content = "\n".join(_render(item)[0] for item in items) + "\n"
        path.write_bytes(gzip.compress(content.encode()) if gz else content.encode())
        failing = _expected_failure(items)
        if failing is not None:
            with pytest.raises(CorpusError, match=f"{path.name}, line {failing}: "):
                load_corpus(path)
            return
        documents = load_corpus(path)
    ids = [doc.id for doc in documents]
    assert len(ids) == len(set(ids)) == sum(1 for item in items if item != "blank")
    assert all(isinstance(doc.text, str) and isinstance(doc.title, str) for doc in documents)


_FILES = {
    "utf8": "# Notes\n\nPlain UTF-8 text, naïve café, 你好.\n".encode(),
    "bom": "\ufeffA file with a byte order mark.".encode(),
    "empty": b"",
    "blank": b" \n\t\n",
    "latin1": "caf\xe9 au lait".encode("latin-1"),
    "utf16": "text saved as UTF-16".encode("utf-16-le"),
    "binary": bytes(range(256)),
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
}
_REFUSED = {"latin1", "utf16", "binary", "png"}
folder_file = st.tuples(st.sampled_from(sorted(_FILES)), st.sampled_from([".txt", ".md"]))


@given(files=st.lists(folder_file, min_size=1, max_size=6), link_out=st.booleans(), gz_broken=st.booleans())
@example(files=[("utf16", ".txt")], link_out=False, gz_broken=False)  # UTF-16 is valid UTF-8 bytes, full of NULs
def test_folders(files, link_out, gz_broken):
    with tempfile.TemporaryDirectory() as outside, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        names = []
        for number, (kind, suffix) in enumerate(files):
            name = f"f{number}-{kind}{suffix}"
            (root / name).write_bytes(_FILES[kind])
            names.append((name, kind))
        if link_out:  # a link to a readable file outside the folder: never followed
            secret = Path(outside, "secret.txt")
            secret.write_text("outside the corpus folder")
            os.symlink(secret, root / "zz-link.txt")
        if gz_broken:  # not a corpus file in a folder: skipped
            (root / "data.jsonl.gz").write_bytes(b"not gzip at all")
        refused = sorted(name for name, kind in names if kind in _REFUSED)
        kept = sorted(name for name, kind in names if kind in {"utf8", "bom"})
        if refused:
            with pytest.raises(CorpusError, match=refused[0].replace(".", r"\.")):
                load_corpus(root)
        elif not kept:
            with pytest.raises(CorpusError, match="no non-empty"):
                load_corpus(root)
        else:
            documents = load_corpus(root)
            assert [doc.id for doc in documents] == kept
            assert all("\x00" not in doc.text and not doc.text.startswith("\ufeff") for doc in documents)


@given(garbage=st.binary(min_size=1, max_size=64))
@example(garbage=b"\x1f\x8b\x08\x00truncated")  # a gzip header, then nothing: EOFError / zlib.error
def test_broken_gzip(garbage):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "corpus.jsonl.gz")
        path.write_bytes(garbage)
        with pytest.raises(CorpusError, match=r"corpus\.jsonl\.gz"):
            load_corpus(path)


@pytest.mark.filterwarnings("ignore:.*not in queries.jsonl")
@given(query_lines=st.lists(st.sampled_from(['{"_id": "q1", "text": "a question?"}', '{"_id": "q2"}', "[]",
                                            '{"text": "no id"}', "not json"]), min_size=1, max_size=3),
       qrels_lines=st.lists(st.sampled_from(["q1\td1\t1", "q1 d1", "q1\td1\tone", "", "q2\td1\t2"]), max_size=3))
def test_beir_directories(query_lines, qrels_lines):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "a passage"}\n')
        (root / "queries.jsonl").write_text("\n".join(query_lines) + "\n")
        (root / "qrels").mkdir()
        (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(qrels_lines) + "\n")
        try:
            dataset = load_beir(root)
        except CorpusError as error:
            assert "queries.jsonl, line" in str(error) or "test.tsv, line" in str(error)
            return
        assert set(dataset.qrels) <= set(dataset.queries)


@settings(max_examples=8)
@given(kind=st.sampled_from(["latin1", "utf16", "binary", "surrogate", "empty", "bad_json", "utf8"]),
       name=st.one_of(st.just("notes.jsonl"), st.just("../../etc/passwd.txt"), mixed_scripts.map(lambda t: t + ".md")))
def test_app_uploads(kind, name):
    """A file that does not parse is refused with a message that names no server path, and leaves nothing."""
    uploads_module = pytest.importorskip("laser_rag_app.corpora")
    content = {"surrogate": _BROKEN_LINES["surrogate"].encode(), "bad_json": b'{"text": '}.get(kind) or _FILES[kind]
    with tempfile.TemporaryDirectory() as folder:
        source, store = Path(folder, "incoming"), Path(folder, "uploads")
        source.write_bytes(content)
        uploads = uploads_module.Uploads(store)
        suffix_ok = uploads_module.safe_name(name).endswith(uploads_module.ACCEPTED_SUFFIXES)
        as_text = suffix_ok and not uploads_module.safe_name(name).endswith(".jsonl")
        parses = as_text and kind in {"utf8", "surrogate", "bad_json"}  # plain text, whatever it says
        if not parses:
            with pytest.raises(CorpusError) as error:
                uploads.stage(source, name)
            assert folder not in str(error.value)
            assert not store.exists() or not any(store.iterdir())
            return
        staged = uploads.stage(source, name)
        assert staged.documents and staged.folder.resolve().is_relative_to(store.resolve())
