"""A retriever is a collection + an encoder + an optional query rewriter.

- no rewriter: the encoder embeds the query (``encode_queries``); ``basic`` and ``laser`` differ only by encoder
  (one pass, or K latent thinking steps);
- a `QueryRewriter`: an LLM first writes a short rationale about what would answer the query (the LaSER paper's
  Table 1 prompt, shortened), then the encoder reads query + rationale in one pass (``encode_explicit``).

The named modes (`laser_rag.modes.MODES`) are presets of these parts; `open_retriever` builds one. Each encoder has
its own collection, ``<corpus>-<encoder label>`` (``rewrite`` searches ``basic``'s), and the collection's recorded
fingerprint is checked.

``RetrievalOptions(hybrid=True)`` (any mode) also matches the query's words against the collection's sparse BM25
vectors and fuses both rankings in Qdrant (`laser_rag.store.VectorCollection.search_hybrid`); the mode is then
reported as ``<mode>+hybrid`` and the timings gain ``sparse_ms``. The collection must have been indexed hybrid (or
upgraded with ``laser-rag upgrade-hybrid``), else `HybridNotEnabledError`.

Example::

    client = store.connect()                                     # embedded Qdrant (Edge)
    retriever = open_retriever("laser", "pydoc", client=client, create=True)
    retriever.index(pydoc_corpus())                              # once; resumes if interrupted
    result = retriever.retrieve("how do I catch two exceptions at once?", k=5)
    result.hits[0].title, result.timings                         # {'rewrite_ms': 0.0, 'encode_ms': .., 'search_ms': ..}

    store.VectorCollection.open_existing(client, retriever.collection.name).enable_hybrid()   # once, no re-encoding
    hybrid = open_retriever("laser", "pydoc", client=client, options=RetrievalOptions(hybrid=True))  # + BM25
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laser_rag import _checks
from laser_rag import store as _store
from laser_rag.errors import (
    CollectionNotFoundError,
    GenerationError,
    InvalidInputError,
    LaserRagError,
    ModelNotFoundError,
    StoreError,
)
from laser_rag.llm import GenerationConfig, as_llm
from laser_rag.modes import ModePreset, RetrievalMode, mode_name, preset
from laser_rag.store import Hit, IndexReport, VectorCollection

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.encoders import BaseEncoder
    from laser_rag.thoughts import Thoughts

logger = logging.getLogger(__name__)

#: The LaSER paper's Table 1 prompt for an explicit reasoning path, shortened for small models and short outputs.
REWRITE_PROMPT = (
    "Given a question, identify the essential problem, then think step by step about what information would be "
    "relevant and helpful to answer it, and draft a short answer. Be brief.\n\n"
    "[Begin of Question]\n{query}\n[End of Question]"
)


class QueryRewriter:
    """An LLM that writes a short rationale for a query (rewrite-then-retrieve). ``llm``: anything
    `laser_rag.llm.as_llm` accepts (default: the local SmolLM2). ``prompt`` has a ``{query}`` field;
    ``max_new_tokens`` bounds the rationale (default `GenerationConfig.rewrite_max_new_tokens`)."""

    def __init__(self, llm: Any = None, *, prompt: str = REWRITE_PROMPT,
                 max_new_tokens: int = GenerationConfig.rewrite_max_new_tokens) -> None:
        if "{query}" not in prompt:
            raise ValueError("the rewrite prompt needs a {query} field")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
        self.llm = as_llm(llm)
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens

    def __repr__(self) -> str:
        return f"QueryRewriter({self.llm!r}, max_new_tokens={self.max_new_tokens})"

    def rewrite(self, query: str) -> str:
        """The LLM's short reasoning about what would answer ``query``; GenerationError if it writes nothing."""
        messages = [{"role": "user", "content": self.prompt.format(query=query)}]
        rationale = self.llm.generate(messages, max_new_tokens=self.max_new_tokens).strip()
        if not rationale:
            raise GenerationError(f"{self.llm.name} wrote an empty rationale for the query {query!r}")
        return rationale


