"""The proof that the registry is the one place: a mode and an encoder kind that only this file knows, registered
here and nowhere else, show up in the CLI's ``--mode`` choices and per-mode options, in the app's settings and
columns and in the eval's modes, and retrieve (dense and hybrid) through each of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from laser_rag import store
from laser_rag.encoders import BaseEncoder, load_encoder, register_encoder
from laser_rag.modes import MODES, ModePreset, ModeSources, collection_modes, preset, register_mode
from word_vectors import word_vectors

NAME = "words"


class WordsEncoder(BaseEncoder):
    """Hashed bag of words, unit length: an encoder kind with no model. ``words:<dimension>`` loads one."""

    max_length = 10**6
    tokenizer = None

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension

    @classmethod
    def from_source(cls, source: str) -> WordsEncoder:
        return cls(int(source.removeprefix("words:")))

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return f"words-{self._dimension}"

    @property
    def label(self) -> str:
        return f"words-{self._dimension}"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vectors(self, texts: list[str]) -> np.ndarray:
        return word_vectors(texts, self._dimension)

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar):
        return self._vectors(texts)

    def _encode_documents(self, texts, *, batch_size, show_progress_bar):
        return self._vectors(texts)

    def _encode_explicit(self, queries, rationales, *, batch_size):
        return self._vectors([f"{q}\n{r}" for q, r in zip(queries, rationales)])


def register() -> ModePreset:
    """The only registration: an encoder kind and a mode that uses it."""
    register_encoder(lambda source: source.startswith("words:"), WordsEncoder.from_source)
    return register_mode(ModePreset(NAME, "Words", "hashed bag of words (a mode only the tests know)",
                                    encoder="words:64"))


class Answers:
    """An LLM stand-in."""

    name = "stand-in"

    def generate(self, messages, *, max_new_tokens=None):
        return "an answer"


@pytest.fixture
def words_mode():
    chosen = register()
    yield chosen
    MODES.pop(chosen.mode)  # the other tests see the built-in registry


def test_a_registered_mode_and_encoder_kind_retrieve(words_mode, short_passages):
    from laser_rag.retrieval import RetrievalOptions, open_retriever

    assert preset("Words") is words_mode and words_mode in collection_modes() and words_mode.thinks
    encoder = load_encoder("words:64")
    assert isinstance(encoder, WordsEncoder) and load_encoder("words:64") is encoder  # loaded once, no edit
    assert not encoder.supports_thinking_steps
    with pytest.raises(ValueError, match="single-pass"):
        load_encoder("words:64", num_thinking_steps=2)
    client = store.connect(":memory:")
    try:
        retriever = open_retriever(NAME, "notes", client=client, create=True, options=RetrievalOptions(k=3))
        retriever.index(short_passages)
        query = short_passages[0].text
        result = retriever.retrieve(query)
        assert result.mode == NAME and result.hits[0].id == short_passages[0].id and len(result.hits) == 3
        hybrid = open_retriever(NAME, "notes-h", client=client, create=True, options=RetrievalOptions(hybrid=True))
        hybrid.index(short_passages)
        fused = hybrid.retrieve(query, k=3)
        assert fused.mode == f"{NAME}+hybrid" and fused.hits[0].id == short_passages[0].id
        assert "sparse_ms" in fused.timings
        with pytest.raises(ValueError, match="LaSER encoder"):
            retriever.retrieve(query, num_thinking_steps=2)
    finally:
        client.close()


def test_the_app_gives_it_a_setting_and_a_column(words_mode, tmp_path):
    import gradio as gr

    from laser_rag_app.engine import Engine
    from laser_rag_app.settings import AppSettings
    from laser_rag_app.ui import build_app

    others = {chosen.name: WordsEncoder(8 + number) for number, chosen in enumerate(collection_modes())}
    del others[NAME]  # the new mode's encoder comes from the settings, as the user picked it
    settings = AppSettings(data_dir=tmp_path / "app", models=ModeSources({NAME: "words:32"}))
    engine = Engine(settings, encoders=others, llm=Answers())
    assert engine.encoder(NAME).dimension == 32
    notes = tmp_path / "notes.md"
    notes.write_text("# Assert\n\nThe assert statement checks a condition.\n\n# Pass\n\nThe pass statement does "
                     "nothing.\n", encoding="utf-8")
    corpus = engine.add_upload(notes, "notes.md")
    try:
        result = engine.answer(NAME, "what does the assert statement check?", corpus.key, top_k=1, hybrid=True)
        assert result.error is None and result.answer == "an answer" and result.hits
        assert set(result.timings) == {"rewrite", "encode", "search", "generate"}
        demo = build_app(engine)
        ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
        assert {f"column-{NAME}", f"answer-{NAME}", f"hits-{NAME}"} <= ids
        assert any(fn.api_name == f"ask_{NAME}" for fn in demo.fns.values())
        assert isinstance(demo, gr.Blocks)
    finally:
        store.close_all()


def test_the_eval_measures_it(words_mode, short_passages, tmp_path):
    from laser_rag.beir import RetrievalDataset
    from laser_rag_benchmarks.harness import evaluate_modes
    from laser_rag_benchmarks.retrievers import EvalSettings, parse_modes

    assert parse_modes(f"bm25,{NAME},{NAME}+hybrid") == ["bm25", NAME, f"{NAME}+hybrid"]
    queries = {f"q{i}": doc.text for i, doc in enumerate(short_passages[:4])}
    qrels = {f"q{i}": {doc.id: 1} for i, doc in enumerate(short_passages[:4])}
    dataset = RetrievalDataset("words-test", list(short_passages), queries, qrels)
    settings = EvalSettings(models=ModeSources({NAME: "words:128"}))
    report = evaluate_modes(dataset, f"{NAME},{NAME}+hybrid", settings, cache_dir=tmp_path, progress=False)
    assert [r.mode for r in report.results] == [NAME, f"{NAME}+hybrid"]
    assert report.result(NAME).encoder == "words-128" and report.result(NAME).metrics["recall_10"] == 1.0


def test_the_command_lines_offer_it_and_retrieve_with_it(tmp_path, short_passages):
    """In a fresh process: registered before the CLI is imported (as a plugin module would), the mode is a
    ``--mode`` choice with its own ``--words-model`` option in ``search``, ``demo`` and ``eval``, and the core
    commands index and search with it."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for number, doc in enumerate(short_passages[:6]):
        (folder / f"{number}.md").write_text(doc.text.strip() + "\n", encoding="utf-8")
    script = f"""
import json, sys, typing
sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parent / '_support')!r}]
import test_registry
test_registry.register()
import typer
from typer.testing import CliRunner
from laser_rag.cli import app
run = lambda *args: CliRunner().invoke(app, [str(a) for a in args])
commands = typer.main.get_command(app).commands
choices = lambda param: list(typing.get_args(param.type_descriptor.annotation))
out = {{name: {{param.name: [choices(param), param.default] for param in commands[name].params}}
       for name in ("search", "ask", "demo", "eval")}}
where = ["--qdrant-path", {str(tmp_path / "qdrant")!r}]
out["index"] = run("index", {str(folder)!r}, "--mode", "words", "--corpus", "notes", *where).output
found = run("search", {short_passages[0].text.strip()!r}, "--mode", "words", "--corpus", "notes", "--json",
            "--words-model", "words:64", "-k", "2", *where)
out["search_words"] = json.loads(found.stdout)
print(json.dumps(out, default=str))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for command in ("search", "ask", "demo", "eval"):
        assert "words_model" in out[command], command
    for command in ("search", "ask"):
        assert NAME in out[command]["mode"][0], out[command]["mode"]
    assert NAME in out["eval"]["modes"][1].split(",")
    assert "notes-words-64: 6 added" in out["index"]
    assert out["search_words"]["mode"] == NAME and len(out["search_words"]["hits"]) == 2
