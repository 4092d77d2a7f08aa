"""What bf16 costs against fp32, for the encoder: retrieval quality and speed, side by side in one process.

The same weights are loaded twice (``dtype=float32`` and ``dtype=bfloat16``) and evaluated on the same slice of
each shared set (`laser_rag.evaluation.evaluate_encoder`: in-memory Qdrant, exact search); the two dtypes alternate
set by set. Documents/s is the corpus encoding rate of each dtype on the slice. On a CPU without AMX/AVX512-BF16,
bf16 is emulated and slow (which is why the default there is fp32); the quality difference is the dtype's alone.

    python benchmarks/dtype_quality.py --out benchmarks/results/dtype_quality.json
    python benchmarks/dtype_quality.py --sets scifact --max-queries 10 --max-docs 60   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from laser_rag import runtime
from laser_rag.encoders import LaSEREncoder
from laser_rag.evaluation import evaluate_encoder
from laser_rag_datasets.shared import LICENSES, shared_dataset
from laser_rag_datasets.subsets import slice_dataset
from laser_rag_benchmarks.shared import SHARED_EVALS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="builtin:laser")
    parser.add_argument("--sets", default="strategyqa,hotpotqa,musique,scifact")
    parser.add_argument("--max-queries", type=int, default=20)
    parser.add_argument("--max-docs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    encoders = {name: LaSEREncoder.from_pretrained(args.source, dtype=name) for name in ("float32", "bfloat16")}
    report = {"benchmark": "dtype_quality", "source": args.source, "machine": platform.processor(),
              "cpu_bf16_units": runtime.cpu_bf16_units(), "torch_threads": torch.get_num_threads(),
              "runtime": runtime.runtime_summary(), "max_queries": args.max_queries, "max_docs": args.max_docs,
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "sets": {}}
    for name in args.sets.split(","):
        plan = SHARED_EVALS[name]
        dataset = slice_dataset(shared_dataset(name, plan["split"]), args.max_queries, args.max_docs)
        row = {"queries": len(dataset.qrels), "documents": len(dataset.corpus), "licence": LICENSES[name]}
        for dtype, encoder in encoders.items():
            if "max_length" in plan:
                encoder = encoder.with_config(max_length=plan["max_length"])
            started = time.perf_counter()
            metrics = evaluate_encoder(encoder, dataset, show_progress_bar=False)
            seconds = time.perf_counter() - started
            row[dtype] = {"ndcg_cut_10": metrics["ndcg_cut_10"], "recall_10": metrics["recall_10"],
                          "seconds": round(seconds, 1), "documents_per_s": round(len(dataset.corpus) / seconds, 2)}
        row["ndcg_difference"] = row["bfloat16"]["ndcg_cut_10"] - row["float32"]["ndcg_cut_10"]
        report["sets"][name] = row
        print(json.dumps({name: row}), flush=True)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
