"""`PromptFormat`: the one place an input becomes what the model reads, at inference and in training alike.

A `LaSERConfig` (templates, chat wrapper, closing suffix, EOS) and a tokenizer turn a query, a document or the
explicit view (a query followed by its rationale) into a prompt, and a prompt into token ids cut to a budget by
cutting the user's text, never the template around it. `LaSEREncoder` reads every input through it, and training
builds the teacher's explicit view with it, so the student and the teacher always read the same wrapper.

Example::

    fmt = PromptFormat(LaSERConfig(), tokenizer)
    rendered = fmt.render("why is the sky blue?", "explicit", rationale="Short wavelengths scatter more.")
    (tokens,) = fmt.tokenize([rendered], budget=256)
    tokens.ids, tokens.offsets      # ids (EOS appended if the config says so), each token's span in the prompt
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from laser_rag.config import LaSERConfig

#: The kinds of input: a query (with its instruction), a document, the explicit view (query + rationale).
KINDS = ("query", "document", "explicit")
_SLOT = "\x00laser-rag-text\x00"  # stands for the text while a template is rendered


@dataclass(frozen=True)
class Rendered:
    """One input as the model reads it: the prompt, and the span ``[start, end)`` of the part truncation may cut
    (the user's text; the template around it is never cut). An explicit input also says where its rationale
    begins in the prompt (``rationale_start``; None for the other kinds)."""

    prompt: str
    start: int
    end: int
    rationale_start: int | None = None


@dataclass(frozen=True)
class Tokens:
    """One rendered input, tokenised and cut to its budget.

    ``ids``: the token ids (EOS appended when asked). ``offsets``: each kept token's character span in the prompt
    (EOS excluded; None with a slow tokenizer). ``cut``: whether the text was truncated. ``text_end``: where the
    text that survived the cut ends in the prompt (the rendered text's end when nothing was cut).
    """

    ids: list[int]
    offsets: list[tuple[int, int]] | None
    cut: bool
    text_end: int


class PromptFormat:
    """The input format of ``config`` read with ``tokenizer``: `render` an input, then `tokenize` it."""

    def __init__(self, config: LaSERConfig, tokenizer) -> None:
        if config.append_eos and tokenizer.eos_token_id is None:
            raise ValueError("append_eos is set but the tokenizer has no EOS token")
        if config.chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_template is set but the tokenizer has no chat template; load with "
                             "chat_template=False or use a tokenizer that has one")
        self.config = config
        self.tokenizer = tokenizer
        self._wrapper: tuple[str, str] | None = None

    @property
    def wrapper(self) -> tuple[str, str]:
        """What comes before and after an input's templated text: the chat template's user turn and generation
        prompt (when ``chat_template`` is on), then ``assistant_suffix``. Rendered once, with a placeholder."""
        if self._wrapper is None:
            if self.config.chat_template:
                rendered = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": _SLOT}], tokenize=False, add_generation_prompt=True)
                before, after = _split(rendered, "the tokenizer's chat template")
            else:
                before, after = "", ""
            self._wrapper = (before, after + self.config.assistant_suffix)
        return self._wrapper

    def render(self, text: str, kind: str = "document", *, instruction: str | None = None,
               rationale: str | None = None) -> Rendered:
        """``text`` as a "query", "document" or "explicit" input (``text`` is the query then, followed by its
        ``rationale``): the template, then the chat wrapper and the closing suffix. The explicit view is the
        explicit template around the whole rendered query (wrapper included) and the rationale."""
        c = self.config
        if kind == "explicit":
            if rationale is None:
                raise ValueError("an explicit input needs a rationale")
            query = self.render(text, "query", instruction=instruction)
            head, tail = _split(c.explicit_template.format(query=query.prompt, rationale=_SLOT), "explicit_template")
            # the rationale is cut first; only a query too long on its own loses its end (and its closing part)
            start = head.index(query.prompt) + query.start
            return Rendered(head + rationale + tail, start, len(head) + len(rationale), rationale_start=len(head))
        if kind == "query":
            inner = c.format_query(_SLOT, instruction)
        elif kind == "document":
            inner = c.document_template.format(text=_SLOT)
        else:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        head, tail = _split(inner, f"{kind}_template")
        before, after = self.wrapper
        head, tail = before + head, tail + after
        return Rendered(head + text + tail, len(head), len(head) + len(text))

    def tokenize(self, rendered: Sequence[Rendered], budget: int | None, *,
                 append_eos: bool | None = None) -> list[Tokens]:
        """Token ids of rendered inputs, each cut to ``budget`` tokens (None: not cut) by cutting the end of its
        text, never the template; EOS appended when ``append_eos`` (default: the config's) says so, inside the
        budget. The chat template writes its own special tokens, so none are added on top of it."""
        tokenizer = self.tokenizer
        eos = [tokenizer.eos_token_id] if (self.config.append_eos if append_eos is None else append_eos) else []
        fast = getattr(tokenizer, "is_fast", False)
        encoded = tokenizer([r.prompt for r in rendered], add_special_tokens=not self.config.chat_template,
                            return_attention_mask=False, return_offsets_mapping=fast,
                            return_special_tokens_mask=fast, verbose=False)
        out = []
        for row, r in enumerate(rendered):
            ids = list(encoded["input_ids"][row])
            offsets = [tuple(span) for span in encoded["offset_mapping"][row]] if fast else None
            cut, text_end = False, r.end
            if budget is not None and len(ids) > budget - len(eos):
                if offsets is None:
                    raise ValueError("truncating inside a template needs a fast tokenizer (offsets)")
                stop, resume = _cut_text(offsets, encoded["special_tokens_mask"][row], r, budget - len(eos))
                ids, offsets = ids[:stop] + ids[resume:], offsets[:stop] + offsets[resume:]
                cut, text_end = True, offsets[stop - 1][1]
            out.append(Tokens(ids + eos, offsets, cut, text_end))
        return out


def _split(rendered: str, what: str) -> tuple[str, str]:
    """A template rendered with the placeholder -> (what comes before the text, what comes after)."""
    parts = rendered.split(_SLOT)
    if len(parts) != 2:
        raise ValueError(f"{what} must place the text exactly once (placed {len(parts) - 1} times)")
    return parts[0], parts[1]


def _cut_text(offsets, special, rendered: Rendered, room: int) -> tuple[int, int]:
    """Where to cut the end of the text's tokens so the whole input fits in ``room``: keep tokens ``[:stop]`` and
    ``[resume:]``, so the template's tokens before and after the text stay whole."""
    inside = [i for i, ((a, b), s) in enumerate(zip(offsets, special))
              if not s and a < rendered.end and b > rendered.start]
    wrapper = len(offsets) - len(inside)
    keep = room - wrapper
    if not inside or keep < 1:
        raise ValueError(f"a budget of {room} tokens leaves no room for the text: the template alone takes "
                         f"{wrapper} tokens (raise max_length / query_max_length)")
    return inside[0] + keep, inside[-1] + 1
