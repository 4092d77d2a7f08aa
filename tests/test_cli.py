"""``laser-rag index / search / ask / collections`` on a folder of real text files and a local Qdrant folder."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from laser_rag.cli import app
from laser_rag.store import release

runner = CliRunner()
MINILM = ["--mode", "basic", "--basic-model", "all-minilm-l6-v2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, short_passages):
    """Eight pydoc passages written as .md files (the folder corpus format)."""
    folder = tmp_path_factory.mktemp("notes")
    for doc in short_passages[:8]:
        (folder / f"{doc.id.replace(':', '_').replace('#', '_')}.md").write_text(doc.text.strip() + "\n")
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("qdrant")
    yield ["--qdrant-path", str(path)]
    release(path)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("index", "search", "ask", "collections"):
        assert command in result.output


def test_index_then_search(minilm, corpus, store):
    first = invoke("index", corpus, "--corpus", "notes", *MINILM, *store)
    assert first.exit_code == 0, first.output
    assert "notes-all-minilm-l6-v2: 8 added, 0 already there, 8 in total" in first.output
    again = invoke("index", corpus, "--corpus", "notes", *MINILM, *store)
    assert again.exit_code == 0 and "0 added, 8 already there, 8 in total" in again.output

    result = invoke("search", "what is the await expression?", "-k", "3", "--json", *MINILM, *store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "basic" and len(data["hits"]) == 3
    assert set(data["timings"]) == {"rewrite_ms", "encode_ms", "search_ms"}
    text = invoke("search", "what is the await expression?", "-k", "2", *MINILM, *store)
    assert text.exit_code == 0 and " 1. " in text.output and "search" in text.output.splitlines()[-1]

    listed = invoke("collections", *store)
    assert listed.exit_code == 0 and "notes-all-minilm-l6-v2\t8 points\tencoder all-minilm-l6-v2" in listed.output


def test_clear_errors(minilm, corpus, store):
    wrong = invoke("index", corpus, "--collection", "notes-all-minilm-l6-v2", "--mode", "laser", "--limit", "1",
                   *store)
    assert wrong.exit_code == 1 and "built by another encoder" in wrong.output
    assert "Traceback" not in wrong.output

    missing = invoke("search", "x", "--corpus", "other", *MINILM, *store)
    assert missing.exit_code == 1 and "laser-rag index" in missing.output

    started = time.perf_counter()
    down = invoke("search", "x", *MINILM, "--qdrant-url", "http://127.0.0.1:1")
    assert down.exit_code == 1 and "cannot reach a Qdrant server" in down.output
    assert time.perf_counter() - started < 10

    no_llm = invoke("ask", "what is await?", *MINILM, *store, "--llm", "http://127.0.0.1:1/v1", "--time-limit", "3")
    assert no_llm.exit_code == 1 and "error:" in no_llm.output

    bad_path = invoke("index", corpus / "missing", *MINILM, *store)
    assert bad_path.exit_code == 1 and "not found" in bad_path.output


def test_ask_with_the_local_model(minilm, corpus, store):
    result = invoke("ask", "What does the await expression do?", "-k", "2", "--max-new-tokens", "4", "--json",
                    *MINILM, *store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["text"], str) and len(data["hits"]) == 2
    assert set(data["timings"]) == {"rewrite_ms", "encode_ms", "search_ms", "generate_ms", "total_ms"}
