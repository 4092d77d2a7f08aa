"""The demo app: uploads are parsed as data inside the app's folder and survive restarts, a bad file changes
nothing, a failing mode stays in its column; and the running app in headless Chromium (Playwright): upload a file,
ask, see three answers with their latencies.

The browser test needs Debian's Chromium (/usr/bin/chromium; no `playwright install`): without it the test skips,
unless $CI is set. LASER_RAG_UPDATE_SCREENSHOT=1 saves docs/screenshot.png from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from app.corpora import UploadError, safe_name
from app.engine import AppSettings, Engine
from laser_rag.llm import GenerationTimeout
from laser_rag.retrieval import RetrievalMode
from laser_rag.store import release

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


# --- stand-ins for the models: the engine's plumbing without loading a model ------------------------------------


class HashingEncoder:
    """Bag of hashed words, unit length: an encoder-protocol stand-in (no model, no claim about relevance)."""

    dimension = 64

    def __init__(self, name: str) -> None:
        self.name = name
        self.fingerprint = f"hashing-{name}"
        self.query_steps: list[int | None] = []  # the K asked for, query by query

    def _vectors(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def encode_queries(self, texts, *, rationales=None, num_thinking_steps=None, **kwargs):
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        self.query_steps.append(num_thinking_steps)
        if rationales is not None:
            texts = [f"{text}\n{rationale}" for text, rationale in zip(texts, rationales)]
        vectors = self._vectors(texts)
        return vectors[0] if single else vectors

    def encode_documents(self, texts, **kwargs):
        return self._vectors([texts] if isinstance(texts, str) else list(texts))


class RewriteTimesOut:
    """An LLM stand-in that answers, but times out on the rewrite prompt."""

    name = "stand-in"

    def generate(self, messages, *, max_new_tokens=None):
        if "[Begin of Question]" in messages[-1]["content"]:
            raise GenerationTimeout("stand-in hit its time limit of 1 s after 3 tokens", partial="abc")
        return "an answer"


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "app"
    release(tmp_path / "app" / "qdrant")


def make_engine(data_dir: Path) -> Engine:
    encoders = {"basic": HashingEncoder("basic"), "laser": HashingEncoder("laser-k3")}
    return Engine(AppSettings(data_dir=data_dir), encoders=encoders, llm=RewriteTimesOut())


def notes_file(folder: Path, name: str = "notes.md") -> Path:
    """A small markdown file made of real text (the Python reference's first passages)."""
    from laser_rag.datasets import pydoc_corpus

    path = folder / name
    path.write_text("\n\n".join(f"# {doc.title}\n\n{doc.text}" for doc in pydoc_corpus()[:2]), encoding="utf-8")
    return path


# --- engine -------------------------------------------------------------------------------------------------------


def test_safe_names_stay_inside_the_folder():
    assert safe_name("../../etc/passwd.md") == "passwd.md"
    assert safe_name("C:\\Users\\me\\notes.TXT") == "notes.txt"
    assert safe_name(".bashrc") == "bashrc"
    assert safe_name("a b;rm -rf.jsonl") == "a_b_rm_-rf.jsonl"
    assert safe_name("") == "upload"
    assert len(safe_name("x" * 300 + ".md")) <= 80


def test_upload_is_copied_parsed_indexed_and_kept_across_restarts(tmp_path, data_dir):
    source = notes_file(tmp_path, "my notes.md")
    engine = make_engine(data_dir)
    corpus = engine.add_upload(source, "../../outside/my notes.md")
    stored = list((data_dir / "uploads").rglob("*.md"))
    assert [p.name for p in stored] == ["my_notes.md"] and not (data_dir.parent / "outside").exists()
    assert corpus.label == "Your file: my_notes.md" and engine.is_indexed(corpus)

    result = engine.answer("basic", "assert statement", corpus.key, top_k=3)
    assert result.error is None and result.answer == "an answer"
    assert result.hits and set(result.timings) == {"rewrite", "encode", "search", "generate"}

    release(data_dir / "qdrant")  # as after a restart: the store is reopened from disk
    restarted = make_engine(data_dir)
    assert corpus.key in [c.key for c in restarted.corpora()]
    assert restarted.is_indexed(restarted.corpus(corpus.key))


def test_corpora_are_indexed_lazily_with_progress_and_rebuilt_for_a_new_encoder(data_dir):
    engine = make_engine(data_dir)
    assert "not indexed yet" in engine.describe("pydoc-64")
    seen = []
    status = engine.ensure_indexed("pydoc-64", lambda fraction, message: seen.append((fraction, message)))
    assert status.startswith("Python reference: first 64 passages: 64 passages, indexed.")
    assert seen[-1] == (1.0, "indexed") and [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert any("laser encoder: 64 of 64 passages" in message for _, message in seen)

    release(data_dir / "qdrant")
    retrained = make_engine(data_dir)  # same collection names, other weights: rebuilt, never mixed
    retrained.encoder("laser").fingerprint = "hashing-laser-retrained"
    assert not retrained.is_indexed(retrained.corpus("pydoc-64"))
    retrained.ensure_indexed("pydoc-64")
    assert retrained.answer("laser", "assert statement", "pydoc-64", top_k=1).hits


def test_a_bad_file_gets_a_message_and_changes_nothing(tmp_path, data_dir):
    engine = make_engine(data_dir)
    good = engine.add_upload(notes_file(tmp_path))
    before = sorted(c.name for c in engine.client.get_collections().collections)
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "no closing brace"\n', encoding="utf-8")
    with pytest.raises(UploadError, match=r"broken.jsonl, line 2: invalid JSON") as raised:
        engine.add_upload(bad)
    assert str(data_dir) not in str(raised.value)  # no server path in the message
    script = tmp_path / "run.py"
    script.write_text("print('never executed')\n")
    with pytest.raises(UploadError, match="not a corpus file"):
        engine.add_upload(script)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(UploadError, match="empty"):
        engine.add_upload(empty)
    assert sorted(c.name for c in engine.client.get_collections().collections) == before
    assert [c.key for c in engine.uploads.corpora()] == [good.key]
    assert len(list((data_dir / "uploads").iterdir())) == 2  # the good file's folder and the manifest


def test_a_failing_mode_reports_in_its_own_result(tmp_path, data_dir):
    engine = make_engine(data_dir)
    corpus = engine.add_upload(notes_file(tmp_path))
    results = {mode: engine.answer(mode, "assert statement", corpus.key, top_k=2, steps=3)
               for mode in RetrievalMode}
    assert results[RetrievalMode.BASIC].answer == results[RetrievalMode.LASER].answer == "an answer"
    rewrite = results[RetrievalMode.REWRITE]
    assert rewrite.error.startswith("Generation failed: stand-in hit its time limit") and not rewrite.hits
    assert engine.encoder("laser").query_steps == [3] and engine.encoder("basic").query_steps == [None]
    missing = engine.answer("laser", "anything", "no-such-corpus")
    assert missing.error == "ValueError: unknown corpus 'no-such-corpus'"
    assert engine.answer("laser", "  ", corpus.key).error == "Type a question first."


def test_rendering_escapes_passages():
    from app.engine import ModeResult
    from app.ui import hits_html, latency_markdown
    from laser_rag.store import Hit

    html = hits_html([Hit("d1", "<b>t</b>", "<script>alert(1)</script> text", 0.5)])
    assert "<script>" not in html and "&lt;script&gt;" in html and "0.500" in html
    table = latency_markdown(ModeResult(RetrievalMode.LASER, timings={"rewrite": 0.0, "encode": 12.4, "search": 1.0,
                                                                      "generate": 900.0}, error="it_failed"))
    assert table == ("**Error:** it\\_failed\n\n"
                     "**Total 913 ms** · rewrite 0 ms · encode 12 ms · search 1 ms · generate 900 ms")


def test_demo_command_binds_localhost_by_default():
    from typer.testing import CliRunner

    from laser_rag.cli import app as cli

    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir", "--max-new-tokens", "127.0.0.1"):
        assert option in result.output


# --- the running app in a browser ---------------------------------------------------------------------------------


def _browser_or_skip():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason, sync_playwright = "playwright is not installed", None
    if reason is None and not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the browser test: {reason}")
        pytest.skip(reason)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _upload_file(folder: Path) -> tuple[Path, str, str]:
    """A small real corpus to upload, a question to ask, and a phrase of its text: a HotpotQA dev question with
    its two supporting and two distractor paragraphs (shared data), else Python reference passages."""
    from laser_rag.datasets import shared_data_dir, shared_dataset

    if shared_data_dir() is not None:
        hotpot = shared_dataset("hotpotqa", "validation")
        qid, question = next(iter(hotpot.queries.items()))
        by_id = {doc.id: doc for doc in hotpot.corpus}
        others = [doc.id for doc in hotpot.corpus[:10] if doc.id not in hotpot.qrels[qid]]  # its distractors
        docs = [by_id[doc_id] for doc_id in [*hotpot.qrels[qid], *others[:2]]]
        path = folder / "hotpot sample.jsonl"
        path.write_text("".join(json.dumps({"title": d.title, "text": d.text}) + "\n" for d in docs), encoding="utf-8")
        return path, question, docs[0].text[:40]
    path = notes_file(folder)
    return path, "What do these passages describe?", path.read_text().split("\n\n")[1][:40]


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    """The app as users start it (`python -m app` = `laser-rag demo`), on a free port, a temporary data folder
    and small token budgets."""
    _browser_or_skip()
    folder = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log = open(folder / "app.log", "w")
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--data-dir", str(folder / "data"),
         "--max-new-tokens", "16", "--rewrite-max-new-tokens", "16", "--time-limit", "60", "--threads", "1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the app did not start:\n{(folder / 'app.log').read_text()[-3000:]}")
                time.sleep(1)
        yield url, folder
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_browser_upload_ask_three_answers(running_app, tmp_path):
    sync_playwright = _browser_or_skip()
    url, folder = running_app
    upload, question, phrase = _upload_file(tmp_path)
    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: None if r.url.startswith((url[:-1], "data:", "blob:")) else outside.append(r.url))
        try:
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(str(upload))
            status = page.locator("#upload-status")
            status.get_by_text("passages indexed").wait_for(timeout=150_000)
            assert "hotpot_sample.jsonl" in status.inner_text() or "notes.md" in status.inner_text()
            assert page.locator("#corpus input").input_value().startswith("Your file:")

            page.locator("#question textarea").fill(question)
            page.locator("#ask").click()
            for mode in ("basic", "laser", "rewrite"):
                latency = page.locator(f"#latency-{mode}")
                latency.get_by_text("total").wait_for(timeout=150_000)
                text = latency.inner_text()
                assert "Error" not in text, f"{mode}: {text}"
                assert re.search(r"encode.*search.*generate", text, re.S), text
                assert page.locator(f"#answer-{mode} textarea").input_value().strip(), f"{mode}: empty answer"
                assert phrase[:30] in page.locator(f"#hits-{mode}").inner_text()
                assert page.locator(f"#chart-{mode} canvas, #chart-{mode} svg").count() > 0
            assert page.locator("#rationale-rewrite textarea").input_value().strip()
            if os.environ.get("LASER_RAG_UPDATE_SCREENSHOT") == "1":
                (REPO / "docs").mkdir(exist_ok=True)
                page.screenshot(path=str(REPO / "docs" / "screenshot.png"), full_page=True)

            bad = tmp_path / "broken.jsonl"
            bad.write_text('{"text": "fine"}\nnot json\n', encoding="utf-8")
            selected = page.locator("#corpus input").input_value()
            page.locator("#upload input[type=file]").set_input_files(str(bad))
            status.get_by_text("Not added").wait_for(timeout=60_000)
            assert "line 2: invalid JSON" in status.inner_text() and "Traceback" not in page.content()
            assert page.locator("#corpus input").input_value() == selected
        finally:
            browser.close()
    assert outside == [], f"the page reached outside the app: {outside}"
    assert "Traceback" not in (folder / "app.log").read_text()