@dataclass(frozen=True)
class RetrievalOptions:
    """How a `Retriever` searches: ``k`` hits (the default of each `Retriever.retrieve`); ``hybrid=True`` fuses
    dense and sparse (BM25) candidates with ``fusion`` (``"dbsf"``, the default, or ``"rrf"`` with its rank
    constant ``rrf_k`` and ``fusion_weights`` = (dense, sparse): see `laser_rag.store.VectorCollection.search_hybrid`).
    On a quantized collection (`laser_rag.store.CollectionOptions`), ``rescore`` and ``oversampling`` say how its
    quantized candidates are rescored with the original vectors (`laser_rag.store.VectorCollection.search`).
    A bad combination fails here, not per query."""

    k: int = 10
    hybrid: bool = False
    fusion: str = _store.DEFAULT_FUSION
    rrf_k: int | None = None
    fusion_weights: tuple[float, float] | None = None
    rescore: bool = True
    oversampling: float | None = None

    def __post_init__(self) -> None:
        _checks.positive_int(self.k, "k")
        _store.fusion_query(self.fusion, rrf_k=self.rrf_k, weights=self.fusion_weights)  # fails here, not per query
        _checks.rescoring(self.rescore, self.oversampling)


@dataclass
class Retrieval:
    """What one query retrieved, and how long each stage took (ms): ``rewrite_ms`` (0 without a rewriter),
    ``encode_ms``, ``sparse_ms`` (hybrid only: the query's sparse vector), ``search_ms``. ``rationale`` is the
    rewriter's text, if there is one; ``thoughts`` the query's latent steps, when asked for
    (``retrieve(..., thoughts=n)``: `laser_rag.thoughts.Thoughts`)."""

    query: str
    mode: str
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None
    thoughts: Thoughts | None = None


