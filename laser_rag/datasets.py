"""Corpora and retrieval datasets: the user's own files, BEIR directories, the shared public sets, and the Python
language reference that every Python carries (``pydoc_data.topics``).

Everything here reads files as UTF-8 text (JSON, TSV, plain text); nothing is executed or unpickled.

Example::

    docs = load_corpus("notes/")                       # a folder of .txt/.md, a .jsonl file or a BEIR directory
    dev = shared_dataset("strategyqa", "validation")   # corpus + queries + qrels from ../shared/data
    print(LICENSES["strategyqa"])
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LICENSES",
    "SHARED_DATASETS",
    "Document",
    "RetrievalDataset",
    "hotpotqa_evidence_records",
    "load_beir",
    "load_corpus",
    "pydoc_corpus",
    "save_beir",
    "scifact_claims",
    "shared_data_dir",
    "shared_dataset",
    "split_of",
    "strategyqa_records",
]

#: The public sets under ``shared/data`` that `shared_dataset` converts.
SHARED_DATASETS = ("scifact", "strategyqa", "hotpotqa", "musique", "hotpotqa_evidence")

#: One line per corpus, for reports to print beside the figures they give.
LICENSES = {
    "scifact": "SciFact (allenai/scifact): CC BY-NC 2.0 - non-commercial use only",
    "strategyqa": "StrategyQA (allenai): research use; evidence sentences from Wikipedia, CC BY-SA",
    "hotpotqa": "HotpotQA distractor dev (100 items): CC BY-SA 4.0",
    "musique": "MuSiQue (first 100 of train): CC BY 4.0",
    "hotpotqa_evidence": "HotpotQA questions with gold evidence sentences (500): CC BY-SA 4.0",
    "pydoc": "Python language reference (pydoc_data.topics): PSF License",
}

_PASSAGE_CHARS = 1200  # long texts are split on blank lines into passages of at most this many characters
_TEXT_SUFFIXES = (".txt", ".md")
_ID_KEYS = ("_id", "id", "doc_id")
_TEXT_KEYS = ("text", "contents", "content", "page_content")
_SPLITS = ("train", "validation", "test")
_SCIFACT_SPLITS = ("train", "validation", "all")  # its own train/dev files; the official test set has no labels


@dataclass
class Document:
    """One passage of a corpus. ``id`` is stable across runs: re-indexing the same corpus gives the same ids."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def document_text(doc: Document) -> str:
    """What an encoder reads for a document: its title on the first line (when it has one), then its text."""
    return f"{doc.title}\n{doc.text}" if getattr(doc, "title", "") else doc.text


@dataclass
class RetrievalDataset:
    """A BEIR-style retrieval set: corpus, queries and graded relevance (qrels[qid][doc_id] = grade)."""

    name: str
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


# ---------------------------------------------------------------------------------------------------------------
# The user's files


