#!/usr/bin/env bash
# The README's retrieval table: every mode on the shared sets, one `laser-rag eval` per set (the settings of
# laser_rag_benchmarks.shared.SHARED_EVALS, which notebooks/01_retrieval.ipynb loads back).
#
#     bash benchmarks/eval_shared.sh [SET ...]     # default: all four; hours on 2 busy CPU cores
#     python benchmarks/retrieval_table.py         # the markdown table from benchmarks/results/retrieval_*.json
#     FULL=1 bash benchmarks/eval_shared.sh [SET ...]   # every judged query of the split and the whole pool
#     python benchmarks/retrieval_table.py benchmarks/results/full_*.json
# FULL keeps SciFact to 1,000 abstracts (its 300 queries' cited ones plus random distractors) unless
# SCIFACT_MAX_DOCS=0: the whole 5,183 take ~40 minutes per LLM encoder at fp32 on one core without AMX.
#
# Budget for 2 CPU cores: the first 50 judged queries of each set, and a corpus of their relevant documents plus
# random distractors up to 1,000 (HotpotQA's whole pool is 998); SciFact's abstracts cut to 128 tokens for the LaSER
# encoders. Document vectors are cached: a re-run costs the queries only. SciFact is CC BY-NC 2.0 (non-commercial).
set -euo pipefail
# One thread per process: on a shared machine two OpenMP threads per process oversubscribe the cores and made
# generation ~10x slower here; a single thread also makes the latency figures steadier.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
cd "$(dirname "$0")/.."
MODES=${MODES:-bm25,minilm,basic,laser,rewrite,laser+hybrid,minilm+hybrid}
SETS=("$@")
if [ ${#SETS[@]} -eq 0 ]; then SETS=(hotpotqa musique strategyqa scifact); fi
for name in "${SETS[@]}"; do
  extra=()
  if [ "$name" = scifact ]; then extra=(--max-length 128); fi
  if [ "${FULL:-0}" = 1 ]; then
    if [ "$name" = scifact ] && [ "${SCIFACT_MAX_DOCS:-1000}" != 0 ]; then extra+=(--max-docs "${SCIFACT_MAX_DOCS:-1000}"); fi
    laser-rag eval --dataset "$name" --modes "$MODES" "${extra[@]}" --out "${OUTDIR:-benchmarks/results}/full_${name}.json"
  else
    laser-rag eval --dataset "$name" --modes "$MODES" --max-queries 50 --max-docs 1000 "${extra[@]}" \
      --out "${OUTDIR:-benchmarks/results}/retrieval_${name}.json"
  fi
done
