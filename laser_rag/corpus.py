"""Corpora: the user's own files, the Python language reference every Python carries, and the one chunking step.

A corpus is a list of `Document`. Loading never chunks: a ``.txt``/``.md`` file is one document, a ``.jsonl`` line
or a Parquet row is one document. `chunk_documents` is the one step that cuts documents longer than the encoder
reads into pieces, for every source alike, measured in the encoder's own tokens (`VectorCollection.index(...,
chunk=True)` and the LlamaIndex adapter's `to_llama_nodes` run it).

Everything here reads files as UTF-8 text (Parquet through pyarrow); nothing is executed or unpickled.

Example::

    docs = load_corpus("notes/")                      # a folder of .txt/.md, a .jsonl/.parquet file, a BEIR dir
    passages = chunk_documents(docs, encoder)         # long notes -> "guide.md#0", "guide.md#1", ...
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from laser_rag.errors import CorpusError, CorpusNotFoundError

if TYPE_CHECKING:
    from laser_rag.encoders.base import BaseEncoder

__all__ = [
    "Document",
    "chunk_documents",
    "document_text",
    "is_beir_directory",
    "load_corpus",
    "pydoc_corpus",
    # the readers other loaders build on (`laser_rag.beir`, the public-set converters of the benchmarks)
    "jsonl_rows",
    "open_text",
    "pop_first",
    "read_jsonl_documents",
    "read_parquet_documents",
]

_TEXT_SUFFIXES = (".txt", ".md")
_BEIR_CORPUS_FILES = ("corpus.jsonl", "corpus.jsonl.gz")
#: Where a JSON line keeps its id and its text: the first key present wins.
ID_KEYS = ("_id", "id", "doc_id")
TEXT_KEYS = ("text", "contents", "content", "page_content")


@dataclass
class Document:
    """One document of a corpus. ``id`` is stable across runs: loading the same corpus again gives the same ids."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def document_text(title: str, text: str) -> str:
    """THE one way a document becomes encoder input (and the words of its sparse vector): its title on the first
    line (when it has one), then its text. `BaseEncoder.document_text` returns this."""
    return f"{title}\n{text}" if title else text


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_corpus(path: str | Path) -> list[Document]:
    """A BEIR directory, a .jsonl or .parquet file, a folder of .txt/.md files, or one .txt/.md file -> documents (no
    chunking).

    - BEIR directory: ``corpus.jsonl`` or ``corpus.jsonl.gz`` with ``_id``, ``title``, ``text``.
    - ``.jsonl`` (or ``.jsonl.gz``): id from ``_id``/``id``/``doc_id`` (else a hash of the content), text from
      ``text``/``contents``/``content``/``page_content`` (may be empty only beside a ``title``), optional ``title``;
      other fields become metadata.
    - ``.parquet``: the same columns (``id``, ``text``, ``title``), plus an optional ``metadata`` column (a struct,
      a map or a JSON object as text) whose keys join the other columns in the metadata (`read_parquet_documents`).
    - A folder: every ``.txt``/``.md`` below it, sorted, one document each; hidden files and folders, other
      extensions, empty files and symlinks leading outside the folder are skipped (symlinked folders are not
      entered). The id is the relative path (``guide/setup.md``), the title the first markdown heading, else the
      file stem, the text the file's content with surrounding whitespace removed.
    - One ``.txt``/``.md`` file: as in a folder, the id being the file name.

    Raises `CorpusError` naming the file (and the line, for JSON lines) when something cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusNotFoundError(f"corpus path not found: {path}")
    if path.is_dir():
        corpus_file = _beir_corpus_file(path)
        return read_jsonl_documents(corpus_file) if corpus_file else _read_folder(path)
    if _is_jsonl(path):
        return read_jsonl_documents(path)
    if path.suffix.lower() == ".parquet":
        return read_parquet_documents(path)
    if path.suffix.lower() in _TEXT_SUFFIXES:
        document = _text_file_document(path, path.name)
        if document is None:
            raise CorpusError(f"{path}: the file is empty")
        return [document]
    raise CorpusError(f"{path}: not a corpus. Accepted: a BEIR directory (corpus.jsonl[.gz]), a .jsonl file, "
                      "a .parquet file, a folder of .txt/.md files, or a single .txt/.md file")


def is_beir_directory(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a BEIR corpus (``corpus.jsonl`` or ``corpus.jsonl.gz``)."""
    path = Path(path)
    return path.is_dir() and _beir_corpus_file(path) is not None


def _beir_corpus_file(directory: Path) -> Path | None:
    return next((directory / name for name in _BEIR_CORPUS_FILES if (directory / name).is_file()), None)


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith((".jsonl", ".jsonl.gz"))


