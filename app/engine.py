"""The app's work, without any UI: index corpora lazily (with progress), answer one question in one mode.

Models are loaded once per process (`laser_rag.encoders.load_encoder` and `laser_rag.llm.as_llm` keep them) and
shared by every session; the embedded Qdrant store lives in the app's data folder, so indexes survive restarts.
Answering takes a process-wide lock: the three modes then run one after the other, and each stage's latency is
measured without another question competing for the same CPU cores. A failure in one mode is returned in that
mode's `ModeResult` (``error``), never raised, so the other modes still answer.

Example::

    engine = Engine(AppSettings(data_dir=Path("/tmp/demo")))
    engine.ensure_indexed("pydoc-64", progress=lambda fraction, message: print(f"{fraction:.0%} {message}"))
    result = engine.answer("laser", "How do I catch two exceptions at once?", "pydoc-64", top_k=4, steps=3)
    result.answer, result.timings, result.hits[0].title, result.error
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from laser_rag import store
from laser_rag.config import CONFIG_NAME, LaSERConfig
from laser_rag.datasets import Document
from laser_rag.encoder import default_source
from laser_rag.llm import GenerationError, as_llm
from laser_rag.rag import RAG
from laser_rag.retrieval import RetrievalMode, encoder_for, open_retriever
from laser_rag.store import Hit

from app.corpora import Corpus, UploadError, Uploads, builtin_corpora

logger = logging.getLogger(__name__)

MODES = (RetrievalMode.BASIC, RetrievalMode.LASER, RetrievalMode.REWRITE)
STAGES = ("rewrite", "encode", "search", "generate")
Progress = Callable[[float, str], None]


def default_data_dir() -> Path:
    """``$LASER_RAG_APP_DIR``, else ``<user data dir>/laser_rag/app``."""
    return Path(os.environ.get("LASER_RAG_APP_DIR") or Path(platformdirs.user_data_dir("laser_rag")) / "app")


@dataclass
class AppSettings:
    """How the app runs. ``llm``: None (local SmolLM2), a model path or an OpenAI-compatible URL."""

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int | None = None  # None: 7860, or the next free port
    corpus: str | None = None  # selected at start; None: the first built-in corpus (the small default)
    max_new_tokens: int = 128
    rewrite_max_new_tokens: int = 64
    time_limit: float = 60.0
    llm: str | None = None
    llm_model: str = "default"
    laser_model: str | None = None
    basic_model: str | None = None
    concurrency: int = 4
    threads: int | None = None  # torch intra-op threads (None: torch's default, one per core)
    preload: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()


@dataclass
class ModeResult:
    """One mode's answer to one question. ``timings`` maps each of `STAGES` to ms (those that ran);
    ``error`` is a message for the user when the mode failed (hits may still be there)."""

    mode: RetrievalMode
    answer: str = ""
    hits: list[Hit] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None
    error: str | None = None


class Engine:
    """Corpora, models and the embedded store of one app process. ``encoders`` (by mode name) and ``llm``
    replace the configured models (tests pass small stand-ins)."""

    def __init__(self, settings: AppSettings, *, encoders: dict[str, Any] | None = None, llm: Any = None) -> None:
        self.settings = settings
        self.uploads = Uploads(settings.data_dir / "uploads")
        self._builtin = builtin_corpora()
        self._encoders = dict(encoders or {})
        self._llm = llm
        self._documents: dict[str, list[Document]] = {}
        self._complete: set[str] = set()  # corpora known to be fully indexed in both collections
        self._index_lock = threading.Lock()
        self._answer_lock = threading.Lock()

    # ------------------------------------------------------------------ corpora
    def corpora(self) -> list[Corpus]:
        return [*self._builtin, *self.uploads.corpora()]

    def corpus(self, key: str) -> Corpus:
        for corpus in self.corpora():
            if corpus.key == key:
                return corpus
        raise ValueError(f"unknown corpus {key!r}")

    def default_corpus(self) -> str:
        keys = [corpus.key for corpus in self.corpora()]
        return self.settings.corpus if self.settings.corpus in keys else keys[0]

    def documents(self, corpus: Corpus) -> list[Document]:
        if corpus.key not in self._documents:
            self._documents[corpus.key] = corpus.load()
        return self._documents[corpus.key]

    def describe(self, key: str) -> str:
        """One line about a corpus: its size, whether it is indexed, its licence."""
        corpus = self.corpus(key)
        count = len(self.documents(corpus))
        state = "indexed" if self.is_indexed(corpus) else "not indexed yet: the first question indexes it"
        return f"{corpus.label}: {count:,} passages, {state}. {corpus.note}".strip()

    # ------------------------------------------------------------------ models and collections
    @property
    def client(self):
        return store.connect(self.settings.data_dir / "qdrant")

    def encoder(self, mode: RetrievalMode | str):
        """The encoder of a mode (rewrite uses basic's), loaded once per process."""
        name = "laser" if RetrievalMode(mode) is RetrievalMode.LASER else "basic"
        if name not in self._encoders:
            self._encoders[name] = encoder_for(name, laser_source=self.settings.laser_model,
                                               basic_source=self.settings.basic_model)
        return self._encoders[name]

    def generator(self, max_new_tokens: int):
        return as_llm(self._llm if self._llm is not None else self.settings.llm, model=self.settings.llm_model,
                      timeout=self.settings.time_limit, max_new_tokens=max_new_tokens)

    def default_steps(self) -> int:
        """The K of the LaSER encoder, read from its config without loading it."""
        if "laser" in self._encoders:
            return int(getattr(getattr(self._encoders["laser"], "config", None), "num_thinking_steps", 1))
        source = Path(self.settings.laser_model or default_source()).expanduser()
        return (LaSERConfig.load(source) if (source / CONFIG_NAME).is_file() else LaSERConfig()).num_thinking_steps

    def preload(self) -> None:
        """Load both encoders and the generator and run each once, so that the first question's latencies are
        not those of a cold start (under the answer lock: a question asked meanwhile waits, then is timed fairly)."""
        try:
            with self._answer_lock:
                for mode in (RetrievalMode.BASIC, RetrievalMode.LASER):
                    self.encoder(mode).encode_queries(["warm-up"])
                self.generator(1).generate("Hello", max_new_tokens=1)
        except Exception:  # the failing mode reports it again when asked
            logger.exception("preloading the models failed")

    def is_indexed(self, corpus: Corpus) -> bool:
        """Whether both collections of the corpus exist, were built by today's encoders and hold every passage."""
        if corpus.key in self._complete:
            return True
        expected = len(self.documents(corpus))
        for mode in (RetrievalMode.BASIC, RetrievalMode.LASER):
            try:
                retriever = open_retriever(mode, corpus=corpus.key, encoder=self.encoder(mode), client=self.client)
            except (store.CollectionNotFoundError, store.CollectionMismatchError):
                return False
            if retriever.collection.count() != expected:
                return False
        self._complete.add(corpus.key)
        return True

    # ------------------------------------------------------------------ indexing
    def ensure_indexed(self, key: str, progress: Progress | None = None) -> str:
        """Index a corpus into its basic and LaSER collections unless done already; returns a status line."""
        corpus = self.corpus(key)
        if not self.is_indexed(corpus):
            self._index(corpus, self.documents(corpus), progress)
            self._complete.add(corpus.key)
        return self.describe(key)

    def _index(self, corpus: Corpus, documents: list[Document], progress: Progress | None) -> None:
        """Encode what is missing into both collections (resumable); one indexing job at a time."""
        progress = progress or (lambda fraction, message: None)
        if self._index_lock.locked():
            progress(0.0, "waiting for another indexing job to finish")
        with self._index_lock:
            steps = (RetrievalMode.BASIC, RetrievalMode.LASER)
            for number, mode in enumerate(steps):
                retriever = self._open_for_indexing(mode, corpus)
                progress(number / len(steps), f"{mode.value} encoder: starting on {len(documents):,} passages")

                def report(done, number=number, mode=mode):
                    stored = done.added + done.skipped
                    progress((number + stored / max(done.total, 1)) / len(steps),
                             f"{mode.value} encoder: {stored:,} of {done.total:,} passages")

                retriever.index(documents, batch_size=8, encode_batch_size=8, progress=False, on_batch=report)
            progress(1.0, "indexed")

    def _open_for_indexing(self, mode: RetrievalMode, corpus: Corpus):
        kwargs = dict(corpus=corpus.key, encoder=self.encoder(mode), client=self.client)
        try:
            return open_retriever(mode, create=True, **kwargs)
        except store.CollectionMismatchError:  # the encoder changed (e.g. a trained checkpoint arrived)
            logger.warning("%s: the %s encoder changed since it was indexed, re-indexing", corpus.key, mode.value)
            return open_retriever(mode, recreate=True, **kwargs)

    def add_upload(self, source: str | Path, name: str | None = None, progress: Progress | None = None) -> Corpus:
        """Copy, parse and index an uploaded file; returns its corpus. Raises `UploadError`, and then keeps
        nothing of this file (other corpora are never touched)."""
        staged = self.uploads.stage(source, name)
        key, known = staged.corpus.key, self.uploads.known(staged.corpus.key)
        self._documents[key] = staged.documents
        try:
            if not self.is_indexed(staged.corpus):
                self._index(staged.corpus, staged.documents, progress)
        except Exception as exc:
            self._documents.pop(key, None)
            if not known:
                self._drop(key)
                self.uploads.discard_folder(staged.folder)
            logger.exception("indexing the upload %s failed", staged.name)
            raise UploadError(f"{staged.name}: could not be indexed ({_message(exc)})") from exc
        self.uploads.commit(staged)
        self._complete.add(key)
        return self.corpus(key)

    def _drop(self, key: str) -> None:
        from laser_rag.encoders import encoder_label

        for mode in (RetrievalMode.BASIC, RetrievalMode.LASER):
            name = store.collection_name(key, encoder_label(self.encoder(mode)))
            if self.client.collection_exists(name):
                self.client.delete_collection(name)

    # ------------------------------------------------------------------ answering
    def answer(self, mode: RetrievalMode | str, question: str, key: str, *, top_k: int = 4,
               steps: int | None = None) -> ModeResult:
        """Retrieve and generate in one mode; every failure ends up in ``ModeResult.error``."""
        mode = RetrievalMode(mode)
        result = ModeResult(mode)
        if not question or not question.strip():
            result.error = "Type a question first."
            return result
        try:
            corpus = self.corpus(key)
            if not self.is_indexed(corpus):
                result.error = "This corpus is not indexed yet: press Ask again to index it."
                return result
            with self._answer_lock:
                rag = self._rag(mode, corpus, top_k)
                answer = rag.ask(question.strip(), num_thinking_steps=steps if mode is RetrievalMode.LASER else None)
            result.answer, result.hits, result.rationale = answer.text, answer.hits, answer.rationale
            result.timings = _stage_timings(answer.timings)
            if not result.answer:
                result.error = "The model wrote an empty answer."
        except GenerationError as exc:
            retrieval = exc.retrieval
            if retrieval is not None:
                result.hits, result.rationale = retrieval.hits, retrieval.rationale
                result.timings = _stage_timings(retrieval.timings)
            result.error = f"Generation failed: {exc}"
            result.answer = getattr(exc, "partial", "") or ""
        except Exception as exc:
            logger.exception("%s mode failed", mode.value)
            result.error = _message(exc)
        return result

    def _rag(self, mode: RetrievalMode, corpus: Corpus, top_k: int) -> RAG:
        generator = self.generator(self.settings.max_new_tokens)
        retriever = open_retriever(mode, corpus=corpus.key, encoder=self.encoder(mode), client=self.client,
                                   llm=generator if mode is RetrievalMode.REWRITE else None, k=top_k)
        retriever.rewrite_max_new_tokens = self.settings.rewrite_max_new_tokens
        return RAG(retriever, generator, k=top_k, max_new_tokens=self.settings.max_new_tokens,
                   time_limit=self.settings.time_limit)


def _stage_timings(timings: dict[str, float]) -> dict[str, float]:
    return {stage: timings[f"{stage}_ms"] for stage in STAGES if f"{stage}_ms" in timings}


def _message(exc: Exception) -> str:
    """An exception as one line for the user (no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["MODES", "STAGES", "AppSettings", "Engine", "ModeResult", "UploadError", "default_data_dir"]
