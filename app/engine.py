"""The app's work, without any UI: index corpora lazily (with progress), answer one question in one mode.

The modes are those of the registry (`laser_rag.modes.MODES`): one column each, in registry order. Each mode
searches the collection of its ``collection_mode`` (rewrite searches basic's), so a corpus is indexed once per
encoder, not once per mode. Models are loaded once per process (`laser_rag.retrieval.encoder_for` and
`laser_rag.llm.as_llm` keep them) and shared by every session; the embedded Qdrant store lives in the app's data
folder, so indexes survive restarts. Answering takes a process-wide lock: the modes then run one after the other,
and each stage's latency is measured without another question competing for the same CPU cores. A failure in one
mode is returned in that mode's `ModeResult` (``error``), never raised, so the other modes still answer.

A mode whose preset names an ``agent`` (latentrag) answers with that multi-step agent (`laser_rag.latentrag`)
instead of retrieve + `RAG`: its collection is indexed like the others (with its encoder, MiniLM: the agent's
reference retriever), the agent is loaded once per process from the mode's checkpoint (``AppSettings.models``), and its
result holds every retrieval step (`ModeResult.steps`) and the agent's own stages (`AGENT_STAGES`). A missing
checkpoint is that column's message; the other modes are not touched.

Collections are indexed hybrid (each point also holds its BM25 sparse vector; an older dense-only collection is
upgraded in place, without re-encoding), so every mode can answer with ``hybrid=True``: dense + BM25 fused in Qdrant.

Example::

    engine = Engine(AppSettings(data_dir=Path("/tmp/demo")))
    engine.ensure_indexed("pydoc-64", progress=lambda fraction, message: print(f"{fraction:.0%} {message}"))
    result = engine.answer("laser", "How do I catch two exceptions at once?", "pydoc-64", top_k=4, steps=3,
                           hybrid=True)
    result.answer, result.timings, result.hits[0].title, result.error
    for partial in engine.answer_stream("laser", "How do I catch two exceptions at once?", "pydoc-64"):
        print(partial.answer, partial.timings, partial.streaming)   # the answer as it is generated
    agentic = engine.answer("latentrag", "How do I catch two exceptions at once?", "pydoc-64", decode=True)
    [(step.number, step.subquery, [hit.title for hit in step.hits]) for step in agentic.steps], agentic.timings
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laser_rag import store
from laser_rag.corpus import Document, chunk_documents
from laser_rag.errors import (
    CollectionMismatchError,
    CollectionNotFoundError,
    CorpusError,
    GenerationError,
    GenerationTimeout,
    HybridNotEnabledError,
)
from laser_rag.llm import as_llm
from laser_rag.modes import MODES, ModePreset, RetrievalMode, agent_env, collection_modes, preset
from laser_rag.rag import RAG
from laser_rag.retrieval import RetrievalOptions, Retriever, encoder_for, open_retriever, rewriter_for
from laser_rag.thoughts import DEFAULT_TOP_K
from laser_rag.store import Hit
from laser_rag_app.corpora import Corpus, Uploads, builtin_corpora
from laser_rag_app.settings import AppSettings

logger = logging.getLogger(__name__)

#: The stages whose latency a column shows, in order (a hybrid query's BM25 vector, well under 1 ms, is not shown).
STAGES = ("rewrite", "encode", "search", "generate")
#: The stages of an agent's column (`laser_rag.latentrag.agent`), in order; ``decode`` follows when latent
#: decoding is on.
AGENT_STAGES = ("prefill", "thought", "subquery", "retrieval", "answer")
AGENT_OPTIONAL_STAGES = ("decode",)
#: Documents encoded and stored between two progress reports (and written before the next are encoded).
INDEX_BATCH = 8
#: Every collection is indexed and opened hybrid (dense + BM25 sparse vectors), so any mode can answer hybrid.
_HYBRID = RetrievalOptions(hybrid=True)
Progress = Callable[[float, str], None]


@dataclass
class ModeResult:
    """One mode's answer to one question. ``timings`` maps each of the mode's `stages` to ms (those that ran; an
    agent's ``decode`` too when it decoded); ``error`` is a message for the user when the mode failed (hits may
    still be there). An agent mode also fills ``steps`` (`laser_rag.latentrag.LatentStep`: each retrieval's hits
    and, with decoding, its thought and subquery as text), ``forward_passes`` and ``final_thought``. A thinking
    mode (LaSER) also fills ``thoughts``: the query's latent steps (`laser_rag.thoughts.Thoughts`). While its
    answer streams (`Engine.answer_stream`) ``streaming`` is true and ``answer`` holds the text so far;
    ``first_token_ms`` (question to first text chunk, retrieval included) is known once it is complete."""

    mode: RetrievalMode | str
    answer: str = ""
    hits: list[Hit] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None
    error: str | None = None
    steps: list[Any] = field(default_factory=list)
    forward_passes: int | None = None
    final_thought: str | None = None
    thoughts: Any = None
    first_token_ms: float | None = None
    streaming: bool = False


def stages(mode: RetrievalMode | str) -> tuple[str, ...]:
    """The stages a mode's column always shows, in order: `AGENT_STAGES` for an agent mode, else `STAGES`."""
    return AGENT_STAGES if preset(mode).agent is not None else STAGES