def _read_folder(root: Path) -> list[Document]:
    real_root = root.resolve()
    files = []
    for folder, subfolders, names in os.walk(root):  # never descends into symlinked folders
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            file = Path(folder, name)
            if name.startswith(".") or file.suffix.lower() not in _TEXT_SUFFIXES:
                continue
            if file.is_symlink() and not file.resolve().is_relative_to(real_root):
                continue  # a link out of the folder: never follow it
            if file.is_file():
                files.append(file.relative_to(root).as_posix())
    documents = [doc for relative in sorted(files) if (doc := _text_file_document(root / relative, relative))]
    if not documents:
        raise CorpusError(f"{root}: no non-empty .txt or .md files found (a BEIR directory needs corpus.jsonl)")
    return documents


def _text_file_document(path: Path, source: str) -> Document | None:
    """The file as one document (None when it holds only whitespace)."""
    text = _read_text(path).strip()
    if not text:
        return None
    title = (_markdown_title(text) if path.suffix.lower() == ".md" else "") or path.stem
    return Document(source, text, title, {"source": source})


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
    if "\0" in text:  # valid UTF-8 still, but a binary file or UTF-16 text: never index it as words
        raise CorpusError(f"{path}: a NUL character at character {text.index(chr(0))}: a binary file or UTF-16 "
                          "text, not UTF-8 text (save it as UTF-8)")
    return text


def _markdown_title(text: str) -> str:
    """The first ATX heading (``# Title``) outside code fences, or ''."""
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"#{1,6}\s+(.+?)[\s#]*$", line)):
            return match.group(1)
    return ""


def open_text(path: Path):
    """A UTF-8 text file (a BOM is dropped), gunzipped on the fly when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object, or whose strings are not
    valid Unicode (a lone ``\\ud800`` escape), -> `CorpusError`; so does a file that cannot be read or gunzipped."""
    number = 0
    try:
        with open_text(path) as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise CorpusError(f"{path}, line {number}: invalid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise CorpusError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
                if _SURROGATE_ESCAPE.search(line) and not _is_unicode(row):
                    raise CorpusError(f"{path}, line {number}: a string holds a lone surrogate escape (\\ud800 to "
                                      "\\udfff without its pair), which is not text")
                yield number, row
    except UnicodeDecodeError as error:  # text is decoded ahead of the lines read: the bad byte comes later
        raise CorpusError(f"{path}: not UTF-8 text after line {number} ({error.reason})") from None
    except (OSError, EOFError, zlib.error) as error:  # unreadable, or a corrupt or truncated .gz
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise CorpusError(f"{path}: cannot be read after line {number} ({reason})") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _is_unicode(row: dict[str, Any]) -> bool:
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def pop_first(row: dict[str, Any], keys: Iterable[str]) -> Any:
    """The value of the first of ``keys`` present in ``row``, removed from it (None when none is)."""
    for key in keys:
        if key in row:
            return row.pop(key)
    return None


def read_jsonl_documents(path: Path) -> list[Document]:
    """Documents from a JSON-lines file (the keys `load_corpus` describes); a bad line -> `CorpusError`."""
    return _row_documents(path, jsonl_rows(path), "line")


def _row_documents(path: Path, rows: Iterable[tuple[int, dict[str, Any]]], unit: str) -> list[Document]:
    """Documents from (number, record) pairs of ``path`` (JSON lines, Parquet rows): id, text and title from the keys
    `load_corpus` describes, the rest metadata; a bad record -> `CorpusError` naming its ``unit`` ("line 3")."""
    documents: list[Document] = []
    first_line: dict[str, int] = {}
    for number, row in rows:
        doc_id, text = pop_first(row, ID_KEYS), pop_first(row, TEXT_KEYS)
        title = row.pop("title", None)
        title = "" if title is None else title
        if not isinstance(title, str):
            raise CorpusError(f"{path}, {unit} {number}: the title is a {type(title).__name__}, not a string")
        if doc_id is not None and (isinstance(doc_id, bool) or not isinstance(doc_id, str | int)
                                   or not str(doc_id).strip()):
            raise CorpusError(f"{path}, {unit} {number}: the id {doc_id!r} is not a non-empty string or an integer")
        if not isinstance(text, str) or not (text.strip() or str(title).strip()):
            raise CorpusError(f"{path}, {unit} {number}: no text (expected a non-empty string in one of "
                              f"{', '.join(TEXT_KEYS)})")
        if doc_id is None:
            doc_id = hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]
            if doc_id in first_line:
                continue  # the same content again
        doc_id = str(doc_id)
        if doc_id in first_line:
            raise CorpusError(f"{path}, {unit} {number}: id {doc_id!r} already used on {unit} {first_line[doc_id]}")
        first_line[doc_id] = number
        documents.append(Document(doc_id, text, str(title), row))
    return documents


