"""The serving page: the embeddings service under load (request batching against one request at a time), and the
demo app with several users at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import load, load_avg, ms


def _serve_load(data: dict[str, Any]) -> list[str]:
    modes = {"batched": f"batched (max {data['max_batch_size']['batched']})", "one_at_a_time": "one at a time"}
    rows = []
    for mode, label in modes.items():
        for run in data["results"][mode]:
            rows.append([run["clients"], label, f"{run['ok']}/{run['requests']}", run["errors"],
                         f"{run['requests_per_s']:.2f}", ms(run["p50_ms"]), ms(run["p95_ms"]), ms(run["p99_ms"]),
                         f"{run['mean_batch_requests']:.2f}"])
    gains = ", ".join(f"{clients} client(s) {gain:.2f}x" for clients, gain in data["batching_gain_requests_per_s"].items())
    machine = data["machine"]
    return ["## `laser-rag serve` under load (`benchmarks/serve_load.py`)", "",
            f"{data['what']}.", "",
            markdown_table(["clients", "batching", "ok", "errors", "requests/s", "p50", "p95", "p99",
                            "requests per batch (mean)"], rows), "",
            f"Throughput of batching against one request at a time: {gains}.", "",
            f"Source: `{data['command']}`; replica {data['replica_runtime']}; {machine['cpus']} CPUs, load average "
            f"{load_avg(machine['load_average_before'])} before and {load_avg(machine['load_average_after'])} after; "
            f"batch wait {data['batch_wait_timeout_s'] * 1000:.0f} ms."]


def _app_load(data: dict[str, Any], heading: str) -> list[str]:
    rows = []
    for level in data["levels"]:
        first = ", ".join(ms(user["first_token"].get("mean_ms")) for user in level["per_user"])
        total = ", ".join(ms(user["total"].get("mean_ms")) for user in level["per_user"])
        rows.append([level["users"], f"{level['columns'] - level['lost']}/{level['columns']}", level["errors"],
                     level["mismatches"], first, total])
    return [heading, "",
            f"{data['what']}.", "",
            markdown_table(["users", "answers (columns)", "errors", "differ from solo",
                            "first token, mean per user", "request total, mean per user"], rows), "",
            f"Source: `{data['command']}`; {data['runtime']}; {data['cpus']} CPUs ({data['cpu']}), load average "
            f"{load_avg(data['load_average_before'])} before and {load_avg(data['load_average_after'])} after; "
            f"queue: {data['concurrency']} events of each kind at once, at most {data['queue_size']} waiting; "
            f"answers of at most {data['max_new_tokens']} tokens."]


def serving_page(results: Path, img: Path) -> str:
    parts = ["# Serving", "", "Loopback load tests, bounded in count; run by hand. How to run the service: "
             "[serving](../serving.md)."]
    serve = load(results, "serve_load.json")
    if serve is not None:
        parts += ["", *_serve_load(serve)]
    app = load(results, "app_load.json")
    if app is not None:
        parts += ["", *_app_load(app, "## The demo app, several users at once (`scripts/app_load.py`)")]
    four_at_once = load(results, "app_load_concurrency4.json")
    if four_at_once is not None:
        parts += ["", *_app_load(four_at_once, "### The same with 4 events of each kind at once (`--concurrency 4`)")]
    return "\n".join(parts)
