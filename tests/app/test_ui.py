"""The Gradio layer: one column per registered mode, and rendering that escapes what passages contain."""

from __future__ import annotations

from laser_rag import store
from laser_rag.modes import MODES, RetrievalMode
from laser_rag.store import Hit
from laser_rag_app.engine import ModeResult
from laser_rag_app.ui import build_app, hits_html, latency_markdown, render


def test_rendering_escapes_passages():
    html = hits_html([Hit("d1", "<b>t</b>", "<script>alert(1)</script> text", 0.5, {})])
    assert "<script>" not in html and "&lt;script&gt;" in html and "0.500" in html
    table = latency_markdown(ModeResult(RetrievalMode.LASER, timings={"rewrite": 0.0, "encode": 12.4, "search": 1.0,
                                                                      "generate": 900.0}, error="it_failed"))
    assert table == ("**Error:** it\\_failed\n\n"
                     "**Total 913 ms** · rewrite 0 ms · encode 12 ms · search 1 ms · generate 900 ms")


def test_one_column_per_registered_mode(tmp_path, make_engine):
    demo = build_app(make_engine(tmp_path / "app"))
    try:
        ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
        for mode, chosen in MODES.items():
            assert {f"column-{mode.value}", f"answer-{mode.value}", f"hits-{mode.value}"} <= ids
            assert (f"rationale-{mode.value}" in ids) == chosen.rewrites
        assert {"question", "ask", "corpus", "steps", "top-k", "upload"} <= ids
    finally:
        store.close_all()
    rewrite = render(ModeResult(RetrievalMode.REWRITE, answer="a", rationale="because"))
    assert rewrite[0] == "a" and rewrite[3] == "because"
    assert len(rewrite) == len(render(ModeResult(RetrievalMode.BASIC))) + 1
