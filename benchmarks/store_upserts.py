"""Upserts/s into the embedded Qdrant Edge engine, side by side in one process: laser_rag's conversion of points to
Edge's types before and after it stopped copying vectors, and the floor (Edge's own write of points converted
beforehand).

Points: real HotpotQA dev paragraphs (/work/shared/data, CC BY-SA 4.0) as payloads in laser_rag's layout, with
their BM25 sparse vectors (`laser_rag.sparse`), and unit dense vectors of ``--dim`` (576, the default encoder's;
random: a vector's values do not change what a write costs). Written in batches of 1,000, as `VectorCollection`
writes them. Variants, alternated round by round so that the machine's load falls on each alike:

- ``previous``: the conversion as it was (each dense vector through numpy and back to a list, each sparse vector's
  lists copied value by value), from the float lists `VectorCollection.upsert` passes;
- ``engine``: `EdgeEngine.upsert` now, from the same float lists;
- ``collection``: `VectorCollection.upsert` (documents + a numpy matrix: payloads built, vectors listed once);
- ``edge_points_and_write``: ``edge.Point`` built straight from those lists and written (``EdgeShard.update``):
  what any conversion pays, since Edge converts each vector and payload into Rust itself;
- ``edge_write_only``: ``EdgeShard.update`` of points built beforehand (Edge's own write alone).

    nice -n 15 python benchmarks/store_upserts.py --out benchmarks/results/store_upserts.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
_BATCH = 1000


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _previous_engine():
    """`EdgeEngine` with the upsert conversion it had before (kept here to measure against)."""
    import qdrant_edge as edge

    from laser_rag.sparse import SPARSE_VECTOR_NAME
    from laser_rag.store.edge import EdgeEngine

    class PreviousEdgeEngine(EdgeEngine):
        def upsert(self, name, points):
            opened = self._shard(name)
            for start in range(0, len(points), 1024):
                batch = []
                for point in points[start:start + 1024]:
                    dense = np.asarray(point.dense, dtype=np.float32).reshape(-1).tolist()
                    if point.sparse is None or not point.sparse.indices:
                        batch.append(edge.Point(point.id, dense, point.payload))
                        continue
                    sparse = edge.SparseVector(indices=list(point.sparse.indices),
                                               values=[float(v) for v in point.sparse.values])
                    batch.append(edge.Point(point.id, {"": dense, SPARSE_VECTOR_NAME: sparse}, point.payload))
                self._update(name, opened, edge.UpdateOperation.upsert_points(batch))
                opened.pending += len(batch)

    return PreviousEdgeEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000, help="points per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dim", type=int, default=576)
    parser.add_argument("--out", type=Path, default=RESULTS / "store_upserts.json")
    args = parser.parse_args()

    import importlib.metadata as metadata

    import qdrant_edge as edge

    from laser_rag.corpus import Document
    from laser_rag.sparse import SPARSE_VECTOR_NAME, SparseEncoder
    from laser_rag.store import CollectionSpec, PointWrite, VectorCollection, point_id
    from laser_rag.store.edge import EdgeEngine
    from laser_rag.store.payload import payload
    from laser_rag_datasets.shared import shared_dataset

    paragraphs = shared_dataset("hotpotqa", "validation").corpus
    sparse = SparseEncoder().encode_documents([f"{d.title}\n{d.text}" for d in paragraphs])
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.points, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    documents = [Document(f"{i}", paragraphs[i % len(paragraphs)].text, paragraphs[i % len(paragraphs)].title)
                 for i in range(args.points)]
    lexical = [sparse[i % len(paragraphs)] for i in range(args.points)]
    rows = vectors.tolist()  # what VectorCollection.upsert hands the engine
    writes = [PointWrite(point_id(doc.id), row, payload(doc), words) for doc, row, words in zip(documents, rows,
                                                                                                  lexical)]
    previous_engine = _previous_engine()
    folder = Path(tempfile.mkdtemp(prefix="laser-rag-upserts-"))
    spec = CollectionSpec(dimension=args.dim, sparse=True, metadata={})

    def through_engine(engine_class, path):
        with engine_class(path) as engine:
            engine.create("c", spec)
            tick = time.perf_counter()
            for start in range(0, args.points, _BATCH):
                engine.upsert("c", writes[start:start + _BATCH])
            return time.perf_counter() - tick

    def through_collection(path):
        with EdgeEngine(path) as engine:
            collection = VectorCollection.open(engine, "c", fingerprint="bench", dimension=args.dim, hybrid=True)
            tick = time.perf_counter()
            for start in range(0, args.points, _BATCH):
                collection.upsert(documents[start:start + _BATCH], vectors[start:start + _BATCH],
                                  lexical[start:start + _BATCH])
            return time.perf_counter() - tick

    def edge_points(chunk):
        return [edge.Point(w.id, {"": w.dense, SPARSE_VECTOR_NAME: edge.SparseVector(
            indices=w.sparse.indices, values=w.sparse.values)}, w.payload) for w in chunk]

    def bare(path, convert_timed: bool):
        shard = edge.EdgeShard.create(str(path), edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=args.dim, distance=edge.Distance.Cosine),
            sparse_vectors={SPARSE_VECTOR_NAME: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}))
        ready = None if convert_timed else [edge_points(writes[s:s + _BATCH]) for s in range(0, args.points, _BATCH)]
        tick = time.perf_counter()
        for number, start in enumerate(range(0, args.points, _BATCH)):
            points = edge_points(writes[start:start + _BATCH]) if convert_timed else ready[number]
            shard.update(edge.UpdateOperation.upsert_points(points))
        seconds = time.perf_counter() - tick
        shard.close()
        return seconds

    variants = {"previous": lambda p: through_engine(previous_engine, p),
                "engine": lambda p: through_engine(EdgeEngine, p),
                "collection": through_collection, "edge_points_and_write": lambda p: bare(p, True),
                "edge_write_only": lambda p: bare(p, False)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    loads = [_load()]
    try:
        for round_ in range(args.rounds):
            for name, run in variants.items():
                path = folder / f"{name}-{round_}"
                seconds[name].append(run(path))
                shutil.rmtree(path, ignore_errors=True)
                print(name, round(args.points / seconds[name][-1]), "upserts/s", flush=True)
            loads.append(_load())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rates = {name: {"median_upserts_per_s": round(args.points / statistics.median(values)),
                    "best_upserts_per_s": round(args.points / min(values)),
                    "seconds": [round(v, 3) for v in values]} for name, values in seconds.items()}
    base = statistics.median(seconds["previous"])
    for name in rates:
        rates[name]["speedup_vs_previous"] = round(base / statistics.median(seconds[name]), 2)
    report = {"benchmark": "store_upserts", "command": " ".join(["python", *sys.argv]),
              "points": args.points, "dim": args.dim, "batch": _BATCH, "rounds": args.rounds,
              "payload": "laser_rag layout 3 of HotpotQA dev paragraphs (mean "
                         f"{round(float(np.mean([len(d.text) for d in paragraphs])))} characters)",
              "sparse": "BM25 of each paragraph (laser_rag.sparse)", "vectors": "float32 unit vectors, cosine",
              "threads": "the benchmark is single-threaded Python; Edge's write holds the GIL",
              "nice": os.getpriority(os.PRIO_PROCESS, 0), "cpus": os.cpu_count(),
              "qdrant_edge": metadata.version("qdrant-edge-py"), "load_average": loads, "variants": rates}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()
