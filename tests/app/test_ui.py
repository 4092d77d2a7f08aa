"""The Gradio layer: one column per registered mode (LatentRAG's with its steps, its stages and the decode
checkbox), and rendering that escapes what passages contain."""

from __future__ import annotations

import gradio as gr

from laser_rag import store
from laser_rag.latentrag import LatentStep
from laser_rag.modes import MODES, RetrievalMode
from laser_rag.store import Hit
from laser_rag.thoughts import Thoughts
from laser_rag_app.engine import ModeResult
from laser_rag_app.ui import _chart_data, build_app, hits_html, latency_markdown, render


def test_rendering_escapes_passages():
    html = hits_html([Hit("d1", "<b>t</b>", "<script>alert(1)</script> text", 0.5, {})])
    assert "<script>" not in html and "&lt;script&gt;" in html and "0.500" in html
    table = latency_markdown(ModeResult(RetrievalMode.LASER, timings={"rewrite": 0.0, "encode": 12.4, "search": 1.0,
                                                                      "generate": 900.0}, error="it_failed"))
    assert table == ("**Error:** it\\_failed\n\n"
                     "**Total 913 ms** · rewrite 0 ms · encode 12 ms · search 1 ms · generate 900 ms")
    retrieved = {"rewrite": 0.0, "encode": 12.4, "search": 1.0}
    streaming = latency_markdown(ModeResult(RetrievalMode.BASIC, answer="It", timings=retrieved, streaming=True))
    assert streaming == "**Answering…** · rewrite 0 ms · encode 12 ms · search 1 ms · generate –"  # no total yet
    done = latency_markdown(ModeResult(RetrievalMode.BASIC, timings={**retrieved, "generate": 50.0},
                                       first_token_ms=30.2))
    assert done.startswith("**Total 63 ms** · first token 30 ms · rewrite 0 ms")


def test_the_laser_column_shows_its_thoughts_under_the_passages():
    thoughts = Thoughts("q", "query", [[(" Kansas", 0.21), ("<b>", 0.08)], [(" university", 0.3)]], vector=None)
    result = ModeResult(RetrievalMode.LASER, answer="a", hits=[Hit("d", "T", "text", 0.5)], thoughts=thoughts)
    shown = render(result)[-1]
    assert shown.index("Retrieved passages") < shown.index("What LaSER thought")
    assert 'step 1: &quot;Kansas&quot; 0.21, &quot;&lt;b&gt;&quot; 0.08' in shown and "step 2:" in shown
    assert "What LaSER thought" not in render(ModeResult(RetrievalMode.LASER, answer="a"))[-1]


def test_one_column_per_registered_mode(tmp_path, make_engine):
    demo = build_app(make_engine(tmp_path / "app"))
    try:
        ids = {block.elem_id for block in demo.blocks.values() if getattr(block, "elem_id", None)}
        for mode, chosen in MODES.items():
            assert {f"column-{mode.value}", f"answer-{mode.value}", f"hits-{mode.value}"} <= ids
            assert (f"rationale-{mode.value}" in ids) == chosen.rewrites
        assert {"question", "ask", "corpus", "steps", "top-k", "upload", "decode"} <= ids
        (decode,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "decode"]
        assert decode.label == "Decode latent thoughts" and decode.value is False and decode.visible
        titles = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and isinstance(b.value, str)]
        assert any(t.startswith("### LatentRAG (multi-step)\n") for t in titles)
        (chart,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "chart-latentrag"]
        assert chart.sort == ["prefill", "thought", "subquery", "retrieval", "answer", "decode"]
        ask = next(fn for fn in demo.fns.values() if fn.api_name == "ask_latentrag")
        assert [block.elem_id for block in ask.inputs][-1] == "decode"
    finally:
        store.close_all()
    rewrite = render(ModeResult(RetrievalMode.REWRITE, answer="a", rationale="because"))
    assert rewrite[0] == "a" and rewrite[3] == "because"
    assert len(rewrite) == len(render(ModeResult(RetrievalMode.BASIC))) + 1


def test_the_latentrag_column_shows_each_step_and_the_agents_stages():
    hits = [Hit("d1", "Assert <stmt>", "The assert statement checks a condition.", 0.71, {}),
            Hit("d2", "Pass", "pass does nothing.", 0.42, {})]
    timings = {"prefill": 40.0, "thought": 10.0, "subquery": 12.0, "retrieval": 2.0, "answer": 300.0, "decode": 50.0}
    result = ModeResult(RetrievalMode.LATENTRAG, answer="It checks", hits=hits, timings=timings, forward_passes=9,
                        steps=[LatentStep(1, hits, thought="find assert", subquery="assert <statement>")],
                        final_thought="done")
    answer, latency, chart, steps = render(result)
    assert answer == "It checks"
    assert latency == ("**Total 414 ms** · prefill 40 ms · thought 10 ms · subquery 12 ms · retrieval 2 ms · "
                       "answer 300 ms · decode 50 ms")
    assert list(chart["stage"]) == list(timings) and list(chart["ms"]) == list(timings.values())
    assert "Step 1" in steps and "9 forward passes" in steps and "Assert &lt;stmt&gt;" in steps
    assert "Thought: find assert" in steps and "Subquery: assert &lt;statement&gt;" in steps
    assert "Final thought: done" in steps and "0.710" in steps and "pass does nothing." in steps
    # decoding off: no latent text; no retrieval: said so; the chart has the five stages, not decode
    plain = render(ModeResult(RetrievalMode.LATENTRAG, answer="x", steps=[], forward_passes=4,
                              timings={k: v for k, v in timings.items() if k != "decode"}))
    assert "Thought" not in plain[3] and "answered without retrieving" in plain[3]
    assert list(plain[2]["stage"]) == ["prefill", "thought", "subquery", "retrieval", "answer"]
    assert "decode" not in plain[1]
    missing = render(ModeResult(RetrievalMode.LATENTRAG, error="LatentRAG checkpoint not found (builtin:latentrag)"))
    assert missing[1] == "**Error:** LatentRAG checkpoint not found (builtin:latentrag)" and missing[3] == ""
    assert list(_chart_data({"anything": 1.0}, ())["stage"]) == ["anything"]  # any stage key is charted
