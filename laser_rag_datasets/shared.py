"""The shared public sets (``../shared/data``) as `laser_rag.beir.RetrievalDataset`s and training records.

Five sets are converted: SciFact, StrategyQA, HotpotQA (distractor dev), MuSiQue and HotpotQA evidence sentences.
Evaluation (`laser_rag_benchmarks`), training (`laser_rag_training`) and the demo app (`laser_rag_app`) read them
from here; the library itself knows nothing of them. Files are read as UTF-8 text (JSON); nothing is executed or unpickled.

Example::

    dev = shared_dataset("strategyqa", "validation")   # corpus + queries + qrels from ../shared/data
    print(LICENSES["strategyqa"])
    records = strategyqa_records("train")              # questions with their golden sentences, for training
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from laser_rag.beir import RetrievalDataset
from laser_rag.corpus import Document, jsonl_rows, load_corpus

__all__ = [
    "IRCOT_SETS",
    "LICENSES",
    "SHARED_DATASETS",
    "DocumentPool",
    "hotpotqa_evidence_records",
    "ircot_records",
    "read_json_lines",
    "scifact_claims",
    "shared_data_dir",
    "shared_dataset",
    "shared_file",
    "short_hash",
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
    "ircot": "IRCoT chain-of-thought demos (StonyBrookNLP/ircot): Apache-2.0; paragraphs from Wikipedia, CC BY-SA",
    "pydoc": "Python language reference (pydoc_data.topics): PSF License",
}

_SPLITS = ("train", "validation", "test")
_SCIFACT_SPLITS = ("train", "validation", "all")  # its own train/dev files; the official test set has no labels


# ---------------------------------------------------------------------------------------------------------------
# Finding and reading the files


def shared_data_dir() -> Path | None:
    """``$LASER_RAG_SHARED_DATA`` or a ``shared/data`` folder beside the repository; None when absent."""
    if os.environ.get("LASER_RAG_SHARED_DATA"):  # set: the only place looked at
        path = Path(os.environ["LASER_RAG_SHARED_DATA"])
        return path if path.is_dir() else None
    return next((path for path in _shared_candidates() if path.is_dir()), None)


def _shared_candidates() -> list[Path]:
    return [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().resolve().parent / "shared" / "data"]


def shared_file(relative: str, data_dir: str | Path | None = None) -> Path:
    """The path of one file of the shared data (``relative`` to its root, e.g. ``"hotpotqa/dev_100.jsonl"``);
    FileNotFoundError naming where it looked when absent."""
    root = Path(data_dir) if data_dir is not None else shared_data_dir()
    if root is None:
        looked = os.environ.get("LASER_RAG_SHARED_DATA") or ", ".join(map(str, _shared_candidates()))
        raise FileNotFoundError(f"shared data not found (needed {relative}; looked in {looked}): "
                                "set $LASER_RAG_SHARED_DATA or pass data_dir=")
    path = root / relative
    if not path.is_file():
        raise FileNotFoundError(f"shared data file not found: {path}")
    return path


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a ``.jsonl`` file of the shared data, one per non-blank line."""
    return [row for _, row in jsonl_rows(Path(path))]


# ---------------------------------------------------------------------------------------------------------------
# Splits


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


def short_hash(text: str, length: int = 12) -> str:
    """The first ``length`` hex digits of the SHA-1 of ``text``: the content part of the ids `DocumentPool` gives."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


class DocumentPool:
    """A corpus pooled from many questions' evidence: identical (title, text) share one document whose id is
    ``prefix`` + a short hash of the content."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.documents: dict[str, Document] = {}

    def add(self, text: str, title: str = "") -> str:
        doc_id = self.prefix + short_hash(f"{title}\n{text}" if title else text)
        known = self.documents.setdefault(doc_id, Document(doc_id, text, title))
        if (known.text, known.title) != (text, title):
            raise ValueError(f"hash collision on {doc_id}: {known.text[:60]!r} vs {text[:60]!r}")
        return doc_id

    def add_context(self, context) -> dict[str, str]:
        """HotpotQA ``context`` (``[title, sentences]`` pairs) -> title -> id; a paragraph is its sentences joined."""
        return {title: self.add("".join(sentences).strip(), title) for title, sentences in context}

    def add_paragraphs(self, paragraphs) -> list[tuple[str, bool]]:
        """MuSiQue ``paragraphs`` -> ``(id, is_supporting)`` of each, in order."""
        return [(self.add(p["paragraph_text"].strip(), p["title"]), p["is_supporting"]) for p in paragraphs]

    @property
    def corpus(self) -> list[Document]:
        return list(self.documents.values())


# ---------------------------------------------------------------------------------------------------------------
# The sets


def _scifact_corpus(data_dir) -> list[Document]:
    return load_corpus(shared_file("scifact/corpus.jsonl.gz", data_dir))