class AgentNotFound(Exception):
    """An agent mode's checkpoint is not there (a message for its column, not a failure to log)."""


class Engine:
    """Corpora, models and the embedded store of one app process. ``encoders`` (by the name of the mode that owns
    the collection: ``"basic"``, ``"laser"``) and ``llm`` replace the configured models (tests pass small ones)."""

    def __init__(self, settings: AppSettings, *, encoders: dict[str, Any] | None = None, llm: Any = None) -> None:
        self.settings = settings
        self.uploads = Uploads(settings.data_dir / "uploads")
        self._builtin = builtin_corpora()
        self._encoders = dict(encoders or {})
        self._llm = llm
        self._documents: dict[str, list[Document]] = {}
        self._passages: dict[tuple[str, str], list[Document]] = {}  # (corpus, encoder fingerprint) -> chunks
        self._complete: set[str] = set()  # corpora known to be fully indexed in every collection
        self._index_lock = threading.Lock()
        self._answer_lock = threading.Lock()

    # ------------------------------------------------------------------ corpora
    def corpora(self) -> list[Corpus]:
        return [*self._builtin, *self.uploads.corpora()]

    def corpus(self, key: str) -> Corpus:
        for corpus in self.corpora():
            if corpus.key == key:
                return corpus
        raise CorpusError(f"unknown corpus {key!r}")

    def default_corpus(self) -> str:
        keys = [corpus.key for corpus in self.corpora()]
        return self.settings.corpus if self.settings.corpus in keys else keys[0]

    def documents(self, corpus: Corpus) -> list[Document]:
        if corpus.key not in self._documents:
            self._documents[corpus.key] = corpus.load()
        return self._documents[corpus.key]

    def passages(self, corpus: Corpus, encoder) -> list[Document]:
        """What one encoder's collection holds for a corpus: its documents, cut to what the encoder reads."""
        key = (corpus.key, encoder.fingerprint)
        if key not in self._passages:
            documents = self.documents(corpus)
            self._passages[key] = chunk_documents(documents, encoder) if corpus.chunk else documents
        return self._passages[key]

    def describe(self, key: str) -> str:
        """One line about a corpus: its size, whether it is indexed, its licence."""
        corpus = self.corpus(key)
        count = len(self.documents(corpus))
        state = "indexed" if self.is_indexed(corpus) else "not indexed yet: the first question indexes it"
        return f"{corpus.label}: {count:,} documents, {state}. {corpus.note}".strip()

    # ------------------------------------------------------------------ models and collections
    @property
    def client(self) -> store.Engine:
        """The app's embedded store (`laser_rag.store.connect`: Qdrant Edge in the data folder)."""
        return store.connect(self.settings.data_dir / "qdrant")

    def encoder(self, mode: RetrievalMode | str):
        """The encoder of a mode (that of the mode whose collection it searches), loaded once per process."""
        chosen = preset(mode)
        owner = chosen.owner.name
        if owner not in self._encoders:
            self._encoders[owner] = encoder_for(owner, self.settings.models.encoder(chosen))
        return self._encoders[owner]

    def generator(self):
        spec = self._llm if self._llm is not None else self.settings.llm
        return as_llm(spec, model=self.settings.llm_model, config=self.settings.generation)

    def default_steps(self) -> int:
        """The K the slider starts at: that of the first thinking mode's encoder (loaded once, as for answering)."""
        for chosen in MODES.values():
            if self._thinking_encoder(chosen) is not None:
                return self._thinking_encoder(chosen).num_thinking_steps
        return 1

    def _thinking_encoder(self, chosen: ModePreset):
        """The mode's encoder if K applies to it (a thinking mode whose encoder has latent steps), else None."""
        encoder = self.encoder(chosen.mode) if chosen.thinks else None
        return encoder if encoder is not None and encoder.supports_thinking_steps else None

    def preload(self) -> None:
        """Load every encoder, the generator and each agent that is there and run each model once, so that the
        first question's latencies are not those of a cold start (under the answer lock: a question asked
        meanwhile waits, then is timed fairly)."""
        try:
            with self._answer_lock:
                for owner in collection_modes():
                    self.encoder(owner.mode).encode_queries(["warm-up"])
                self.generator().generate("Hello", max_new_tokens=1)
        except Exception:  # the failing mode reports it again when asked
            logger.exception("preloading the models failed")
        for chosen in MODES.values():
            if chosen.agent is None:
                continue
            try:
                with self._answer_lock:
                    self.agent_model(chosen)
            except AgentNotFound as exc:
                logger.warning("%s", exc)
            except Exception:
                logger.exception("preloading the %s agent failed", chosen.name)

    def agent_checkpoint(self, chosen: ModePreset) -> Path:
        """The folder of an agent mode's checkpoint (`laser_rag.modes.ModeSources.agent`); `AgentNotFound` if
        absent."""
        from laser_rag.latentrag import resolve_checkpoint
        from laser_rag.latentrag.config import CONFIG_NAME

        source = self.settings.models.agent(chosen)
        path = resolve_checkpoint(source)
        if not (path / CONFIG_NAME).is_file():
            shown = source if source.startswith("builtin") else path.name
            raise AgentNotFound(
                f"LatentRAG checkpoint not found ({shown}): train one with `laser-rag train-latentrag`, then start "
                f"the app with --{chosen.name}-checkpoint FOLDER (or set ${agent_env(chosen)}).")
        return path

    def agent_model(self, chosen: ModePreset):
        """An agent mode's model (`laser_rag.latentrag.load_model`: loaded once per process)."""
        from laser_rag.latentrag import load_model

        return load_model(self.agent_checkpoint(chosen))

    def agent(self, mode: RetrievalMode | str, corpus: Corpus, *, decode: bool = False):
        """An agent mode's `laser_rag.latentrag.LatentRAG` over the corpus's collection of that mode (the engine's
        Qdrant client). `AgentNotFound` without its checkpoint; `CollectionMismatchError` if the checkpoint's
        reference retriever is not the encoder the collection was indexed with."""
        from laser_rag.latentrag import open_agent

        chosen = preset(mode)
        model = self.agent_model(chosen)
        name = store.collection_name(corpus.key, self.encoder(chosen.mode).label)
        return open_agent(corpus.key, client=self.client, model=model, collection=name, decode=decode)

    def is_indexed(self, corpus: Corpus) -> bool:
        """Whether every collection of the corpus exists, was built by today's encoder, has its sparse vectors and
        holds every passage."""
        if corpus.key in self._complete:
            return True
        for owner in collection_modes():
            encoder = self.encoder(owner.mode)
            try:
                retriever = open_retriever(owner.mode, corpus=corpus.key, encoder=encoder, client=self.client,
                                           options=_HYBRID)
            except (CollectionNotFoundError, CollectionMismatchError, HybridNotEnabledError):
                return False
            if retriever.collection.count() != len(self.passages(corpus, encoder)):
                return False
        self._complete.add(corpus.key)
        return True

    # ------------------------------------------------------------------ indexing
    def ensure_indexed(self, key: str, progress: Progress | None = None) -> str:
        """Index a corpus into the collection of every encoder unless done already; returns a status line."""
        corpus = self.corpus(key)
        if not self.is_indexed(corpus):
            self._index(corpus, progress)
            self._complete.add(corpus.key)
        return self.describe(key)

    def _index(self, corpus: Corpus, progress: Progress | None) -> None:
        """Encode what is missing into every collection (resumable: stored passages are skipped); one indexing
        job at a time."""
        progress = progress or (lambda fraction, message: None)
        if self._index_lock.locked():
            progress(0.0, "waiting for another indexing job to finish")
        with self._index_lock:
            owners = collection_modes()
            for number, owner in enumerate(owners):
                retriever = self._open_for_indexing(owner, corpus)
                passages = self.passages(corpus, retriever.encoder)
                progress(number / len(owners), f"{owner.name} encoder: starting on {len(passages):,} passages")
                for start in range(0, len(passages), INDEX_BATCH):
                    retriever.index(passages[start:start + INDEX_BATCH], batch_size=INDEX_BATCH, progress=False)
                    done = min(start + INDEX_BATCH, len(passages))
                    progress((number + done / len(passages)) / len(owners),
                             f"{owner.name} encoder: {done:,} of {len(passages):,} passages")
            progress(1.0, "indexed")

    def _open_for_indexing(self, owner: ModePreset, corpus: Corpus) -> Retriever:
        mode = owner.mode
        kwargs = dict(corpus=corpus.key, encoder=self.encoder(mode), client=self.client, options=_HYBRID)
        try:
            return open_retriever(mode, create=True, **kwargs)
        except CollectionMismatchError:  # the encoder changed (e.g. a trained checkpoint arrived)
            logger.warning("%s: the %s encoder changed since it was indexed, re-indexing", corpus.key, owner.name)
            return open_retriever(mode, recreate=True, **kwargs)
        except HybridNotEnabledError as exc:  # indexed before the app went hybrid: add the sparse vectors in place
            logger.info("%s: adding BM25 sparse vectors to %s", corpus.key, exc.collection)
            store.VectorCollection.open_existing(self.client, exc.collection).enable_hybrid()
            return open_retriever(mode, create=True, **kwargs)

    def add_upload(self, source: str | Path, name: str | None = None, progress: Progress | None = None) -> Corpus:
        """Copy, parse and index an uploaded file; returns its corpus. Raises `CorpusError`, and then keeps
        nothing of this file (other corpora are never touched)."""
        staged = self.uploads.stage(source, name)
        key, known = staged.corpus.key, self.uploads.known(staged.corpus.key)
        self._documents[key] = staged.documents
        try:
            if not self.is_indexed(staged.corpus):
                self._index(staged.corpus, progress)
        except Exception as exc:
            self._forget(key)
            if not known:
                self._drop(key)
                self.uploads.discard_folder(staged.folder)
            logger.exception("indexing the upload %s failed", staged.name)
            raise CorpusError(f"{staged.name}: could not be indexed ({_message(exc)})") from exc
        self.uploads.commit(staged)
        self._complete.add(key)
        return self.corpus(key)

    def _forget(self, key: str) -> None:
        self._documents.pop(key, None)
        for cached in [k for k in self._passages if k[0] == key]:
            del self._passages[cached]

    def _drop(self, key: str) -> None:
        engine = self.client
        for owner in collection_modes():
            name = store.collection_name(key, self.encoder(owner.mode).label)
            if engine.exists(name):
                engine.delete(name)

    # ------------------------------------------------------------------ answering
    def answer(self, mode: RetrievalMode | str, question: str, key: str, *, top_k: int = 4,
               steps: int | None = None, hybrid: bool = False, decode: bool = False) -> ModeResult:
        """Retrieve and generate in one mode; ``steps`` (K) applies to the thinking modes only; ``hybrid`` fuses
        the mode's dense ranking with BM25's. An agent mode answers with its agent instead (`agent`;
        ``top_k``, ``steps`` and ``hybrid`` do not apply, ``decode`` turns its latents into text). Every failure
        ends up in ``ModeResult.error``. `answer_stream` run to its end."""
        for result in self.answer_stream(mode, question, key, top_k=top_k, steps=steps, hybrid=hybrid,
                                         decode=decode):
            pass
        return result

    def answer_stream(self, mode: RetrievalMode | str, question: str, key: str, *, top_k: int = 4,
                      steps: int | None = None, hybrid: bool = False,
                      decode: bool = False) -> Iterator[ModeResult]:
        """`answer` as it goes: yields the mode's `ModeResult` each time it changes (the same object): once the
        passages are retrieved (with their stages' timings), as the answer's text grows (``streaming`` true
        until then), and complete (the generate stage and ``first_token_ms`` known). An agent mode yields once."""
        chosen = preset(mode)
        result = ModeResult(chosen.mode)
        if not question or not question.strip():
            result.error = "Type a question first."
            yield result
            return
        try:
            corpus = self.corpus(key)
            if not self.is_indexed(corpus):
                result.error = "This corpus is not indexed yet: press Ask again to index it."
            elif chosen.agent is not None:
                self._answer_with_agent(chosen, question.strip(), corpus, result, decode)
            else:
                yield from self._stream_answer(chosen, question.strip(), corpus, result, top_k, steps, hybrid)
        except GenerationError as exc:
            if exc.retrieval is not None:
                result.hits, result.rationale = exc.retrieval.hits, exc.retrieval.rationale
                result.timings = _stage_timings(exc.retrieval.timings, STAGES)
            result.error = f"Generation failed: {exc}"
            result.answer = exc.partial if isinstance(exc, GenerationTimeout) else ""
        except Exception as exc:
            logger.exception("%s mode failed", chosen.name)
            result.error = _message(exc)
        result.streaming = False
        yield result

    def _stream_answer(self, chosen: ModePreset, question: str, corpus: Corpus, result: ModeResult, top_k: int,
                       steps: int | None, hybrid: bool) -> Iterator[ModeResult]:
        """Retrieve, then stream the answer into ``result`` (under the answer lock: the modes take turns)."""
        with self._answer_lock:
            rag = self._rag(chosen, corpus, top_k, hybrid)
            thinks = self._thinking_encoder(chosen) is not None
            retrieval = rag.retriever.retrieve(question, k=top_k, num_thinking_steps=steps if thinks else None,
                                               thoughts=DEFAULT_TOP_K if thinks else None)
            result.hits, result.rationale, result.thoughts = retrieval.hits, retrieval.rationale, retrieval.thoughts
            result.timings = _stage_timings(retrieval.timings, STAGES)
            result.streaming = True
            yield result
            for item in rag.stream(retrieval):
                if isinstance(item, str):
                    result.answer += item
                    yield result
        result.answer = item.text
        result.timings = _stage_timings(item.timings, STAGES)
        result.first_token_ms = item.timings["first_token_ms"]
        if not result.answer:
            result.error = "The model wrote an empty answer."

    def _answer_with_agent(self, chosen: ModePreset, question: str, corpus: Corpus, result: ModeResult,
                           decode: bool) -> None:
        try:
            with self._answer_lock:
                answer = self.agent(chosen.mode, corpus, decode=decode).ask(question, decode=decode)
        except AgentNotFound as exc:
            result.error = str(exc)
            return
        result.answer, result.hits = answer.text, answer.hits
        result.steps = list(getattr(answer, "steps", []))
        result.forward_passes = getattr(answer, "forward_passes", None)
        result.final_thought = getattr(answer, "final_thought", None)
        result.timings = _stage_timings(answer.timings, AGENT_STAGES + AGENT_OPTIONAL_STAGES)
        if not result.answer:
            result.error = "The model wrote an empty answer."

    def _rag(self, chosen: ModePreset, corpus: Corpus, top_k: int, hybrid: bool = False) -> RAG:
        generator = self.generator()
        rewriter = rewriter_for(chosen, generator, generation=self.settings.generation)
        retriever = open_retriever(chosen.mode, corpus=corpus.key, encoder=self.encoder(chosen.mode),
                                   client=self.client, llm=rewriter, options=RetrievalOptions(k=top_k, hybrid=hybrid))
        return RAG(retriever, generator, k=top_k, generation=self.settings.generation)


def _stage_timings(timings: dict[str, float], shown: Sequence[str]) -> dict[str, float]:
    """``{"<stage>_ms": ms}`` -> ``{stage: ms}`` for the ``shown`` stages that ran, in that order."""
    return {stage: timings[f"{stage}_ms"] for stage in shown if f"{stage}_ms" in timings}


def _message(exc: Exception) -> str:
    """An exception as one line for the user (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__: Sequence[str] = ["AGENT_STAGES", "STAGES", "AgentNotFound", "AppSettings", "Engine", "ModeResult", "stages"]
