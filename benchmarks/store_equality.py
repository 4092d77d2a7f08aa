"""Does the embedded default's engine change what is retrieved? nDCG@10 of the same vectors stored in qdrant-client's
local mode (the embedded store before Qdrant Edge: a Python scan) and in the embedded default (Qdrant Edge,
`laser_rag.store.connect(folder)`), dense and hybrid (dense + BM25, DBSF), on the four shared sets.

Data: the shared sets as the project evaluates them (`laser_rag_benchmarks.shared.SHARED_EVALS` slices:
validation, the first 50 judged queries, their relevant documents plus distractors up to 1,000 documents;
/work/shared/data via `laser_rag_datasets.shared`), encoded once by ``--encoder`` (default all-MiniLM-L6-v2; document
vectors cached by `laser_rag_benchmarks.cache`). Each set is written through the production path
(`VectorCollection.open(store, ..., hybrid=True)`, `upsert`, `build_index`) into both stores and searched with
`VectorCollection.search` and `search_hybrid` (their defaults). The issue-28 bar: Edge within 0.005 nDCG@10 of
local mode on every set and search.

    nice -n 15 python benchmarks/store_equality.py --out benchmarks/results/store_equality.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ("hotpotqa", "strategyqa", "musique", "scifact")
#: The largest nDCG@10 difference issue 28 allows between the two engines.
TOLERANCE = 0.005


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _ndcg(collection, encoder, dataset, qids: list[str], queries, hybrid: bool) -> tuple[float, dict]:
    from laser_rag.evaluation import score_run

    run = {}
    for qid, vector in zip(qids, queries):
        if hybrid:
            sparse = collection.sparse_encoder.encode_query(dataset.queries[qid])
            hits = collection.search_hybrid(vector, sparse, 10)
        else:
            hits = collection.search(vector, 10)
        run[qid] = {hit.id: hit.score for hit in hits}
    score = score_run({qid: dataset.qrels[qid] for qid in qids}, run, ["ndcg_cut_10"])["ndcg_cut_10"]
    return round(score, 4), run


def run_set(name: str, encoder, folder: Path) -> dict:
    from laser_rag.evaluation import judged_queries
    from laser_rag.store import VectorCollection, connect, release
    from laser_rag.store.clients import local_mode_client
    from laser_rag_benchmarks.cache import document_vectors
    from laser_rag_benchmarks.shared import shared_slice

    dataset = shared_slice(name)
    qids = judged_queries(dataset.qrels, list(dataset.queries))
    load_before = _load()
    matrix, encode_seconds, cached = document_vectors(encoder, dataset.corpus, progress=False)
    queries = encoder.encode_queries([dataset.queries[q] for q in qids])
    stores = {"local mode": lambda path: local_mode_client(path), "edge (embedded default)": lambda path: connect(path)}
    scores, runs = {}, {}
    for label, opener in stores.items():
        path = folder / f"{name}-{label.split()[0]}"
        store = opener(path)
        try:
            collection = VectorCollection.open(store, name, encoder, hybrid=True)
            for start in range(0, len(dataset.corpus), 500):
                collection.upsert(dataset.corpus[start:start + 500], matrix[start:start + 500])
            collection.build_index()
            scores[label], runs[label] = {}, {}
            for search, hybrid in (("dense", False), ("hybrid (dbsf)", True)):
                scores[label][search], runs[label][search] = _ndcg(collection, encoder, dataset, qids, queries, hybrid)
        finally:
            store.close() if label == "local mode" else release(path)
            shutil.rmtree(path, ignore_errors=True)
    local, edge = scores["local mode"], scores["edge (embedded default)"]
    differences = {search: round(edge[search] - local[search], 4) for search in local}
    overlap = {search: round(sum(len(set(runs["local mode"][search][q]) & set(runs["edge (embedded default)"][search][q]))
                                 for q in qids) / (10 * len(qids)), 4) for search in local}
    result = {"set": name, "documents": len(dataset.corpus), "queries": len(qids), "ndcg@10": scores,
              "edge_minus_local": differences, "top10_overlap": overlap,
              "within_tolerance": all(abs(d) <= TOLERANCE for d in differences.values()),
              "encode_seconds": round(encode_seconds, 1), "vectors_from_cache": cached,
              "load_average": [load_before, _load()]}
    print(json.dumps({k: result[k] for k in ("set", "ndcg@10", "edge_minus_local", "top10_overlap")}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", default="all-minilm-l6-v2")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--out", type=Path, default=RESULTS / "store_equality.json")
    args = parser.parse_args()

    from laser_rag.encoders import load_encoder
    from laser_rag_benchmarks.store_quantization import encoder_report, run_sets

    encoder = load_encoder(args.encoder)
    sets = [s for s in args.sets.split(",") if s]
    report = encoder_report("store_equality", encoder, sets, dtype_stored="float32", tolerance=TOLERANCE,
                            data="SHARED_EVALS slices (50 queries, <= 1,000 docs)")
    run_sets(report, sets, lambda name, folder: run_set(name, encoder, folder), args.out, "laser-rag-equality-")


if __name__ == "__main__":
    main()