def load_corpus(path: str | Path) -> list[Document]:
    """A BEIR directory, a .jsonl file, a folder of .txt/.md files, or one .txt/.md file -> documents.

    - BEIR directory: ``corpus.jsonl`` or ``corpus.jsonl.gz`` with ``_id``, ``title``, ``text``.
    - ``.jsonl`` (or ``.jsonl.gz``): id from ``_id``/``id``/``doc_id`` (else a hash of the content), text from
      ``text``/``contents``/``content``/``page_content`` (may be empty only beside a ``title``), optional ``title``;
      other fields become metadata. A line that is not a JSON object or has no text -> ValueError with its number.
    - A folder: every ``.txt``/``.md`` below it, sorted; hidden files and folders, other extensions, empty files
      and symlinks leading outside the folder are skipped (symlinked folders are not entered). The id is the
      relative path (``guide/setup.md``); the title the first markdown heading, else the file stem. A file
      longer than 1,200 characters becomes passages ``guide/setup.md#0``, ``#1``, ... split on blank lines.
    - One ``.txt``/``.md`` file: as in a folder, the id being the file name.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus path not found: {path}")
    if path.is_dir():
        for name in ("corpus.jsonl", "corpus.jsonl.gz"):
            if (path / name).is_file():
                return _read_jsonl_documents(path / name)
        return _read_folder(path)
    if _is_jsonl(path):
        return _read_jsonl_documents(path)
    if path.suffix.lower() in _TEXT_SUFFIXES:
        documents = _text_file_documents(path, path.name)
        if not documents:
            raise ValueError(f"{path}: the file is empty")
        return documents
    raise ValueError(f"{path}: not a corpus. Accepted: a BEIR directory (corpus.jsonl[.gz]), a .jsonl file, "
                     "a folder of .txt/.md files, or a single .txt/.md file")


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
    documents = [doc for relative in sorted(files) for doc in _text_file_documents(root / relative, relative)]
    if not documents:
        raise ValueError(f"{root}: no non-empty .txt or .md files found (a BEIR directory needs corpus.jsonl)")
    return documents


def _text_file_documents(path: Path, source: str) -> list[Document]:
    text = _read_text(path)
    title = (_markdown_title(text) if path.suffix.lower() == ".md" else "") or path.stem
    return _passages(source, text, title, {"source": source})


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _markdown_title(text: str) -> str:
    """The first ATX heading (``# Title``) outside code fences, or ''."""
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and (match := re.match(r"#{1,6}\s+(.+?)[\s#]*$", line)):
            return match.group(1)
    return ""


def _passages(base_id: str, text: str, title: str, metadata: dict[str, Any]) -> list[Document]:
    """``text`` as one document ``base_id``, or, when longer than one passage, passages ``base_id#n``."""
    chunks = _split_passages(text)
    if len(chunks) == 1:
        return [Document(base_id, chunks[0], title, dict(metadata))]
    return [Document(f"{base_id}#{n}", chunk, title, {**metadata, "passage": n}) for n, chunk in enumerate(chunks)]


def _split_passages(text: str, max_chars: int = _PASSAGE_CHARS) -> list[str]:
    """Paragraphs (blank-line separated) packed greedily into chunks of at most ``max_chars`` characters; a
    paragraph longer than that is cut at a line break, sentence end or space. Empty text gives []."""
    paragraphs = [p.strip("\n").rstrip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    chunks: list[str] = []
    for piece in (piece for paragraph in paragraphs for piece in _cut(paragraph, max_chars)):
        if chunks and len(chunks[-1]) + 2 + len(piece) <= max_chars:
            chunks[-1] = f"{chunks[-1]}\n\n{piece}"
        else:
            chunks.append(piece)
    return chunks


def _cut(text: str, max_chars: int) -> Iterator[str]:
    """Pieces of at most ``max_chars``, cut at the last line break, else sentence end, else space of the second
    half of each window; a run with none of these is cut hard."""
    while len(text) > max_chars:
        window = text[:max_chars]
        ends = (window.rfind(sep, max_chars // 2) + len(sep) for sep in ("\n", ". ", " "))
        cut = next((end for end in ends if end > max_chars // 2), max_chars)
        yield text[:cut].rstrip()
        text = text[cut:].lstrip()
    yield text


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object -> ValueError."""
    with _open_text(path) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
            yield number, row


def _pop_first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in row:
            return row.pop(key)
    return None


def _read_jsonl_documents(path: Path) -> list[Document]:
    documents: list[Document] = []
    first_line: dict[str, int] = {}
    for number, row in _jsonl_rows(path):
        doc_id, text = _pop_first(row, _ID_KEYS), _pop_first(row, _TEXT_KEYS)
        title = row.pop("title", None) or ""
        if not isinstance(text, str) or not (text.strip() or str(title).strip()):
            raise ValueError(f"{path}, line {number}: no text (expected a non-empty string in one of "
                             f"{', '.join(_TEXT_KEYS)})")
        if doc_id is None:
            doc_id = _short_hash(f"{title}\n{text}", 16)
            if doc_id in first_line:
                continue  # the same content again
        doc_id = str(doc_id)
        if doc_id in first_line:
            raise ValueError(f"{path}, line {number}: id {doc_id!r} already used on line {first_line[doc_id]}")
        first_line[doc_id] = number
        documents.append(Document(doc_id, text, str(title), row))
    return documents


# ---------------------------------------------------------------------------------------------------------------
# BEIR layout


def load_beir(directory: str | Path, split: str = "test") -> RetrievalDataset:
    """A dataset in BEIR layout: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``
    (``query-id corpus-id score``). Only queries that have qrels are kept; a missing file -> FileNotFoundError
    naming it."""
    directory = Path(directory)
    corpus_file = next((directory / n for n in ("corpus.jsonl", "corpus.jsonl.gz") if (directory / n).is_file()),
                       directory / "corpus.jsonl")
    for needed in (corpus_file, directory / "queries.jsonl", directory / "qrels" / f"{split}.tsv"):
        if not needed.is_file():
            raise FileNotFoundError(f"BEIR file not found: {needed}")
    corpus = _read_jsonl_documents(corpus_file)
    all_queries = {}
    for number, row in _jsonl_rows(directory / "queries.jsonl"):
        qid, text = _pop_first(row, _ID_KEYS), _pop_first(row, _TEXT_KEYS)
        if qid is None or not isinstance(text, str):
            raise ValueError(f"{directory / 'queries.jsonl'}, line {number}: a query needs _id and text")
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
    with _open_text(path) as lines:
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
                raise ValueError(f"{path}, line {number}: expected 'query-id<TAB>corpus-id<TAB>score'") from None
            qrels.setdefault(qid, {})[doc_id] = grade
    return qrels


def save_beir(dataset: RetrievalDataset, directory: str | Path, split: str = "test") -> Path:
    """Write ``dataset`` in BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); returns the directory.
    Metadata fields are written beside ``_id``/``title``/``text``, so `load_beir` reads them back as metadata."""
    directory = Path(directory)
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with open(directory / "corpus.jsonl", "w", encoding="utf-8") as out:
        for doc in dataset.corpus:
            clash = {"_id", "title", "text"} & doc.metadata.keys()
            if clash:
                raise ValueError(f"document {doc.id!r}: metadata keys {sorted(clash)} clash with BEIR fields")
            out.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text, **doc.metadata},
                                 ensure_ascii=False) + "\n")
    with open(directory / "queries.jsonl", "w", encoding="utf-8") as out:
        for qid, text in dataset.queries.items():
            out.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with open(directory / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in dataset.qrels.items():
            out.writelines(f"{qid}\t{doc_id}\t{grade}\n" for doc_id, grade in docs.items())
    return directory


# ---------------------------------------------------------------------------------------------------------------
# The corpus every Python carries


def pydoc_corpus() -> list[Document]:
    """The Python language reference topics shipped with CPython (``pydoc_data.topics``): one document per topic,
    split into passages ``pydoc:<topic>#n`` when longer than 1,200 characters (else ``pydoc:<topic>``)."""
    from pydoc_data.topics import topics

    return [doc for topic in sorted(topics)
            for doc in _passages(f"pydoc:{topic}", topics[topic], topic, {"source": "pydoc", "topic": topic})]


# ---------------------------------------------------------------------------------------------------------------
# The shared public sets (../shared/data)


def shared_data_dir() -> Path | None:
    """``$LASER_RAG_SHARED_DATA`` or a ``shared/data`` folder beside the repository; None when absent."""
    if os.environ.get("LASER_RAG_SHARED_DATA"):  # set: the only place looked at
        path = Path(os.environ["LASER_RAG_SHARED_DATA"])
        return path if path.is_dir() else None
    return next((path for path in _shared_candidates() if path.is_dir()), None)


def _shared_candidates() -> list[Path]:
    return [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().resolve().parent / "shared" / "data"]


def _shared_file(data_dir: str | Path | None, relative: str) -> Path:
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        looked = os.environ.get("LASER_RAG_SHARED_DATA") or ", ".join(map(str, _shared_candidates()))
        raise FileNotFoundError(f"shared data not found (needed {relative}; looked in {looked}): "
                                "set $LASER_RAG_SHARED_DATA or pass data_dir=")
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"shared data file not found: {path}")
    return path


def split_of(key: str) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` (about 80/10/10), fixed by the SHA-1 of ``key``: the same key
    lands in the same split on every machine and Python version."""
    bucket = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def _check_split(split: str, allowed: tuple[str, ...] = (*_SPLITS, "all")) -> None:
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(allowed)}")


def _record_id(record: dict) -> str:
    return record["id"]


def _select(records: list[dict], split: str, key: Callable[[dict], str]) -> list[dict]:
    return [record for record in records if split == "all" or split_of(key(record)) == split]


def _short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


class _Pool:
    """A corpus pooled from many questions' evidence: identical (title, text) share one document whose id is
    ``prefix`` + a short hash of the content."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.documents: dict[str, Document] = {}

    def add(self, text: str, title: str = "") -> str:
        doc_id = self.prefix + _short_hash(f"{title}\n{text}" if title else text)
        known = self.documents.setdefault(doc_id, Document(doc_id, text, title))
        if (known.text, known.title) != (text, title):
            raise ValueError(f"hash collision on {doc_id}: {known.text[:60]!r} vs {text[:60]!r}")
        return doc_id

    @property
    def corpus(self) -> list[Document]:
        return list(self.documents.values())


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in _jsonl_rows(path)]


def _scifact_corpus(data_dir) -> list[Document]:
    return _read_jsonl_documents(_shared_file(data_dir, "scifact/corpus.jsonl.gz"))


def _scifact_claims(split: str, data_dir, corpus: list[Document]) -> list[dict]:
    names = {"train": ["claims_train"], "validation": ["claims_dev"], "all": ["claims_train", "claims_dev"]}[split]
    by_id = {doc.id: doc for doc in corpus}
    claims = []
    for name in names:
        for row in _read_json_lines(_shared_file(data_dir, f"scifact/{name}.jsonl")):
            cited = list(dict.fromkeys(str(doc_id) for doc_id in row["cited_doc_ids"]))
            rationale = [by_id[str(e["doc_id"])].metadata["sentences"][i]
                         for e in row["evidence"] for i in e["sentence_idx"]]
            claims.append({
                "id": str(row["_id"]),
                "claim": row["text"],
                "positives": [(doc_id, by_id[doc_id].title, by_id[doc_id].text) for doc_id in cited],
                "rationale_sentences": list(dict.fromkeys(rationale)),
                "labels": {str(e["doc_id"]): e["label"] for e in row["evidence"]},  # SUPPORT / CONTRADICT
            })
    return claims


def scifact_claims(split: str = "train", data_dir: str | Path | None = None) -> list[dict]:
    """SciFact claims for training: ``id, claim, positives [(doc_id, title, text)], rationale_sentences`` (the
    cited abstracts' sentences given as evidence; may be empty) and ``labels`` {doc_id: SUPPORT|CONTRADICT}.
    ``split``: "train" (claims_train), "validation" (claims_dev) or "all". Licence: CC BY-NC 2.0."""
    _check_split(split, _SCIFACT_SPLITS)
    return _scifact_claims(split, data_dir, _scifact_corpus(data_dir))


def _strategyqa(data_dir) -> tuple[list[Document], list[dict]]:
    raw = json.loads(_read_text(_shared_file(data_dir, "strategyqa/train_gdsent.json")))
    pool = _Pool("sqa:")
    records = []
    for item in raw:
        sentences = dict.fromkeys(s.strip() for group in item["golden_sentence"] for s in group if s.strip())
        records.append({
            "qid": item["qid"],
            "question": item["question"],
            "answer": bool(item["answer"]),
            "facts": list(item["facts"]),
            "decomposition": list(item["decomposition"]),
            "positives": [(pool.add(sentence), sentence) for sentence in sentences],
        })
    return pool.corpus, records


def _question_key(record: dict) -> str:
    # StrategyQA is split by question text, not qid: one question appears twice under two qids.
    return " ".join(record["question"].lower().split())


def strategyqa_records(split: str = "train", data_dir: str | Path | None = None) -> list[dict]:
    """StrategyQA questions of ``split`` (train/validation/test by `split_of` the question text, or "all"):
    ``qid, question, answer (bool), facts, decomposition, positives [(doc_id, golden sentence)]``. Doc ids are
    those of ``shared_dataset("strategyqa")``; 294 of the 2,061 questions have no golden sentence (empty positives)."""
    _check_split(split)
    return _select(_strategyqa(data_dir)[1], split, _question_key)


def _hotpotqa_evidence(data_dir) -> tuple[list[Document], list[dict]]:
    pool = _Pool("hpe:")
    records = []
    for row in _read_json_lines(_shared_file(data_dir, "hotpotqa/evidence_train_500.jsonl")):
        evidence = [sentence.strip() for sentence in row["evidence"] if sentence.strip()]
        records.append({
            "id": _short_hash(row["question"]),
            "question": row["question"],
            "answer": row["answer"],
            "evidence": evidence,
            "positives": [(pool.add(sentence), sentence) for sentence in dict.fromkeys(evidence)],
        })
    return pool.corpus, records


def hotpotqa_evidence_records(split: str = "train", data_dir: str | Path | None = None) -> list[dict]:
    """HotpotQA questions with gold evidence sentences (split by `split_of` the id, or "all"):
    ``id, question, answer, evidence, positives [(doc_id, sentence)]``; ids as in
    ``shared_dataset("hotpotqa_evidence")``."""
    _check_split(split)
    return _select(_hotpotqa_evidence(data_dir)[1], split, _record_id)


def _hotpotqa(data_dir) -> tuple[list[Document], list[tuple[str, str, list[str]]]]:
    pool = _Pool("hotpot:")
    items = []
    for row in _read_json_lines(_shared_file(data_dir, "hotpotqa/dev_100.jsonl")):
        ids = {title: pool.add("".join(sentences).strip(), title) for title, sentences in row["context"]}
        supporting = dict.fromkeys(fact[0] for fact in row["supporting_facts"])
        items.append((row["_id"], row["question"], [ids[title] for title in supporting if title in ids]))
    return pool.corpus, items


def _musique(data_dir) -> tuple[list[Document], list[tuple[str, str, list[str]]]]:
    pool = _Pool("musique:")
    items = []
    for row in _read_json_lines(_shared_file(data_dir, "musique/musique_full_v1.0_train_first100.jsonl")):
        ids = [(pool.add(p["paragraph_text"].strip(), p["title"]), p["is_supporting"]) for p in row["paragraphs"]]
        items.append((row["id"], row["question"], list(dict.fromkeys(d for d, supporting in ids if supporting))))
    return pool.corpus, items


def _dataset(name: str, split: str, corpus: list[Document], items) -> RetrievalDataset:
    """``items``: (query id, query text, relevant doc ids); a query without a relevant document is dropped."""
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for qid, text, doc_ids in items:
        if not doc_ids:
            continue
        if qid in queries:
            raise ValueError(f"{name}: query id {qid!r} appears twice")
        queries[qid], qrels[qid] = text, {doc_id: 1 for doc_id in doc_ids}
    return RetrievalDataset(f"{name}/{split}", corpus, queries, qrels)


def _positive_items(records: list[dict], id_key: str, text_key: str):
    return [(r[id_key], r[text_key], [positive[0] for positive in r["positives"]]) for r in records]


def shared_dataset(name: str, split: str = "validation", data_dir: str | Path | None = None) -> RetrievalDataset:
    """One of `SHARED_DATASETS` as a BEIR-style set. The corpus always pools every question's evidence; only the
    queries follow ``split``:

    - ``scifact``: the 5,183 abstracts; "train" = claims_train (== queries.jsonl + qrels/train.tsv), "validation"
      = claims_dev, "all" = both (cited abstracts relevant).
    - ``strategyqa``: all golden sentences pooled; each question's own golden sentences relevant.
    - ``hotpotqa_evidence``: all evidence sentences pooled; each question's evidence relevant.
    - ``hotpotqa`` (dev, 100 questions; supporting paragraphs relevant) and ``musique`` (20 paragraphs per
      question; supporting ones relevant): evaluation-only, every split but "train" gives all questions.

    strategyqa and hotpotqa_evidence split by `split_of` (~80/10/10); "all" gives every query. See `LICENSES`.
    """
    if name not in SHARED_DATASETS:
        raise ValueError(f"unknown shared dataset {name!r}; expected one of {', '.join(SHARED_DATASETS)}")
    _check_split(split, _SCIFACT_SPLITS if name == "scifact" else (*_SPLITS, "all"))
    if name == "scifact":
        corpus = _scifact_corpus(data_dir)
        items = _positive_items(_scifact_claims(split, data_dir, corpus), "id", "claim")
    elif name == "strategyqa":
        corpus, records = _strategyqa(data_dir)
        items = _positive_items(_select(records, split, _question_key), "qid", "question")
    elif name == "hotpotqa_evidence":
        corpus, records = _hotpotqa_evidence(data_dir)
        items = _positive_items(_select(records, split, _record_id), "id", "question")
    elif split == "train":
        raise ValueError(f"{name} is evaluation-only (no train split): use split='validation', 'test' or 'all'")
    else:
        corpus, items = (_hotpotqa if name == "hotpotqa" else _musique)(data_dir)
    return _dataset(name, split, corpus, items)
