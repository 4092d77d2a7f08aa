"""Training examples with reasoning paths, built from the shared public sets (via `laser_rag.datasets`).

Each example is a query, its rationale as reasoning segments (the explicit view's input), the documents it may be
trained towards (``targets``), every document relevant to it (``positives``: never used as its negative) and
hard negatives mined with BM25 from the same pooled corpus. Only ``train`` splits are read for queries; the
documents relevant to validation/test queries are kept out of the negative pools too.

- StrategyQA (train split by question): rationale = the decomposition steps, then the facts, one segment each
  (a human-written reasoning path); targets = the question's golden Wikipedia sentences.
- SciFact (claims_train; claims_dev is validation): rationale = the cited abstracts' rationale sentences;
  target = the cited abstract (title + text). Claims without rationale sentences (NEI) are left out: the explicit
  view would have nothing to read. Licence: CC BY-NC 2.0 (non-commercial).
- HotpotQA evidence (train split): see `hotpotqa_examples` for the rationale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from laser_rag import datasets
from laser_rag.bm25 import BM25Index
from laser_rag.datasets import Document, document_text
from training.segments import join_segments

#: The sources `build_training_set` knows, by their `laser_rag.datasets.shared_dataset` name.
SOURCES = ("strategyqa", "scifact", "hotpotqa_evidence")
#: Splits whose queries are never trained on.
HELD_OUT_SPLITS = {"strategyqa": ("validation", "test"), "hotpotqa_evidence": ("validation", "test"),
                   "scifact": ("validation",)}


@dataclass
class TrainExample:
    """One training query. Document ids refer to `TrainingSet.documents`."""

    qid: str
    source: str
    query: str
    #: The rationale, one reasoning step per segment (the explicit view joins them).
    segments: list[str]
    #: The contrastive positive is drawn from these.
    targets: list[str]
    #: Every document relevant to this query (targets included): never a negative for it.
    positives: list[str]
    #: Hard negatives, BM25 rank order (filled in by `mine_negatives`).
    negatives: list[str] = field(default_factory=list)


@dataclass
class TrainingSet:
    examples: list[TrainExample]
    #: Document id -> the text the encoder reads (`laser_rag.datasets.document_text`).
    documents: dict[str, str]


def strategyqa_examples(split: str = "train") -> list[TrainExample]:
    """StrategyQA questions with at least one golden sentence; rationale = decomposition steps + facts."""
    examples = []
    for r in datasets.strategyqa_records(split):
        ids = [doc_id for doc_id, _ in r["positives"]]
        if ids:
            segments = [s for s in (*r["decomposition"], *r["facts"]) if s.strip()]
            examples.append(TrainExample(r["qid"], "strategyqa", r["question"], segments, ids, ids))
    return examples


def scifact_examples(split: str = "train") -> list[TrainExample]:
    """SciFact claims that carry rationale sentences; target = the cited abstract(s)."""
    examples = []
    for c in datasets.scifact_claims(split):
        ids = [doc_id for doc_id, _, _ in c["positives"]]
        if ids and c["rationale_sentences"]:
            examples.append(TrainExample(c["id"], "scifact", c["claim"], list(c["rationale_sentences"]), ids, ids))
    return examples


def _mentions(sentence: str, answer: str) -> bool:
    return bool(answer) and re.search(rf"(?<!\w){re.escape(answer.lower())}(?!\w)", sentence.lower()) is not None


def hotpotqa_examples(split: str = "train") -> list[TrainExample]:
    """HotpotQA questions with gold evidence: the rationale is the *first hop*, the target the *second*.

    The evidence sentences that state the answer are the targets; the other evidence sentences (the bridge:
    what links the question to the answer's passage) followed by "So the answer is <answer>." form the rationale.
    That is the reasoning path a multi-hop reasoner writes (find the bridge entity, then the answer), and it is
    not a verbatim copy of the passage the latent view is trained to find: the student has to learn to jump to the
    second hop from the question alone, which is the hard part of multi-hop retrieval. All evidence sentences stay
    relevant (never negatives). When every or no evidence sentence mentions the answer (comparison questions
    often), all evidence sentences are targets and the rationale is the answer alone.
    """
    examples = []
    for r in datasets.hotpotqa_evidence_records(split):
        ids = [doc_id for doc_id, _ in r["positives"]]
        if not ids:
            continue
        answer_ids = [doc_id for doc_id, text in r["positives"] if _mentions(text, r["answer"])]
        conclusion = f"So the answer is {r['answer']}."
        if 0 < len(answer_ids) < len(ids):
            bridge = [text for doc_id, text in r["positives"] if doc_id not in answer_ids]
            examples.append(TrainExample(r["id"], "hotpotqa_evidence", r["question"], [*bridge, conclusion],
                                         answer_ids, ids))
        else:
            examples.append(TrainExample(r["id"], "hotpotqa_evidence", r["question"], [conclusion], ids, ids))
    return examples


_BUILDERS = {"strategyqa": strategyqa_examples, "scifact": scifact_examples, "hotpotqa_evidence": hotpotqa_examples}


def rationales(source: str, split: str) -> dict[str, str]:
    """Query id -> the explicit view's rationale (segments joined as in training) for ``source``'s ``split``."""
    return {e.qid: join_segments(e.segments)[0] for e in _BUILDERS[source](split)}


def held_out_relevant(source: str) -> set[str]:
    """Ids of the documents relevant to any validation/test query of ``source``."""
    return {doc_id for split in HELD_OUT_SPLITS[source]
            for docs in datasets.shared_dataset(source, split).qrels.values() for doc_id in docs}


def mine_negatives(
    examples: list[TrainExample], corpus: list[Document], depth: int = 30, exclude: Iterable[str] = ()
) -> None:
    """Fill each example's ``negatives`` with up to ``depth`` BM25 hits for its query (best first) from ``corpus``,
    leaving out its positives, any document whose text equals a positive's, and the ``exclude`` ids."""
    excluded = set(exclude)
    pool = [doc for doc in corpus if doc.id not in excluded]
    text = {doc.id: " ".join(document_text(doc).split()) for doc in corpus}
    index = BM25Index(pool, stem=False)
    widest = max((len(e.positives) for e in examples), default=0)
    for example in examples:
        banned = {text[p] for p in example.positives}
        hits = (doc_id for doc_id, _ in index.search(example.query, k=depth + widest + 5))
        example.negatives = [d for d in hits if d not in example.positives and text[d] not in banned][:depth]


def build_training_set(sources: Iterable[str] = SOURCES, negatives_depth: int = 30) -> TrainingSet:
    """Train-split examples of ``sources`` with their hard negatives, and the text of every document they use."""
    examples, documents = [], {}
    for source in sources:
        if source not in _BUILDERS:
            raise ValueError(f"unknown training source {source!r}; expected one of {SOURCES}")
        corpus = datasets.shared_dataset(source, "train").corpus
        part = _BUILDERS[source]("train")
        mine_negatives(part, corpus, negatives_depth, exclude=held_out_relevant(source))
        used = {d for e in part for d in (*e.positives, *e.negatives)}
        documents.update({doc.id: document_text(doc) for doc in corpus if doc.id in used})
        examples.extend(part)
    return TrainingSet(examples, documents)
