"""Load test of the demo app on loopback (gradio_client): 1, 2 and 4 simultaneous users asking different questions,
a fixed number of requests per level (it stops by itself), through the app's real queue and its real models.

    python scripts/app_load.py [--requests 4] [--modes basic laser] [--max-new-tokens 24]
                                  [--concurrency N] [--queue-size N] [--out benchmarks/results/app_load.json]

A request is what one user's Ask runs: each of ``--modes``' columns, one after another (the ``/ask_<mode>``
endpoints), streamed. The questions are the app's examples (HotpotQA dev questions of the default slice, from
../shared/data; else Python-reference questions); at each level the users share the same ``--requests`` questions
(user ``u`` of ``n`` asks questions ``u, u+n, ...`` in turn), so each level asks every question once. Level 1 gives
each question's solo answer; every later answer must be identical to it (greedy decoding). Reports, per level and
user: the time to the first token (from Ask to the first non-empty text of the request's first column) and the total
time per request;
requests lost (no final answer), errors and mismatches; with dtype, threads, CPU and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from laser_rag.util import atomic_write
from laser_rag_benchmarks.shared import find_results_dir

LEVELS = (1, 2, 4)
FALLBACK_QUESTIONS = ["What does the assert statement do?", "When is the pass statement useful?",
                      "How does the import statement find a module?", "What does the with statement guarantee?"]


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _questions(count: int) -> list[str]:
    """The app's first example set (HotpotQA dev questions of the default corpus), else the fallback ones."""
    from laser_rag_app.corpora import example_questions

    questions = next(iter(example_questions(per_set=count).values()), None) or FALLBACK_QUESTIONS
    return [questions[i % len(questions)] for i in range(count)]


def _ask(url: str, modes: list[str], question: str, corpus: str) -> dict:
    """One user's Ask: each mode's column in turn. Per column: its final answer, the time to its first non-empty
    text and to its end (ms, from the request's start), and its error, if any."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    started = time.perf_counter()
    columns = {}
    for mode in modes:
        job = client.submit(question, corpus, 4, 3, False, False, api_name=f"/ask_{mode}")
        first = None
        try:
            for output in job:
                if first is None and output[0]:
                    first = (time.perf_counter() - started) * 1000
            answer, latency = job.result(timeout=900)[:2]
            error = latency.split("\n")[0] if "Error" in latency else None
        except Exception as exc:  # a lost or refused request: counted, never raised
            answer, error = None, f"{type(exc).__name__}: {exc}"
        columns[mode] = {"answer": answer, "first_token_ms": first, "done_ms": (time.perf_counter() - started) * 1000,
                         "error": error}
    return {"question": question, "columns": columns, "total_ms": (time.perf_counter() - started) * 1000}


def run_level(url: str, modes: list[str], questions: list[str], corpus: str, users: int) -> list[list[dict]]:
    """Each user's requests, in the order asked; the users start together."""
    barrier = threading.Barrier(users)

    def user(number: int) -> list[dict]:
        barrier.wait()
        return [_ask(url, modes, question, corpus) for question in questions[number::users]]

    with ThreadPoolExecutor(users) as pool:
        return list(pool.map(user, range(users)))


def summarize(per_user: list[list[dict]], solo: dict[str, dict[str, str]] | None, modes: list[str]) -> dict:
    requests = [request for asked in per_user for request in asked]
    columns = [(request["question"], mode, request["columns"][mode]) for request in requests for mode in modes]
    lost = sum(column["answer"] is None for _, _, column in columns)
    errors = sum(column["error"] is not None for _, _, column in columns)
    mismatches = 0 if solo is None else sum(
        column["answer"] != solo[question][mode] for question, mode, column in columns if column["answer"] is not None)

    def stats(values: list[float]) -> dict:
        return {"mean_ms": round(statistics.fmean(values), 1), "max_ms": round(max(values), 1)} if values else {}

    users = []
    for number, asked in enumerate(per_user):
        firsts = [r["columns"][modes[0]]["first_token_ms"] for r in asked if r["columns"][modes[0]]["first_token_ms"]]
        users.append({"user": number, "requests": len(asked), "first_token": stats(firsts),
                      "total": stats([r["total_ms"] for r in asked])})
    return {"users": len(per_user), "requests": len(requests), "columns": len(columns), "lost": lost,
            "errors": errors, "mismatches": mismatches, "per_user": users,
            "first_token": stats([u["first_token"]["mean_ms"] for u in users if u["first_token"]]),
            "total": stats([r["total_ms"] for r in requests])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4, help="requests per level (each a different question)")
    parser.add_argument("--modes", nargs="+", default=["basic", "laser"], help="the columns one request runs")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the app's (AppSettings)")
    parser.add_argument("--queue-size", type=int, default=None, help="default: the app's (AppSettings)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from laser_rag import runtime, store
    from laser_rag.llm import GenerationConfig
    from laser_rag_app.engine import Engine
    from laser_rag_app.settings import AppSettings
    from laser_rag_app.ui import serve

    runtime.quiet_model_loading()
    threads = runtime.configure_threads()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    overrides = {k: v for k, v in (("concurrency", args.concurrency), ("queue_size", args.queue_size)) if v}
    settings = AppSettings(data_dir=Path(tempfile.mkdtemp(prefix="app-load-")), port=port, preload=False,
                           generation=GenerationConfig(max_new_tokens=args.max_new_tokens), **overrides)
    engine = Engine(settings)
    corpus = engine.default_corpus()
    print(f"indexing {corpus} ...", flush=True)
    engine.ensure_indexed(corpus)
    questions = _questions(args.requests)
    engine.preload()
    demo = serve(settings, block=False, engine=engine)
    url = f"http://127.0.0.1:{port}/"
    load_before = [round(x, 2) for x in os.getloadavg()]
    levels, solo = [], None
    try:
        for users in LEVELS:
            per_user = run_level(url, args.modes, questions, corpus, users)
            if solo is None:
                solo = {r["question"]: {m: r["columns"][m]["answer"] for m in args.modes} for r in per_user[0]}
            levels.append(summarize(per_user, solo, args.modes))
            print(json.dumps(levels[-1]), flush=True)
    finally:
        demo.close()
        store.close_all()
    report = {
        "command": "python scripts/app_load.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(v) if isinstance(v, list) else v}" for k, v in vars(args).items()
            if v is not None and k != "out"),
        "what": f"{args.requests} requests per level, each a different question of the app's examples on {corpus}; "
                f"a request runs the {', '.join(args.modes)} columns in turn, streamed, top-k 4; users are "
                "gradio_client threads of this process on loopback; level 1's answers are the solo ones",
        "runtime": runtime.runtime_summary(), "dtype": runtime.dtype_name(runtime.default_dtype("cpu")),
        "threads": threads, "cpu": _cpu(), "cpus": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "concurrency": settings.concurrency, "queue_size": settings.queue_size,
        "max_new_tokens": args.max_new_tokens, "modes": args.modes, "levels": levels,
    }
    atomic_write(args.out or find_results_dir() / "app_load.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