class Retriever:
    """Retrieves from one collection with one encoder, optionally after a `QueryRewriter`, as ``options`` say
    (`RetrievalOptions`: top-k, hybrid, fusion).

    ``mode`` names the mode reported in each `Retrieval` (default: ``"rewrite"`` with a rewriter, else the
    encoder's label); a hybrid retriever reports ``<mode>+hybrid`` (`laser_rag.modes.mode_name`). A hybrid one needs
    a collection that holds sparse vectors (`HybridNotEnabledError` otherwise, raised here). Build one with
    `open_retriever`, or from parts here.
    """

    def __init__(self, collection: VectorCollection, encoder: BaseEncoder, rewriter: QueryRewriter | None = None,
                 *, mode: str | None = None, options: RetrievalOptions | None = None) -> None:
        collection.check_encoder(encoder)
        self.options = options = options if options is not None else RetrievalOptions()
        self.sparse = collection.sparse_encoder if options.hybrid else None  # HybridNotEnabledError names the upgrade
        self.collection = collection
        self.encoder = encoder
        self.rewriter = rewriter
        self.k = options.k
        name = mode if mode is not None else RetrievalMode.REWRITE if rewriter is not None else encoder.label
        self.mode = mode_name(name, options.hybrid)

    @property
    def hybrid(self) -> bool:
        return self.sparse is not None

    def __repr__(self) -> str:
        return (f"Retriever(mode={self.mode!r}, collection={self.collection.name!r}, encoder={self.encoder.label!r}, "
                f"rewriter={self.rewriter!r}, hybrid={self.hybrid})")

    def index(self, documents: Sequence, **kwargs) -> IndexReport:
        """Index documents into this retriever's collection with its encoder (see `VectorCollection.index`)."""
        with self._store_errors():
            return self.collection.index(documents, self.encoder, **kwargs)

    @contextlib.contextmanager
    def _store_errors(self) -> Iterator[None]:
        """A store call that failed because the collection was deleted meanwhile -> `CollectionNotFoundError`
        (each engine words that failure its own way); one the disk refused (full, read-only) -> `StoreError`;
        any other failure passes unchanged."""
        try:
            yield
        except CollectionNotFoundError as exc:  # the engine noticed the collection is gone
            raise CollectionNotFoundError(f"collection {self.collection.name!r} was deleted while this retriever "
                                          "was open; index the corpus again (`laser-rag index`)") from exc
        except LaserRagError:
            raise
        except (OSError, sqlite3.Error) as exc:  # the embedded store writes through sqlite
            raise StoreError(f"writing to collection {self.collection.name!r} failed ({type(exc).__name__}: {exc}); "
                             "the batches stored before are kept: free disk space and run the same index again, "
                             "it adds only what is missing") from exc
        except Exception as exc:
            if self.collection.engine.exists(self.collection.name):
                raise
            raise CollectionNotFoundError(f"collection {self.collection.name!r} was deleted while this retriever "
                                          "was open; index the corpus again (`laser-rag index`)") from exc

    def retrieve(self, query: str, *, k: int | None = None, instruction: str | None = None,
                 num_thinking_steps: int | None = None, thoughts: int | None = None) -> Retrieval:
        """Top-``k`` hits for ``query``. ``instruction`` replaces the encoder's query instruction; with a
        rewriter the rationale takes its place. ``num_thinking_steps`` overrides K for this query (a
        `LaSEREncoder` without a rewriter only). ``thoughts=n`` also returns what the encoder thought about the
        query: the top ``n`` tokens of each latent step, from the pass that embeds it (`Retrieval.thoughts`; an
        encoder with latent steps, without a rewriter)."""
        _checks.text(query, "the query")
        k = self.k if k is None else _checks.positive_int(k, "k")
        _checks.optional_text(instruction, "instruction")
        _checks.optional_positive_int(num_thinking_steps, "num_thinking_steps")
        _checks.optional_positive_int(thoughts, "thoughts")
        options: dict[str, Any] = {}
        if instruction is not None:
            options["instruction"] = instruction
        if num_thinking_steps is not None:
            if not self.encoder.supports_thinking_steps:
                raise InvalidInputError(f"num_thinking_steps needs a LaSER encoder; {self.encoder.label} has no "
                                        "latent steps")
            options["num_thinking_steps"] = num_thinking_steps
        if self.rewriter is not None and (options or thoughts is not None):
            asked = [*options, *(["thoughts"] if thoughts is not None else [])]
            raise InvalidInputError(f"{' and '.join(asked)} cannot apply with a query rewriter: the encoder reads "
                                    "the query with its rationale in one pass")
        timings = {"rewrite_ms": 0.0}
        rationale = thought = None
        if self.rewriter is not None:
            tick = time.perf_counter()
            rationale = self.rewriter.rewrite(query)
            timings["rewrite_ms"] = _ms(tick)
        tick = time.perf_counter()
        if rationale is not None:
            vector = self.encoder.encode_explicit([query], [rationale])[0]
        elif thoughts is not None:  # one rollout gives both the vector and its thoughts
            thought = self.encoder.thoughts(query, "query", top_k=thoughts, **options)
            vector = thought.vector
        else:
            vector = self.encoder.encode_queries([query], **options)[0]
        timings["encode_ms"] = _ms(tick)
        with self._store_errors():
            if self.sparse is not None:
                tick = time.perf_counter()
                sparse = self.sparse.encode_query(query)
                timings["sparse_ms"] = _ms(tick)
                tick = time.perf_counter()
                hits = self.collection.search_hybrid(vector, sparse, k, fusion=self.options.fusion,
                                                     rrf_k=self.options.rrf_k, weights=self.options.fusion_weights,
                                                     rescore=self.options.rescore,
                                                     oversampling=self.options.oversampling)
            else:
                tick = time.perf_counter()
                hits = self.collection.search(vector, k, rescore=self.options.rescore,
                                              oversampling=self.options.oversampling)
        timings["search_ms"] = _ms(tick)
        return Retrieval(query=query, mode=self.mode, hits=hits, timings=timings, rationale=rationale,
                         thoughts=thought)

    async def aretrieve(self, query: str, **kwargs) -> Retrieval:
        """`retrieve` in a worker thread: the event loop keeps running while the model works."""
        return await asyncio.to_thread(self.retrieve, query, **kwargs)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


_warned_basic_fallback = False