def read_parquet_documents(path: Path) -> list[Document]:
    """Documents from a Parquet file (needs pyarrow: ``pip install 'laser-rag[parquet]'``): the columns of a JSON
    line (`load_corpus`: ``id``, ``text``, ``title``), a ``metadata`` column (a struct, a map, or a JSON object as
    text) merged into each document's metadata with the other columns; null cells are left out. A bad row ->
    `CorpusError` naming it."""
    return _row_documents(path, _parquet_rows(path), "row")


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise CorpusError(f"{path}: reading Parquet needs pyarrow: pip install 'laser-rag[parquet]'") from None
    try:
        batches = parquet.ParquetFile(path).iter_batches(batch_size=4096)
        number = 0
        for batch in batches:
            for number, row in enumerate(batch.to_pylist(), number + 1):
                yield number, _parquet_record(path, number, row)
    except (OSError, ValueError) as error:  # not Parquet, truncated, unreadable (pyarrow's errors derive from these)
        if isinstance(error, CorpusError):
            raise
        raise CorpusError(f"{path}: cannot be read as Parquet ({error})") from None


def _parquet_record(path: Path, number: int, row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row as a JSON line's object: null cells dropped, the ``metadata`` column spread into it."""
    extra = row.pop("metadata", None)
    if isinstance(extra, list) and all(isinstance(pair, tuple) for pair in extra):  # a map column: (key, value)s
        extra = dict(extra)
    elif isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{path}, row {number}: the metadata is not JSON ({error.msg})") from None
    if extra is not None and not isinstance(extra, dict):
        raise CorpusError(f"{path}, row {number}: the metadata is a {type(extra).__name__}, not an object")
    record = {key: value for key, value in row.items() if value is not None}
    return {**{key: value for key, value in (extra or {}).items() if value is not None}, **record}


# ---------------------------------------------------------------------------------------------------------------
# The corpus every Python carries


def pydoc_corpus() -> list[Document]:
    """The Python language reference topics shipped with CPython (``pydoc_data.topics``), one document per topic:
    id ``pydoc:<topic>``, title the topic. Long topics are cut at index time like any other source."""
    from pydoc_data.topics import topics

    return [Document(f"pydoc:{topic}", topics[topic].strip(), topic, {"source": "pydoc", "topic": topic})
            for topic in sorted(topics) if topics[topic].strip()]


# ---------------------------------------------------------------------------------------------------------------
# Chunking


def chunk_documents(documents: Iterable[Document], encoder: BaseEncoder, *, overlap: int = 32) -> list[Document]:
    """Documents cut to what ``encoder`` reads, measured in its own tokens.

    A document whose ``encoder.document_text(title, text)`` fits in ``encoder.max_length`` tokens passes through
    unchanged (same id). A longer one becomes ``<id>#0``, ``<id>#1``, ... (same title; metadata plus ``parent_id``),
    cut by langchain-text-splitters' ``RecursiveCharacterTextSplitter`` (paragraphs, then lines, then words),
    measuring length in ``encoder.tokenizer`` tokens, into pieces that fit beside the title and the encoder's
    template, consecutive pieces sharing about ``overlap`` tokens. Raises `CorpusError` when a title alone leaves
    no room for text.

    Whitespace around a title or a text is dropped (the only change a fitting document may see): LlamaIndex drops
    it from what it embeds, and both paths must embed the same text.
    """
    documents = list(documents)
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    chunked: list[Document] = []
    for doc in documents:
        if doc.title != doc.title.strip() or doc.text != doc.text.strip():
            doc = Document(doc.id, doc.text.strip(), doc.title.strip(), doc.metadata)
        if _tokens(encoder, doc.title, doc.text) <= encoder.max_length:
            chunked.append(doc)
            continue
        pieces = _split(doc, encoder, overlap)
        chunked.extend(Document(f"{doc.id}#{n}", piece, doc.title, {**doc.metadata, "parent_id": doc.id})
                       for n, piece in enumerate(pieces))
    return chunked


def _tokens(encoder: BaseEncoder, title: str, text: str) -> int:
    return encoder.count_tokens(encoder.document_text(title, text))


def _split(doc: Document, encoder: BaseEncoder, overlap: int) -> list[str]:
    """Pieces of ``doc.text`` that each fit beside the title. Token counts of pieces do not add up exactly when
    they are joined, so a piece that still does not fit shrinks the budget by its excess and the split runs again."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # a core dependency, imported when needed

    def length(text: str) -> int:  # from_huggingface_tokenizer's measure, without its warning on long texts
        return len(encoder.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    overhead = max(0, _tokens(encoder, doc.title, ".") - length("."))
    size = encoder.max_length - overhead
    if size < 8:
        raise CorpusError(f"document {doc.id!r}: its title and the encoder's template take {overhead} of the "
                          f"{encoder.max_length} tokens the encoder reads; shorten the title")
    while True:
        splitter = RecursiveCharacterTextSplitter(length_function=length, chunk_size=size,
                                                  chunk_overlap=min(overlap, size // 4))
        pieces = [piece for piece in splitter.split_text(doc.text) if piece.strip()]
        excess = max(_tokens(encoder, doc.title, piece) for piece in pieces) - encoder.max_length
        if excess <= 0 or size <= 8:
            return pieces
        size = max(8, size - excess)
