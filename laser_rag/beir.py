"""Retrieval datasets in BEIR layout: a corpus, queries and graded relevance judgements (qrels).

Example::

    dataset = load_beir("scifact/", split="test")     # corpus.jsonl[.gz], queries.jsonl, qrels/test.tsv
    save_beir(dataset, "copy/")                        # the same three files; load_beir reads them back equal
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from laser_rag.util import atomic_write
from laser_rag.corpus import (
    ID_KEYS,
    TEXT_KEYS,
    Document,
    is_beir_directory,
    jsonl_rows,
    load_corpus,
    open_text,
    pop_first,
)
from laser_rag.errors import CorpusError, CorpusNotFoundError

__all__ = ["RetrievalDataset", "load_beir", "save_beir"]

@dataclass
class RetrievalDataset:
    """A BEIR-style retrieval set: corpus, queries and graded relevance (qrels[qid][doc_id] = grade)."""

    name: str
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: str | Path, split: str = "test") -> RetrievalDataset:
    """A dataset in BEIR layout: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``
    (``query-id corpus-id score``). Only queries that have qrels are kept. A missing or unreadable file ->
    `CorpusError` naming it (and the line)."""
    directory = Path(directory)
    if not is_beir_directory(directory):
        raise CorpusNotFoundError(f"BEIR file not found: {directory / 'corpus.jsonl'} (or corpus.jsonl.gz)")
    for needed in (directory / "queries.jsonl", directory / "qrels" / f"{split}.tsv"):
        if not needed.is_file():
            raise CorpusNotFoundError(f"BEIR file not found: {needed}")
    corpus = load_corpus(directory)
    all_queries = {}
    for number, row in jsonl_rows(directory / "queries.jsonl"):
        qid, text = pop_first(row, ID_KEYS), pop_first(row, TEXT_KEYS)
        if qid is None or not isinstance(text, str):
            raise CorpusError(f"{directory / 'queries.jsonl'}, line {number}: a query needs _id and text")
        all_queries[str(qid)] = text
    qrels = _read_qrels(directory / "qrels" / f"{split}.tsv")
    unknown = [qid for qid in qrels if qid not in all_queries]
    if unknown:
        warnings.warn(f"{directory}: {len(unknown)} queries in qrels/{split}.tsv are not in queries.jsonl; dropped",
                      stacklevel=2)
    qrels = {qid: docs for qid, docs in qrels.items() if qid in all_queries}
    return RetrievalDataset(f"{directory.name}/{split}", corpus, {qid: all_queries[qid] for qid in qrels}, qrels)


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if not fields:
                continue
            try:
                qid, doc_id, score = fields
                grade = int(score)
            except ValueError:
                if number == 1:
                    continue  # the header: query-id corpus-id score
                raise CorpusError(f"{path}, line {number}: expected 'query-id<TAB>corpus-id<TAB>score'") from None
            qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def save_beir(dataset: RetrievalDataset, directory: str | Path, split: str = "test") -> Path:
    """Write ``dataset`` in BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); returns the directory.
    Metadata fields are written beside ``_id``/``title``/``text``, so `load_beir` reads them back as metadata;
    a metadata key that clashes with one of those -> ValueError, before anything is written."""
    directory = Path(directory)
    for doc in dataset.corpus:
        clash = {"_id", "title", "text"} & doc.metadata.keys()
        if clash:
            raise ValueError(f"document {doc.id!r}: metadata keys {sorted(clash)} clash with BEIR fields")
    corpus = "".join(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text, **doc.metadata},
                                ensure_ascii=False) + "\n" for doc in dataset.corpus)
    queries = "".join(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n"
                      for qid, text in dataset.queries.items())
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{qid}\t{doc_id}\t{grade}\n" for qid, docs in dataset.qrels.items() for doc_id, grade in docs.items())
    atomic_write(directory / "corpus.jsonl", corpus)
    atomic_write(directory / "queries.jsonl", queries)
    atomic_write(directory / "qrels" / f"{split}.tsv", qrels)
    return directory
