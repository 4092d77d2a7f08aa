"""Framework overhead: the LlamaIndex and LangChain retrievers against the bare encoder + qdrant-client path, on one
SciFact collection in qdrant-client's local mode (a local-path folder: the embedded store before Qdrant Edge, and
the store LlamaIndex's and langchain-qdrant's QdrantVectorStore can open), plus indexing throughput.

    nohup python benchmarks/framework_overhead.py [--limit N] [--max-length 256] [--queries 100] \
        > runs/framework_overhead.log 2>&1 &

1. Index SciFact abstracts (../shared/data/scifact, CC BY-NC 2.0: evaluation only) with `VectorCollection.index`
   into a local Qdrant folder: documents/s end to end, split into encoding and upserting. Re-running resumes an
   interrupted index (ids already stored are skipped before encoding).
2. Local upserts alone, the same vectors into fresh folders: qdrant-client's defaults against laser_rag's WAL tuning,
   at two batch sizes.
3. Query latency, the same SciFact claims through the three paths, interleaved (the order rotates per query):
   end to end (the query is encoded each time), and framework-only (the query vectors are computed once and served
   from memory, so the difference between paths is the framework and Qdrant alone).

Results: benchmarks/results/framework_overhead.json, and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from laser_rag.util import atomic_write
from laser_rag.corpus import Document
from laser_rag.encoders import BaseEncoder, LaSEREncoder
from laser_rag.store import Hit, VectorCollection
from laser_rag.store.clients import local_mode_client
from laser_rag_datasets.shared import LICENSES, shared_dataset
from laser_rag_benchmarks.shared import find_results_dir

REPO = Path(__file__).resolve().parents[1]


class ServedQueries(BaseEncoder):
    """The real encoder, except that query vectors computed beforehand are served from memory."""

    def __init__(self, encoder: BaseEncoder, queries: list[str]):
        self.inner = encoder
        self.vectors = dict(zip(queries, encoder.encode_queries(queries, batch_size=8)))

    dimension = property(lambda self: self.inner.dimension)
    fingerprint = property(lambda self: self.inner.fingerprint)
    precision = property(lambda self: self.inner.precision)
    label = property(lambda self: self.inner.label)
    max_length = property(lambda self: self.inner.max_length)
    tokenizer = property(lambda self: self.inner.tokenizer)

    def document_text(self, title: str, text: str) -> str:
        return self.inner.document_text(title, text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar):
        return np.stack([self.vectors[text] for text in texts])

    def _encode_documents(self, texts, *, batch_size, show_progress_bar):
        return self.inner.encode_documents(texts, batch_size=batch_size, show_progress_bar=show_progress_bar)

    def _encode_explicit(self, queries, rationales, *, batch_size):
        return self.inner.encode_explicit(queries, rationales, batch_size=batch_size)


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {"p50_ms": float(np.percentile(array, 50)), "p95_ms": float(np.percentile(array, 95)),
            "mean_ms": float(array.mean()), "n": len(values)}


def build_paths(client, name: str, encoder, k: int):
    """The three ways to get the top-k of a query string from one collection."""
    from llama_index.core import VectorStoreIndex

    from laser_rag.integrations.langchain import LaSEREmbeddings, LaSERRetriever
    from laser_rag.integrations.llama_index import LaSEREmbedding, qdrant_vector_store

    def bare(query: str) -> list[str]:
        vector = encoder.encode_queries([query])[0]
        points = client.query_points(name, query=vector.tolist(), limit=k, with_payload=True).points
        return [Hit.from_point(p).id for p in points]

    embed_model = LaSEREmbedding.from_encoder(encoder)
    llama = VectorStoreIndex.from_vector_store(qdrant_vector_store(name, embed_model, client=client),
                                               embed_model=embed_model).as_retriever(similarity_top_k=k)
    langchain = LaSERRetriever(client=client, collection_name=name, embeddings=LaSEREmbeddings.from_encoder(encoder),
                               k=k)
    return {
        "bare": bare,
        "llama_index": lambda query: [n.node.ref_doc_id for n in llama.retrieve(query)],
        "langchain": lambda query: [d.id for d in langchain.invoke(query)],
    }


def interleaved(paths: dict, queries: list[str], warmup: int = 3) -> tuple[dict, float]:
    """Each query through every path, rotating the order; returns latency stats and how often the paths agree."""
    names = list(paths)
    for query in queries[:warmup]:
        for name in names:
            paths[name](query)
    times = {name: [] for name in names}
    agree = 0
    for i, query in enumerate(queries):
        results = {}
        for name in names[i % len(names):] + names[:i % len(names)]:
            start = time.perf_counter()
            results[name] = paths[name](query)
            times[name].append((time.perf_counter() - start) * 1000)
        agree += all(results[name] == results["bare"] for name in names)
    stats = {name: percentiles(values) for name, values in times.items()}
    for name in names:
        if name != "bare":
            stats[name]["p50_vs_bare"] = stats[name]["p50_ms"] / stats["bare"]["p50_ms"]
            stats[name]["p95_vs_bare"] = stats[name]["p95_ms"] / stats["bare"]["p95_ms"]
            stats[name]["p50_extra_ms"] = stats[name]["p50_ms"] - stats["bare"]["p50_ms"]
    return stats, agree / len(queries)


def upsert_throughput(collection: VectorCollection, batch_sizes=(64, 256)) -> list[dict]:
    """Upsert the collection's own points into fresh qdrant-client local-mode folders (the embedded store before
    Qdrant Edge; a not-migrated collection still writes there): qdrant-client's own ``upsert`` with its defaults,
    against `VectorCollection.upsert` (laser_rag's write path, which tunes the local storage)."""
    from qdrant_client import models

    points, offset = [], None
    while True:
        page, offset = collection.engine.scroll(collection.name, limit=1024, offset=offset)
        points.extend(collection.engine.read_points(collection.name, [p.id for p in page]))
        if offset is None:
            break
    structs = [models.PointStruct(id=p.id, vector=p.dense, payload=p.payload) for p in points]
    hits = [Hit.from_point(p) for p in points]
    documents = [Document(h.id, h.text, h.title, h.metadata) for h in hits]
    vectors = np.asarray([p.dense for p in points], dtype=np.float32)
    out = []
    for tuned in (False, True):
        for batch in batch_sizes:
            folder = tempfile.mkdtemp(prefix="laser-upsert-")
            try:
                client = local_mode_client(folder)
                target = VectorCollection.open(client, "u", fingerprint=collection.fingerprint,
                                               dimension=collection.dimension)
                start = time.perf_counter()
                for i in range(0, len(structs), batch):
                    if tuned:
                        target.upsert(documents[i:i + batch], vectors[i:i + batch])
                    else:
                        client.upsert("u", structs[i:i + batch], wait=True)
                seconds = time.perf_counter() - start
                assert target.count() == len(structs)
            finally:
                client.close()
                shutil.rmtree(folder, ignore_errors=True)
            out.append({"wal_tuning": tuned, "batch_size": batch, "points": len(structs), "seconds": seconds,
                        "points_per_s": len(structs) / seconds})
            print(f"  upsert {len(structs)} points, batch {batch}, {'WAL' if tuned else 'default'}: "
                  f"{len(structs) / seconds:,.0f} points/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="Index only the first N abstracts (default: all).")
    parser.add_argument("--max-length", type=int, default=256, help="Encoder token limit for abstracts.")
    parser.add_argument("--steps", type=int, default=None, help="K (default: the encoder's).")
    parser.add_argument("--model", default=None, help="Encoder source (default: the embedded one).")
    parser.add_argument("--queries", type=int, default=100, help="SciFact claims to time.")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64, help="Documents encoded and stored per step.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--qdrant-path", type=Path, default=REPO / "runs" / "qdrant-bench")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/framework_overhead.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    load_before = os.getloadavg()

    data = shared_dataset("scifact", "all")
    corpus = data.corpus[:args.limit]
    overrides = {"max_length": args.max_length, **({"num_thinking_steps": args.steps} if args.steps else {})}
    encoder = LaSEREncoder.from_pretrained(args.model, **overrides)
    # the fingerprint covers max_length too; the name just makes the folder readable
    name = f"scifact-{encoder.label}-len{args.max_length}"
    client = local_mode_client(args.qdrant_path)
    collection = VectorCollection.open(client, name, encoder)
    print(f"{encoder!r} -> {args.qdrant_path}/{name}; {len(corpus)} abstracts, torch threads "
          f"{torch.get_num_threads()}", flush=True)

    report = collection.index(corpus, encoder, batch_size=args.batch_size, progress=True)
    indexing = {"documents": len(corpus), "added_this_run": report.added, "skipped_already_stored": report.skipped,
                "seconds": report.seconds, "encode_seconds": report.encode_seconds,
                "upsert_seconds": report.upsert_seconds, "documents_per_s": report.documents_per_second,
                "encode_documents_per_s": report.added / report.encode_seconds if report.encode_seconds else None,
                "upsert_points_per_s": report.added / report.upsert_seconds if report.upsert_seconds else None}
    print(f"indexed: {report.added} added ({report.documents_per_second:.2f} documents/s end to end), "
          f"{report.skipped} already stored; {collection.count()} points", flush=True)

    print("local upserts alone:", flush=True)
    upserts = upsert_throughput(collection)

    indexed = {doc.id for doc in corpus}
    claims = [(qid, text) for qid, text in sorted(data.queries.items())
              if set(data.qrels[qid]) & indexed][:args.queries]
    queries = [text for _, text in claims]
    found = [collection.search(vector, args.k) for vector in encoder.encode_queries(queries, batch_size=8)]
    hits_at_k = sum(any(h.id in data.qrels[qid] for h in hits) for (qid, _), hits in zip(claims, found))

    print(f"latency, end to end ({len(queries)} claims, interleaved):", flush=True)
    end_to_end, agree = interleaved(build_paths(client, name, encoder, args.k), queries)
    for path, stats in end_to_end.items():
        print(f"  {path:12s} p50 {stats['p50_ms']:8.1f} ms  p95 {stats['p95_ms']:8.1f} ms"
              + (f"  ({stats['p50_vs_bare']:.3f}x bare at p50, {stats['p95_vs_bare']:.3f}x at p95)"
                 if path != "bare" else ""), flush=True)
    print("latency, framework only (query vectors precomputed):", flush=True)
    served = ServedQueries(encoder, queries)
    framework_only, agree_served = interleaved(build_paths(client, name, served, args.k), queries)
    for path, stats in framework_only.items():
        print(f"  {path:12s} p50 {stats['p50_ms']:8.2f} ms  p95 {stats['p95_ms']:8.2f} ms"
              + (f"  (+{stats['p50_extra_ms']:.2f} ms at p50)" if path != "bare" else ""), flush=True)

    result = {
        "benchmark": "framework_overhead",
        "command": "python benchmarks/framework_overhead.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
        "dataset": {"name": "scifact", "documents": len(corpus), "queries_timed": len(queries),
                    "license": LICENSES["scifact"]},
        "encoder": {"repr": repr(encoder), "fingerprint": encoder.fingerprint, "max_length": args.max_length,
                    "num_thinking_steps": encoder.num_thinking_steps},
        "qdrant": {"mode": "embedded local path", "path": str(args.qdrant_path), "collection": name},
        "indexing": indexing,
        "local_upserts": upserts,
        "latency_end_to_end": end_to_end,
        "latency_framework_only": framework_only,
        "top_k_identical_across_paths": {"end_to_end": agree, "framework_only": agree_served},
        f"claims_with_a_cited_abstract_in_top_{args.k}": hits_at_k / len(queries),
        "target": "framework p50 <= 1.1x bare",
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "wall_seconds": time.time() - started,
    }
    out = args.out or find_results_dir() / "framework_overhead.json"
    atomic_write(out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
