"""Which fusion should hybrid search use by default? Every candidate on the validation sets, chosen there.

Hybrid search (`laser_rag.store.VectorCollection.search_hybrid`) fuses the dense top-100 with the BM25 top-100
inside Qdrant. This benchmark scores each fusion candidate — reciprocal rank fusion with rank constant ``k`` and
(dense, sparse) weights, and distribution-based score fusion — with one encoder on the training validation sets
(`laser_rag_datasets.subsets.validation_set`: StrategyQA's validation split, HotpotQA evidence's, and SciFact's
long-document split of claims_train, never the claims_dev queries of the shared SciFact set). The product's goal
for hybrid is never to lose to either of its sides, so a candidate's figure of merit is its *worst* set:
``min over sets of nDCG@10(hybrid) / max(nDCG@10(dense), nDCG@10(BM25))``, the mean breaking ties.

Each query's dense vector and sparse vector are computed once and every candidate fuses the same two prefetches
(the same Qdrant collection, documents' vectors from the benchmark cache: `laser_rag_benchmarks.cache`).

    python -m laser_rag_benchmarks.fusion --out benchmarks/results/fusion.json             # builtin:laser
    python -m laser_rag_benchmarks.fusion --mode basic --sets strategyqa --max-queries 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

#: (name, search_hybrid keyword arguments): Qdrant's RRF (k=2) as shipped first, then the candidates.
CANDIDATES: list[tuple[str, dict]] = [
    ("rrf-k2", {"fusion": "rrf", "rrf_k": 2}),
    ("rrf-k10", {"fusion": "rrf", "rrf_k": 10}),
    ("rrf-k60", {"fusion": "rrf", "rrf_k": 60}),
    ("rrf-k2-sparse2x", {"fusion": "rrf", "rrf_k": 2, "weights": (1.0, 2.0)}),
    ("rrf-k60-sparse2x", {"fusion": "rrf", "rrf_k": 60, "weights": (1.0, 2.0)}),
    ("rrf-k2-dense2x", {"fusion": "rrf", "rrf_k": 2, "weights": (2.0, 1.0)}),
    ("rrf-k60-dense2x", {"fusion": "rrf", "rrf_k": 60, "weights": (2.0, 1.0)}),
    ("dbsf", {"fusion": "dbsf"}),
]
#: The validation sets (`laser_rag_datasets.subsets.validation_set`).
SETS = ("strategyqa", "hotpotqa_evidence", "scifact")


def evaluate_fusions(mode: str, name: str, max_queries: int | None = None, progress: bool = True) -> dict:
    """nDCG@10 and R@10 of dense alone, BM25 (the collection's sparse vectors) alone and every `CANDIDATES` entry
    on validation set ``name`` with the encoder of eval mode ``mode``."""
    from tqdm.auto import tqdm

    from laser_rag.evaluation import judged_queries, score_run
    from laser_rag_benchmarks.retrievers import DEPTH, EvalSettings, memory_collection, mode_encoder
    from laser_rag_benchmarks.shared import SHARED_EVALS
    from laser_rag_datasets.subsets import validation_set

    dataset = validation_set(name)
    # the token limit the shared eval reads the set's documents with (SciFact: 128), so the vectors are the ones
    # its cache holds
    encoder = mode_encoder(mode, EvalSettings(max_length=SHARED_EVALS.get(name, {}).get("max_length")))
    indexed = memory_collection(encoder, dataset.corpus, hybrid=True, progress=progress)
    collection = indexed.collection
    qids = judged_queries(dataset.qrels, list(dataset.queries))[:max_queries]
    runs: dict[str, dict[str, dict[str, float]]] = {"dense": {}, "bm25": {}, **{c: {} for c, _ in CANDIDATES}}
    for qid in tqdm(qids, desc=f"{name} queries", disable=not progress):
        text = dataset.queries[qid]
        vector = encoder.encode_queries([text])[0]
        sparse = collection.sparse_encoder.encode_query(text)
        runs["dense"][qid] = {h.id: h.score for h in collection.search(vector, DEPTH)}
        runs["bm25"][qid] = {h.id: h.score for h in collection.search_sparse(sparse, DEPTH)} if sparse.indices else {}
        for candidate, options in CANDIDATES:
            hits = collection.search_hybrid(vector, sparse, DEPTH, **options)
            # Fused scores tie often (RRF of equal ranks): keep Qdrant's order, not the evaluator's tie-break.
            runs[candidate][qid] = {h.id: float(DEPTH - rank) for rank, h in enumerate(hits)}
    qrels = {qid: dataset.qrels[qid] for qid in qids}
    scores = {run: score_run(qrels, ranked, ("ndcg_cut_10", "recall_10")) for run, ranked in runs.items()}
    return {"queries": len(qids), "documents": len(dataset.corpus), "encoder": encoder.label,
            "fingerprint": encoder.fingerprint, "index_seconds": round(indexed.seconds, 1), "scores": scores}


def choose(sets: dict[str, dict]) -> tuple[str, dict[str, dict]]:
    """The candidate with the best worst-set ratio to max(dense, BM25), ties broken by mean nDCG@10; and each
    candidate's ``{"worst_ratio", "mean_ndcg"}``."""
    summary = {}
    for candidate, _ in CANDIDATES:
        ratios, ndcgs = [], []
        for result in sets.values():
            scores = result["scores"]
            best_side = max(scores["dense"]["ndcg_cut_10"], scores["bm25"]["ndcg_cut_10"])
            ndcgs.append(scores[candidate]["ndcg_cut_10"])
            ratios.append(ndcgs[-1] / best_side if best_side else 1.0)
        summary[candidate] = {"worst_ratio": round(min(ratios), 4), "mean_ndcg": round(sum(ndcgs) / len(ndcgs), 4)}
    best = max(summary, key=lambda c: (summary[c]["worst_ratio"], summary[c]["mean_ndcg"]))
    return best, summary


def main() -> None:
    import torch

    from laser_rag import runtime

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="laser", help="the eval mode whose encoder is fused (laser, basic, minilm)")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    report = {"benchmark": "fusion", "mode": args.mode, "command": "python -m laser_rag_benchmarks.fusion " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
        "machine": platform.processor() or platform.machine(), "runtime": runtime.runtime_summary(),
        "torch_threads": torch.get_num_threads(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "candidates": dict(CANDIDATES), "sets": {}}
    started = time.perf_counter()
    for name in args.sets.split(","):
        if name not in SETS:
            parser.error(f"unknown set {name!r}; expected some of {', '.join(SETS)}")
        report["sets"][name] = evaluate_fusions(args.mode, name, args.max_queries)
        print(json.dumps({name: {run: round(s["ndcg_cut_10"], 4)
                                 for run, s in report["sets"][name]["scores"].items()}}), flush=True)
    report["chosen"], report["summary"] = choose(report["sets"])
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps({"chosen": report["chosen"], "summary": report["summary"]}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
