"""Packaging: what `pip install .` puts into site-packages, which commands it registers, and which way the
layers import one another.

The repository keeps its folders app/, training/, benchmarks/; they install as laser_rag_app, laser_rag_training and
laser_rag_benchmarks, so nothing lands in site-packages under a generic name; laser_rag_datasets/ has its installed
name already. The wheel is built offline from a copy of the sources (so the working tree gets no build/ folder).

The layers: `laser_rag` <- `laser_rag_datasets` <- `laser_rag_benchmarks`, `laser_rag_training`, `laser_rag_app`.
A package imports only its own modules and the layers below it, never a private (underscore) module or name of
another package, nor a private name of another of its own modules (its own private modules are its business). The
imports are read with `ast` from every source file under its installed name, so the folder renaming hides nothing.
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = {"laser_rag", "laser_rag_datasets", "laser_rag_app", "laser_rag_training", "laser_rag_benchmarks"}
#: Each installed package's layer: a package may import those of a lower layer, never one beside or above it.
LAYERS = {"laser_rag": 0, "laser_rag_datasets": 1, "laser_rag_benchmarks": 2, "laser_rag_training": 2, "laser_rag_app": 2}
#: Scripts that use the packages from above (every layer, public names only).
CONSUMERS = ("scripts", "run.py")
COMMANDS = {
    "demo": "laser_rag_app.cli:demo",
    "train": "laser_rag_training.cli:train",
    "eval": "laser_rag_benchmarks.cli:eval_",
    "convert": "laser_rag_benchmarks.cli:convert",
    "train-latentrag": "laser_rag_training.cli:train_latentrag",
    "eval-qa": "laser_rag_benchmarks.cli:eval_qa",
    "serve": "laser_rag.serving.cli:serve",
}


def package_folders() -> dict[str, str]:
    """Installed top-level package -> its folder in the repository (pyproject.toml's ``package-dir`` renaming)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    renamed = setuptools.get("package-dir", {})
    return {top: renamed.get(top, top) for top in {name.split(".")[0] for name in setuptools["packages"]}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: cannot build a wheel offline")
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "runs")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in package_folders().values():
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
    assert "laser_rag_datasets/shared.py" in names


def test_wheel_carries_no_benchmark_results(wheel):
    """benchmarks/results/ is the repository's, found through `find_results_dir`, never package data."""
    assert not [name for name in wheel.namelist() if "/results/" in name or name.endswith(".json") and
                name.startswith("laser_rag_benchmarks/")]


def test_wheel_registers_the_plugin_commands(wheel):
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "laser-rag = laser_rag.cli:main" in text
    for name, target in COMMANDS.items():
        assert f"{name} = {target}" in text


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_file(module: str, folders: dict[str, str]) -> Path | None:
    """The repository file of an installed module name (a package's __init__.py), None when it is not ours."""
    top, *rest = module.split(".")
    if top not in folders:
        return None
    base = REPO / folders[top] / Path(*rest) if rest else REPO / folders[top]
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def import_violations(source: str, module: str, folders: dict[str, str]) -> list[str]:
    """What ``source`` (the code of installed module ``module``; a consumer script when its top is not a package)
    imports against the layer rules: a layer beside or above, a repository folder name instead of the installed
    one, a relative import, a private module or name of another package, a private name of another module."""
    package = module.split(".")[0]
    folder_names = {folder for top, folder in folders.items() if folder != top}
    problems, bound = [], {}

    def check(target: str, names: list[str], line: int) -> None:
        top = target.split(".")[0]
        if top in folder_names:
            problems.append(f"{line}: {target}: the repository folder, not the installed name")
        if top not in LAYERS:
            return
        if top != package and package in LAYERS and LAYERS[top] >= LAYERS[package]:
            problems.append(f"{line}: {target}: a layer beside or above {package}")
        if top != package:
            private = [part for part in target.split(".") if _is_private(part)] + [n for n in names if _is_private(n)]
            problems.extend(f"{line}: {target}: private {part!r} of another package" for part in private)
        else:
            problems.extend(f"{line}: {target}.{n}: private name of another module" for n in names
                            if _is_private(n) and _module_file(f"{target}.{n}", folders) is None)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, [], node.lineno)
                bound[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                problems.append(f"{node.lineno}: relative import")
                continue
            check(node.module, [alias.name for alias in node.names], node.lineno)
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(ast.parse(source)):  # `module._name` on an imported module or class
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                and _is_private(node.attr) and bound[node.value.id].split(".")[0] in LAYERS):
            problems.append(f"{node.lineno}: {node.value.id}.{node.attr}: private name of another module")
    return problems


def _installed_name(path: Path, folders: dict[str, str]) -> str:
    relative = path.relative_to(REPO)
    for top, folder in folders.items():
        if relative.parts[0] == folder:
            parts = [top, *relative.with_suffix("").parts[1:]]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return ".".join(relative.with_suffix("").parts)  # a consumer script


def test_layers_import_downwards_and_only_public_names():
    folders = package_folders()
    assert set(folders) == set(LAYERS) == TOP_LEVEL
    files = [path for folder in folders.values() for path in (REPO / folder).rglob("*.py")]
    files += [path for name in CONSUMERS for path in ([REPO / name] if name.endswith(".py") else
                                                      (REPO / name).rglob("*.py"))]
    offenders = {}
    for path in sorted(files):
        problems = import_violations(path.read_text(), _installed_name(path, folders), folders)
        if problems:
            offenders[str(path.relative_to(REPO))] = problems
    assert offenders == {}


@pytest.mark.parametrize(("module", "source", "problem"), [
    ("laser_rag_training.data", "from laser_rag_benchmarks.harness import evaluate_modes", "beside"),
    ("laser_rag_app.corpora", "import laser_rag_benchmarks.shared", "beside"),
    ("laser_rag_datasets.shared", "from laser_rag_training.data import SOURCES", "above"),
    ("laser_rag.store", "from laser_rag_datasets import shared", "above"),
    ("laser_rag_training.train", "from laser_rag import _models", "private '_models' of another package"),
    ("laser_rag_training.train", "from laser_rag._models import locate", "private '_models' of another package"),
    ("laser_rag_benchmarks.qa", "from laser_rag_datasets.shared import _check_split", "private '_check_split'"),
    ("laser_rag_training.trajectories", "from laser_rag_datasets import shared\nshared._select",
     "shared._select: private name"),
    ("laser_rag_training.trajectories", "from laser_rag_training.data import _scifact", "private name of another"),
    ("laser_rag.latentrag.explicit", "from laser_rag.latentrag import agent\nagent._Clock()", "private name"),
    ("scripts.ship_checkpoint", "from laser_rag.util import _x", "private '_x' of another package"),
    ("laser_rag_training.cli", "from training.config import TrainConfig", "the repository folder"),
    ("laser_rag_app.ui", "from .engine import Engine", "relative import"),
])
def test_the_import_rules_catch(module, source, problem):
    problems = import_violations(source, module, package_folders())
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(("module", "source"), [
    ("laser_rag_training.data", "from laser_rag_datasets import shared\nfrom laser_rag.bm25 import BM25"),
    ("laser_rag_benchmarks.harness", "from laser_rag_datasets.subsets import slice_dataset"),
    ("laser_rag.encoders.laser", "from laser_rag import _models\n_models.locate"),  # its own private module
    ("laser_rag.store", "import _jsonnet\nfrom collections import abc\nabc._x"),  # not ours
    ("run", "from laser_rag_app.cli import demo\nfrom laser_rag_training.cli import train"),
])
def test_the_import_rules_allow(module, source):
    assert import_violations(source, module, package_folders()) == []
