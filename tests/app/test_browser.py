"""The running app in headless Chromium (Playwright), started as users start it: upload a file, ask, see one answer
per mode stream in (in parts, growing) with its latencies; a bad upload shows a message and changes nothing; the
page reaches nothing outside the app; the LaSER column shows what LaSER thought about the query. The app gets no
LatentRAG checkpoint: its column says so while the other columns answer.

The browser test needs Debian's Chromium (/usr/bin/chromium; no `playwright install`): without it the test skips,
unless $CI is set. LASER_RAG_UPDATE_SCREENSHOT=1 saves docs/screenshot.png from it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from laser_rag.modes import MODES

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


#: Polls each mode's answer box every 10 ms and keeps each distinct text it shows (``window.answerTexts[mode]``).
RECORD_ANSWERS = """modes => {
    window.answerTexts = Object.fromEntries(modes.map(mode => [mode, []]));
    setInterval(() => {
        for (const mode of modes) {
            const box = document.querySelector(`#answer-${mode} textarea`);
            const texts = window.answerTexts[mode];
            if (box && box.value !== texts[texts.length - 1]) texts.push(box.value);
        }
    }, 10);
}"""


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


def _upload_file(folder: Path, notes_file) -> tuple[Path, str, str]:
    """A small real corpus to upload, a question to ask, and a phrase of its text: a HotpotQA dev question with
    its two supporting and two distractor paragraphs (shared data), else Python reference passages."""
    from laser_rag_datasets.shared import shared_data_dir, shared_dataset

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
    """The app as users start it (`python -m laser_rag_app` = `laser-rag demo`), on a free port, a temporary data
    folder and small token budgets."""
    _browser_or_skip()
    folder = tmp_path_factory.mktemp("demo")
    port = _free_port()
    log = open(folder / "app.log", "w")
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "laser_rag_app", "--port", str(port), "--data-dir", str(folder / "data"),
         "--max-new-tokens", "16", "--rewrite-max-new-tokens", "16", "--time-limit", "60", "--threads", "1",
         "--latentrag-checkpoint", str(folder / "no-latentrag-checkpoint")],
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


def test_browser_upload_ask_an_answer_per_mode(running_app, tmp_path, notes_file):
    sync_playwright = _browser_or_skip()
    url, folder = running_app
    upload, question, phrase = _upload_file(tmp_path, notes_file)
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

            assert not page.locator("#decode input[type=checkbox]").is_checked()
            page.locator("#question textarea").fill(question)
            answering = [m.value for m, chosen in MODES.items() if chosen.agent is None]
            page.evaluate(RECORD_ANSWERS, answering)  # every distinct text each answer box shows, as it streams
            page.locator("#ask").click()
            for mode in (m.value for m, chosen in MODES.items() if chosen.agent is None):
                latency = page.locator(f"#latency-{mode}")
                latency.get_by_text("total").wait_for(timeout=150_000)
                text = latency.inner_text()
                assert "Error" not in text, f"{mode}: {text}"
                assert re.search(r"encode.*search.*generate", text, re.S), text
                assert page.locator(f"#answer-{mode} textarea").input_value().strip(), f"{mode}: empty answer"
                assert phrase[:30] in page.locator(f"#hits-{mode}").inner_text()
                assert page.locator(f"#chart-{mode} canvas, #chart-{mode} svg").count() > 0
            seen = page.evaluate("window.answerTexts")
            for mode in answering:  # each answer arrived in parts, growing, before the final text
                final = page.locator(f"#answer-{mode} textarea").input_value()
                parts = [text for text in seen[mode] if text and text != final]
                assert len(parts) >= 2 and all(final.startswith(part) for part in parts), f"{mode}: {seen[mode]}"
            for mode in (m.value for m, chosen in MODES.items() if chosen.agent is not None):
                latency = page.locator(f"#latency-{mode}")
                latency.get_by_text("checkpoint not found").wait_for(timeout=150_000)
                assert "laser-rag train-latentrag" in latency.inner_text()
                assert page.locator(f"#chart-{mode} canvas, #chart-{mode} svg").count() > 0
            for mode in (m.value for m, chosen in MODES.items() if chosen.rewrites):
                assert page.locator(f"#rationale-{mode} textarea").input_value().strip()
            for mode in (m.value for m, chosen in MODES.items() if chosen.thinks):  # LaSER: the query's steps
                thoughts = page.locator(f"#hits-{mode} #thoughts-{mode}").inner_text()
                assert "What LaSER thought" in thoughts and re.search(r'step 1: ".+" 0\.\d\d', thoughts), thoughts
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
    log = (folder / "app.log").read_text()
    assert "Traceback" not in log and "Loading weights" not in log, log[-3000:]  # no model progress bars
