"""The Gradio Blocks app: one question, one column per retrieval mode of the registry (basic, LaSER,
rewrite-then-retrieve, LatentRAG).

An agent mode's column (LatentRAG) shows its retrieval steps instead of one list of passages: each step's documents
and, with *Decode latent thoughts* on, its latent thought and subquery turned back into text; its latency chart has
the agent's own stages (prefill, thought, subquery, retrieval, answer, and decode when decoding).

Pressing Ask runs, in order: indexing the chosen corpus if it is new (a progress bar), then each mode, each its own
event writing only its own column, so a failing mode shows its error there while the others answer. Each column's
answer streams in as it is generated (a generator handler): its passages and retrieval timings first, then the
text, then the generate stage, the total and the time to the first token. Uploads are
indexed with a progress bar and added to the corpus list.
"""

from __future__ import annotations

import html
import logging
import os
import threading

import gradio as gr
import pandas as pd

from laser_rag.errors import CorpusError
from laser_rag.modes import MODES, ModePreset, preset
from laser_rag_app.corpora import ACCEPTED_SUFFIXES, MAX_UPLOAD_BYTES, example_questions
from laser_rag_app.engine import AGENT_OPTIONAL_STAGES, STAGES, Engine, ModeResult, stages
from laser_rag_app.settings import AppSettings

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 320
CSS = """
.hits { margin: 0; padding-left: 1.4em; }
.hits li { margin-bottom: 0.6em; }
.hit-head { display: flex; justify-content: space-between; gap: 0.5em; font-weight: 600; }
.hit-score { font-family: var(--font-mono); font-weight: 400; color: var(--body-text-color-subdued); }
.hit-text { font-size: 0.9em; color: var(--body-text-color-subdued); }
.step { margin-bottom: 0.8em; }
.step-head { font-weight: 600; margin-bottom: 0.2em; }
.latent { font-size: 0.9em; font-style: italic; margin-bottom: 0.2em; }
"""
HEADER = """# laser_rag: {count} ways to retrieve, side by side
Ask one question: each column retrieves the top-k passages its own way, then the same local LLM answers from
them{agents}. {modes}. K below changes LaSER's latent steps on the query side only; *Hybrid* fuses each column's
dense ranking with BM25 (inside Qdrant). Latencies are wall-clock milliseconds on this machine; the modes run one
after another.
"""
AGENT_NOTE = ("Top-k, K and Hybrid do not apply here: the agent retrieves its checkpoint's own top-k (dense) at "
              "each step, then answers with its own LLM.")


def _header() -> str:
    modes = "; ".join(f"**{p.title}**: {p.description}" for p in MODES.values())
    agents = [p.title for p in MODES.values() if p.agent is not None]
    agents = f" ({', '.join(agents)}: a fine-tuned LLM retrieves over several steps and answers)" if agents else ""
    return HEADER.format(count=len(MODES), modes=modes, agents=agents)


