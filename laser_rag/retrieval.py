"""Three ways to retrieve, behind one interface.

- ``basic``: one forward pass (the fair baseline): the ``builtin:basic`` adapter, or until it ships the default
  backbone with K=1; or any sentence-transformers model (``basic_source="all-minilm-l6-v2"``).
- ``laser``: K latent thinking steps (the default LaSER encoder; K can be changed per query).
- ``rewrite``: rewrite-then-retrieve: an LLM first writes a short reasoning about what would answer the query
  (the LaSER paper's Table 1 prompt, shortened), then the basic encoder embeds query + reasoning in one pass.

Each encoder has its own collection, ``<corpus>-<encoder label>`` (``rewrite`` searches ``basic``'s), and the
collection's recorded fingerprint is checked.

Example::

    retriever = open_retriever("laser", corpus="pydoc")          # embedded Qdrant, default encoder
    retriever.index(pydoc_corpus())                              # once; resumes if interrupted
    result = retriever.retrieve("how do I catch two exceptions at once?", k=5)
    result.hits[0].title, result.timings                         # {'rewrite_ms': 0.0, 'encode_ms': .., 'search_ms': ..}
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from laser_rag import store as _store
from laser_rag.encoders import encoder_label, load_encoder
from laser_rag.llm import GenerationError, as_llm
from laser_rag.store import Hit, VectorCollection

logger = logging.getLogger(__name__)

#: The LaSER paper's Table 1 prompt for an explicit reasoning path, shortened for small models and short outputs.
REWRITE_PROMPT = (
    "Given a question, identify the essential problem, then think step by step about what information would be "
    "relevant and helpful to answer it, and draft a short answer. Be brief.\n\n"
    "[Begin of Question]\n{query}\n[End of Question]"
)
REWRITE_MAX_NEW_TOKENS = 64


class RetrievalMode(str, Enum):
    BASIC = "basic"
    LASER = "laser"
    REWRITE = "rewrite"


@dataclass
class Retrieval:
    """What one query retrieved, and how long each stage took (ms): ``rewrite_ms`` (0 unless rewriting),
    ``encode_ms``, ``search_ms``. ``rationale`` is the LLM's reasoning in rewrite mode."""

    query: str
    mode: RetrievalMode
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    rationale: str | None = None


