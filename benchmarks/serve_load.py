"""Load test of the embeddings service (`laser_rag.serving`) on loopback: 1, 4 and 16 concurrent clients, each
level a fixed number of requests (it stops by itself), with dynamic batching and with one request at a time
(``max_batch_size=1``), side by side in one run on one Serve instance.

    python benchmarks/serve_load.py [--model SOURCE] [--requests 48] [--out benchmarks/results/serve_load.json]

Each request is one real text: a StrategyQA validation question (sent to ``<model>:query``) or a StrategyQA evidence
sentence (a document), alternating (../shared/data). Reports throughput, p50/p95/p99 latency, errors (any non-200),
the mean number of requests per batch the service reported, and the batching gain (throughput batched / one at a
time) per level; with dtype, torch threads of the replica and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from laser_rag.util import atomic_write
from laser_rag_datasets.shared import shared_dataset
from laser_rag_benchmarks.shared import find_results_dir

LEVELS = (1, 4, 16)
MODES = {"batched": 16, "one_at_a_time": 1}  # max_batch_size


def _texts(count: int) -> list[tuple[str, str]]:
    """(input type, text) pairs, queries and documents alternating."""
    data = shared_dataset("strategyqa", split="validation")
    queries = list(data.queries.values())
    documents = [doc.text for doc in data.corpus]
    return [("query", queries[i % len(queries)]) if i % 2 == 0 else ("document", documents[i % len(documents)])
            for i in range(count)]


def _post(url: str, name: str, item: tuple[str, str]) -> tuple[int, float, int]:
    """(status, latency ms, requests in the batch it was served in; 0 when refused)."""
    kind, text = item
    body = json.dumps({"model": name + (":query" if kind == "query" else ""), "input": [text]}).encode()
    request = urllib.request.Request(url + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
            return response.status, (time.perf_counter() - start) * 1000, int(response.headers["X-Batch-Requests"])
    except urllib.error.HTTPError as error:
        return error.code, (time.perf_counter() - start) * 1000, 0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_level(url: str, name: str, items: list[tuple[str, str]], clients: int) -> dict:
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(lambda item: _post(url, name, item), items))
    seconds = time.perf_counter() - start
    latencies = [ms for status, ms, _ in answers if status == 200]
    batches = [size for status, _, size in answers if status == 200]
    ok = len(latencies)
    return {"clients": clients, "requests": len(items), "ok": ok, "errors": len(items) - ok,
            "seconds": round(seconds, 2), "requests_per_s": round(ok / seconds, 2),
            "p50_ms": round(_percentile(latencies, 50), 1), "p95_ms": round(_percentile(latencies, 95), 1),
            "p99_ms": round(_percentile(latencies, 99), 1),
            "mean_batch_requests": round(statistics.fmean(batches), 2) if batches else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="encoder source (default: the embedded LaSER model)")
    parser.add_argument("--requests", type=int, default=48, help="requests per concurrency level and mode")
    parser.add_argument("--cpus", type=float, default=2.0, help="CPUs (and torch threads) of the one replica")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from laser_rag.serving import APP_NAME, ServeConfig, start, stop

    items = _texts(args.requests)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    load_before = [round(x, 2) for x in os.getloadavg()]
    ray.init(num_cpus=max(2, int(args.cpus)), include_dashboard=False)
    results, runtime = {}, None
    try:
        for mode, batch in MODES.items():
            config = ServeConfig(model=args.model, port=port, max_batch_size=batch, cpus_per_replica=args.cpus)
            url = start(config)
            runtime = serve.get_deployment_handle("EmbeddingModel", app_name=APP_NAME).runtime.remote().result()
            with urllib.request.urlopen(url + "/v1/models") as response:
                name = json.loads(response.read())["data"][0]["id"]
            for item in items[:2]:  # warm up
                _post(url, name, item)
            results[mode] = [run_level(url, name, items, clients) for clients in LEVELS]
            print(mode, json.dumps(results[mode]), flush=True)
            serve.delete(APP_NAME)  # frees the replica's CPUs for the next mode's
    finally:
        stop()
        ray.shutdown()
    gain = {str(b["clients"]): round(b["requests_per_s"] / s["requests_per_s"], 2) if s["requests_per_s"] else None
            for b, s in zip(results["batched"], results["one_at_a_time"])}
    report = {
        "command": "python benchmarks/serve_load.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items()
                                                                 if v is not None and k != "out"),
        "what": "one text per request, StrategyQA validation questions (queries) and evidence sentences "
                "(documents) alternating; clients are threads of this process on loopback; one replica",
        "replica_runtime": runtime,
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "max_batch_size": MODES, "batch_wait_timeout_s": ServeConfig().batch_wait_timeout_s,
        "results": results, "batching_gain_requests_per_s": gain,
    }
    atomic_write(args.out or find_results_dir() / "serve_load.json", json.dumps(report, indent=2) + "\n")
    print(json.dumps({"batching_gain_requests_per_s": gain, "replica_runtime": runtime}))


if __name__ == "__main__":
    main()