def build_app(engine: Engine) -> gr.Blocks:
    """The Blocks app on an engine (which holds the models, corpora and store)."""
    with gr.Blocks(title="laser_rag demo", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(_header())
        with gr.Row(equal_height=True):
            question = gr.Textbox(label="Question", elem_id="question", lines=2, scale=5,
                                  placeholder="Ask something the chosen corpus can answer")
            ask = gr.Button("Ask", variant="primary", elem_id="ask", scale=1)
        with gr.Row():
            corpus = gr.Dropdown(_choices(engine), value=engine.default_corpus(), label="Corpus", elem_id="corpus",
                                 scale=3)
            steps = gr.Slider(1, 8, value=engine.default_steps(), step=1, elem_id="steps", scale=2,
                              label="K: LaSER thinking steps (query side)")
            top_k = gr.Slider(1, 10, value=4, step=1, label="Top-k passages", elem_id="top-k", scale=2)
            hybrid = gr.Checkbox(False, label="Hybrid (dense + BM25)", elem_id="hybrid", scale=1,
                                 info="every column: its dense ranking fused with BM25's")
            agents = [p.title for p in MODES.values() if p.agent is not None]
            decode = gr.Checkbox(False, label="Decode latent thoughts", elem_id="decode", scale=1,
                                 visible=bool(agents),
                                 info=f"{', '.join(agents) or 'agent'}: each step's latent thought and subquery "
                                      "as text (slower)")
        status = gr.Markdown(elem_id="corpus-status", min_height=60)
        for label, questions in example_questions().items():
            gr.Examples([[q] for q in questions], inputs=[question], label=label)
        with gr.Row():
            upload = gr.File(label=f"Add your own file ({', '.join(ACCEPTED_SUFFIXES)}; up to "
                                   f"{MAX_UPLOAD_BYTES // 2**20} MB): it is indexed and kept",
                             file_types=list(ACCEPTED_SUFFIXES), elem_id="upload", height=110, scale=2)
            upload_status = gr.Markdown(elem_id="upload-status", min_height=110)
        modes = [chosen.name for chosen in MODES.values()]
        columns = {}
        with gr.Row(equal_height=False):
            for chosen in MODES.values():
                columns[chosen.name] = _column(chosen)

        inputs = [question, corpus, top_k, steps, hybrid, decode]
        demo.load(_describe_handler(engine), corpus, status, api_name=False)
        corpus.change(_describe_handler(engine), corpus, status, api_name=False)
        upload.upload(_upload_handler(engine), upload, [upload_status, corpus, upload], api_name="upload",
                      show_progress_on=[upload_status])
        for trigger in (ask.click, question.submit):
            event = trigger(_clear, None, [c for mode in modes for c in columns[mode][:3]], queue=False,
                            api_name=False)
            event = event.then(_prepare_handler(engine), [question, corpus], status, api_name=False,
                               show_progress_on=[status])
            event = event.success(_mode_handler(engine, modes[0]), inputs, columns[modes[0]],
                                  api_name=f"ask_{modes[0]}")
            for mode in modes[1:]:
                event = event.then(_mode_handler(engine, mode), inputs, columns[mode], api_name=f"ask_{mode}")
    return demo


def _choices(engine: Engine) -> list[tuple[str, str]]:
    return [(corpus.label, corpus.key) for corpus in engine.corpora()]


def _column(chosen: ModePreset) -> list[gr.components.Component]:
    """A mode's column: answer, latency numbers, latency chart, hits (and the LLM's reasoning if it rewrites; an
    agent's retrieval steps in place of the hits)."""
    name = chosen.name
    with gr.Column(elem_id=f"column-{name}", min_width=280):
        note = f"\n\n*{AGENT_NOTE}*" if chosen.agent is not None else ""
        gr.Markdown(f"### {chosen.title}\n{chosen.description[:1].upper()}{chosen.description[1:]}.{note}")
        answer = gr.Textbox(label="Answer", elem_id=f"answer-{name}", lines=3, interactive=False)
        latency = gr.Markdown(elem_id=f"latency-{name}")
        chart = gr.BarPlot(_chart_data({}, stages(chosen.mode)), x="stage", y="ms", sort=_stage_order(chosen),
                           label="Latency per stage (ms)", x_title=" ", y_title="ms", height=190,
                           elem_id=f"chart-{name}")
        outputs = [answer, latency, chart]
        if chosen.rewrites:
            outputs.append(gr.Textbox(label="The LLM's reasoning (appended to the query)", lines=3,
                                      interactive=False, elem_id=f"rationale-{name}"))
        outputs.append(gr.HTML(elem_id=f"hits-{name}"))
    return outputs


def _stage_order(chosen: ModePreset) -> list[str]:
    """Every stage a mode's chart can show, in order (an agent's optional ones last)."""
    return [*stages(chosen.mode), *(AGENT_OPTIONAL_STAGES if chosen.agent is not None else ())]


def _clear():
    return [value for mode in MODES for value in ("", "", _chart_data({}, stages(mode)))]


def _describe_handler(engine: Engine):
    def describe(corpus: str) -> str:
        try:
            return engine.describe(corpus)
        except Exception as exc:  # e.g. a model that cannot be loaded: say so, the columns will too
            logger.exception("describing %s failed", corpus)
            return f"**Error:** {_escape_md(f'{type(exc).__name__}: {exc}')}"

    return describe


def _prepare_handler(engine: Engine):
    def prepare(question: str, corpus: str, progress=gr.Progress()):
        """Index the corpus on first use; refuse an empty question."""
        if not (question or "").strip():
            raise gr.Error("Type a question first.", print_exception=False)
        try:
            return engine.ensure_indexed(corpus, lambda fraction, message: progress(fraction, desc=message))
        except Exception as exc:
            logger.exception("indexing %s failed", corpus)
            raise gr.Error(f"Could not index this corpus: {exc}", print_exception=False) from exc

    return prepare


def _mode_handler(engine: Engine, mode):
    def run(question: str, corpus: str, top_k: float, steps: float, hybrid: bool = False, decode: bool = False):
        """The column as its answer streams: all of it once retrieved, then the answer text as it grows (the rest
        unchanged), then all of it again, complete."""
        shown = False
        for result in engine.answer_stream(mode, question, corpus, top_k=int(top_k), steps=int(steps),
                                           hybrid=bool(hybrid), decode=bool(decode)):
            values = render(result)
            yield values if not (result.streaming and shown) else [values[0], *(gr.skip() for _ in values[1:])]
            shown = True

    run.__name__ = f"ask_{mode}"
    return run


def _upload_handler(engine: Engine):
    def upload(path: str | None, progress=gr.Progress()):
        if not path:
            return gr.update(), gr.update(), gr.update()
        progress(0.0, desc="reading the file")
        try:
            corpus = engine.add_upload(path, os.path.basename(path),
                                       lambda fraction, message: progress(fraction, desc=message))
        except CorpusError as exc:
            return f"**Not added.** {_escape_md(str(exc))}", gr.update(), None
        except Exception as exc:  # anything else: a message, never a traceback
            logger.exception("upload failed")
            return f"**Not added.** {type(exc).__name__}", gr.update(), None
        count = len(engine.documents(corpus))
        message = f"**Added {_escape_md(corpus.label)}**: {count:,} passages indexed; it is now the selected corpus."
        return message, gr.Dropdown(choices=_choices(engine), value=corpus.key), None

    return upload


# ---------------------------------------------------------------------------------------------------------------
# Rendering a result


def render(result: ModeResult) -> list:
    """A `ModeResult` as the values of its column's components."""
    chosen = preset(result.mode)
    values = [result.answer, latency_markdown(result), _chart_data(result.timings, stages(result.mode))]
    if chosen.rewrites:
        values.append(result.rationale or "")
    values.append(steps_html(result) if chosen.agent is not None else hits_html(result.hits) + thoughts_html(result))
    return values


def latency_markdown(result: ModeResult) -> str:
    """The error (if any), then the total, the time to the first token and every stage of the mode in ms
    (`laser_rag_app.engine.stages`, then any other stage that ran, e.g. an agent's decode):
    ``**Total 1,234 ms** · first token 456 ms · rewrite 0 ms · ...``; while the answer streams, ``**Answering…**``
    and the stages known so far (``generate –``)."""
    lines = []
    if result.error:
        lines.append(f"**Error:** {_escape_md(result.error)}")
    if result.timings:
        shown = [f"{stage} {result.timings[stage]:,.0f} ms" if stage in result.timings else f"{stage} –"
                 for stage in _stages_of(result.timings, stages(result.mode))]
        if result.streaming:
            head = ["**Answering…**"]
        else:
            head = [f"**Total {sum(result.timings.values()):,.0f} ms**"]
            if result.first_token_ms is not None:
                head.append(f"first token {result.first_token_ms:,.0f} ms")
        lines.append(" · ".join([*head, *shown]))
    return "\n\n".join(lines)


def hits_html(hits) -> str:
    if not hits:
        return ""
    return f'<div><strong>Retrieved passages</strong> (title, score){_hit_list(hits)}</div>'


def thoughts_html(result: ModeResult) -> str:
    """A thinking mode's latent steps, under its passages: per step its top tokens and their probabilities."""
    if result.thoughts is None:
        return ""
    lines = "".join(f"<div>{html.escape(line)}</div>" for line in result.thoughts.format_thoughts().splitlines())
    return (f'<div class="latent" id="thoughts-{preset(result.mode).name}"><strong>What LaSER thought</strong> '
            f"(top tokens of each latent step: a view of a mixture, not its meaning){lines}</div>")


def steps_html(result: ModeResult) -> str:
    """An agent's retrieval steps: per step its number, the decoded thought and subquery (when decoded), and its
    documents (title, score, text); then the final decoded thought."""
    if result.error and not result.steps:
        return ""
    passes = f", {result.forward_passes:,} forward passes" if result.forward_passes else ""
    parts = [f'<div><strong>Retrieval steps</strong> ({len(result.steps)}{passes})']
    if not result.steps:
        parts.append('<p class="latent">It answered without retrieving.</p>')
    for step in result.steps:
        parts.append(f'<div class="step"><div class="step-head">Step {step.number}</div>')
        if step.thought is not None:
            parts.append(f'<div class="latent">Thought: {html.escape(step.thought) or "(empty)"}</div>')
        if step.subquery is not None:
            parts.append(f'<div class="latent">Subquery: {html.escape(step.subquery) or "(empty)"}</div>')
        parts.append(_hit_list(step.hits) + "</div>")
    if result.final_thought is not None:
        parts.append(f'<div class="latent">Final thought: {html.escape(result.final_thought) or "(empty)"}</div>')
    return "".join(parts) + "</div>"


def _hit_list(hits) -> str:
    items = []
    for hit in hits:
        text = " ".join(hit.text.split())
        snippet = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        items.append(
            f'<li><div class="hit-head"><span class="hit-title">{html.escape(hit.title or hit.id)}</span>'
            f'<span class="hit-score">{hit.score:.3f}</span></div>'
            f'<div class="hit-text">{html.escape(snippet)}</div></li>')
    return f'<ol class="hits">{"".join(items)}</ol>'


def _stages_of(timings: dict[str, float], shown=STAGES) -> list[str]:
    """``shown`` (always, in order), then any other stage in ``timings``."""
    return [*shown, *(stage for stage in timings if stage not in shown)]


def _chart_data(timings: dict[str, float], shown=STAGES) -> pd.DataFrame:
    """The chart's rows: every stage of ``shown`` (0 when it did not run), then any other stage in ``timings``."""
    names = _stages_of(timings, shown)
    return pd.DataFrame({"stage": names, "ms": [round(timings.get(stage, 0.0), 1) for stage in names]})


def _escape_md(text: str) -> str:
    return html.escape(text).replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


# ---------------------------------------------------------------------------------------------------------------
# Starting


def serve(settings: AppSettings, *, block: bool = True, engine: Engine | None = None) -> gr.Blocks:
    """Start the app (`laser_rag_app.launch` sets the offline environment and the threads first, then calls this);
    ``engine`` (default: ``Engine(settings)``) lets a test or a benchmark serve its own. The queue serves
    ``settings.concurrency`` events of each kind at once and holds at most ``settings.queue_size`` waiting (more
    are refused: "queue full")."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or Engine(settings)
    if settings.preload:
        threading.Thread(target=engine.preload, name="preload-models", daemon=True).start()
    demo = build_app(engine)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    demo.launch(server_name=settings.host, server_port=settings.port, share=False, show_error=False,
                max_file_size=MAX_UPLOAD_BYTES, ssr_mode=False, pwa=False, mcp_server=False, css=CSS,
                prevent_thread_lock=not block, footer_links=["api"])
    return demo
