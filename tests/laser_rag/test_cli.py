"""``laser-rag index / search / ask / collections`` on a folder of real text files and a local Qdrant folder; the
error boundary; options generated from dataclasses; plugin commands; clean output in a real process."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from laser_rag import store as _store
from laser_rag.cli import add_plugins, app, dataclass_options, run_command
from laser_rag.errors import LaserRagError
from laser_rag.llm import GenerationConfig

runner = CliRunner()
MINILM = ["--mode", "basic", "--basic-model", "all-minilm-l6-v2"]
ENTRY = "import sys; from laser_rag.cli import main; sys.argv[0] = 'laser-rag'; main()"


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
    _store.close_all()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("index", "search", "ask", "collections"):
        assert command in result.output


def _options(command: str) -> dict[str, Any]:
    return {param.name: param for param in typer.main.get_command(app).commands[command].params}


def test_generation_options_come_from_the_dataclass():
    ask = _options("ask")
    for field in dataclasses.fields(GenerationConfig):
        option = ask[field.name]
        assert option.opts == [f"--{field.name.replace('_', '-')}"]
        assert option.default == field.default and option.help == field.metadata["help"]
    search = _options("search")
    assert {"time_limit", "rewrite_max_new_tokens", "instruction"} <= set(search)
    assert "max_new_tokens" not in search
    assert {"basic_model", "laser_model"} <= set(search) & set(_options("index"))  # one per collection of MODES
    assert "instruction" not in _options("index")


def test_index_then_search(minilm, corpus, store):
    first = invoke("index", corpus, "--corpus", "notes", *MINILM, *store)
    assert first.exit_code == 0, first.output
    assert "notes-all-minilm-l6-v2: 8 added, 0 already there, 8 in total" in first.stdout
    assert first.stderr.startswith("laser-rag: ")  # the start-up line: device, dtype, threads
    again = invoke("index", corpus, "--corpus", "notes", *MINILM, *store)
    assert again.exit_code == 0 and "0 added, 8 already there, 8 in total" in again.output

    result = invoke("search", "what is the await expression?", "-k", "3", "--json", *MINILM, *store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "basic" and len(data["hits"]) == 3
    assert set(data["timings"]) == {"rewrite_ms", "encode_ms", "search_ms"}
    text = invoke("search", "what is the await expression?", "-k", "2", *MINILM, *store)
    assert text.exit_code == 0 and " 1. " in text.stdout and "search" in text.stdout.splitlines()[-1]
    instructed = invoke("search", "await", "-k", "2", "--instruction", "Find the Python docs", "--json", *MINILM,
                        *store)
    assert instructed.exit_code == 0 and len(json.loads(instructed.stdout)["hits"]) == 2
    no_thoughts = invoke("search", "await", "--show-thoughts", *MINILM, *store)
    assert no_thoughts.exit_code == 1 and "single-pass" in no_thoughts.stderr

    listed = invoke("collections", *store)
    assert listed.exit_code == 0 and "notes-all-minilm-l6-v2\t8 points\tencoder all-minilm-l6-v2" in listed.output


def test_search_shows_what_laser_thought_about_the_query(corpus, store):
    indexed = invoke("index", corpus, "--corpus", "thinking", "--mode", "laser", "--limit", "2", *store)
    assert indexed.exit_code == 0, indexed.output
    shown = invoke("search", "await", "--corpus", "thinking", "--mode", "laser", "-k", "1", "--show-thoughts", *store)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "thoughts:" and [line[:9] for line in lines[1:4]] == ["  step 1:", "  step 2:", "  step 3:"]
    data = json.loads(invoke("search", "await", "--corpus", "thinking", "--mode", "laser", "-k", "1",
                             "--show-thoughts", "--json", *store).stdout)
    assert len(data["thoughts"]["steps"]) == 3 and len(data["thoughts"]["steps"][0]) == 5


def test_hybrid_index_search_and_the_upgrade_command(minilm, corpus, store):
    dense = invoke("index", corpus, "--corpus", "plain", *MINILM, *store)
    assert dense.exit_code == 0, dense.output
    refused = invoke("search", "await expression", "--corpus", "plain", "--hybrid", *MINILM, *store)
    assert refused.exit_code == 1 and "laser-rag upgrade-hybrid --collection plain-all-minilm-l6-v2" in refused.stderr
    assert "Traceback" not in refused.output
    upgraded = invoke("upgrade-hybrid", "--corpus", "plain", *store)
    assert upgraded.exit_code == 0, upgraded.output
    assert "plain-all-minilm-l6-v2: 8 sparse vectors added" in upgraded.stdout
    again = invoke("upgrade-hybrid", "--collection", "plain-all-minilm-l6-v2", *store)
    assert again.exit_code == 0 and "already hybrid" in again.stdout
    result = invoke("search", "await expression", "--corpus", "plain", "--hybrid", "-k", "3", "--json", *MINILM,
                    *store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "basic+hybrid" and len(data["hits"]) == 3 and "sparse_ms" in data["timings"]

    fresh = invoke("index", corpus, "--corpus", "fresh", "--hybrid", *MINILM, *store)
    assert fresh.exit_code == 0, fresh.output
    listed = invoke("collections", *store)
    assert "fresh-all-minilm-l6-v2\t8 points" in listed.output and listed.output.count("\thybrid") == 2
    neither = invoke("upgrade-hybrid", *store)
    assert neither.exit_code == 2 and "exactly one of" in neither.output


def test_long_files_are_chunked_unless_told_not_to(minilm, tmp_path, store):
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "essay.md").write_text("\n\n".join(f"Paragraph {i}: " + "the quick brown fox jumps. " * 30
                                                 for i in range(12)))
    chunked = invoke("index", folder, "--corpus", "long", *MINILM, *store)
    assert chunked.exit_code == 0, chunked.output
    added = int(chunked.stdout.split(": ")[1].split()[0])
    assert added > 1
    whole = invoke("index", folder, "--corpus", "whole", "--no-chunk", *MINILM, *store)
    assert whole.exit_code == 0 and "whole-all-minilm-l6-v2: 1 added" in whole.stdout


def test_clear_errors(minilm, corpus, store):
    wrong = invoke("index", corpus, "--collection", "notes-all-minilm-l6-v2", "--mode", "laser", "--limit", "1",
                   *store)
    assert wrong.exit_code == 1 and "error:" in wrong.stderr and "must never share a collection" in wrong.stderr
    assert "Traceback" not in wrong.output

    missing = invoke("search", "x", "--corpus", "other", *MINILM, *store)
    assert missing.exit_code == 1 and "other-all-minilm-l6-v2" in missing.stderr

    started = time.perf_counter()
    down = invoke("search", "x", *MINILM, "--qdrant-url", "http://127.0.0.1:1")
    assert down.exit_code == 1 and "cannot reach a Qdrant server" in down.stderr
    assert time.perf_counter() - started < 10

    several = invoke("search", "x", *MINILM, *store)  # notes, long and whole were indexed with MiniLM
    assert several.exit_code == 2 and "several collections" in several.output

    no_llm = invoke("ask", "what is await?", "--corpus", "notes", *MINILM, *store, "--llm", "http://127.0.0.1:1/v1",
                    "--time-limit", "3")
    assert no_llm.exit_code == 1 and "error:" in no_llm.stderr and "127.0.0.1:1" in no_llm.stderr

    bad_path = invoke("index", corpus / "missing", *MINILM, *store)
    assert bad_path.exit_code == 2 and "does not exist" in bad_path.output

    bad_mode = invoke("search", "x", "--mode", "fast", *store)
    assert bad_mode.exit_code == 2 and "basic" in bad_mode.output


def test_ask_with_the_local_model(minilm, corpus, store):
    result = invoke("ask", "What does the await expression do?", "-k", "2", "--max-new-tokens", "4", "--json",
                    "--corpus", "notes", *MINILM, *store)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["text"], str) and len(data["hits"]) == 2 and data["mode"] == "basic"
    assert set(data["timings"]) == {"rewrite_ms", "encode_ms", "search_ms", "generate_ms", "first_token_ms", "total_ms"}

    rewrite = invoke("search", "What does the await expression do?", "-k", "2", "--json", "--corpus", "notes",
                     "--mode", "rewrite", "--basic-model", "all-minilm-l6-v2", "--rewrite-max-new-tokens", "4",
                     *store)
    assert rewrite.exit_code == 0, rewrite.output
    data = json.loads(rewrite.stdout)
    assert data["mode"] == "rewrite" and data["rationale"] and data["timings"]["rewrite_ms"] > 0


def test_run_command_catches_only_laser_rag_errors():
    def refused():
        raise LaserRagError("the store is busy")

    with pytest.raises(typer.Exit) as err:
        run_command(refused)
    assert err.value.exit_code == 1
    with pytest.raises(ValueError, match="a bug"):  # programming errors keep their traceback
        run_command(lambda: (_ for _ in ()).throw(ValueError("a bug")))
    assert run_command(lambda a, b=0: a + b, 1, b=2) == 3


def test_dataclass_options_build_the_dataclass():
    @dataclasses.dataclass
    class Settings:
        size: int = dataclasses.field(default=3, metadata={"help": "How big.", "min": 1})
        name: str | None = None
        fast: bool = False

    seen = {}
    tool = typer.Typer()

    @tool.command()
    @dataclass_options(Settings, param="settings")
    def run(word: Annotated[str, typer.Argument()], settings: Any) -> None:
        seen.update(word=word, settings=settings)

    result = runner.invoke(tool, ["hi", "--size", "5", "--fast"])
    assert result.exit_code == 0, result.output
    assert seen == {"word": "hi", "settings": Settings(size=5, name=None, fast=True)}
    assert runner.invoke(tool, ["hi", "--size", "0"]).exit_code == 2  # min=1 from the field's metadata
    assert "How big." in runner.invoke(tool, ["--help"]).output
    with pytest.raises(TypeError, match="no parameter"):
        dataclass_options(Settings, param="other")(lambda word: None)


def test_plugins_come_from_entry_points():
    tool = typer.Typer()

    @tool.command()
    def index() -> None:
        """The core command."""

    def hello(name: Annotated[str, typer.Argument()]) -> None:
        """Say hello."""
        typer.echo(f"hello {name}")

    def broken():
        raise ModuleNotFoundError("No module named 'gradio'")

    found = [SimpleNamespace(name="hello", load=lambda: hello), SimpleNamespace(name="demo", load=broken),
             SimpleNamespace(name="index", load=lambda: hello)]
    assert add_plugins(tool, found) == ["hello", "demo"]  # a plugin cannot replace a core command
    assert runner.invoke(tool, ["hello", "you"]).output == "hello you\n"
    listed = runner.invoke(tool, ["--help"]).output
    assert "Say hello." in listed and "unavailable" in listed
    unavailable = runner.invoke(tool, ["demo", "--port", "1"])
    assert unavailable.exit_code == 1 and "gradio" in unavailable.stderr and "Traceback" not in unavailable.output


def test_a_real_process_has_clean_output(minilm, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cats.md").write_text("# Cats\n\nCats are small furry animals that purr and sleep most of the day.\n")
    (notes / "python.md").write_text("# Python\n\nPython coroutines use async def and the await expression.\n")
    options = [*MINILM, "--qdrant-path", str(tmp_path / "qdrant")]

    def laser_rag(*args):
        return subprocess.run([sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=300)

    indexed = laser_rag("index", str(notes), *options)
    assert indexed.returncode == 0, indexed.stderr
    assert "notes-all-minilm-l6-v2: 2 added" in indexed.stdout
    found = laser_rag("search", "how do coroutines wait?", "-k", "1", *options)
    assert found.returncode == 0, found.stderr
    assert "python.md" in found.stdout
    asked = laser_rag("ask", "how do coroutines wait?", "-k", "1", "--max-new-tokens", "4", *options)
    assert asked.returncode == 0, asked.stderr
    assert "sources:" in asked.stdout and "python.md" in asked.stdout
    for run in (indexed, found, asked):
        assert run.stderr.startswith("laser-rag: ")
        for noise in ("Traceback", "Exception ignored", "FutureWarning", "DeprecationWarning", "Loading weights"):
            assert noise not in run.stderr, run.stderr
    for run in (found, asked):  # no model library's progress bar: the start-up line only
        assert run.stderr.count("\n") == 1, run.stderr


def test_verbose_shows_the_model_libraries_progress_bars():
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging

    from laser_rag import runtime

    assert invoke("--verbose", "--help").exit_code == 0
    runtime.quiet_model_loading(verbose=True)  # what `laser-rag --verbose <command>` does before a model loads
    assert logging.is_progress_bar_enabled() and not are_progress_bars_disabled()
    runtime.quiet_model_loading()
    assert not logging.is_progress_bar_enabled() and are_progress_bars_disabled()


def test_ask_in_latentrag_mode_runs_the_agent(minilm, corpus, store):
    """``--mode latentrag``: index the corpus with the agent's reference retriever, then the shipped agent answers
    with its steps, decoded subqueries and stage timings; options that cannot apply to it are refused."""
    indexed = invoke("index", corpus, "--corpus", "agentic", "--mode", "latentrag", *store)
    assert indexed.exit_code == 0, indexed.output
    result = invoke("ask", "What does the await expression do?", "--corpus", "agentic", "--mode", "latentrag",
                    "--decode", "--json", *store)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{"):])
    assert answer["mode"] == "latentrag" and answer["forward_passes"] >= 3
    assert {"prefill_ms", "thought_ms", "answer_ms", "decode_ms"} <= answer["timings"].keys()
    assert all(step["subquery"] is not None and len(step["hits"]) == 3 for step in answer["steps"])
    refused = invoke("ask", "x", "--corpus", "agentic", "--mode", "latentrag", "--steps", "2", *store)
    assert refused.exit_code != 0 and "--steps" in refused.output
