"""laser_rag_benchmarks: the evaluation harness above the library (installed from the repository's benchmarks/
folder under this namespaced name; the ``eval`` extra brings its dependencies).

Where things live:

- The shared public sets it evaluates on are read by the layer below it, `laser_rag_datasets` (training and the
  demo app read them there too); the benchmark results live in the repository's benchmarks/results/
  (`laser_rag_benchmarks.shared.find_results_dir`), not in the installed package.
- `laser_rag_benchmarks.retrievers`: the evaluated modes (the registry of `laser_rag.modes` plus the bm25 and
  minilm anchors), `EvalSettings`, and their retrievers over in-memory Qdrant collections.
- `laser_rag_benchmarks.cache`: document vectors cached on disk per encoder and corpus.
- `laser_rag_benchmarks.harness`: quality and latency of every mode on one dataset (`evaluate_modes`).
- `laser_rag_benchmarks.report`: `EvalReport` (JSON) and its markdown table; `laser_rag_benchmarks.plots`.
- `laser_rag_benchmarks.shared`: how the shared sets are evaluated for the README and notebooks.
- `laser_rag_benchmarks.answers`: ragas evaluation of the answer loop.
- `laser_rag_benchmarks.cli`: ``laser-rag eval`` and ``laser-rag convert``.
- Hand-run scripts (``python benchmarks/<script>.py``, results in benchmarks/results/): encode_latency.py,
  framework_overhead.py, retrieval_table.py, run_notebooks.py, eval_shared.sh and others.

Importing this package loads nothing heavy; import the module you need.
"""
