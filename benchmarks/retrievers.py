"""What each evaluated mode retrieves with: the retrieval modes of `laser_rag.modes` (basic, laser, rewrite, ...),
run through `laser_rag.retrieval.Retriever` as users run them, plus two anchors: ``bm25`` (lexical,
`laser_rag.bm25`) and ``minilm`` (all-MiniLM-L6-v2, an off-the-shelf dense model). Every dense mode has a hybrid
variant, ``<mode>+hybrid`` (e.g. ``laser+hybrid``, ``minilm+hybrid``): the same retriever with ``hybrid=True``, its
dense ranking fused with BM25 over the collection's sparse vectors inside Qdrant (not in `DEFAULT_MODES`).

Each dense retriever searches an in-memory Qdrant collection (`laser_rag.store.connect(":memory:")`, which
searches exhaustively: no approximate index stands between an encoder and its score). Its document vectors come
from the on-disk cache (`laser_rag_benchmarks.cache.document_vectors`); modes whose encoders have the same
fingerprint (basic and rewrite) share one collection.

Example::

    retriever = build_retriever("laser", dataset.corpus)
    retriever.retrieve("how do I catch two exceptions at once?").hits[:3]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from laser_rag.corpus import Document
from laser_rag.llm import GenerationConfig
from laser_rag.modes import HYBRID_SUFFIX, MODES, ModeSources, parse_mode_name, preset

if TYPE_CHECKING:  # pragma: no cover
    from laser_rag.store import VectorCollection

#: The two anchors evaluated beside the registered retrieval modes.
BM25_MODE, MINILM_MODE = "bm25", "minilm"


def single_query_modes() -> tuple[str, ...]:
    """Every single-query mode, anchors first (the order of tables): the registry's modes as they are now. An
    agent mode (latentrag) is not here: it answers questions in several retrieval steps, and `laser-rag eval-qa`
    (`laser_rag_benchmarks.qa_eval`) measures it."""
    return (BM25_MODE, MINILM_MODE, *(chosen.name for chosen in MODES.values() if chosen.agent is None))


#: The modes evaluated by default: `single_query_modes` when this module was imported.
DEFAULT_MODES = single_query_modes()
#: How deep each query's ranking goes (Recall@100 needs 100).
DEPTH = 100
#: The all-MiniLM-L6-v2 encoder's name for `laser_rag.encoders.load_encoder`.
MINILM_SOURCE = "all-minilm-l6-v2"


def parse_modes(modes: str | Sequence[str | Enum]) -> list[str]:
    """``"bm25,laser,laser+hybrid"`` or ``["bm25", "laser"]`` -> mode names, in the order given, without repeats."""
    names = modes.split(",") if isinstance(modes, str) else [m.value if isinstance(m, Enum) else m for m in modes]
    known = single_query_modes()
    parsed = []
    for name in filter(None, (name.strip().lower() for name in names)):
        base, hybrid = parse_mode_name(name)
        if base not in known and base in MODES:
            raise ValueError(f"{base} is a multi-step agent, not a single-query retriever: measure it with "
                             "laser-rag eval-qa")
        if base not in known or (hybrid and base == BM25_MODE):  # BM25 is the lexical side already
            raise ValueError(f"unknown mode {name!r}; expected some of {', '.join(known)}, or a dense mode "
                             f"with {HYBRID_SUFFIX} (e.g. laser{HYBRID_SUFFIX})")
        parsed.append(name)
    if not parsed:
        raise ValueError("no mode given")
    return list(dict.fromkeys(parsed))


@dataclass
class EvalSettings:
    """What an evaluation runs with; saved in the report so a figure can be reproduced."""

    #: The cut-off of nDCG, Recall and MRR (Recall@100 is always reported).
    k: int = 10
    #: K for the queries of the modes that think (laser: the per-query knob of `Retriever.retrieve`); None = the
    #: encoder's own K.
    #: Documents are always encoded with the encoder's own settings.
    num_thinking_steps: int | None = None
    #: Evaluate only the first N judged queries (in the dataset's order).
    max_queries: int | None = None
    #: Token limit of the LaSER encoders (queries and documents); None = the checkpoint's own.
    max_length: int | None = None
    #: The encoder picked per mode (by the mode whose collection it searches: basic's serves rewrite too); unset =
    #: the mode preset's (`laser_rag.modes`). Anything `laser_rag.encoders.load_encoder` accepts.
    models: ModeSources = field(default_factory=ModeSources)
    #: The rewriter: anything `laser_rag.llm.as_llm` accepts as a string (None = local SmolLM2-135M-Instruct).
    llm: str | None = None
    llm_model: str = "default"
    rewrite_max_new_tokens: int = GenerationConfig.rewrite_max_new_tokens
    #: Documents per encoder batch when building the document vectors.
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.k < 1 or self.k > DEPTH:
            raise ValueError(f"k must be between 1 and {DEPTH}, got {self.k}")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {self.max_queries}")
        if self.num_thinking_steps is not None and self.num_thinking_steps < 1:
            raise ValueError(f"num_thinking_steps must be >= 1, got {self.num_thinking_steps}")

    @property
    def metrics(self) -> tuple[str, ...]:
        """pytrec_eval names: ``ndcg_cut_10, recall_10, recall_100, recip_rank@10`` for k=10."""
        return tuple(dict.fromkeys((f"ndcg_cut_{self.k}", f"recall_{self.k}", f"recall_{DEPTH}",
                                    f"recip_rank@{self.k}")))

    def encoder_source(self, mode: str) -> str | None:
        """The encoder the user chose for ``mode`` (or its hybrid variant), else None."""
        return self.models.encoder(parse_mode_name(mode)[0])


# ---------------------------------------------------------------------------------------------------------------
# Encoders and collections


def mode_encoder(mode: str, settings: EvalSettings | None = None):
    """The encoder ``mode`` evaluates with under ``settings`` (loaded once per process)."""
    from laser_rag.encoders import LaSEREncoder, load_encoder
    from laser_rag.retrieval import encoder_for

    settings = settings or EvalSettings()
    mode = parse_mode_name(mode)[0]
    if mode == MINILM_MODE:
        return load_encoder(MINILM_SOURCE)
    encoder = encoder_for(mode, settings.encoder_source(mode))
    if settings.max_length is not None and isinstance(encoder, LaSEREncoder):
        encoder = encoder.with_config(max_length=settings.max_length)
    return encoder


def describe_encoder(encoder) -> str:
    """A readable line for reports: ``laser-k3 (SmolLM2-135M-Instruct.Q4_1.gguf, trained adapter, max_length 512)``
    for a LaSER encoder, its label otherwise."""
    from laser_rag.encoders import LaSEREncoder

    if not isinstance(encoder, LaSEREncoder):
        return encoder.label
    adapter = "trained adapter" if encoder.adapter_id else "no adapter"
    return f"{encoder.label} ({Path(str(encoder.config.base_model)).name}, {adapter}, max_length {encoder.max_length})"


@dataclass
class IndexedCorpus:
    """A corpus in an in-memory Qdrant collection, and what it cost to encode (0 s when the cache had it)."""

    collection: VectorCollection
    seconds: float
    cached: bool


def memory_collection(encoder, documents: Sequence[Document], *, cache_dir: str | Path | None = None,
                      batch_size: int = 16, progress: bool = True, hybrid: bool = False) -> IndexedCorpus:
    """``documents`` in a fresh collection of the in-memory Qdrant store, with ``encoder``'s vectors taken from
    the on-disk cache (`laser_rag_benchmarks.cache.document_vectors`: encoded only on the first run); with the
    sparse BM25 vectors too when ``hybrid``."""
    from laser_rag import store
    from laser_rag_benchmarks.cache import document_vectors

    vectors, seconds, cached = document_vectors(encoder, documents, cache_dir=cache_dir, batch_size=batch_size,
                                                progress=progress)
    client = store.connect(":memory:")  # a private in-memory store per corpus and encoder
    collection = store.VectorCollection.open(client, f"eval-{encoder.label}", encoder, create=True, hybrid=hybrid)
    collection.upsert(list(documents), vectors)
    return IndexedCorpus(collection, seconds, cached)


def build_retriever(mode: str, documents: Sequence[Document], settings: EvalSettings | None = None, *,
                    cache_dir: str | Path | None = None, progress: bool = True,
                    collections: dict[tuple, IndexedCorpus] | None = None):
    """A `laser_rag.retrieval.Retriever` for a dense mode (a registered one, or ``minilm``, or the hybrid variant of
    one) over ``documents``, in an in-memory Qdrant collection (`memory_collection`). Encoders and rewriter follow
    ``settings``. Pass the same ``collections`` dict to several calls to let modes with the same encoder share one
    collection (a hybrid mode adds the sparse vectors to it in place: `VectorCollection.enable_hybrid`)."""
    from laser_rag.retrieval import RetrievalOptions, Retriever

    mode, settings = parse_modes([mode])[0], settings or EvalSettings()
    base, hybrid = parse_mode_name(mode)
    if base == BM25_MODE:
        raise ValueError("bm25 is not a dense mode: use laser_rag.bm25.BM25")
    encoder = mode_encoder(mode, settings)
    collections = {} if collections is None else collections
    key = (encoder.fingerprint, encoder.max_length)
    if key not in collections:
        collections[key] = memory_collection(encoder, documents, cache_dir=cache_dir, batch_size=settings.batch_size,
                                             progress=progress, hybrid=hybrid)
    elif hybrid and not collections[key].collection.hybrid:
        collections[key].collection.enable_hybrid()
    rewriter = _rewriter(base, settings) if base != MINILM_MODE else None
    return Retriever(collections[key].collection, encoder, rewriter, mode=base,
                     options=RetrievalOptions(k=DEPTH, hybrid=hybrid))


def _rewriter(mode: str, settings: EvalSettings):
    """The preset's rewriter on the settings' LLM (None, and no LLM loaded, for a mode that does not rewrite)."""
    if not preset(mode).rewrites:
        return None
    from laser_rag.llm import as_llm
    from laser_rag.retrieval import rewriter_for

    return rewriter_for(mode, as_llm(settings.llm, model=settings.llm_model),
                        generation=GenerationConfig(rewrite_max_new_tokens=settings.rewrite_max_new_tokens))


# ---------------------------------------------------------------------------------------------------------------
# One runner per mode: retrieve(query) -> ([(doc_id, score)], stage timings in ms)


class _BM25Runner:
    """The lexical anchor, timed like the retrievers (``search_ms``)."""

    def __init__(self, documents: Sequence[Document]) -> None:
        from laser_rag.bm25 import BM25

        tick = time.perf_counter()
        self.index = BM25(documents)
        self.index_seconds = time.perf_counter() - tick
        self.encoder = "bm25s (k1=1.5, b=0.75, " + ("stemmed)" if self.index.stemmed else "not stemmed)")
        self.fingerprint = None
        self.index_cached = False

    def retrieve(self, query: str) -> tuple[list[tuple[str, float]], dict[str, float]]:
        tick = time.perf_counter()
        ranked = self.index.search(query, DEPTH)
        return ranked, {"search_ms": (time.perf_counter() - tick) * 1000.0}


class _RetrieverRunner:
    """A dense mode: its `Retriever`, and what the report says about its encoder."""

    def __init__(self, retriever, indexed: IndexedCorpus, num_thinking_steps: int | None = None) -> None:
        self.retriever = retriever
        self.encoder = describe_encoder(retriever.encoder)
        if retriever.hybrid:
            stem = "stemmed" if retriever.sparse.config.stemmed else "not stemmed"
            from laser_rag.store import fusion_query

            options = retriever.options
            fusion = options.fusion.upper()
            query = fusion_query(options.fusion, rrf_k=options.rrf_k, weights=options.fusion_weights)
            if options.fusion == "rrf":  # the rank constant and weights Qdrant is sent, defaults resolved
                fusion += f" k={query.rrf.k}"
                if query.rrf.weights:
                    fusion += " weights (dense, sparse) {:g}, {:g}".format(*query.rrf.weights)
            self.encoder += f" + BM25 sparse ({stem}, {fusion} fusion in Qdrant)"
        self.fingerprint = retriever.encoder.fingerprint
        self.index_seconds = indexed.seconds
        self.index_cached = indexed.cached
        self.num_thinking_steps = num_thinking_steps

    def retrieve(self, query: str) -> tuple[list[tuple[str, float]], dict[str, float]]:
        result = self.retriever.retrieve(query, k=DEPTH, num_thinking_steps=self.num_thinking_steps)
        return [(hit.id, hit.score) for hit in result.hits], dict(result.timings)


def runners(modes: Sequence[str], documents: Sequence[Document], settings: EvalSettings, *,
            cache_dir: str | Path | None = None, progress: bool = True) -> dict[str, _BM25Runner | _RetrieverRunner]:
    """A runner per mode over ``documents``; dense modes with the same encoder share one collection."""
    collections: dict[tuple, IndexedCorpus] = {}
    built: dict[str, _BM25Runner | _RetrieverRunner] = {}
    for mode in modes:
        if mode == BM25_MODE:
            built[mode] = _BM25Runner(documents)
            continue
        retriever = build_retriever(mode, documents, settings, cache_dir=cache_dir, progress=progress,
                                    collections=collections)
        base = parse_mode_name(mode)[0]
        thinks = base in MODES and preset(base).thinks and retriever.encoder.supports_thinking_steps
        steps = settings.num_thinking_steps if thinks else None
        indexed = collections[(retriever.encoder.fingerprint, retriever.encoder.max_length)]
        built[mode] = _RetrieverRunner(retriever, indexed, steps)
    return built
