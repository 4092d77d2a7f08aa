"""The retrieval modes, registered in one place: what each one is called, which encoder it uses by default, whether
an LLM writes a rationale first, whether an agent answers, and whose collection it searches.

A mode is a preset, not code: a `laser_rag.retrieval.Retriever` is a collection + an encoder + an optional query
rewriter, and `laser_rag.retrieval.open_retriever` builds one from a preset. The CLI, the app and the eval read
`MODES`: the ``--mode`` choices, the app's columns, the eval's modes, and the per-mode options (``--<mode>-model``
for each mode that owns a collection, ``--<mode>-checkpoint`` for each agent mode: `source_fields`) all come from
it. Add a mode with `register_mode` (or a preset in the table below); docs/modes.md shows how.

This module is cheap to import (no torch, no Qdrant).

Example::

    from laser_rag.modes import MODES, preset

    preset("rewrite").collection_mode          # RetrievalMode.BASIC: rewrite searches basic's collection
    [p.title for p in MODES.values()]          # ['Basic', 'LaSER', 'Rewrite-then-retrieve', 'LatentRAG (multi-step)']
    parse_mode_name("laser+hybrid")            # ('laser', True): the hybrid variant's spelling, read at the edge
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional


class RetrievalMode(str, Enum):
    """The name of a built-in mode (a `str`, so ``RetrievalMode.LASER == "laser"``, and it hashes as its name: a
    registry key can be looked up by either). A mode added with `register_mode` is named by a plain `str`."""

    BASIC = "basic"
    LASER = "laser"
    REWRITE = "rewrite"
    LATENTRAG = "latentrag"

    def __hash__(self) -> int:
        return str.__hash__(self.value)


@dataclass(frozen=True)
class ModePreset:
    """How one mode retrieves.

    ``mode``: its name (a `RetrievalMode` for the built-in ones, else a str). ``encoder`` is the default encoder
    source (`laser_rag.encoders.load_encoder` reads it); ``num_thinking_steps`` pins K for that encoder (1 for a
    single pass; None keeps the encoder's own K), also when the user picks another checkpoint for the mode.
    ``rewrites``: an LLM writes a short rationale first and the encoder reads query and rationale together
    (rewrite-then-retrieve). ``collection_mode``: the mode whose collection this one searches (default: its own,
    for a mode that encodes its own documents).
    """

    mode: RetrievalMode | str
    title: str
    description: str
    encoder: str
    rewrites: bool = False
    collection_mode: RetrievalMode | str | None = None  # None: ``mode`` (set in __post_init__)
    num_thinking_steps: int | None = None
    #: A multi-step agent answers in this mode (`laser_rag.latentrag`: the checkpoint it loads); its collection is
    #: ``encoder``'s (the agent's reference retriever indexes the documents), and a plain `Retriever` of the preset
    #: is the single-step baseline on that same index.
    agent: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _mode_key(self.mode))
        object.__setattr__(self, "collection_mode", _mode_key(self.collection_mode or self.mode))

    @property
    def name(self) -> str:
        """The mode's name as a plain str (``"laser"``): what results, columns and options are named by."""
        return str.__str__(self.mode)

    @property
    def owner(self) -> ModePreset:
        """The preset of the mode whose collection this one searches (itself for a mode that owns one)."""
        return self if self.collection_mode == self.mode else preset(self.collection_mode)

    @property
    def thinks(self) -> bool:
        """Whether K (latent thinking steps) can change per query: the mode embeds the query itself with the
        encoder's own K (no pinned K, no rewriter, no agent embedding its own latent subqueries)."""
        return self.num_thinking_steps is None and not self.rewrites and self.agent is None


def _mode_key(name: RetrievalMode | str) -> RetrievalMode | str:
    """A built-in name as its `RetrievalMode`, any other as a lower-case str."""
    text = str.__str__(name).strip().lower() if isinstance(name, str) else str(name)
    try:
        return RetrievalMode(text)
    except ValueError:
        return text


#: THE registry of retrieval modes, in the order the CLI, the app and the eval show them.
MODES: dict[RetrievalMode | str, ModePreset] = {entry.mode: entry for entry in (
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


def register_mode(entry: ModePreset) -> ModePreset:
    """Add a mode to `MODES` (after the others); ValueError if the name is taken or it searches the collection of
    an unknown mode, or of one that searches another's. Register before the CLI module (`laser_rag.cli`) is
    imported: its per-mode options are generated then."""
    if entry.mode in MODES:
        raise ValueError(f"the retrieval mode {entry.name!r} is registered already")
    if entry.collection_mode != entry.mode:
        owner = MODES.get(entry.collection_mode)
        if owner is None or owner.collection_mode != owner.mode:
            raise ValueError(f"{entry.name}: collection_mode must name a registered mode that owns its collection")
    MODES[entry.mode] = entry
    return entry


def preset(mode: RetrievalMode | str) -> ModePreset:
    """The registered preset of ``mode`` (a `RetrievalMode` or its name); ValueError names the known modes."""
    found = MODES.get(_mode_key(mode)) if isinstance(mode, str) else None
    if found is None:
        known = ", ".join(chosen.name for chosen in MODES.values())
        raise ValueError(f"unknown retrieval mode {mode!r}: use one of {known}")
    return found


def collection_modes() -> list[ModePreset]:
    """The presets of the modes that own a collection (the others search one of these), in registry order."""
    return list(dict.fromkeys(chosen.owner for chosen in MODES.values()))


# ---------------------------------------------------------------------------------------------------------------
# The hybrid variant's spelling: read at the edges (the CLI's --mode, the eval's --modes), reported in results


#: The suffix of a mode's hybrid variant: ``laser+hybrid`` is laser with its dense ranking fused with BM25's
#: (`laser_rag.retrieval.RetrievalOptions`'s ``hybrid=True``). Every mode has one.
HYBRID_SUFFIX = "+hybrid"


def parse_mode_name(name: str) -> tuple[str, bool]:
    """``"laser+hybrid"`` -> ``("laser", True)``, ``"laser"`` -> ``("laser", False)`` (names of modes and anchors)."""
    base = name.removesuffix(HYBRID_SUFFIX)
    return base, base != name


def mode_name(mode: RetrievalMode | str, hybrid: bool = False) -> str:
    """The reported name of a mode's run: ``"laser"``, or ``"laser+hybrid"`` for its hybrid variant."""
    base = str.__str__(mode)
    return f"{base}{HYBRID_SUFFIX}" if hybrid else base


# ---------------------------------------------------------------------------------------------------------------
# The per-mode choices of the user: an encoder per collection, a checkpoint per agent


@dataclass(frozen=True)
class ModeSources:
    """What the user picked per mode, by mode name: ``encoders`` for the modes that own a collection (a mode
    that searches another's uses that one's), ``agents`` for the agent modes. Unset: the preset's default."""

    encoders: Mapping[str, str] = field(default_factory=dict)
    agents: Mapping[str, str] = field(default_factory=dict)

    def encoder(self, mode: RetrievalMode | str | ModePreset) -> str | None:
        """The encoder the user picked for ``mode`` (that of the mode whose collection it searches), or None."""
        chosen = mode if isinstance(mode, ModePreset) else preset(mode)
        return self.encoders.get(chosen.owner.name)

    def agent(self, mode: RetrievalMode | str | ModePreset) -> str | None:
        """The agent checkpoint of an agent mode: the user's, else ``$LASER_RAG_<MODE>_CHECKPOINT``, else the
        preset's ``agent``; None for a mode without an agent."""
        chosen = mode if isinstance(mode, ModePreset) else preset(mode)
        if chosen.agent is None:
            return None
        return self.agents.get(chosen.name) or os.environ.get(agent_env(chosen)) or chosen.agent

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> ModeSources:
        """From the option values `source_fields` declares (``{"laser_model": ..., "latentrag_checkpoint": ...}``);
        None values are left out."""
        encoders, agents = {}, {}
        for key, value in values.items():
            if value is None:
                continue
            name, _, kind = key.rpartition("_")
            if kind not in ("model", "checkpoint"):
                raise ValueError(f"not a per-mode option: {key!r}")
            (encoders if kind == "model" else agents)[preset(name).name] = str(value)
        return cls(encoders, agents)


def agent_env(chosen: ModePreset) -> str:
    """The environment variable that picks an agent mode's checkpoint: ``LASER_RAG_LATENTRAG_CHECKPOINT``."""
    return f"LASER_RAG_{chosen.name.upper().replace('-', '_')}_CHECKPOINT"


def source_fields(*, agents: bool = True) -> list[tuple[str, Any, Any]]:
    """The per-mode options, as `dataclasses.make_dataclass` fields, in registry order: ``<mode>_model`` for each
    mode that owns a collection, ``<mode>_checkpoint`` for each agent mode (when ``agents``). Their help names the
    modes each serves and the preset's default; `ModeSources.from_options` reads the values back."""
    fields = []
    for owner in collection_modes():
        users = ", ".join(chosen.name for chosen in MODES.values() if chosen.owner is owner)
        help_text = (f"Encoder for --mode {users}: a LaSER checkpoint, a hub id or a sentence-transformers model "
                     f"(e.g. all-minilm-l6-v2). Default: {owner.encoder}.")
        fields.append((f"{_identifier(owner)}_model", Optional[str], field(default=None, metadata={"help": help_text})))
    for chosen in MODES.values() if agents else ():
        if chosen.agent is None:
            continue
        help_text = (f"The agent of --mode {chosen.name}: a checkpoint folder. Default: ${agent_env(chosen)}, else "
                     f"{chosen.agent}, the shipped one.")
        fields.append((f"{_identifier(chosen)}_checkpoint", Optional[str],
                       field(default=None, metadata={"help": help_text})))
    return fields


def _identifier(chosen: ModePreset) -> str:
    if not chosen.name.isidentifier():
        raise ValueError(f"a mode's name must be a Python identifier to get options: {chosen.name!r}")
    return chosen.name
