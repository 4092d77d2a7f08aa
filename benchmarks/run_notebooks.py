"""Execute the notebooks in place, keeping their outputs (what is committed): the full run by default.

    OMP_NUM_THREADS=1 python benchmarks/run_notebooks.py [notebooks/01_retrieval.ipynb ...]

LASER_RAG_NOTEBOOK_SLICE (default "full"), LASER_RAG_NOTEBOOK_SETS and the LASER_RAG_JUDGE_* variables are passed
to the kernel. 01_retrieval loads the reports of benchmarks/eval_shared.sh when their settings match (run that
first); 02_answers generates and judges answers (the slow one).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run(path: Path) -> None:
    started = time.perf_counter()
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)
    print(f"{path}: executed in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("LASER_RAG_NOTEBOOK_SLICE", "full")
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in sys.argv[1:] or sorted(str(p) for p in NOTEBOOKS.glob("*.ipynb")):
        run(Path(name))
