"""`Thoughts`: what a LaSER encoder "thought" about one text, step by step (`LaSEREncoder.thoughts`).

Each latent step's state predicts a next-token distribution over the vocabulary; for every step but the last, that
distribution, mixed over the embedding table, is the soft token the model reads next. `Thoughts.steps` keeps its
most probable tokens, decoded, with their probabilities, as the rollout that made the embedding computed them.

The caveat: a soft token is a *mixture* of the whole vocabulary. Its top tokens are a view of it, not its meaning:
the mass outside them shapes the embedding too (`Thoughts.coverage`).

Example::

    (thought,) = encoder.thoughts(["who founded the university of kansas?"], top_k=3)
    print(thought.format_thoughts())      # step 1: "Kansas" 0.21, "university" 0.08, "the" 0.05 ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from laser_rag.errors import InvalidInputError

__all__ = ["DEFAULT_TOP_K", "Thoughts", "require_latent_steps"]

#: How many tokens of each step `LaSEREncoder.thoughts` keeps unless told, and the CLI and the app show.
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class Thoughts:
    """One text's latent steps: ``steps[j]`` is step j+1's top tokens as ``(decoded token, probability)``, most
    probable first; there are K steps (`LaSEREncoder.num_thinking_steps`). ``vector`` is the embedding the same
    rollout produced (equal to ``encode_queries`` / ``encode_documents`` of the same batch)."""

    text: str
    kind: str
    steps: list[list[tuple[str, float]]]
    vector: np.ndarray = field(repr=False, compare=False)

    @property
    def coverage(self) -> list[float]:
        """Per step, the probability mass its listed tokens hold (at most 1; the rest of the vocabulary holds the
        remainder of the mixture)."""
        return [sum(p for _, p in step) for step in self.steps]

    def format_thoughts(self, top_k: int | None = None) -> str:
        """One line per step: ``step 1: "Kansas" 0.21, "university" 0.08, …`` (the first ``top_k`` tokens of each
        step, all by default; a token's surrounding spaces are dropped, other whitespace is escaped)."""
        lines = []
        for number, step in enumerate(self.steps, start=1):
            shown = step if top_k is None else step[:top_k]
            tokens = ", ".join(f"{_quoted(token)} {probability:.2f}" for token, probability in shown)
            lines.append(f"step {number}: {tokens}" + (", …" if len(shown) < len(step) else ""))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready: ``{"kind": ..., "steps": [[{"token": ..., "probability": ...}, ...], ...]}`` (for the CLI's
        ``--json`` and the framework adapters' metadata; no vector)."""
        return {"kind": self.kind,
                "steps": [[{"token": token, "probability": probability} for token, probability in step]
                          for step in self.steps]}


def require_latent_steps(encoder) -> None:
    """`InvalidInputError` unless ``encoder`` thinks latent steps (``supports_thinking_steps``): thoughts exist only
    for those (LaSER); a single-pass model thinks no tokens."""
    if not encoder.supports_thinking_steps:
        raise InvalidInputError(f"thoughts need an encoder with latent thinking steps (LaSER): {encoder.label!r} "
                                "is a single-pass model, it thinks no tokens")


def _quoted(token: str) -> str:
    return json.dumps(token.strip(" ") or token, ensure_ascii=False)
