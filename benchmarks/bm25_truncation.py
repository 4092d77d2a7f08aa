"""How much of BM25's lead on SciFact is text the LLM encoders are not shown: BM25 over each abstract cut to the
first N tokens of the encoder's tokenizer (the cut `laser-rag eval --max-length N` gives the dense encoders).

The pool is `laser-rag eval --dataset scifact --max-docs 1000`'s (claims_dev's 300 claims, their cited abstracts
plus the same random distractors); BM25 is `laser_rag.bm25.BM25`, the eval's lexical anchor.

    python benchmarks/bm25_truncation.py --out benchmarks/results/bm25_truncation.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from laser_rag.bm25 import BM25
from laser_rag.corpus import document_text
from laser_rag.encoders import LaSEREncoder
from laser_rag.evaluation import score_run
from laser_rag_datasets.shared import LICENSES, shared_dataset
from laser_rag_datasets.subsets import slice_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="builtin:laser", help="The encoder whose tokenizer cuts the text.")
    parser.add_argument("--lengths", default="0,512,256,128", help="Token budgets (0: the whole abstract).")
    parser.add_argument("--max-docs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    dataset = slice_dataset(shared_dataset("scifact", "validation"), None, args.max_docs)
    encoder = LaSEREncoder.from_pretrained(args.source, dtype="float32")
    texts = [document_text(doc.title, doc.text) for doc in dataset.corpus]
    rows = []
    for length in (int(n) for n in args.lengths.split(",")):
        documents = dataset.corpus
        if length:  # the encoder's own cut: its document rendering, to `length` tokens
            ids, _ = encoder.with_config(max_length=length).tokenize(texts, "document")
            documents = [dataclasses.replace(doc, title="", text=encoder.tokenizer.decode(row, skip_special_tokens=True))
                         for doc, row in zip(dataset.corpus, ids)]
        metrics = score_run(dataset.qrels, BM25(documents).search_many(dataset.queries, 100))
        rows.append({"max_tokens": length or None, "metrics": metrics})
        print(f"{length or 'whole':>6}: nDCG@10 {metrics['ndcg_cut_10']:.3f}, R@10 {metrics['recall_10']:.3f}",
              flush=True)
    report = {"benchmark": "bm25_truncation", "dataset": dataset.name, "num_docs": len(dataset.corpus),
              "num_queries": len(dataset.queries), "tokenizer": args.source, "results": rows,
              "license": LICENSES["scifact"]}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
