"""Question answering evaluation: questions with gold answers and the corpus to answer from, the answer metrics
of LatentRAG / Search-R1 (SQuAD's normalisation) and the statistics to compare two systems with.

- `load_qa` reads a HotpotQA file (official layout: a JSON list or JSON lines), a MuSiQue JSON-lines file, or one
  of the shared sets by name: ``"hotpotqa"`` (dev_100), ``"musique"`` (its answerable half) or ``"strategyqa"``
  (the test split of `laser_rag_datasets.shared.strategyqa_records`, answers "yes"/"no").
- Metrics, per question: `exact_match`, `f1_score`, `cover_match` (a gold answer inside the prediction) and
  `answer_in_text` (a gold answer inside a retrieved document: the "retrieval success" of one retrieval).
- Statistics over per-question values: `bootstrap_ci`, `paired_bootstrap` (system a minus system b) and `mcnemar`
  (exact test on the questions the two systems disagree on).

Example::

    qa = load_qa("hotpotqa", limit=20)                  # 20 questions; qa.corpus pools all 100 questions' paragraphs
    em = [exact_match(predict(item.question), item.answers) for item in qa.items]
    mean, low, high = bootstrap_ci(em)
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from laser_rag.corpus import Document
from laser_rag_datasets.shared import (
    DocumentPool,
    read_json_lines,
    shared_dataset,
    shared_file,
    short_hash,
    strategyqa_records,
)

__all__ = [
    "QA_SETS",
    "QAItem",
    "QASet",
    "answer_in_text",
    "bootstrap_ci",
    "cover_match",
    "exact_match",
    "f1_score",
    "load_qa",
    "mcnemar",
    "normalize_answer",
    "paired_bootstrap",
]

#: The shared sets `load_qa` knows by name, and their files under the shared data.
QA_SETS = {"hotpotqa": "hotpotqa/dev_100.jsonl", "musique": "musique/musique_full_v1.0_train_first100.jsonl",
           "strategyqa": "strategyqa/train_gdsent.json"}


@dataclass
class QAItem:
    """One question. ``answers``: the gold answer first, then its aliases; ``supporting``: the ids (in the set's
    corpus) of the passages that support the answer, possibly none; ``kind``: e.g. HotpotQA's bridge/comparison."""

    id: str
    question: str
    answers: list[str]
    supporting: list[str]
    kind: str = ""


@dataclass
class QASet:
    """Questions and the corpus to answer them from (every question's passages pooled, identical ones once)."""

    name: str
    items: list[QAItem]
    corpus: list[Document]

    def limit(self, n: int | None) -> QASet:
        """The first ``n`` questions (None: all); the corpus stays whole."""
        return self if n is None else QASet(self.name, self.items[:n], self.corpus)


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_qa(source: str | Path, *, limit: int | None = None) -> QASet:
    """A QA set: one of `QA_SETS` by name, or a file.

    - HotpotQA layout (a JSON list or JSON lines): ``_id`` (or ``id``), ``question``, ``answer``, ``context``
      (``[title, [sentences]]`` pairs), ``supporting_facts`` (``[title, sentence index]``; only the title is read,
      so AMOR's ``[title, [indices], [sentences], {...}]`` works too) and an optional ``type`` (the item's kind).
      A paragraph's text is its sentences joined and stripped, and its id that of ``shared_dataset("hotpotqa")``.
    - MuSiQue layout (JSON lines): ``paragraphs`` (``title``, ``paragraph_text``, ``is_supporting``), ``answer``,
      ``answer_aliases``; items with ``answerable`` false are left out. The kind is the id's prefix (``2hop``...).
    - ``"strategyqa"``: the test split; answers ["yes"] or ["no"]; corpus: every golden sentence of StrategyQA
      (``shared_dataset("strategyqa", "test").corpus``); questions without a golden sentence are left out.

    ``limit``: keep the first ``limit`` questions (the corpus stays whole). FileNotFoundError for a missing file,
    ValueError naming the file for an empty one or a record without a question, answer or passages.
    """
    if isinstance(source, str) and source in QA_SETS:
        name = source
        qa = _strategyqa() if name == "strategyqa" else _from_rows(name, shared_file(QA_SETS[name]))
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"QA file not found: {path}" + ("" if path.suffix else
                                    f" (nor is {str(source)!r} a shared set: {', '.join(QA_SETS)})"))
        qa = _from_rows(path.name.split(".")[0], path)
    return qa.limit(limit)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON ({error.msg}, line {error.lineno})") from None
        if not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"{path}: expected a list of JSON objects")
    else:
        rows = read_json_lines(path)
    if not rows:
        raise ValueError(f"{path}: no questions in the file")
    return rows


def _require(row: dict, keys: Sequence[str], path: Path, index: int) -> None:
    missing = [key for key in keys if key not in row]
    if missing:
        raise ValueError(f"{path}, record {index + 1}: missing {', '.join(map(repr, missing))}")


