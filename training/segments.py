"""Rationales as reasoning segments, located in the explicit view's tokens (for trajectory alignment).

The explicit view reads the query and its rationale in one pass, rendered by `laser_rag.prompts.PromptFormat` as the
encoder renders it (chat wrapper included); trajectory alignment needs the hidden state at the end of each of the
rationale's M segments. Segments are found by *character offsets*, not by separator tokens: each segment's last
character is mapped to the token that covers it (fast tokenizers' ``return_offsets_mapping``). A separator that a
tokenizer merges into a neighbouring token (``".\\n"`` in Qwen's vocabulary, or the space that BPE glues to the next
word) therefore never has to survive on its own.

Then the K latent steps are mapped to segments (`step_to_segment`) and the states gathered from a left-padded
batch (`gather_segment_states`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from laser_rag.config import LaSERConfig
from laser_rag.prompts import PromptFormat

_NUMBERED = re.compile(r"(?m)^\s*(?:step\s*)?\(?\d+[.):]\s+", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9#])")


def split_segments(rationale: str) -> list[str]:
    """Free text -> reasoning steps: numbered steps if there are two or more, else non-empty lines if there are
    two or more, else sentences. Each segment keeps its own text (numbers included), stripped.

    Example::

        split_segments("1. Find X.\\n2. Compare with Y.")   # ['1. Find X.', '2. Compare with Y.']
        split_segments("A is B. So C is D.")                 # ['A is B.', 'So C is D.']
    """
    text = rationale.strip()
    if not text:
        return []
    starts = [m.start() for m in _NUMBERED.finditer(text)]
    if len(starts) >= 2:
        bounds = ([0] if starts[0] > 0 else []) + starts + [len(text)]
        pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    else:
        pieces = text.splitlines()
        if sum(bool(p.strip()) for p in pieces) < 2:
            pieces = _SENTENCE_END.split(text)
    return [p.strip() for p in pieces if p.strip()]


def join_segments(segments: Sequence[str], separator: str = "\n") -> tuple[str, list[int]]:
    """Segments -> (rationale text, each segment's end character offset in that text, exclusive).

    Empty segments are skipped; each kept segment is stripped so its end offset points at a real character.
    """
    parts, ends, length = [], [], 0
    for segment in segments:
        segment = segment.strip()
        if not segment:
            continue
        if parts:
            parts.append(separator)
            length += len(separator)
        parts.append(segment)
        length += len(segment)
        ends.append(length)
    return "".join(parts), ends


@dataclass
class ExplicitInput:
    """One explicit-view prompt, tokenised: ``ids`` (truncated, EOS appended if the config says so) and the
    index of the token ending each segment that survived truncation (``len(segment_ends)`` is M)."""

    ids: list[int]
    segment_ends: list[int]


def explicit_inputs(
    tokenizer, config: LaSERConfig, query: str, segments: Sequence[str], max_length: int, separator: str = "\n",
    *, at_separator: bool = False, append_eos: bool | None = None,
) -> ExplicitInput:
    """Build the explicit-view prompt for ``query`` and its rationale ``segments`` and locate every segment end.

    The prompt is the encoder's explicit input (`laser_rag.prompts.PromptFormat`: the rendered query, chat wrapper
    included when the config has one, then the rationale) with the segments joined by ``separator``, tokenised and
    cut to ``max_length`` as every encoder input is (the text is cut, never the template; room is kept for the EOS
    that ``append_eos`` (default: ``config.append_eos``) appends). A segment whose last character falls beyond the
    cut is dropped. ``at_separator``: each segment but the last is located at the last token of the separator that
    follows it instead of at its own last character (the authors' code reads the states at the separator tokens).

    Example::

        x = explicit_inputs(tokenizer, LaSERConfig(), "Is X older than Y?", ["X was born 1900.", "Y 1950."], 256)
        x.segment_ends   # token indices, one per segment, in x.ids
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("locating rationale segments needs a fast tokenizer (return_offsets_mapping)")
    rationale, ends = join_segments(segments, separator)
    prompt_format = PromptFormat(config, tokenizer)
    rendered = prompt_format.render(query, "explicit", rationale=rationale)
    (tokens,) = prompt_format.tokenize([rendered], max_length, append_eos=append_eos)
    start = rendered.rationale_start  # where the rationale begins in the prompt
    chars = [start + e - 1 for e in ends]
    if at_separator and separator:
        chars = [start + e + len(separator) - 1 for e in ends[:-1]] + chars[-1:]  # the separator's last character
    kept = [c for c in chars if c < tokens.text_end]  # the segments that survived the cut
    return ExplicitInput(ids=tokens.ids, segment_ends=_covering_tokens(tokens.offsets, kept))


def _covering_tokens(offsets: Sequence[tuple[int, int]], chars: Sequence[int]) -> list[int]:
    """For each character index (ascending), the index of the last token whose span covers it (a character split
    over several byte-level tokens ends at the last of them). A character no token covers (normalised away) maps
    to the last token before it. Characters past the last token were truncated away and are dropped."""
    found, token = [], 0
    for char in chars:
        while token < len(offsets) and offsets[token][1] <= char:
            token += 1
        if token == len(offsets):
            break  # this segment (and every later one) was cut off
        if offsets[token][0] > char:
            found.append(max(token - 1, 0))
            continue
        while token + 1 < len(offsets) and offsets[token + 1][0] <= char < offsets[token + 1][1]:
            token += 1
        found.append(token)
    return found


def step_to_segment(num_steps: int, num_segments: int) -> list[int]:
    """Which segment (0-based) each of the K latent steps is aligned with (eq. 11's temporal downsampling).

    Eq. 11 writes ``j_i = floor(i * M / K)`` without saying whether i and j count from 0 or 1: with 1-based i and
    j, ``i = 1`` and ``M < K`` give j = 0 (out of range); with 0-based ones the last step never reaches the last
    segment. We use ``j_i = ceil((i + 1) * M / K) - 1`` for ``i = 0 .. K-1`` (0-based), i.e. 1-based
    ``ceil(i * M / K)``: it equals the paper's formula whenever K divides ``i * M``, stays in ``[0, M-1]``, is
    non-decreasing, and maps the last step to the last segment (the conclusion) and, for ``M >= K``, every step to
    the end of its own 1/K share of the reasoning. For ``M < K`` several steps share a segment; for ``M = 0`` the
    result is empty (no trajectory target: that query is masked).

    Example::

        step_to_segment(3, 6)   # [1, 3, 5]
        step_to_segment(3, 2)   # [0, 1, 1]
        step_to_segment(3, 0)   # []
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if num_segments <= 0:
        return []
    return [math.ceil((i + 1) * num_segments / num_steps) - 1 for i in range(num_steps)]


def gather_segment_states(
    hidden: Tensor, lengths: Sequence[int], segment_ends: Sequence[Sequence[int]], num_steps: int
) -> tuple[Tensor, Tensor]:
    """The explicit view's states at the segments the K steps map to: ``([B, K, H], valid [B])``.

    ``hidden`` ``[B, W, H]`` comes from a *left*-padded batch, so row b's token t sits at column
    ``W - lengths[b] + t``. Rows with no segment get zeros and ``valid = False``.
    """
    batch, width, _ = hidden.shape
    index = torch.zeros(batch, num_steps, dtype=torch.long, device=hidden.device)
    valid = torch.zeros(batch, dtype=torch.bool, device=hidden.device)
    for row, (length, ends) in enumerate(zip(lengths, segment_ends)):
        mapping = step_to_segment(num_steps, len(ends))
        if mapping:
            shift = width - length
            index[row] = torch.tensor([shift + ends[j] for j in mapping], device=hidden.device)
            valid[row] = True
    states = hidden.gather(1, index[:, :, None].expand(-1, -1, hidden.shape[-1]))
    return states * valid[:, None, None].to(states.dtype), valid
