"""A retriever is a collection + an encoder + an optional query rewriter.

- no rewriter: the encoder embeds the query (``encode_queries``); ``basic`` and ``laser`` differ only by encoder
  (one pass, or K latent thinking steps);
- a `QueryRewriter`: an LLM first writes a short rationale about what would answer the query (the LaSER paper's
  Table 1 prompt, shortened), then the encoder reads query + rationale in one pass (``encode_explicit``).

The named modes (`laser_rag.modes.MODES`) are presets of these parts; `open_retriever` builds one. Each encoder has
its own collection, ``<corpus>-<encoder label>`` (``rewrite`` searches ``basic``'s), and the collection's recorded
fingerprint is checked.

``hybrid=True`` (any mode) also matches the query's words against the collection's sparse BM25 vectors and fuses
both rankings in Qdrant (`laser_rag.store.VectorCollection.search_hybrid`); the mode is then reported as
``<mode>+hybrid`` and the timings gain ``sparse_ms``. The collection must have been indexed hybrid (or upgraded with
``laser-rag upgrade-hybrid``), else `HybridNotEnabledError`.

Example::

    client = store.connect()                                     # embedded Qdrant
    retriever = open_retriever("laser", "pydoc", client=client, create=True)
    retriever.index(pydoc_corpus())                              # once; resumes if interrupted
    result = retriever.retrieve("how do I catch two exceptions at once?", k=5)
    result.hits[0].title, result.timings                         # {'rewrite_ms': 0.0, 'encode_ms': .., 'search_ms': ..}

    store.VectorCollection.open_existing(client, retriever.collection.name).enable_hybrid()   # once, no re-encoding
    hybrid = open_retriever("laser", "pydoc", client=client, hybrid=True)   # dense + BM25, fused in Qdrant
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laser_rag import store as _store
from laser_rag.errors import CollectionMismatchError, GenerationError, ModelNotFoundError
from laser_rag.llm import GenerationConfig, as_llm
from laser_rag.modes import HYBRID_SUFFIX, RetrievalMode, preset
from laser_rag.store import Hit, IndexReport, VectorCollection

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.encoders import BaseEncoder

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


@dataclass
class Retrieval:
    """What one query retrieved, and how long each stage took (ms): ``rewrite_ms`` (0 without a rewriter),
    ``encode_ms``, ``sparse_ms`` (hybrid only: the query's sparse vector), ``search_ms``. ``rationale`` is the
    rewriter's text, if there is one."""

    query: str
    mode: str
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None


class Retriever:
    """Retrieves from one collection with one encoder, optionally after a `QueryRewriter`.

    ``mode`` is the name reported in each `Retrieval` (default: ``"rewrite"`` with a rewriter, else the encoder's
    label; ``+hybrid`` appended when hybrid). ``hybrid=True`` fuses dense and sparse (BM25) candidates with
    ``fusion`` (``"dbsf"``, the default, or ``"rrf"`` with its rank constant ``rrf_k`` and ``fusion_weights`` =
    (dense, sparse): see `laser_rag.store.VectorCollection.search_hybrid`); the collection must hold sparse
    vectors (`HybridNotEnabledError` otherwise, raised here). Build one with `open_retriever`, or from parts here.
    """

    def __init__(self, collection: VectorCollection, encoder: BaseEncoder, rewriter: QueryRewriter | None = None,
                 *, k: int = 10, mode: str | None = None, hybrid: bool = False,
                 fusion: str = _store.DEFAULT_FUSION, rrf_k: int | None = None,
                 fusion_weights: tuple[float, float] | None = None) -> None:
        if collection.fingerprint != encoder.fingerprint:
            raise CollectionMismatchError(
                collection.name, collection.info,
                {"fingerprint": encoder.fingerprint, "dimension": encoder.dimension, "encoder": encoder.label},
                "was built by another encoder")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        _store.fusion_query(fusion, rrf_k=rrf_k, weights=fusion_weights)  # a bad fusion fails here, not per query
        self.sparse = collection.sparse_encoder if hybrid else None  # HybridNotEnabledError names the upgrade
        self.fusion, self.rrf_k, self.fusion_weights = fusion, rrf_k, fusion_weights
        self.collection = collection
        self.encoder = encoder
        self.rewriter = rewriter
        self.k = k
        name = mode if mode is not None else RetrievalMode.REWRITE if rewriter is not None else encoder.label
        name = name.value if isinstance(name, RetrievalMode) else str(name)
        self.mode = f"{name}{HYBRID_SUFFIX}" if hybrid and mode is None else name

    @property
    def hybrid(self) -> bool:
        return self.sparse is not None

    def __repr__(self) -> str:
        return (f"Retriever(mode={self.mode!r}, collection={self.collection.name!r}, encoder={self.encoder.label!r}, "
                f"rewriter={self.rewriter!r}, hybrid={self.hybrid})")

    def index(self, documents: Sequence, **kwargs) -> IndexReport:
        """Index documents into this retriever's collection with its encoder (see `VectorCollection.index`)."""
        return self.collection.index(documents, self.encoder, **kwargs)

    def retrieve(self, query: str, *, k: int | None = None, instruction: str | None = None,
                 num_thinking_steps: int | None = None) -> Retrieval:
        """Top-``k`` hits for ``query``. ``instruction`` replaces the encoder's query instruction; with a
        rewriter the rationale takes its place. ``num_thinking_steps`` overrides K for this query (a
        `LaSEREncoder` without a rewriter only)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the query is empty")
        options: dict[str, Any] = {}
        if instruction is not None:
            options["instruction"] = instruction
        if num_thinking_steps is not None:
            from laser_rag.encoders import LaSEREncoder

            if not isinstance(self.encoder, LaSEREncoder):
                raise ValueError(f"num_thinking_steps needs a LaSER encoder; {self.encoder.label} has no latent steps")
            options["num_thinking_steps"] = num_thinking_steps
        if self.rewriter is not None and options:
            raise ValueError(f"{' and '.join(options)} cannot apply with a query rewriter: the encoder reads the "
                             "query with its rationale in one pass")
        timings = {"rewrite_ms": 0.0}
        rationale = None
        if self.rewriter is not None:
            tick = time.perf_counter()
            rationale = self.rewriter.rewrite(query)
            timings["rewrite_ms"] = _ms(tick)
        tick = time.perf_counter()
        if rationale is not None:
            vector = self.encoder.encode_explicit([query], [rationale])[0]
        else:
            vector = self.encoder.encode_queries([query], **options)[0]
        timings["encode_ms"] = _ms(tick)
        if self.sparse is not None:
            tick = time.perf_counter()
            sparse = self.sparse.encode_query(query)
            timings["sparse_ms"] = _ms(tick)
            tick = time.perf_counter()
            hits = self.collection.search_hybrid(vector, sparse, k or self.k, fusion=self.fusion, rrf_k=self.rrf_k,
                                                 weights=self.fusion_weights)
        else:
            tick = time.perf_counter()
            hits = self.collection.search(vector, k or self.k)
        timings["search_ms"] = _ms(tick)
        return Retrieval(query=query, mode=self.mode, hits=hits, timings=timings, rationale=rationale)

    async def aretrieve(self, query: str, **kwargs) -> Retrieval:
        """`retrieve` in a worker thread: the event loop keeps running while the model works."""
        return await asyncio.to_thread(self.retrieve, query, **kwargs)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


_warned_basic_fallback = False


def encoder_for(mode: RetrievalMode | str, source: str | None = None) -> BaseEncoder:
    """The encoder of ``mode``: ``source`` if given (a LaSER checkpoint, a hub id or a sentence-transformers model),
    else the preset's encoder; at the preset's K when it pins one (basic: one pass). Loaded once per process
    (`laser_rag.encoders.load_encoder`).

    Until ``builtin:basic`` ships, a preset that asks for it gets the default backbone with K=1 (logged once).
    """
    global _warned_basic_fallback
    from laser_rag import backbones
    from laser_rag.encoders import LaSEREncoder, load_encoder, with_thinking_steps

    chosen = preset(mode)
    steps = chosen.num_thinking_steps
    if source is not None:
        encoder = load_encoder(source)
        # a preset's K pins LaSER encoders only: a sentence-transformers source is a single pass already
        return with_thinking_steps(encoder, steps) if isinstance(encoder, LaSEREncoder) else encoder
    try:
        return load_encoder(chosen.encoder, num_thinking_steps=steps)
    except ModelNotFoundError:
        if chosen.encoder != "builtin:basic":
            raise
        if not _warned_basic_fallback:
            logger.warning("no builtin:basic checkpoint: the basic encoder is the default backbone with "
                           "num_thinking_steps=1")
            _warned_basic_fallback = True
        return load_encoder(backbones.DEFAULT_BASE, num_thinking_steps=1)


def open_retriever(mode: RetrievalMode | str = RetrievalMode.LASER, corpus: str = "default", *, client: Any = None,
                   encoder: BaseEncoder | None = None, llm: Any = None, collection: str | None = None,
                   create: bool = False, recreate: bool = False, k: int = 10, hybrid: bool = False,
                   fusion: str = _store.DEFAULT_FUSION, rrf_k: int | None = None,
                   fusion_weights: tuple[float, float] | None = None) -> Retriever:
    """A `Retriever` for the preset ``mode`` on the collection ``<corpus>-<encoder label>`` (or ``collection``).

    ``encoder`` overrides the preset's encoder (see `encoder_for`); ``client`` is a Qdrant client (default: one
    `laser_rag.store.connect()`). ``llm`` (anything `laser_rag.llm.as_llm` accepts, or a ready `QueryRewriter`)
    is used by presets that rewrite, ignored by the others. ``create`` makes a missing collection (for indexing);
    otherwise a missing one raises `CollectionNotFoundError`; ``recreate`` drops it first.
    ``hybrid=True``: dense + BM25 fusion (``fusion``, ``rrf_k``, ``fusion_weights``: see `Retriever`); a
    collection created now gets the sparse vectors, an existing one without them raises `HybridNotEnabledError`
    naming the upgrade command.
    """
    chosen = preset(mode)
    encoder = encoder if encoder is not None else encoder_for(chosen.mode)
    client = client if client is not None else _store.connect()
    name = collection or _store.collection_name(corpus, encoder.label)
    opened = VectorCollection.open(client, name, encoder, create=create or recreate, recreate=recreate,
                                   hybrid=hybrid)
    rewriter = None
    if chosen.rewrites:
        rewriter = llm if isinstance(llm, QueryRewriter) else QueryRewriter(llm)
    name = f"{chosen.mode.value}{HYBRID_SUFFIX}" if hybrid else chosen.mode.value
    return Retriever(opened, encoder, rewriter, k=k, mode=name, hybrid=hybrid, fusion=fusion, rrf_k=rrf_k,
                     fusion_weights=fusion_weights)
