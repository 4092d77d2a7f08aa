"""Smaller retrieval sets cut from the shared public sets: `slice_dataset` for quick runs and tests, and the
validation sets a trained encoder is checked on (`validation_set`), which training and the fusion benchmark share.
"""

from __future__ import annotations

import random

from laser_rag.beir import RetrievalDataset
from laser_rag.evaluation import judged_queries
from laser_rag_datasets import shared

__all__ = ["scifact_train_claims", "slice_dataset", "validation_set"]


def slice_dataset(dataset: RetrievalDataset, max_queries: int | None = None, max_docs: int | None = None,
                  seed: int = 0) -> RetrievalDataset:
    """A smaller copy: the first ``max_queries`` judged queries, and a corpus of their relevant documents plus
    distractors drawn at random (``seed``) up to ``max_docs`` (never fewer than the relevant ones). Corpus order
    is kept. For quick runs and tests; figures on a slice are not comparable with the full set's."""
    qids = judged_queries(dataset.qrels, list(dataset.queries))[:max_queries]
    relevant = {doc_id for qid in qids for doc_id in dataset.qrels[qid]}
    keep = {doc.id for doc in dataset.corpus if doc.id in relevant}
    if max_docs is None:
        keep = {doc.id for doc in dataset.corpus}
    else:
        others = [doc.id for doc in dataset.corpus if doc.id not in keep]
        keep |= set(random.Random(seed).sample(others, max(0, min(len(others), max_docs - len(keep)))))
    return RetrievalDataset(
        f"{dataset.name}[{len(qids)}q,{len(keep)}d]",
        [doc for doc in dataset.corpus if doc.id in keep],
        {qid: dataset.queries[qid] for qid in qids},
        {qid: {d: g for d, g in dataset.qrels[qid].items() if d in keep} for qid in qids},
    )


def scifact_train_claims(split: str) -> list[dict]:
    """claims_train's part ``split`` (by `laser_rag_datasets.shared.split_of` the claim id, or "all"): its
    "validation" and "test" parts are the long-document validation sets, as claims_dev is the shared evaluation
    set's queries and is never tuned on."""
    return [c for c in shared.scifact_claims("train") if split == "all" or shared.split_of(c["id"]) == split]


def validation_set(source: str, split: str = "validation", max_docs: int = 1000) -> RetrievalDataset:
    """The retrieval set a trained encoder is validated on for ``source``: the shared set's ``split`` for
    StrategyQA and HotpotQA evidence (short passages, the whole pool); for SciFact, the abstracts judged for
    claims_train's ``split`` part (`scifact_train_claims`) plus random distractors up to ``max_docs`` abstracts
    (the long-document validation set; the whole abstract pool is too slow to encode at every validation)."""
    if source != "scifact":
        return shared.shared_dataset(source, split)
    full = shared.shared_dataset("scifact", "train")
    claims = {c["id"] for c in scifact_train_claims(split)}
    part = RetrievalDataset(f"scifact/train-{split}", full.corpus,
                            {q: t for q, t in full.queries.items() if q in claims},
                            {q: r for q, r in full.qrels.items() if q in claims})
    return slice_dataset(part, max_docs=max_docs)
