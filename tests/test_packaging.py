"""Packaging: what `pip install .` puts into site-packages, and which commands it registers.

The repository keeps its folders app/, training/, benchmarks/; they install as laser_rag_app, laser_rag_training and
laser_rag_benchmarks, so nothing lands in site-packages under a generic name. The wheel is built offline from a copy
of the sources (so the working tree gets no build/ folder).
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"laser_rag", "laser_rag_app", "laser_rag_training", "laser_rag_benchmarks"}
COMMANDS = {
    "demo": "laser_rag_app.cli:demo",
    "train": "laser_rag_training.cli:train",
    "eval": "laser_rag_benchmarks.cli:eval_",
    "convert": "laser_rag_benchmarks.cli:convert",
    "train-latentrag": "laser_rag_training.cli:train_latentrag",
    "eval-qa": "laser_rag_benchmarks.cli:eval_qa",
    "serve": "laser_rag.serving.cli:serve",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: cannot build a wheel offline")
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "results", "runs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("laser_rag", "app", "training", "benchmarks"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
               "--disable-pip-version-check", "-w", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and "No module named" in result.stderr + result.stdout:
        pytest.skip(f"cannot build a wheel offline here:\n{result.stderr[-2000:]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = out.glob("laser_rag-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_installs_only_namespaced_packages(wheel):
    names = {name.split("/", 1)[0] for name in wheel.namelist()}
    top_level = {name for name in names if not name.endswith((".dist-info", ".data"))}
    assert top_level == TOP_LEVEL


def test_wheel_carries_checkpoints_and_training_configs(wheel):
    names = set(wheel.namelist())
    for checkpoint in ("laser-smollm2-135m", "basic-smollm2-135m"):
        for file in ("adapter_model.safetensors", "adapter_config.json", "laser_config.json"):
            assert f"laser_rag/checkpoints/{checkpoint}/{file}" in names
    for file in ("latentrag_config.json", "latentrag_modules.safetensors", "llm_adapter/adapter_model.safetensors",
                 "llm_adapter/adapter_config.json", "retriever_adapter/adapter_model.safetensors"):
        assert f"laser_rag/checkpoints/latentrag-smollm2-135m/{file}" in names
    assert "laser_rag/checkpoints/explicit-agent-smollm2-135m/llm_adapter/adapter_model.safetensors" in names
    assert "laser_rag_training/configs/laser.yaml" in names
    assert "laser_rag_training/configs/tiny.yaml" in names
    assert "laser_rag_training/configs/latentrag.yaml" in names
    assert "laser_rag/latentrag/agent.py" in names and "laser_rag_training/latentrag/train.py" in names
    assert "laser_rag_app/cli.py" in names and "laser_rag_training/cli.py" in names


def test_wheel_registers_the_plugin_commands(wheel):
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "laser-rag = laser_rag.cli:main" in text
    for name, target in COMMANDS.items():
        assert f"{name} = {target}" in text


def test_library_never_imports_the_layers_above_it():
    """laser_rag <- laser_rag_benchmarks <- laser_rag_training, laser_rag_app: never the other way."""
    above = {"app", "training", "benchmarks", "laser_rag_app", "laser_rag_training", "laser_rag_benchmarks"}
    offenders = []
    for path in sorted((REPO / "laser_rag").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(REPO)}: {m}" for m in modules if m.split(".")[0] in above]
    assert offenders == []


def test_app_and_training_import_their_own_package_by_its_installed_name():
    offenders = []
    for folder in ("app", "training"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    if node.module.split(".")[0] in {"app", "training", "benchmarks"}:
                        offenders.append(f"{path.relative_to(REPO)}: {node.module}")
                elif isinstance(node, ast.ImportFrom) and node.level > 0:
                    offenders.append(f"{path.relative_to(REPO)}: relative import")
    assert offenders == []
