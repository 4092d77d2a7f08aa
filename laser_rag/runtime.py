"""Where and how models run: the cache folder, the device, the dtype chosen per device and CPU, and torch's threads.

`runtime_summary` is the one line the CLI, the app, the trainer and the benchmarks print at start-up;
`configure_threads` is what every entry point calls before torch runs on a CPU; `quiet_model_loading` hides the
model libraries' progress bars (e.g. transformers' "Loading weights") and info logs from the CLI and the app unless
``--verbose``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import platformdirs
import torch

__all__ = [
    "DTYPE_ENV",
    "DTYPE_NAMES",
    "THREADS_ENV",
    "cache_dir",
    "configure_threads",
    "cpu_bf16_units",
    "default_device",
    "default_dtype",
    "dtype_choice",
    "dtype_name",
    "parse_dtype",
    "physical_cores",
    "quiet_model_loading",
    "runtime_summary",
]


def cache_dir() -> Path:
    """Where dequantised GGUF weights and file hashes are kept (``$LASER_RAG_CACHE`` overrides)."""
    path = Path(os.environ.get("LASER_RAG_CACHE") or platformdirs.user_cache_dir("laser_rag"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------------- dtype

#: The names a dtype may be given by (``dtype=`` and ``$LASER_RAG_DTYPE``); "auto" means: choose for the device.
DTYPE_NAMES: dict[str, torch.dtype | None] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
    "auto": None,
}
DTYPE_ENV = "LASER_RAG_DTYPE"


def parse_dtype(value: str | torch.dtype | None) -> torch.dtype | None:
    """A dtype, one of `DTYPE_NAMES`, or None -> a torch dtype (None for "auto" and None); anything else is a
    ValueError that lists the accepted names."""
    if value is None or isinstance(value, torch.dtype):
        if value is not None and value not in DTYPE_NAMES.values():
            raise ValueError(f"unsupported dtype {value}; use one of {', '.join(DTYPE_NAMES)}")
        return value
    key = str(value).strip().lower().removeprefix("torch.")
    if key not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {value!r}; use one of {', '.join(DTYPE_NAMES)}")
    return DTYPE_NAMES[key]


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cpu_bf16_units() -> str | None:
    """The matrix/vector units that make bf16 faster than fp32 on this CPU ("AMX", "AVX512-BF16"), else None.

    torch's own public check comes first (`torch.backends.cpu.get_cpu_capability`, which names the kernels torch
    dispatches to); it does not report bf16 support on current versions, so the cpuinfo flags decide then.
    """
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "AMX" in capability:
        return "AMX"
    if "BF16" in capability:
        return "AVX512-BF16"
    if capability in ("DEFAULT", "NO AVX"):
        return None  # torch runs without vector kernels here (or was told to): bf16 would be emulated
    flags = _cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return None


def dtype_choice(device: torch.device | str, requested: str | torch.dtype | None = None) -> tuple[torch.dtype, str]:
    """The dtype a model runs in on ``device``, and why (for `repr` and `runtime_summary`).

    ``requested`` (a ``dtype=`` argument) wins, then ``$LASER_RAG_DTYPE``; "auto" or nothing chooses: bf16 on CUDA
    (fp16 where bf16 is unsupported), fp16 on MPS, and on a CPU bf16 only where AMX or AVX512-BF16 make it faster
    (without them a CPU emulates bf16 matmuls, slower than fp32's).
    """
    device = torch.device(device)
    chosen = parse_dtype(requested)
    if chosen is not None:
        return chosen, "dtype= argument"
    env = os.environ.get(DTYPE_ENV, "").strip()
    if env:
        try:
            chosen = parse_dtype(env)
        except ValueError as exc:
            raise ValueError(f"${DTYPE_ENV}: {exc}") from None
        if chosen is not None:
            return chosen, f"${DTYPE_ENV}"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "auto: CUDA"
        return torch.float16, "auto: CUDA without bf16"
    if device.type == "mps":
        return torch.float16, "auto: MPS"
    units = cpu_bf16_units()
    if units:
        return torch.bfloat16, f"auto: CPU with {units}"
    return torch.float32, "auto: CPU without AMX or AVX512-BF16"


def default_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype `dtype_choice` picks for ``device`` (``$LASER_RAG_DTYPE`` overrides)."""
    return dtype_choice(device)[0]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------------------------------- threads

THREADS_ENV = "LASER_RAG_THREADS"
_threads = {"configured": 0, "why": "torch default"}


def _core_ids(cpus: set[int] | None = None) -> set[tuple[str, str]]:
    """(package, core) pairs of the given logical CPUs (all present ones if None), from sysfs topology."""
    root = Path("/sys/devices/system/cpu")
    cores = set()
    for directory in root.glob("cpu[0-9]*"):
        cpu = int(directory.name[3:])
        if cpus is not None and cpu not in cpus:
            continue
        try:
            cores.add(((directory / "topology/physical_package_id").read_text().strip(),
                       (directory / "topology/core_id").read_text().strip()))
        except OSError:
            continue
    return cores


def physical_cores() -> int:
    """Physical cores this process may run on (CPU affinity respected; hyper-threads not counted)."""
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = _core_ids(allowed)
    if cores:
        return len(cores)
    return len(allowed) if allowed else (os.cpu_count() or 1)


def _torch_default_threads() -> int:
    """What torch picks when nobody configures it: the machine's physical cores (cpuinfo, affinity ignored)."""
    return len(_core_ids()) or os.cpu_count() or 1


def configure_threads() -> int:
    """Set torch's intra-op threads to this process's physical cores, unless told otherwise; returns the count.

    ``$LASER_RAG_THREADS`` wins; a user who configured torch already (``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, or
    ``torch.set_num_threads`` to something other than torch's default) is left alone. Calling it again is cheap.
    """
    current = torch.get_num_threads()
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"${THREADS_ENV} must be a positive integer, got {env!r}")
        wanted, why = int(env), f"${THREADS_ENV}"
    elif _threads["configured"] == current:
        return current  # ours, from an earlier call
    elif os.environ.get("OMP_NUM_THREADS") or os.environ.get("MKL_NUM_THREADS"):
        wanted, why = current, "OMP_NUM_THREADS/MKL_NUM_THREADS"
    elif current != _torch_default_threads():
        wanted, why = current, "set by the user"
    else:
        wanted = physical_cores()
        why = f"{wanted} physical core{'s' if wanted != 1 else ''}"
    if wanted != current:
        torch.set_num_threads(wanted)
    _threads.update(configured=wanted, why=why)
    return wanted


def runtime_summary(device: torch.device | str | None = None, dtype: str | torch.dtype | None = None) -> str:
    """One line for start-up: the device, the dtype chosen and why, and the torch threads in use.

    Example: ``device cpu, float32 (auto: CPU without AMX or AVX512-BF16), 2 torch threads (2 physical cores)``
    """
    device = torch.device(device) if device is not None else default_device()
    chosen, why = dtype_choice(device, dtype)
    threads = torch.get_num_threads()
    threads_why = _threads["why"] if _threads["configured"] == threads else "torch default"
    return (f"device {device.type}, {dtype_name(chosen)} ({why}), {threads} torch thread{'s' if threads != 1 else ''} "
            f"({threads_why})")


# --------------------------------------------------------------------------------------------------- output


def quiet_model_loading(verbose: bool = False) -> None:
    """Hide transformers' and huggingface_hub's progress bars ("Loading weights", downloads) and transformers'
    warnings below errors for this process; ``verbose=True`` shows them again (transformers at its info level).
    Entry points call it (the CLI, the app); the library alone never changes them."""
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    if verbose:
        transformers_logging.enable_progress_bar()
        transformers_logging.set_verbosity_info()
        enable_progress_bars()
    else:
        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        disable_progress_bars()
