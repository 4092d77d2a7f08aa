"""Training examples with reasoning paths, built from the shared public sets
(`laser_rag_datasets.shared`), and the run's batches.

Each example is a query, its rationale as reasoning segments (the explicit view's input), the documents it may be
trained towards (``targets``), every document relevant to it (``positives``: never used as its negative) and
hard negatives mined with BM25 from the same pooled corpus. Only ``train`` splits are read for queries; the
documents relevant to validation/test queries are kept out of the negative pools too.

- StrategyQA (train split by question): rationale = the decomposition steps, then the facts, one segment each
  (a human-written reasoning path); targets = the question's golden Wikipedia sentences.
- SciFact (claims_train, split again ~80/10/10 by `split_of` the claim id: its validation part is the
  long-document validation set, as claims_dev is the shared evaluation set's queries and is never tuned on):
  rationale = the cited abstracts' rationale sentences; target = the cited abstract (title + text). Claims without
  rationale sentences (NEI) are left out: the explicit view would have nothing to read. Licence: CC BY-NC 2.0.
- HotpotQA evidence (train split): see `hotpotqa_examples` for the rationale.
- IRCoT (all 89 demos; none is an evaluation question): rationale = the hand-written chain of thought, one
  sentence per segment; targets = the Wikipedia paragraphs its steps cite (paragraph-length documents); negatives
  from the pool of every demo's paragraphs (each demo carries two distractors).

The shared evaluation sets ``hotpotqa`` (dev) and ``musique`` are never trained on: their paragraphs would be the
obvious long-document source, but their questions are what `laser-rag eval` reports.

`plan_batches` fixes the whole run's batch order from the seed (a resumed run replays it); `make_batch` draws each
query's positive and hard negatives.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from laser_rag.bm25 import BM25
from laser_rag.corpus import Document
from laser_rag_datasets import shared
from laser_rag_datasets.subsets import scifact_train_claims
from laser_rag_training.segments import join_segments

#: The sources `build_training_set` knows, by their `laser_rag_datasets.shared.shared_dataset` name.
SOURCES = ("strategyqa", "scifact", "hotpotqa_evidence", "ircot")
#: Splits whose queries are never trained on.
HELD_OUT_SPLITS = {"strategyqa": ("validation", "test"), "hotpotqa_evidence": ("validation", "test"),
                   "scifact": ("validation", "test"), "ircot": ()}


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
    #: Document id -> the document (the encoder turns it into text: `BaseEncoder.document_text`).
    documents: dict[str, Document]

    def limit(self, per_source: int) -> TrainingSet:
        """The first ``per_source`` examples of each source (0: all), for quick runs and tests."""
        if not per_source:
            return self
        kept, seen = [], {}
        for example in self.examples:
            seen[example.source] = seen.get(example.source, 0) + 1
            if seen[example.source] <= per_source:
                kept.append(example)
        return TrainingSet(kept, self.documents)


def strategyqa_examples(split: str = "train") -> list[TrainExample]:
    """StrategyQA questions with at least one golden sentence; rationale = decomposition steps + facts."""
    examples = []
    for r in shared.strategyqa_records(split):
        ids = [doc_id for doc_id, _ in r["positives"]]
        if ids:
            segments = [s for s in (*r["decomposition"], *r["facts"]) if s.strip()]
            examples.append(TrainExample(r["qid"], "strategyqa", r["question"], segments, ids, ids))
    return examples


def scifact_examples(split: str = "train") -> list[TrainExample]:
    """SciFact claims (claims_train's ``split`` part) that carry rationale sentences; target = the cited
    abstract(s)."""
    examples = []
    for c in scifact_train_claims(split):
        ids = [doc_id for doc_id, _, _ in c["positives"]]
        if ids and c["rationale_sentences"]:
            examples.append(TrainExample(c["id"], "scifact", c["claim"], list(c["rationale_sentences"]), ids, ids))
    return examples


def mentions_answer(sentence: str, answer: str) -> bool:
    """Whether ``sentence`` states ``answer`` as a whole word or phrase (case-insensitive): the test that splits a
    HotpotQA question's evidence into its first and second hop."""
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
    for r in shared.hotpotqa_evidence_records(split):
        ids = [doc_id for doc_id, _ in r["positives"]]
        if not ids:
            continue
        answer_ids = [doc_id for doc_id, text in r["positives"] if mentions_answer(text, r["answer"])]
        conclusion = f"So the answer is {r['answer']}."
        if 0 < len(answer_ids) < len(ids):
            bridge = [text for doc_id, text in r["positives"] if doc_id not in answer_ids]
            examples.append(TrainExample(r["id"], "hotpotqa_evidence", r["question"], [*bridge, conclusion],
                                         answer_ids, ids))
        else:
            examples.append(TrainExample(r["id"], "hotpotqa_evidence", r["question"], [conclusion], ids, ids))
    return examples


def ircot_examples(split: str = "train") -> list[TrainExample]:
    """IRCoT demos: rationale = the chain of thought; targets = every paragraph it cites (all train: no split)."""
    if split != "train":
        return []
    return [TrainExample(r["id"], "ircot", r["question"], r["reasoning"], ids, ids)
            for r in shared.ircot_records()[1] if (ids := [doc_id for doc_id, _ in r["positives"]])]


_BUILDERS = {"strategyqa": strategyqa_examples, "scifact": scifact_examples, "hotpotqa_evidence": hotpotqa_examples,
             "ircot": ircot_examples}


def _corpus(source: str) -> list[Document]:
    """The pool a source's documents (and hard negatives) come from."""
    if source == "ircot":
        return shared.ircot_records()[0]
    return shared.shared_dataset(source, "train").corpus


def rationales(source: str, split: str) -> dict[str, str]:
    """Query id -> the explicit view's rationale (segments joined as in training) for ``source``'s ``split``."""
    return {e.qid: join_segments(e.segments)[0] for e in _BUILDERS[source](split)}


def held_out_relevant(source: str) -> set[str]:
    """Ids of the documents relevant to any validation/test query of ``source`` (for SciFact also claims_dev's,
    the shared evaluation queries)."""
    if source == "scifact":
        claims = [*shared.scifact_claims("validation"),
                  *(c for split in HELD_OUT_SPLITS[source] for c in scifact_train_claims(split))]
        return {doc_id for c in claims for doc_id, _, _ in c["positives"]}
    return {doc_id for split in HELD_OUT_SPLITS[source]
            for docs in shared.shared_dataset(source, split).qrels.values() for doc_id in docs}


def mine_negatives(
    examples: list[TrainExample], corpus: list[Document], depth: int = 30, exclude: Iterable[str] = ()
) -> None:
    """Fill each example's ``negatives`` with up to ``depth`` BM25 hits for its query (best first) from ``corpus``,
    leaving out its positives, any document whose text equals a positive's, and the ``exclude`` ids."""
    excluded = set(exclude)
    pool = [doc for doc in corpus if doc.id not in excluded]
    text = {doc.id: " ".join(f"{doc.title}\n{doc.text}".split()) for doc in corpus}
    index = BM25(pool, stem=False)
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
        corpus = _corpus(source)
        part = _BUILDERS[source]("train")
        mine_negatives(part, corpus, negatives_depth, exclude=held_out_relevant(source))
        used = {d for e in part for d in (*e.positives, *e.negatives)}
        documents.update({doc.id: doc for doc in corpus if doc.id in used})
        examples.extend(part)
    return TrainingSet(examples, documents)


# ---------------------------------------------------------------------------------------------------------------
# Batches


def plan_batches(examples: list[TrainExample], mix: Mapping[str, float], batch_size: int, *, seed: int = 0,
                 max_steps: int = 0, epochs: float = 1.0) -> list[list[int]]:
    """The whole run's batches (example indices), fixed by the seed: a resumed run replays the same order.

    Every batch holds one source (harder in-batch negatives); each epoch uses each source's examples ``mix[source]``
    times (fractions: a random part), shuffled, and interleaves the sources' batches. ``max_steps`` batches
    (0: ``epochs`` passes).
    """
    rng = random.Random(f"{seed}:plan")
    by_source: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        by_source.setdefault(example.source, []).append(index)

    def epoch() -> list[list[int]]:
        batches = []
        for source, indices in sorted(by_source.items()):
            weight = mix.get(source, 0.0)
            chosen = indices * int(weight) + rng.sample(indices, round((weight % 1) * len(indices)))
            rng.shuffle(chosen)
            batches += [chosen[i:i + batch_size] for i in range(0, len(chosen), batch_size)]
        batches = [b for b in batches if len(b) >= 2]
        rng.shuffle(batches)
        return batches

    plan = epoch()
    total = max_steps or math.ceil(epochs * len(plan))
    while len(plan) < total:
        plan += epoch()
    return plan[:total]


@dataclass
class Batch:
    examples: list[TrainExample]
    doc_ids: list[str]
    positive_index: torch.Tensor  # [B]
    exclude: torch.Tensor  # [B, N]: other documents relevant to query i


def make_batch(examples: list[TrainExample], hard_negatives: int, rng: random.Random) -> Batch:
    """Draw each query's positive (among its targets) and hard negatives; the batch's documents, deduplicated."""
    doc_ids: list[str] = []
    position: dict[str, int] = {}

    def add(doc_id: str) -> int:
        if doc_id not in position:
            position[doc_id] = len(doc_ids)
            doc_ids.append(doc_id)
        return position[doc_id]

    positive_index = [add(rng.choice(e.targets)) for e in examples]
    for e in examples:
        for doc_id in rng.sample(e.negatives, min(hard_negatives, len(e.negatives))):
            add(doc_id)
    relevant = [set(e.positives) for e in examples]
    exclude = torch.tensor([[d in positives for d in doc_ids] for positives in relevant], dtype=torch.bool)
    return Batch(examples, doc_ids, torch.tensor(positive_index), exclude)
