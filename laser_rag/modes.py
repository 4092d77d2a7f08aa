"""The retrieval modes, registered in one place: what each one is called, which encoder it uses by default, whether
an LLM writes a rationale first, and whose collection it searches.

A mode is a preset, not code: a `laser_rag.retrieval.Retriever` is a collection + an encoder + an optional query
rewriter, and `laser_rag.retrieval.open_retriever` builds one from a preset. The CLI, the app and the eval read
`MODES` (the CLI's ``--mode`` choices come from it). Add a mode by adding a preset here.

This module is cheap to import (no torch, no Qdrant).

Example::

    from laser_rag.modes import MODES, preset

    preset("rewrite").collection_mode          # RetrievalMode.BASIC: rewrite searches basic's collection
    [p.title for p in MODES.values()]          # ['Basic', 'LaSER', 'Rewrite-then-retrieve', 'LatentRAG (multi-step)']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class RetrievalMode(str, Enum):
    """The name of a registered mode (a `str`, so ``RetrievalMode.LASER == "laser"``)."""

    BASIC = "basic"
    LASER = "laser"
    REWRITE = "rewrite"
    LATENTRAG = "latentrag"


@dataclass(frozen=True)
class ModePreset:
    """How one mode retrieves.

    ``encoder`` is the default encoder source (`laser_rag.encoders.load_encoder` reads it); ``num_thinking_steps``
    pins K for that encoder (1 for a single pass; None keeps the encoder's own K), also when the user picks another
    LaSER checkpoint for the mode. ``rewrites``: an LLM writes a short rationale first and the encoder reads query
    and rationale together (rewrite-then-retrieve). ``collection_mode``: the mode whose collection this one searches
    (default: its own, for a mode that encodes its own documents).
    """

    mode: RetrievalMode
    title: str
    description: str
    encoder: str
    rewrites: bool = False
    collection_mode: RetrievalMode | None = None  # None: ``mode`` (set in __post_init__)
    num_thinking_steps: int | None = None
    #: A multi-step agent answers in this mode (`laser_rag.latentrag`: the checkpoint it loads); its collection is
    #: ``encoder``'s (the agent's reference retriever indexes the documents), and a plain `Retriever` of the preset
    #: is the single-step baseline on that same index.
    agent: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", RetrievalMode(self.mode))
        object.__setattr__(self, "collection_mode", RetrievalMode(self.collection_mode or self.mode))


#: THE registry of retrieval modes.
MODES: dict[RetrievalMode, ModePreset] = {entry.mode: entry for entry in (
    ModePreset(RetrievalMode.BASIC, "Basic", "one forward pass, last-token embedding (the fair baseline)",
               encoder="builtin:basic", num_thinking_steps=1),
    ModePreset(RetrievalMode.LASER, "LaSER",
               "K latent thinking steps before the embedding (K can change per query)", encoder="builtin:laser"),
    ModePreset(RetrievalMode.REWRITE, "Rewrite-then-retrieve",
               "an LLM writes a short rationale, then the basic encoder reads query + rationale in one pass",
               encoder="builtin:basic", num_thinking_steps=1, rewrites=True, collection_mode=RetrievalMode.BASIC),
    ModePreset(RetrievalMode.LATENTRAG, "LatentRAG (multi-step)",
               "the LLM thinks and writes its subqueries as latent tokens projected into the retriever, up to 4 "
               "retrievals, then answers", encoder="all-minilm-l6-v2", agent="builtin:latentrag"),
)}


#: The suffix of a mode's hybrid variant: ``laser+hybrid`` is laser with its dense ranking fused with BM25's
#: (`laser_rag.retrieval.Retriever`'s ``hybrid=True``). Every mode has one.
HYBRID_SUFFIX = "+hybrid"


def split_hybrid(name: str) -> tuple[str, bool]:
    """``"laser+hybrid"`` -> ``("laser", True)``, ``"laser"`` -> ``("laser", False)`` (names of modes and anchors)."""
    base = name.removesuffix(HYBRID_SUFFIX)
    return base, base != name


def preset(mode: RetrievalMode | str) -> ModePreset:
    """The registered preset of ``mode`` (a `RetrievalMode` or its name); ValueError names the known modes."""
    try:
        return MODES[RetrievalMode(mode)]
    except (ValueError, KeyError):
        known = ", ".join(m.value for m in MODES)
        raise ValueError(f"unknown retrieval mode {mode!r}: use one of {known}") from None
