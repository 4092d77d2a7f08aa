"""Backbone loading (GGUF cache, clear errors) and the runtime choices: dtype per device and CPU, torch threads."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from laser_rag import _models, backbones, runtime
from laser_rag.encoders import LaSEREncoder
from laser_rag.errors import LaserRagError, ModelNotFoundError

QUERIES = ["Is the sky blue because of Rayleigh scattering?", "Why?"]


# --------------------------------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def base():
    return LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="float32")


def test_gguf_is_dequantised_once_then_reloaded_from_cache(monkeypatch, tmp_path, base):
    monkeypatch.setenv("LASER_RAG_CACHE", str(tmp_path))
    gguf = _models.resolve_package_file(backbones.DEFAULT_BASE)
    first = LaSEREncoder.from_pretrained(str(gguf), dtype="float32")
    cached = list((tmp_path / "gguf").iterdir())
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()
    stamp = (cached[0] / "model.safetensors").stat().st_mtime_ns
    second = LaSEREncoder.from_pretrained(str(gguf), dtype="float32")
    assert (cached[0] / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert first.fingerprint == second.fingerprint == base.fingerprint  # same file, same identity
    np.testing.assert_array_equal(first.encode_queries(QUERIES), second.encode_queries(QUERIES))
    np.testing.assert_allclose(first.encode_queries(QUERIES), base.encode_queries(QUERIES), atol=1e-6)
    # the cache directory itself is a loadable model that remembers where it came from
    assert LaSEREncoder.from_pretrained(str(cached[0]), dtype="float32").fingerprint == base.fingerprint
    assert _models.directory_id(cached[0]) == base.base_id


def test_loading_a_lora_checkpoint_shows_no_third_party_future_warning():
    """peft's read of transformers' deprecated attribute is hidden; any other FutureWarning would fail here."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        encoder = LaSEREncoder.from_pretrained("builtin:laser", dtype="float32")
    assert not any(p.requires_grad for p in encoder.model.parameters()) and not encoder.model.training


def test_missing_models_say_what_to_do(tmp_path):
    assert issubclass(ModelNotFoundError, LaserRagError) and issubclass(ModelNotFoundError, FileNotFoundError)
    with pytest.raises(ModelNotFoundError, match="pip install"):
        LaSEREncoder.from_pretrained("pkg:no_such_model_package/model.gguf")
    with pytest.raises(ModelNotFoundError, match="no GGUF file"):
        LaSEREncoder.from_pretrained(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFoundError):
        LaSEREncoder.from_pretrained(str(tmp_path / "no" / "such" / "dir"))
    with pytest.raises(ModelNotFoundError, match="no built-in checkpoint"):
        LaSEREncoder.from_pretrained("builtin:nonexistent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model weights"):
        LaSEREncoder.from_pretrained(str(tmp_path / "empty"))


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="could not load the model 'Alibaba-NLP/LaSER-Qwen3-0.6B'"):
        LaSEREncoder.from_pretrained("Alibaba-NLP/LaSER-Qwen3-0.6B")


# --------------------------------------------------------------------------------------------------- dtype


@pytest.fixture
def cpu(monkeypatch):
    """Detection inputs under the test's control: no $LASER_RAG_DTYPE, torch's capability and cpuinfo flags set."""
    monkeypatch.delenv(runtime.DTYPE_ENV, raising=False)

    def machine(capability: str, flags: set[str]):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(runtime, "_cpu_flags", lambda: frozenset(flags))

    return machine


