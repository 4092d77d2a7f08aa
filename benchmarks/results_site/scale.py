"""The scale page: the embedded engines side by side (qdrant-client's local mode against Qdrant Edge) and local
mode's own scaling run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from laser_rag.util import markdown_table
from laser_rag_benchmarks.results_site.common import cpu_features, load, load_avg, ms


def _engine(run: dict[str, Any], hnsw_ef: str) -> str:
    if run["engine"] == "local":
        return "local (exact scan)"
    return f"edge (hnsw_ef {hnsw_ef})"


def _dense(run: dict[str, Any], hnsw_ef: str) -> dict[str, Any]:
    return run["dense"] if run["engine"] == "local" else run["by_hnsw_ef"][hnsw_ef]


def _store_engines(data: dict[str, Any], title: str) -> list[str]:
    runs, machine, vectors = data["runs"], data["machine"], data["data"]
    hnsw_ef = "128"
    rows = []
    for run in runs:
        dense = _dense(run, hnsw_ef)
        index = f"{run['m']} / {run['ef_construct']}" if run["engine"] != "local" else "-"
        build = f"{run['index_build_seconds']:.0f} s" if run["engine"] != "local" else "-"
        rows.append([_engine(run, hnsw_ef), f"{run['points']:,}", index, f"{run['upserts_per_s']:,}", build,
                     f"{ms(dense['p50_ms'])} / {ms(dense['p95_ms'])}", f"{dense['recall_at_10']:.3f}",
                     f"{ms(run['hybrid_dbsf']['p50_ms'])} / {ms(run['hybrid_dbsf']['p95_ms'])}",
                     f"{run['reopen_seconds']:.2f} s", f"{run['final_rss_mb']:,} ({run['peak_rss_mb']:,})",
                     f"{run['disk_mb']:,}", load_avg(run["load_average"][0])])
    sweeps = []
    for run in runs:
        if run["engine"] == "local":
            continue
        cells = [f"{run['points']:,}", f"{run['m']} / {run['ef_construct']}"]
        for ef in sorted(run["by_hnsw_ef"], key=int):
            point = run["by_hnsw_ef"][ef]
            cells.append(f"{point['recall_at_10']:.3f} / {ms(point['p50_ms'])} / {ms(point['p95_ms'])}")
        exact = run["exact"]
        sweeps.append(cells + [f"{ms(exact['p50_ms'])} / {ms(exact['p95_ms'])}"])
    efs = sorted(next(r for r in runs if r["engine"] != "local")["by_hnsw_ef"], key=int)
    kills = [[k["engine"], f"{k['acknowledged']:,}", f"{k['present_after_reopen']:,}", k["lost"],
              f"{k['reopen_seconds']:.2f} s"] for k in data["kill_9"]]
    return [
        f"## {title} (`benchmarks/store_engines.py`)", "",
        f"Vectors: {vectors['dataset']} ({vectors['licence']}), encoded by `{vectors['encoder']}` "
        f"({vectors['precision']}, {vectors['torch_threads']} torch threads, dimension {vectors['dimension']}); "
        "beyond the real ones, each point mixes two real vectors plus a small perturbation (see "
        "[the store at scale](../scale.md)). Dense top-10 and hybrid (dense + BM25, DBSF) latency p50 / p95; "
        "recall@10 against exact numpy search; RSS after the queries (peak) and disk in MB.", "",
        markdown_table(["engine", "points", "m / ef_construct", "upserts/s", "index build", "dense p50 / p95",
                        "recall@10", "hybrid p50 / p95", "re-open", "RSS (peak) MB", "disk MB", "load avg"], rows), "",
        "Edge's recall@10 / p50 / p95 by query-time `hnsw_ef`, and its exact search:", "",
        markdown_table(["points", "m / ef_construct", *(f"hnsw_ef {ef}" for ef in efs), "exact p50 / p95"], sweeps),
        "",
        "A writer killed with `kill -9` mid-upsert, then the folder re-opened:", "",
        markdown_table(["engine", "points acknowledged", "present after re-open", "lost", "re-open"], kills), "",
        f"Source: `{data['command']}` (under `nice -n {data.get('nice', 0)}`); {machine['cpu']}, {machine['cpus']} "
        f"cores ({cpu_features(machine)}), Python {machine['python']}, qdrant-client {machine['qdrant_client']}, "
        f"qdrant-edge-py {machine['qdrant_edge']}; vectors {data['vectors']}, upserts in batches of "
        f"{data['batch']:,}; load average per row (1 min), the machine shared with other jobs; the real vectors "
        f"encoded in {vectors['runtime']}.",
    ]


def _local_mode(data: dict[str, Any]) -> list[str]:
    rows = [[f"{r['vectors']:,}", f"{r['upserts_per_s']:,.0f}", f"{r['reopen_seconds']:.1f} s",
             ms(r["query_p50_ms"]), ms(r["query_p95_ms"]), f"{r['peak_rss_mb'] / 1024:.1f} GB",
             f"{r['disk_mb']:,.0f} MB", load_avg(r.get("load_average"))] for r in data["synthetic"]]
    return ["## qdrant-client's local mode at scale (`python benchmarks/index_throughput.py`)", "",
            markdown_table(["vectors", "upserts/s", "re-open", "query p50", "query p95", "peak RSS", "on disk",
                            "load average"], rows), "",
            f"Source: `{data['command']}`; {data['machine']}. {data.get('note', '')}"]


def _quantization(data: dict[str, Any]) -> list[str]:
    columns = [(config, search) for config in data["sets"][0]["configs"]
               for search in data["sets"][0]["configs"][config]["searches"]]
    rows = []
    for entry in data["sets"]:
        cells = [f"{entry['set']} ({entry['documents']:,} / {entry['queries']})"]
        for config, search in columns:
            found = entry["configs"][config]["searches"][search]
            cells.append(f"{found['ndcg@10']:.4f} ({found['top10_overlap_with_exact']:.2f})")
        before, after = entry["load_average"][0][0], entry["load_average"][-1][0]
        rows.append(cells + [f"{before:.1f}-{after:.1f}"])
    return ["## What quantization costs (`benchmarks/store_quantization.py`)", "",
            f"nDCG@10 on Qdrant Edge ({data['index']}), and in brackets the share of exact float32 search's top 10 "
            f"that each search also returns. Data: {data['data']}.", "",
            markdown_table(["set (docs / queries)", *(f"{config}, {search}" for config, search in columns),
                            "load avg (1 min)"], rows), "",
            f"Source: `{data['command']}` (under `nice -n {data['nice']}`); encoder `{data['encoder']}` "
            f"({data['precision']}, dimension {data['dimension']}, {data['torch_threads']} torch threads), "
            f"{data['cpus']} CPUs ({data['cpu_bf16']}), qdrant-edge-py {data['qdrant_edge']}."]


def _upserts(data: dict[str, Any]) -> list[str]:
    rows = [[name, f"{v['median_upserts_per_s']:,}", f"{v['best_upserts_per_s']:,}", f"{v['speedup_vs_previous']:.2f}x"]
            for name, v in data["variants"].items()]
    loads = data["load_average"]
    return ["## Upserts into Qdrant Edge (`benchmarks/store_upserts.py`)", "",
            f"{data['points']:,} points per variant and round, in batches of {data['batch']:,}, {data['rounds']} "
            f"rounds with the variants alternated: {data['vectors']} of dimension {data['dim']}, {data['payload']}, "
            f"{data['sparse']}. What each variant times is described in [Qdrant servers](../qdrant-server.md).", "",
            markdown_table(["variant", "median upserts/s", "best upserts/s", "median vs previous"], rows), "",
            f"Source: `{data['command']}` (under `nice -n {data['nice']}`); {data['cpus']} CPUs, {data['threads']}; "
            f"load average (1 min) {loads[0][0]:.1f} at the start, {loads[-1][0]:.1f} at the end."]


def _equality(data: dict[str, Any]) -> list[str]:
    searches = list(data["sets"][0]["edge_minus_local"])
    rows = []
    for entry in data["sets"]:
        cells = [f"{entry['set']} ({entry['documents']:,} / {entry['queries']})"]
        for search in searches:
            local = entry["ndcg@10"]["local mode"][search]
            edge = entry["ndcg@10"]["edge (embedded default)"][search]
            cells.append(f"{local:.4f} / {edge:.4f} ({entry['edge_minus_local'][search]:+.4f}; "
                         f"{entry['top10_overlap'][search]:.2f})")
        rows.append(cells + [f"{entry['load_average'][0][0]:.1f}-{entry['load_average'][-1][0]:.1f}"])
    within = all(entry["within_tolerance"] for entry in data["sets"])
    verdict = "every set and search within it" if within else "**not** every set within it"
    return ["## The same rankings on local mode and on Edge (`benchmarks/store_equality.py`)", "",
            "nDCG@10 of the same vectors in qdrant-client's local mode and in the embedded default (Qdrant Edge), "
            "local / Edge, and in brackets Edge minus local and the share of top-10 documents both return. "
            f"Issue 28 allows {data['tolerance']} nDCG@10: {verdict}. Data: {data['data']}.", "",
            markdown_table(["set (docs / queries)", *searches, "load avg (1 min)"], rows), "",
            f"Source: `{data['command']}` (under `nice -n {data['nice']}`); encoder `{data['encoder']}` "
            f"({data['precision']}, dimension {data['dimension']}, {data['torch_threads']} torch threads), vectors "
            f"stored {data['dtype_stored']}, {data['cpus']} CPUs; qdrant-client {data['qdrant_client']}, "
            f"qdrant-edge-py {data['qdrant_edge']}."]


def scale_page(results: Path, img: Path) -> str:
    parts = ["# The store at scale", "", "Run by hand, one engine and size per process; the decision these figures "
             "support is in [the store at scale](../scale.md)."]
    for name, title in (("store_engines.json", "The embedded engines: qdrant-client's local mode and Qdrant Edge"),
                        ("store_engines_1m.json", "One million points on Qdrant Edge")):
        engines = load(results, name)
        if engines is not None:
            parts += ["", *_store_engines(engines, title)]
    for name, render in (("store_equality.json", _equality), ("store_upserts.json", _upserts),
                         ("store_quantization.json", _quantization)):
        data = load(results, name)
        if data is not None:
            parts += ["", *render(data)]
    local = load(results, "index_throughput.json")
    if local is not None:
        parts += ["", *_local_mode(local)]
    return "\n".join(parts)