class Retriever:
    """Retrieves from one collection with one encoder, in one mode.

    ``llm`` is needed in rewrite mode only (`laser_rag.llm.as_llm` accepts a local model, a URL, a LangChain or
    LlamaIndex model). Build one with `open_retriever`, or from parts here.
    """

    def __init__(self, collection: VectorCollection, encoder, *, mode: RetrievalMode | str = RetrievalMode.LASER,
                 llm: Any = None, k: int = 10, rewrite_max_new_tokens: int = REWRITE_MAX_NEW_TOKENS) -> None:
        self.mode = RetrievalMode(mode)
        if collection.fingerprint != encoder.fingerprint:
            raise _store.CollectionMismatchError(
                collection.name, collection.info,
                {"fingerprint": encoder.fingerprint, "dimension": encoder.dimension, "encoder": encoder_label(encoder)},
                "was built by another encoder")
        self.collection = collection
        self.encoder = encoder
        self.llm = as_llm(llm) if self.mode is RetrievalMode.REWRITE else None
        self.k = k
        self.rewrite_max_new_tokens = rewrite_max_new_tokens

    def __repr__(self) -> str:
        return f"Retriever(mode={self.mode.value}, collection={self.collection.name!r}, encoder={self.encoder!r})"

    def index(self, documents, **kwargs) -> _store.IndexReport:
        """Index documents into this retriever's collection with its encoder (see `VectorCollection.index`)."""
        return self.collection.index(documents, self.encoder, **kwargs)

    def rewrite(self, query: str) -> str:
        """The LLM's short reasoning about what would answer ``query`` (rewrite mode)."""
        if self.llm is None:
            raise ValueError("rewrite needs an LLM: open the retriever in rewrite mode")
        messages = [{"role": "user", "content": REWRITE_PROMPT.format(query=query)}]
        rationale = self.llm.generate(messages, max_new_tokens=self.rewrite_max_new_tokens).strip()
        if not rationale:
            raise GenerationError(f"{self.llm.name} wrote an empty reasoning for the query {query!r}")
        return rationale

    def retrieve(self, query: str, *, k: int | None = None, num_thinking_steps: int | None = None) -> Retrieval:
        """Top-``k`` hits for ``query``. ``num_thinking_steps`` overrides K for this query (laser mode only)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the query is empty")
        if num_thinking_steps is not None and self.mode is not RetrievalMode.LASER:
            raise ValueError(f"num_thinking_steps applies to laser mode only, not {self.mode.value}")
        timings = {"rewrite_ms": 0.0}
        rationale = None
        if self.mode is RetrievalMode.REWRITE:
            tick = time.perf_counter()
            rationale = self.rewrite(query)
            timings["rewrite_ms"] = _ms(tick)
        tick = time.perf_counter()
        if rationale is not None:
            vector = self.encoder.encode_queries([query], rationales=[rationale])[0]
        else:
            vector = self.encoder.encode_queries([query], num_thinking_steps=num_thinking_steps)[0]
        timings["encode_ms"] = _ms(tick)
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


def encoder_for(mode: RetrievalMode | str, *, laser_source: str | None = None, basic_source: str | None = None):
    """The encoder a mode uses (loaded once per process; ``basic`` and the default ``laser`` share weights while
    no trained adapter ships).

    ``basic``/``rewrite``: ``basic_source`` if given (a LaSER checkpoint or a sentence-transformers model), else
    ``builtin:basic``, else the default backbone with K=1 (logged once). ``laser``: ``laser_source`` or the default.
    """
    global _warned_basic_fallback
    from laser_rag import _models

    mode = RetrievalMode(mode)
    if mode is RetrievalMode.LASER:
        return load_encoder(laser_source)
    if basic_source is not None:
        return load_encoder(basic_source, num_thinking_steps=1)
    try:
        return load_encoder("builtin:basic")
    except _models.ModelNotFoundError:
        if not _warned_basic_fallback:
            logger.warning("no builtin:basic checkpoint yet: the basic encoder is the default backbone with "
                           "num_thinking_steps=1")
            _warned_basic_fallback = True
        return load_encoder(_models.DEFAULT_BASE, num_thinking_steps=1)


def open_retriever(
    mode: RetrievalMode | str = RetrievalMode.LASER,
    *,
    corpus: str = "default",
    collection: str | None = None,
    encoder: Any = None,
    laser_source: str | None = None,
    basic_source: str | None = None,
    llm: Any = None,
    client: Any = None,
    path: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    create: bool = False,
    recreate: bool = False,
    k: int = 10,
) -> Retriever:
    """A `Retriever` for ``mode`` on the collection ``<corpus>-<encoder label>`` (or ``collection``).

    ``encoder`` overrides the mode's default encoder (see `encoder_for`); ``client`` overrides the connection
    (else `laser_rag.store.connect` with ``path``/``url``/``api_key``). ``create`` makes a missing collection
    (for indexing); otherwise a missing one raises `CollectionNotFoundError`.
    """
    mode = RetrievalMode(mode)
    encoder = encoder if encoder is not None else encoder_for(mode, laser_source=laser_source,
                                                              basic_source=basic_source)
    client = client if client is not None else _store.connect(path, url=url, api_key=api_key)
    name = collection or _store.collection_name(corpus, encoder_label(encoder))
    opened = VectorCollection.open(client, name, encoder, create=create or recreate, recreate=recreate)
    return Retriever(opened, encoder, mode=mode, llm=llm, k=k)