def _answers(row: dict) -> list[str]:
    return list(dict.fromkeys(str(a) for a in [row["answer"], *(row.get("answer_aliases") or [])]))


def _from_rows(name: str, path: Path) -> QASet:
    rows = _read_rows(path)
    musique = "paragraphs" in rows[0]
    pool = DocumentPool("musique:" if musique else "hotpot:")  # the ids of `shared_dataset("musique"/"hotpotqa")`
    items = []
    for index, row in enumerate(rows):
        if musique:
            _require(row, ("question", "answer", "paragraphs"), path, index)
            if not row.get("answerable", True):
                continue
            qid = str(row.get("id") or short_hash(row["question"]))
            ids = pool.add_paragraphs(row["paragraphs"])
            supporting = list(dict.fromkeys(d for d, is_supporting in ids if is_supporting))
            kind = qid.split("__")[0] if "__" in qid else ""
        else:
            _require(row, ("question", "answer", "context"), path, index)
            qid = str(row.get("_id") or row.get("id") or short_hash(row["question"]))
            ids = pool.add_context(row["context"])
            titles = dict.fromkeys(fact[0] for fact in row.get("supporting_facts") or [])
            supporting, kind = [ids[title] for title in titles if title in ids], str(row.get("type") or "")
        items.append(QAItem(qid, row["question"], _answers(row), supporting, kind))
    if not items:
        raise ValueError(f"{path}: no answerable question in the file")
    return QASet(name, items, pool.corpus)


def _strategyqa() -> QASet:
    items = [QAItem(r["qid"], r["question"], ["yes" if r["answer"] else "no"], [d for d, _ in r["positives"]])
             for r in strategyqa_records("test") if r["positives"]]
    return QASet("strategyqa", items, shared_dataset("strategyqa", "test").corpus)


# ---------------------------------------------------------------------------------------------------------------
# Metrics (SQuAD's normalisation, as LatentRAG and Search-R1 use it)

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_YES_NO = ("yes", "no", "noanswer")


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (SQuAD's rule)."""
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", s).split())


def _as_list(answers: str | Sequence[str]) -> list[str]:
    return [answers] if isinstance(answers, str) else list(answers)


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    guess = normalize_answer(prediction)
    return float(any(guess == normalize_answer(answer) for answer in _as_list(answers)))


def _f1(prediction: str, answer: str) -> float:
    guess, gold = normalize_answer(prediction), normalize_answer(answer)
    if (guess in _YES_NO or gold in _YES_NO) and guess != gold:
        return 0.0
    common = sum((Counter(guess.split()) & Counter(gold.split())).values())
    if not common:
        return 0.0
    precision, recall = common / len(guess.split()), common / len(gold.split())
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, answers: str | Sequence[str]) -> float:
    """Token F1 of the normalised prediction against the best gold answer; a yes/no/noanswer on either side that
    differs from the other side scores 0 (HotpotQA's rule)."""
    return max((_f1(prediction, answer) for answer in _as_list(answers)), default=0.0)


def _contains(text: str, answers: str | Sequence[str]) -> bool:
    normalised = normalize_answer(text)
    return any(gold and gold in normalised for gold in map(normalize_answer, _as_list(answers)))


def cover_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 when a normalised gold answer occurs in the normalised prediction (substring), else 0.0."""
    return float(_contains(prediction, answers))


def answer_in_text(answers: str | Sequence[str], text: str) -> bool:
    """Whether a normalised gold answer occurs in the normalised ``text`` (a retrieved document): the retrieval
    success test of one retrieval."""
    return _contains(text, answers)


# ---------------------------------------------------------------------------------------------------------------
# Statistics


def _resampled_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return values[rng.integers(0, len(values), size=(samples, len(values)))].mean(axis=1)


def _interval(values: Sequence[float], samples: int, confidence: float, seed: int) -> tuple[float, float, float]:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not len(array):
        raise ValueError("bootstrap needs a non-empty list of per-question values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    means = _resampled_means(array, samples, seed)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(array.mean()), float(low), float(high)


def bootstrap_ci(values: Sequence[float], *, samples: int = 2000, confidence: float = 0.95, seed: int = 0,
                 ) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-question ``values`` and its percentile bootstrap interval (``samples``
    resamples of the questions, seeded)."""
    return _interval(values, samples, confidence, seed)


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, samples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, low, high) of a - b over the same questions, resampling questions (the pairs stay
    together): an interval that excludes 0 says a and b differ."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return _interval(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), samples, confidence, seed)


def mcnemar(a_correct: Sequence[bool | float], b_correct: Sequence[bool | float]) -> float:
    """Exact two-sided McNemar p-value: a binomial(n, 1/2) test on the n questions exactly one of a and b got right
    (values are truthy for correct); 1.0 when there is none."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired values need equal lengths, got {len(a_correct)} and {len(b_correct)}")
    only_a = sum(1 for x, y in zip(a_correct, b_correct) if x and not y)
    only_b = sum(1 for x, y in zip(a_correct, b_correct) if y and not x)
    n = only_a + only_b
    if not n:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)
