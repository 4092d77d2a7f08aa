"""End-to-end QA: LatentRAG against the explicit agent and the direct / naive baselines, on one LLM and one index.

Every system uses the same LLM (SmolLM2-135M, each checkpoint's own fine-tuning), the same reference retriever
(all-MiniLM-L6-v2 by default: the checkpoints' ``retriever``) and the same in-memory Qdrant index of the QA set's
pooled corpus, top-k and retrieval cap (the checkpoints' config):

- ``direct``: the explicit checkpoint answers from the question alone (`ExplicitAgent.direct`);
- ``naive``: one retrieval with the question, then the answer (`ExplicitAgent.naive`);
- ``explicit``: thoughts and subqueries generated as text (`ExplicitAgent.ask`);
- ``latentrag``: latent thoughts and subqueries (`LatentRAG.ask`);
- ``latentrag+decode``: the same, with every latent block decoded back to text (what it thought and searched).

The models are loaded once and the corpus indexed once; ``warmup`` questions go through every system untimed,
then the questions are run **interleaved** (each question through all systems before the next), the systems'
order rotating per question, so slow drift of the machine (load, thermal state, caches) spreads over all systems.

Per system and question: the prediction, EM / F1 / cover-EM (`laser_rag_benchmarks.qa`), the stage timings of
`LatentAnswer.timings`, the forward passes, the retrievals, and per retrieval whether any of its documents holds a
gold answer (``answer_in_text`` on the document's title and text: the retrieval success). Summaries: bootstrap
95% intervals, paired bootstrap and McNemar of LatentRAG against each baseline, and latency ratios.

    laser-rag eval-qa --data hotpotqa --limit 50 --systems direct,naive,explicit,latentrag

    from laser_rag_benchmarks.qa import load_qa
    result = run_qa_eval(load_qa("hotpotqa", limit=20))
    print(qa_table(result))

Light at import (the CLI reads `SYSTEMS` and `parse_systems`); torch and the models load inside `run_qa_eval`.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from laser_rag_benchmarks.qa import QAItem, QASet

__all__ = ["SYSTEMS", "STAGES", "parse_systems", "run_qa_eval", "qa_table"]

SYSTEMS = ("direct", "naive", "explicit", "latentrag", "latentrag+decode")
#: The stages every system's timings hold (``decode_ms`` too with latent decoding); ``total_ms`` is the latency.
STAGES = ("prefill_ms", "thought_ms", "subquery_ms", "retrieval_ms", "answer_ms")
#: The systems of the explicit checkpoint, and those of the LatentRAG one.
_EXPLICIT_SYSTEMS = ("direct", "naive", "explicit")
_LATENT_SYSTEMS = ("latentrag", "latentrag+decode")
#: LatentRAG is compared with these (paired, on the same questions).
_BASELINES = ("explicit", "direct", "naive")


def parse_systems(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"direct,latentrag"`` (or a sequence) -> the systems in `SYSTEMS` order, once each; ValueError naming the
    known systems for an unknown one or an empty list."""
    names = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    if not names:
        raise ValueError(f"no system given; choose from {', '.join(SYSTEMS)}")
    return tuple(s for s in SYSTEMS if s in names)


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


def _checkpoint(source: str | Path | None, kind: str) -> Path:
    """The checkpoint folder of ``kind`` ("latentrag" or "explicit"), checked before anything loads."""
    from laser_rag.errors import ModelNotFoundError
    from laser_rag.latentrag import BUILTIN_CHECKPOINT, EXPLICIT_CHECKPOINT, resolve_checkpoint
    from laser_rag.latentrag.config import CONFIG_NAME
    from laser_rag.latentrag.model import LLM_ADAPTER, MODULES_FILE

    directory = resolve_checkpoint(source, BUILTIN_CHECKPOINT if kind == "latentrag" else EXPLICIT_CHECKPOINT)
    needed = [CONFIG_NAME, f"{LLM_ADAPTER}/adapter_config.json"] + ([MODULES_FILE] if kind == "latentrag" else [])
    missing = [name for name in needed if not (directory / name).is_file()]
    if missing:
        recipe = ("training/configs/latentrag.yaml" if kind == "latentrag"
                  else "training/configs/explicit-agent.yaml")
        option = "--latentrag" if kind == "latentrag" else "--explicit"
        raise ModelNotFoundError(
            f"no {'LatentRAG' if kind == 'latentrag' else 'explicit-agent'} checkpoint at {directory}"
            f"{' (the shipped default)' if source is None else ''}: missing {', '.join(missing)}. Train one with "
            f"`laser-rag train-latentrag --config {recipe}` and pass its final/ folder ({option} DIR)")
    return directory


