"""Where one mode loses to another, query by query: two modes' per-query nDCG@10 from one `laser-rag eval` report,
split by how much of each query's wording its relevant document contains.

A query's *overlap* is the share of its distinct terms (the BM25 tokenizer's: English stopwords out, Snowball
stems) that occur in its best-covering relevant document (title and text, whole). Queries are split into quartiles
of overlap; for each quartile the report gives both modes' mean nDCG@10 and their difference, and for all queries
the Spearman correlation between overlap and the per-query difference. If a dense encoder's deficit against BM25
sits in the high-overlap quartiles, it is losing on exact term matches; if it is flat, it is not.

    laser-rag eval --dataset scifact --modes bm25,laser --max-docs 1000 --out R.json
    python benchmarks/per_query_gap.py R.json --dataset scifact --modes bm25,laser --out G.json

Seconds on one core (no model: the report holds the rankings' scores, the dataset the words).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from laser_rag.util import atomic_write
from laser_rag.sparse import SparseEncoder
from laser_rag_datasets.shared import shared_dataset
from laser_rag_benchmarks.report import EvalReport


def _terms(texts: list[str]) -> list[set[str]]:
    return [set(row) for row in SparseEncoder().tokens(texts)]  # the terms hybrid search's sparse vectors match


def query_overlap(queries: dict[str, str], qrels: dict[str, dict[str, int]], texts: dict[str, str]) -> dict[str, float]:
    """Per query: the largest share of its distinct terms found in one of its relevant documents (``texts``:
    document id -> title and text); queries without terms or relevant text are left out."""
    qids = [qid for qid in queries if any(g > 0 and d in texts for d, g in qrels.get(qid, {}).items())]
    query_terms = dict(zip(qids, _terms([queries[qid] for qid in qids])))
    relevant = sorted({d for qid in qids for d, g in qrels[qid].items() if g > 0 and d in texts})
    doc_terms = dict(zip(relevant, _terms([texts[d] for d in relevant])))
    overlap = {}
    for qid in qids:
        terms = query_terms[qid]
        if terms:
            overlap[qid] = max(len(terms & doc_terms[d]) / len(terms)
                               for d, g in qrels[qid].items() if g > 0 and d in doc_terms)
    return overlap


def gap_by_overlap(report: EvalReport, base: str, other: str, overlap: dict[str, float], *,
                   metric: str = "ndcg_cut_10", bins: int = 4) -> dict[str, Any]:
    """``other`` against ``base`` (two modes of ``report``, each with its ``per_query`` figures), in ``bins``
    equal-count bins of ``overlap`` (lowest first)."""
    from scipy.stats import spearmanr

    results = {}
    for mode in (base, other):
        result = report.result(mode)
        if result is None or not result.per_query:
            raise ValueError(f"{mode!r} has no per-query figures in this report: re-run laser-rag eval with it")
        results[mode] = result.per_query
    qids = sorted((q for q in overlap if q in results[base] and q in results[other]), key=lambda q: (overlap[q], q))
    if len(qids) < bins:
        raise ValueError(f"{len(qids)} queries cannot fill {bins} bins")
    rows = []
    for part in np.array_split(np.array(qids), bins):
        b = [results[base][q][metric] for q in part]
        o = [results[other][q][metric] for q in part]
        rows.append({"queries": len(part), "overlap_min": overlap[part[0]], "overlap_max": overlap[part[-1]],
                     base: float(np.mean(b)), other: float(np.mean(o)), "difference": float(np.mean(o) - np.mean(b)),
                     f"{other}_wins": int(sum(x > y for x, y in zip(o, b))),
                     f"{base}_wins": int(sum(y > x for x, y in zip(o, b)))})
    difference = [results[other][q][metric] - results[base][q][metric] for q in qids]
    values = [overlap[q] for q in qids]
    rho, p = (None, None)  # undefined when either side is constant (e.g. a mode against itself)
    if len(set(difference)) > 1 and len(set(values)) > 1:
        rho, p = (float(x) for x in spearmanr(values, difference))
    return {"metric": metric, "base": base, "other": other, "queries": len(qids),
            base: float(np.mean([results[base][q][metric] for q in qids])),
            other: float(np.mean([results[other][q][metric] for q in qids])),
            "spearman_overlap_vs_difference": rho, "spearman_p": p, "bins": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="A `laser-rag eval --out` JSON with per-query figures.")
    parser.add_argument("--dataset", required=True, help="The shared set the report was run on (its words).")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--modes", default="bm25,laser", help="base,other: how other fares against base.")
    parser.add_argument("--bins", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    base, other = args.modes.split(",")
    report = EvalReport.load(args.report)
    dataset = shared_dataset(args.dataset, args.split)
    texts = {doc.id: f"{doc.title} {doc.text}" for doc in dataset.corpus}
    queries = {qid: dataset.queries[qid] for qid in report.result(base).per_query if qid in dataset.queries}
    gap = gap_by_overlap(report, base, other, query_overlap(queries, dataset.qrels, texts), bins=args.bins)
    gap.update(report=str(args.report), dataset=report.dataset,
               command=f"python benchmarks/per_query_gap.py {args.report} --dataset {args.dataset} --modes "
                       f"{args.modes}")
    text = json.dumps(gap, indent=1)
    print(text)
    if args.out:
        atomic_write(args.out, text + "\n")


if __name__ == "__main__":
    main()