@pytest.mark.parametrize(("capability", "flags", "expected"), [
    ("AVX512", {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, torch.bfloat16),  # Sapphire Rapids and later
    ("AVX512", {"avx512f", "avx512_bf16"}, torch.bfloat16),  # Cooper Lake, Zen 4
    ("AVX512", {"avx512f"}, torch.float32),  # Skylake/Ice Lake: no bf16 units
    ("AVX2", {"avx2"}, torch.float32),  # AMD EPYC (Zen 2/3), older Intel
    ("DEFAULT", {"amx_bf16"}, torch.float32),  # torch told to use no vector kernels
    ("AVX2", set(), torch.float32),  # no cpuinfo (macOS, containers without /proc)
])
def test_cpu_dtype_follows_the_matrix_units(cpu, capability, flags, expected):
    cpu(capability, flags)
    dtype, why = runtime.dtype_choice("cpu")
    assert dtype == expected and runtime.default_dtype(torch.device("cpu")) == expected
    assert why.startswith("auto: CPU with" if expected == torch.bfloat16 else "auto: CPU without")


def test_this_machines_answer_matches_its_cpuinfo(monkeypatch):
    monkeypatch.delenv(runtime.DTYPE_ENV, raising=False)
    flags = runtime._cpu_flags()
    has_units = bool({"amx_bf16", "avx512_bf16"} & flags)
    assert (runtime.default_dtype("cpu") == torch.bfloat16) == has_units


def test_accelerators(cpu, monkeypatch):
    cpu("AVX2", set())
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.dtype_choice("cuda") == (torch.bfloat16, "auto: CUDA")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert runtime.dtype_choice("cuda")[0] == torch.float16
    assert runtime.dtype_choice("mps")[0] == torch.float16


def test_argument_and_environment_override(cpu, monkeypatch):
    cpu("AVX512", {"amx_bf16"})
    assert runtime.dtype_choice("cpu", "fp32") == (torch.float32, "dtype= argument")
    assert runtime.dtype_choice("cpu", torch.float16) == (torch.float16, "dtype= argument")
    monkeypatch.setenv(runtime.DTYPE_ENV, "float32")
    assert runtime.dtype_choice("cpu") == (torch.float32, "$LASER_RAG_DTYPE")
    assert runtime.dtype_choice("cpu", "bfloat16")[0] == torch.bfloat16  # the argument wins
    assert runtime.dtype_choice("cpu", "auto") == (torch.float32, "$LASER_RAG_DTYPE")
    monkeypatch.setenv(runtime.DTYPE_ENV, "auto")
    assert runtime.dtype_choice("cpu")[0] == torch.bfloat16


def test_dtype_names_are_validated(monkeypatch):
    for name, dtype in [("float32", torch.float32), ("FP32", torch.float32), ("bf16", torch.bfloat16),
                        ("torch.bfloat16", torch.bfloat16), ("fp16", torch.float16), ("float16", torch.float16),
                        ("auto", None), (None, None)]:
        assert runtime.parse_dtype(name) == dtype
    with pytest.raises(ValueError, match="unknown dtype 'int8'; use one of float32, fp32, bfloat16"):
        runtime.parse_dtype("int8")
    with pytest.raises(ValueError, match="unsupported dtype"):
        runtime.parse_dtype(torch.int8)
    monkeypatch.setenv(runtime.DTYPE_ENV, "half-ish")
    with pytest.raises(ValueError, match=r"\$LASER_RAG_DTYPE: unknown dtype 'half-ish'"):
        runtime.default_dtype("cpu")
    monkeypatch.delenv(runtime.DTYPE_ENV)
    with pytest.raises(ValueError, match="unknown dtype"):
        LaSEREncoder.from_pretrained(backbones.DEFAULT_BASE, dtype="int8")  # before anything is loaded


# --------------------------------------------------------------------------------------------------- threads


@pytest.fixture
def threads(monkeypatch):
    """torch's thread count and laser_rag's record of it are restored after the test."""
    before = torch.get_num_threads()
    for name in (runtime.THREADS_ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(runtime._threads, "configured", 0)
    monkeypatch.setitem(runtime._threads, "why", "torch default")
    yield
    torch.set_num_threads(before)


def test_threads_default_to_the_physical_cores(threads, monkeypatch):
    monkeypatch.setattr(runtime, "physical_cores", lambda: 1)
    monkeypatch.setattr(runtime, "_torch_default_threads", lambda: torch.get_num_threads())  # nobody configured it
    assert runtime.configure_threads() == 1 == torch.get_num_threads()
    assert "1 torch thread (1 physical core)" in runtime.runtime_summary("cpu")
    assert runtime.configure_threads() == 1  # idempotent


def test_threads_respect_the_user(threads, monkeypatch):
    monkeypatch.setattr(runtime, "physical_cores", lambda: 1)
    monkeypatch.setenv(runtime.THREADS_ENV, "3")
    assert runtime.configure_threads() == 3 == torch.get_num_threads()
    assert "(" + "$LASER_RAG_THREADS)" in runtime.runtime_summary("cpu")
    monkeypatch.delenv(runtime.THREADS_ENV)
    torch.set_num_threads(2)
    monkeypatch.setattr(runtime, "_torch_default_threads", lambda: 4)  # torch was set to something else by the user
    assert runtime.configure_threads() == 2 == torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setattr(runtime, "_torch_default_threads", lambda: 2)
    monkeypatch.setitem(runtime._threads, "configured", 0)
    assert runtime.configure_threads() == 2
    monkeypatch.setenv(runtime.THREADS_ENV, "zero")
    with pytest.raises(ValueError, match="LASER_RAG_THREADS must be a positive integer"):
        runtime.configure_threads()


def test_physical_cores_is_sane():
    assert 1 <= runtime.physical_cores() <= (os.cpu_count() or 1)


def test_runtime_summary_is_one_line(monkeypatch):
    monkeypatch.delenv(runtime.DTYPE_ENV, raising=False)
    line = runtime.runtime_summary("cpu")
    assert "\n" not in line and line.startswith("device cpu, ")
    assert runtime.dtype_name(runtime.default_dtype("cpu")) in line and "torch thread" in line
    assert "(dtype= argument)" in runtime.runtime_summary("cpu", "bf16")


def test_the_hash_index_keeps_every_process_entry(tmp_path):
    """Processes sharing a cache hash files at once: the file lock keeps each one's read-update-write whole, so no
    entry is lost."""
    import hashlib
    import json
    import subprocess
    import sys

    files = []
    for n in range(24):
        files.append(tmp_path / "files" / f"f{n}.bin")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_bytes(f"file {n}".encode() * 1000)
    code = ("import sys; from pathlib import Path; from laser_rag import _models; "
            "[_models.file_sha256(Path(p)) for p in sys.argv[1:]]")
    env = {**os.environ, "LASER_RAG_CACHE": str(tmp_path / "cache")}
    workers = [subprocess.Popen([sys.executable, "-c", code, *map(str, files[i::4])], env=env) for i in range(4)]
    assert [worker.wait(timeout=300) for worker in workers] == [0, 0, 0, 0]
    index = json.loads((tmp_path / "cache" / "file-hashes.json").read_text())
    assert sorted(index.values()) == sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
