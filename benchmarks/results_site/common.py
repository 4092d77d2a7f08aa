"""What every results page shares: reading a result file and formatting its numbers and its machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from laser_rag_benchmarks.report import EvalReport

SETS = ("strategyqa", "hotpotqa", "musique", "scifact")
SET_TITLES = {"strategyqa": "StrategyQA", "hotpotqa": "HotpotQA", "musique": "MuSiQue", "scifact": "SciFact"}


def load(results: Path, name: str) -> dict[str, Any] | None:
    """The JSON result ``name`` in ``results``, or None when that benchmark has not been run."""
    path = results / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def load_avg(values: Sequence[float] | float | None) -> str:
    if isinstance(values, (int, float)):
        return f"{values:.1f}"
    return "not recorded" if not values else " / ".join(f"{v:.1f}" for v in values[:3])


def eval_environment(report: EvalReport) -> str:
    env = report.environment
    dtype = env.get("dtype") or "float32 (not recorded in the JSON)"
    return (f"`{report.command}` — {env.get('cpus')} CPUs ({env.get('machine')}), torch {env.get('torch')}, "
            f"{env.get('torch_threads')} torch thread(s), dtype {dtype}, load average at start "
            f"{load_avg(env.get('load_average_at_start'))}, {env.get('date', 'date not recorded')}")


def cpu_features(machine: dict[str, Any]) -> str:
    """``AVX512-BF16, no AMX`` from a machine record's detected flags (what is not recorded is not claimed)."""
    named = [("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX")]
    found = [f"{label}" if machine[key] else f"no {label}" for key, label in named if key in machine]
    return ", ".join(found) if found else "CPU features not recorded"