# ---------------------------------------------------------------------------------------------------------------
# Scoring one answer


def _document(hit: Any) -> str:
    return f"{hit.title}. {hit.text}" if hit.title else hit.text


def _score(answer: Any, item: QAItem) -> dict[str, Any]:
    from laser_rag_benchmarks.qa import answer_in_text, cover_match, exact_match, f1_score

    steps = []
    for step in answer.steps:
        entry: dict[str, Any] = {"documents": [hit.id for hit in step.hits],
                                 "titles": [hit.title for hit in step.hits],
                                 "success": any(answer_in_text(item.answers, _document(hit)) for hit in step.hits)}
        if step.thought is not None:
            entry["thought"] = step.thought
        if step.subquery is not None:
            entry["subquery"] = step.subquery
        steps.append(entry)
    record = {"prediction": answer.text,
              "em": exact_match(answer.text, item.answers),
              "f1": f1_score(answer.text, item.answers),
              "cover_em": cover_match(answer.text, item.answers),
              "timings": {stage: round(float(ms), 3) for stage, ms in answer.timings.items()},
              "forward_passes": int(answer.forward_passes),
              "retrievals": len(answer.steps),
              "steps": steps}
    if answer.final_thought is not None:
        record["final_thought"] = answer.final_thought
    return record


# ---------------------------------------------------------------------------------------------------------------
# Summaries


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    from laser_rag_benchmarks.qa import bootstrap_ci

    totals = [r["timings"]["total_ms"] for r in records]
    stages = list(STAGES) + [s for s in ("decode_ms",) if any(s in r["timings"] for r in records)]
    steps = [step["success"] for r in records for step in r["steps"]]
    return {
        "n": len(records),
        "em": list(bootstrap_ci([r["em"] for r in records])),
        "f1": list(bootstrap_ci([r["f1"] for r in records])),
        "cover_em": list(bootstrap_ci([r["cover_em"] for r in records])),
        "latency_ms": {"mean": round(_mean(totals), 3), "median": round(float(statistics.median(totals)), 3)},
        "stages_ms": {s: round(_mean([r["timings"].get(s, 0.0) for r in records]), 3) for s in stages},
        "forward_passes": _mean([r["forward_passes"] for r in records]),
        "retrievals": _mean([r["retrievals"] for r in records]),
        # the share of all retrieval steps with a gold answer in a document (None: the system never retrieved)
        "retrieval_success": _mean(steps) if steps else None,
        "questions_with_success": _mean([float(any(s["success"] for s in r["steps"])) for r in records]),
    }