def _scifact_claims(split: str, data_dir, corpus: list[Document]) -> list[dict]:
    names = {"train": ["claims_train"], "validation": ["claims_dev"], "all": ["claims_train", "claims_dev"]}[split]
    by_id = {doc.id: doc for doc in corpus}
    claims = []
    for name in names:
        for row in read_json_lines(shared_file(f"scifact/{name}.jsonl", data_dir)):
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
    raw = json.loads(shared_file("strategyqa/train_gdsent.json", data_dir).read_text(encoding="utf-8-sig"))
    pool = DocumentPool("sqa:")
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
    pool = DocumentPool("hpe:")
    records = []
    for row in read_json_lines(shared_file("hotpotqa/evidence_train_500.jsonl", data_dir)):
        evidence = [sentence.strip() for sentence in row["evidence"] if sentence.strip()]
        records.append({
            "id": short_hash(row["question"]),
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


#: The IRCoT demo sets: the prompt file's name and the annotation file's, under ``ircot/``.
IRCOT_SETS = ("hotpotqa", "2wikimultihopqa", "musique", "iirc")
_IRCOT_BLOCK = re.compile(r"^# METADATA: (\{.*\})$", re.MULTILINE)
_IRCOT_TITLE = "Wikipedia Title: "


def _ircot_paragraphs(block: str) -> list[tuple[str, str]]:
    """One prompt block -> its ``(title, text)`` paragraphs (the question and answer come from the annotations)."""
    paragraphs = []
    for chunk in re.split(r"\n\s*\n", block.strip()):
        if chunk.startswith(_IRCOT_TITLE):
            title, _, text = chunk[len(_IRCOT_TITLE):].partition("\n")
            paragraphs.append((title.strip(), " ".join(text.split())))
    return paragraphs


def ircot_records(data_dir: str | Path | None = None) -> tuple[list[Document], list[dict]]:
    """The IRCoT demos (hand-written chains of thought for HotpotQA, 2WikiMultihopQA, MuSiQue and IIRC train
    questions, 89 in all) and the pool of their paragraphs (each demo's gold paragraphs and two distractors):
    ``(corpus, records)``, each record ``id, dataset, question, reasoning (the CoT sentences), answer,
    paragraphs (the demo's doc ids), positives [(doc_id, text)]`` (the paragraphs the CoT steps cite). None of
    these questions is in the evaluation sets ``hotpotqa`` (dev) or ``musique``. Training only: no split."""
    import _jsonnet  # the annotations are jsonnet (single quotes, trailing commas, comments)

    pool = DocumentPool("ircot:")
    records = []
    for name in IRCOT_SETS:
        prompt = shared_file(f"ircot/prompts/{name}_gold_with_2_distractors_context_cot_qa.txt", data_dir)
        text = prompt.read_text(encoding="utf-8")
        heads = list(_IRCOT_BLOCK.finditer(text))
        blocks = {json.loads(m.group(1))["qid"]: text[m.end():nxt.start() if nxt else len(text)]
                  for m, nxt in zip(heads, [*heads[1:], None])}
        annotations = json.loads(_jsonnet.evaluate_file(str(shared_file(f"ircot/annotations/{name}.jsonnet",
                                                                           data_dir))))
        for note in annotations:
            if note["question_id"] not in blocks:
                continue
            ids = {title: pool.add(body, title) for title, body in _ircot_paragraphs(blocks[note["question_id"]])}
            steps = [step["cot_sent"].strip() for step in note["reasoning_steps"]]
            gold = dict.fromkeys(p["title"] for step in note["reasoning_steps"] for p in step["paragraphs"]
                                 if p["title"] in ids)
            records.append({
                "id": f"{name}:{note['question_id']}",
                "dataset": name,
                "question": " ".join(note["question_text"].split()),
                "reasoning": [s for s in steps if s],
                "answer": steps[-1].removeprefix("So the answer is:").strip().rstrip(".") if steps else "",
                "paragraphs": list(ids.values()),
                "positives": [(ids[title], pool.documents[ids[title]].text) for title in gold],
            })
    return pool.corpus, records


def _hotpotqa(data_dir) -> tuple[list[Document], list[tuple[str, str, list[str]]]]:
    pool = DocumentPool("hotpot:")
    items = []
    for row in read_json_lines(shared_file("hotpotqa/dev_100.jsonl", data_dir)):
        ids = pool.add_context(row["context"])
        supporting = dict.fromkeys(fact[0] for fact in row["supporting_facts"])
        items.append((row["_id"], row["question"], [ids[title] for title in supporting if title in ids]))
    return pool.corpus, items


def _musique(data_dir) -> tuple[list[Document], list[tuple[str, str, list[str]]]]:
    pool = DocumentPool("musique:")
    items = []
    for row in read_json_lines(shared_file("musique/musique_full_v1.0_train_first100.jsonl", data_dir)):
        ids = pool.add_paragraphs(row["paragraphs"])
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
