"""The documentation cannot rot: the site builds with ``mkdocs build --strict`` (a broken link or reference fails),
the results pages are what the generator writes from benchmarks/results/, the API reference covers the public API,
and every Python block of the README and the docs runs (pytest-markdown-docs; a block that needs a server or a GPU
is fenced ``python notest`` and says why beside it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import laser_rag

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
#: Topics of the Python language reference (`pydoc_data.topics`) written as the examples' ``my_notes/`` folder.
NOTES = ("try", "exceptions", "with", "import", "for", "assert")


def _markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def test_site_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "reference" / "api" / "index.html").is_file()
    # offline: no page asks for a font or a script from another host
    for page in tmp_path.rglob("*.html"):
        assert "fonts.googleapis" not in page.read_text(encoding="utf-8"), page


def test_results_pages_are_generated_not_edited(tmp_path):
    from laser_rag_benchmarks import results_site

    readme = tmp_path / "README.md"
    shutil.copy(REPO / "README.md", readme)
    results_site.build(out=tmp_path / "results", readme=readme)
    for page in (tmp_path / "results").glob("*.md"):
        committed = DOCS / "results" / page.name
        assert committed.is_file(), f"{committed} is missing: run python -m laser_rag_benchmarks.results_site"
        assert committed.read_text(encoding="utf-8") == page.read_text(encoding="utf-8"), (
            f"{committed} differs from what the generator writes: run python -m laser_rag_benchmarks.results_site")
        for figure in re.findall(r"\]\((img/[^)]+)\)", page.read_text(encoding="utf-8")):
            assert (DOCS / "results" / figure).is_file(), figure
    assert readme.read_text(encoding="utf-8") == (REPO / "README.md").read_text(encoding="utf-8"), (
        "the README's results table differs from the generator's: run python -m laser_rag_benchmarks.results_site")


def test_api_reference_covers_the_public_api():
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^::: [\w.]+\.(\w+)$", text, flags=re.MULTILINE))
    missing = set(laser_rag.__all__) - documented - {"__version__"}
    assert not missing, f"docs/reference/api.md lacks {sorted(missing)}"


def test_readme_fits_on_two_screens():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 150


@pytest.fixture(scope="module")
def notes_folder(tmp_path_factory) -> Path:
    """A working directory holding the examples' ``my_notes/``: a few topics of the Python language reference."""
    from pydoc_data.topics import topics

    cwd = tmp_path_factory.mktemp("docs-examples")
    (cwd / "my_notes").mkdir()
    for name in NOTES:
        (cwd / "my_notes" / f"{name}.txt").write_text(topics[name][:1500], encoding="utf-8")
    return cwd


def test_every_python_block_runs(notes_folder):
    """README.md and docs/**/*.md through pytest-markdown-docs, in a fresh process with its own embedded store."""
    env = {**os.environ, "LASER_RAG_QDRANT_PATH": str(notes_folder / "qdrant"),
           "LASER_RAG_APP_DIR": str(notes_folder / "app"), "RAY_USAGE_STATS_ENABLED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--markdown-docs", "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:recording", "-q", "--rootdir", str(REPO),
         "-c", str(REPO / "pyproject.toml"), *map(str, _markdown_files())],
        cwd=notes_folder, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