def encoder_for(mode: RetrievalMode | str, source: str | None = None) -> BaseEncoder:
    """The encoder of ``mode``: ``source`` if given (a LaSER checkpoint, a hub id, a sentence-transformers model, or
    any kind `laser_rag.encoders.register_encoder` added), else the preset's encoder; at the preset's K when it pins
    one (basic: one pass) and the encoder has latent steps. Loaded once per process
    (`laser_rag.encoders.load_encoder`).

    Until ``builtin:basic`` ships, a preset that asks for it gets the default backbone with K=1 (logged once).
    """
    global _warned_basic_fallback
    from laser_rag import backbones
    from laser_rag.encoders import load_encoder, with_thinking_steps

    chosen = preset(mode)
    steps = chosen.num_thinking_steps
    try:
        encoder = load_encoder(source if source is not None else chosen.encoder)
    except ModelNotFoundError:
        if source is not None or chosen.encoder != "builtin:basic":
            raise
        if not _warned_basic_fallback:
            logger.warning("no builtin:basic checkpoint: the basic encoder is the default backbone with "
                           "num_thinking_steps=1")
            _warned_basic_fallback = True
        encoder = load_encoder(backbones.DEFAULT_BASE)
    # a preset's K pins encoders with latent steps only: a single-pass model (sentence-transformers) is one already
    return with_thinking_steps(encoder, steps) if encoder.supports_thinking_steps else encoder


def rewriter_for(mode: RetrievalMode | str | ModePreset, llm: Any = None, *,
                 generation: GenerationConfig | None = None) -> QueryRewriter | None:
    """THE one place a preset's query rewriter is built: None for a mode that does not rewrite; else ``llm`` if it
    is a `QueryRewriter` already, or a `QueryRewriter` on ``llm`` (anything `laser_rag.llm.as_llm` accepts) whose
    rationale ``generation.rewrite_max_new_tokens`` bounds (default `GenerationConfig`)."""
    chosen = mode if isinstance(mode, ModePreset) else preset(mode)
    if not chosen.rewrites:
        return None
    if isinstance(llm, QueryRewriter):
        return llm
    return QueryRewriter(llm, max_new_tokens=(generation or GenerationConfig()).rewrite_max_new_tokens)


def open_retriever(mode: RetrievalMode | str = RetrievalMode.LASER, corpus: str = "default", *, client: Any = None,
                   encoder: BaseEncoder | None = None, llm: Any = None, collection: str | None = None,
                   create: bool = False, recreate: bool = False, options: RetrievalOptions | None = None,
                   collection_options: _store.CollectionOptions | None = None) -> Retriever:
    """A `Retriever` for the preset ``mode`` on the collection ``<corpus>-<encoder label>`` (or ``collection``).

    ``encoder`` overrides the preset's encoder (see `encoder_for`); ``client`` is a Qdrant store (default: one
    `laser_rag.store.connect()`, the embedded Qdrant Edge store). ``llm`` (anything `laser_rag.llm.as_llm`
    accepts, or a ready `QueryRewriter`) is used by presets that rewrite, ignored by the others (`rewriter_for`).
    ``create`` makes a missing collection (for indexing); otherwise a missing one raises `CollectionNotFoundError`;
    ``recreate`` drops it first.
    ``options``: top-k, hybrid and fusion (`RetrievalOptions`); with ``hybrid=True`` a collection created now gets
    the sparse vectors, an existing one without them raises `HybridNotEnabledError` naming the upgrade command.
    ``collection_options`` (`laser_rag.store.CollectionOptions`: shards, replicas, on-disk storage, quantization)
    shape a collection created now.
    """
    chosen = preset(mode)
    options = options if options is not None else RetrievalOptions()
    encoder = encoder if encoder is not None else encoder_for(chosen.mode)
    client = client if client is not None else _store.connect()
    name = collection or _store.collection_name(corpus, encoder.label)
    opened = VectorCollection.open(client, name, encoder, create=create or recreate, recreate=recreate,
                                   hybrid=options.hybrid, options=collection_options)
    return Retriever(opened, encoder, rewriter_for(chosen, llm), mode=chosen.name, options=options)
