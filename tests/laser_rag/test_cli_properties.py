"""Bad arguments swept with Hypothesis through every core ``laser-rag`` command (typer's CliRunner, the real MiniLM
encoder, a real embedded Qdrant folder). For input that is the user's fault the property is: a non-zero exit code,
and either typer's usage box (exit 2) or one red ``error:`` line (exit 1) - never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import blank, control, lone_surrogate, mixed_scripts
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from laser_rag import store as _store
from laser_rag.cli import app

runner = CliRunner()
MINILM = ["--mode", "basic", "--basic-model", "all-minilm-l6-v2"]
DEAD_LLM = ["--llm", "http://127.0.0.1:1/v1", "--time-limit", "2"]


@pytest.fixture(scope="module")
def places(tmp_path_factory, minilm):
    """A Qdrant folder holding one (dense-only) MiniLM collection ``notes``, a plain file, and a folder corpus whose
    second file is binary."""
    root = tmp_path_factory.mktemp("cli-props")
    notes = root / "notes"
    notes.mkdir()
    (notes / "cats.md").write_text("# Cats\n\nCats purr and sleep most of the day.\n")
    qdrant = root / "qdrant"
    indexed = runner.invoke(app, ["index", str(notes), *MINILM, "--qdrant-path", str(qdrant)])
    assert indexed.exit_code == 0, indexed.output
    broken = root / "broken"
    broken.mkdir()
    (broken / "a.md").write_text("fine text")
    (broken / "b.txt").write_bytes("UTF-16 text".encode("utf-16-le"))
    (root / "a-file").write_text("not a folder")
    yield {"qdrant": qdrant, "notes": notes, "broken": broken, "file": root / "a-file"}
    _store.close_all()


bad_text = st.one_of(st.just(""), blank, control.filter(lambda t: not t.strip() or "\x00" in t), lone_surrogate)
bad_count = st.sampled_from(["0", "-1", "x", "1.5", ""])
search_or_ask = st.sampled_from(["search", "ask"])


@st.composite
def cases(draw):
    """(the arguments after ``laser-rag``, with ``{qdrant}``, ``{notes}``, ... placeholders)."""
    kind = draw(st.sampled_from(["query", "k", "steps", "mode", "corpus", "qdrant_file", "instruction", "hybrid",
                                 "index_broken", "index_limit", "index_missing", "collections", "upgrade"]))
    command = draw(search_or_ask)
    base = [command, "cats?", "--corpus", "notes", *MINILM, "--qdrant-path", "{qdrant}"]
    base += DEAD_LLM if command == "ask" else []
    if kind == "query":
        return [command, draw(bad_text), "--corpus", "notes", *MINILM, "--qdrant-path", "{qdrant}", *DEAD_LLM]
    if kind == "k":
        return [*base, "-k", draw(bad_count)]
    if kind == "steps":
        return [*base, "--steps", draw(st.sampled_from(["0", "x", "2"]))]  # 2: MiniLM has no latent steps
    if kind == "mode":
        return [command, "cats?", "--mode", draw(st.sampled_from(["fast", "", "LASER "])), "--qdrant-path",
                "{qdrant}"]
    if kind == "corpus":
        name = draw(st.one_of(mixed_scripts, st.sampled_from(["missing", "../notes", "notes/x"])))
        return [command, "cats?", "--corpus", name, *MINILM, "--qdrant-path", "{qdrant}", *DEAD_LLM]
    if kind == "qdrant_file":
        return [*draw(st.sampled_from([["search", "cats?", *MINILM], ["collections"], ["index", "{notes}"]])),
                "--qdrant-path", draw(st.sampled_from(["{file}", "{file}/below"]))]
    if kind == "instruction":
        return [*base, "--instruction", draw(lone_surrogate)]
    if kind == "hybrid":
        return [*base, "--hybrid"]  # the collection has no sparse vectors
    if kind == "index_broken":
        return ["index", "{broken}", *MINILM, "--qdrant-path", "{qdrant}"]
    if kind == "index_limit":
        return ["index", "{notes}", *MINILM, "--qdrant-path", "{qdrant}",
                draw(st.sampled_from(["--limit", "--batch-size"])), draw(bad_count)]
    if kind == "index_missing":
        return ["index", "{notes}/missing", *MINILM, "--qdrant-path", "{qdrant}"]
    if kind == "collections":
        return ["collections", "--qdrant-url", draw(st.sampled_from(["http://127.0.0.1:1", "not a url", "http://[::1"]))]
    return ["upgrade-hybrid", "--qdrant-path", "{qdrant}",
            *draw(st.sampled_from([[], ["--corpus", "notes", "--collection", "x"], ["--collection", "missing"],
                                   ["--corpus", "nothing"]]))]


def _check_one_clean_line(result):
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "Usage:" in result.output
        return
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("laser-rag: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@settings(max_examples=25)
@given(args=cases())
@example(args=["search", "", "--corpus", "notes", *MINILM, "--qdrant-path", "{qdrant}"])  # was a traceback
@example(args=["collections", "--qdrant-path", "{file}"])  # FileExistsError from mkdir: a traceback
@example(args=["index", "{broken}", *MINILM, "--qdrant-path", "{qdrant}"])  # UTF-16 text was indexed
@example(args=["collections", "--qdrant-url", "not a url"])  # urllib3's LocationParseError: a traceback
def test_bad_arguments_give_one_clean_line(places, args):
    _check_one_clean_line(runner.invoke(app, [_fill(arg, places) for arg in args]))


def _fill(arg: str, places: dict[str, Path]) -> str:
    """``{qdrant}``, ``{file}/below``, ...: a placeholder at the start of an argument becomes its path."""
    head, slash, tail = arg.partition("/")
    if head.startswith("{") and head.endswith("}") and head[1:-1] in places:
        return str(places[head[1:-1]]) + slash + tail
    return arg


def test_a_failed_index_leaves_no_collection(places):
    """The corpus is read whole before anything is stored: a bad file means no collection at all."""
    result = runner.invoke(app, ["index", str(places["broken"]), *MINILM, "--qdrant-path", str(places["qdrant"])])
    _check_one_clean_line(result)
    assert "b.txt" in result.stderr
    listed = runner.invoke(app, ["collections", "--qdrant-path", str(places["qdrant"])])
    assert listed.exit_code == 0 and "broken-" not in listed.stdout