def _paired(per_system: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    from laser_rag_benchmarks.qa import mcnemar, paired_bootstrap

    paired = {}
    if "latentrag" not in per_system:
        return paired
    latent = per_system["latentrag"]
    for other in _BASELINES:
        if other not in per_system:
            continue
        base = per_system[other]
        paired[f"latentrag vs {other}"] = {
            "em_diff": list(paired_bootstrap([r["em"] for r in latent], [r["em"] for r in base])),
            "f1_diff": list(paired_bootstrap([r["f1"] for r in latent], [r["f1"] for r in base])),
            "mcnemar_p": mcnemar([r["em"] for r in latent], [r["em"] for r in base]),
        }
    return paired


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b > 0 else None


def _latency_ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    if "latentrag" not in summaries or "explicit" not in summaries:
        return {}
    latent, explicit = summaries["latentrag"], summaries["explicit"]

    def reasoning(summary: dict[str, Any]) -> float:
        return summary["stages_ms"]["thought_ms"] + summary["stages_ms"]["subquery_ms"]

    return {"latentrag / explicit": _ratio(latent["latency_ms"]["mean"], explicit["latency_ms"]["mean"]),
            "latentrag thought+subquery / explicit thought+subquery": _ratio(reasoning(latent), reasoning(explicit))}


# ---------------------------------------------------------------------------------------------------------------
# The run


def run_qa_eval(qa_set: QASet, *, latentrag_checkpoint: str | Path | None = None,
                explicit_checkpoint: str | Path | None = None, systems: str | Sequence[str] = SYSTEMS,
                warmup: int = 1, progress: bool = True) -> dict[str, Any]:
    """Run ``systems`` over every question of ``qa_set`` (module docstring) and return the JSON-serialisable report:
    ``dataset``, ``n``, ``systems`` (per system: ``em``/``f1``/``cover_em`` as [mean, low, high], ``latency_ms``
    mean/median, ``stages_ms`` means, ``forward_passes``, ``retrievals``, ``retrieval_success``,
    ``questions_with_success``), ``paired``, ``latency_ratio``, the machine's state (``runtime``, ``threads``,
    ``load_average``) and ``per_question`` (each with its systems' ``order``).

    Checkpoints: None = the shipped ones (`laser_rag.latentrag.BUILTIN_CHECKPOINT` and its sibling
    ``explicit-agent-smollm2-135m``); a missing one is a `ModelNotFoundError` naming ``laser-rag train-latentrag``.
    Only the checkpoints the chosen systems need are loaded."""
    import torch
    from tqdm.auto import tqdm

    from laser_rag import runtime, store
    from laser_rag.encoders import load_encoder

    chosen = parse_systems(systems)
    if not qa_set.items:
        raise ValueError(f"{qa_set.name}: no question to evaluate")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    started = time.perf_counter()
    load_start = list(os.getloadavg())
    need_latent = any(s in _LATENT_SYSTEMS for s in chosen)
    need_explicit = any(s in _EXPLICIT_SYSTEMS for s in chosen)
    latent_dir = _checkpoint(latentrag_checkpoint, "latentrag") if need_latent else None
    explicit_dir = _checkpoint(explicit_checkpoint, "explicit") if need_explicit else None

    from laser_rag.latentrag import LatentRAG, load_model
    from laser_rag.latentrag.explicit import ExplicitAgent, ExplicitModel

    tick = time.perf_counter()
    latent_model = load_model(latent_dir) if latent_dir is not None else None
    explicit_model = ExplicitModel.from_pretrained(explicit_dir) if explicit_dir is not None else None
    load_seconds = time.perf_counter() - tick
    configs = [m.config for m in (latent_model, explicit_model) if m is not None]
    if len({(c.top_k, c.max_retrievals) for c in configs}) > 1:
        raise ValueError("the LatentRAG and explicit checkpoints differ in top_k / max_retrievals: "
                         f"{[(c.top_k, c.max_retrievals) for c in configs]}; the comparison needs the same ones")

    client = store.connect(":memory:")  # a private in-memory store, as laser_rag.evaluation does
    try:
        tick = time.perf_counter()
        collections: dict[str, tuple[Any, Any]] = {}  # retriever -> (reference encoder, its collection)
        for retriever in dict.fromkeys(c.retriever for c in configs):
            encoder = load_encoder(retriever)
            collection = store.VectorCollection.open(client, f"qa-{len(collections)}", encoder, create=True)
            collection.index(qa_set.corpus, encoder, progress=progress)
            collections[retriever] = (encoder, collection)
        index_seconds = time.perf_counter() - tick

        runners: dict[str, Callable[[str], Any]] = {}
        if explicit_model is not None:
            encoder, collection = collections[explicit_model.config.retriever]
            agent = ExplicitAgent(explicit_model, collection, encoder)
            runners.update(direct=agent.direct, naive=agent.naive, explicit=agent.ask)
        if latent_model is not None:
            collection = collections[latent_model.config.retriever][1]
            runners["latentrag"] = LatentRAG(latent_model, collection, decode=False).ask
            runners["latentrag+decode"] = LatentRAG(latent_model, collection, decode=True, mode="latentrag+decode").ask

        for item in qa_set.items[:warmup]:  # untimed: first-call costs (allocations, kernels) out of the figures
            for name in chosen:
                runners[name](item.question)

        per_question = []
        per_system: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        for index, item in enumerate(tqdm(qa_set.items, desc=f"QA {qa_set.name}", unit="q", disable=not progress)):
            shift = index % len(chosen)
            order = chosen[shift:] + chosen[:shift]  # rotated: no system always runs first
            record: dict[str, Any] = {"id": item.id, "question": item.question, "answers": list(item.answers),
                                      "kind": item.kind, "order": list(order), "systems": {}}
            for name in order:
                scored = _score(runners[name](item.question), item)
                record["systems"][name] = scored
                per_system[name].append(scored)
            record["systems"] = {name: record["systems"][name] for name in chosen}
            per_question.append(record)
    finally:
        client.close()

    summaries = {name: _summary(per_system[name]) for name in chosen}
    reference = configs[0]
    return {
        "dataset": qa_set.name,
        "n": len(qa_set.items),
        "systems": summaries,
        "paired": _paired(per_system),
        "latency_ratio": _latency_ratios(summaries),
        "setup": {
            "systems": list(chosen),
            "latentrag_checkpoint": str(latent_dir) if latent_dir else None,
            "explicit_checkpoint": str(explicit_dir) if explicit_dir else None,
            "retriever": reference.retriever,
            "top_k": reference.top_k,
            "max_retrievals": reference.max_retrievals,
            "max_answer_tokens": reference.max_answer_tokens,
            "corpus_documents": len(qa_set.corpus),
            "warmup": warmup,
            "order": "interleaved, rotated per question",
            "load_seconds": round(load_seconds, 2),
            "index_seconds": round(index_seconds, 2),
            "seconds": round(time.perf_counter() - started, 2),
        },
        "runtime": runtime.runtime_summary(),
        "threads": torch.get_num_threads(),
        "load_average_start": load_start,
        "load_average": list(os.getloadavg()),
        "per_question": per_question,
    }


# ---------------------------------------------------------------------------------------------------------------
# The table


def _interval(values: Sequence[float]) -> str:
    mean, low, high = values
    return f"{mean:.3f} ({low:.2f}–{high:.2f})"


def qa_table(result: dict[str, Any]) -> str:
    """The report as a markdown table (one row per system; stage columns are per-question means in ms), then a line
    with LatentRAG's paired comparisons and the latency ratios."""
    from laser_rag.util import markdown_table

    systems = result["systems"]
    decode = any("decode_ms" in s["stages_ms"] for s in systems.values())
    headers = ["system", "EM (95% CI)", "F1", "cover-EM", "retrieval success", "retrievals", "forward passes",
               "mean latency ms", "prefill", "thought", "subquery", "retrieval", "answer"] + (["decode"] if decode
                                                                                           else [])
    rows = []
    for name, s in systems.items():
        success = ("–" if s["retrieval_success"] is None
                   else f"{s['retrieval_success']:.2f} (q {s['questions_with_success']:.2f})")
        stages = [f"{s['stages_ms'].get(stage, 0.0):.1f}" for stage in STAGES]
        if decode:
            stages.append(f"{s['stages_ms']['decode_ms']:.1f}" if "decode_ms" in s["stages_ms"] else "–")
        rows.append([name, _interval(s["em"]), f"{s['f1'][0]:.3f}", f"{s['cover_em'][0]:.3f}", success,
                     f"{s['retrievals']:.2f}", f"{s['forward_passes']:.1f}", f"{s['latency_ms']['mean']:.1f}",
                     *stages])
    lines = [f"QA on {result['dataset']}, n={result['n']} (retrieval success: share of retrievals with a gold "
             "answer in a document; q: share of questions with one)", "", markdown_table(headers, rows)]
    notes = []
    for pair, p in result.get("paired", {}).items():
        diff, low, high = p["em_diff"]
        notes.append(f"{pair}: EM {diff:+.3f} ({low:+.2f}–{high:+.2f}), McNemar p={p['mcnemar_p']:.3g}")
    for ratio, value in result.get("latency_ratio", {}).items():
        notes.append(f"latency {ratio}: {'–' if value is None else f'{value:.2f}×'}")
    if notes:
        lines += ["", "; ".join(notes)]
    return "\n".join(lines)
