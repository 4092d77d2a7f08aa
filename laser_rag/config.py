"""The LaSER encoder's configuration: one dataclass, saved as ``laser_config.json`` beside the weights.

It describes the input format exactly (chat template or not, the closing suffix, the query and document templates,
EOS, the token budgets), so a checkpoint reloads reading text the way it was trained to. `released_preset` gives the
format the authors trained the released ``Alibaba-NLP/LaSER-Qwen3-*`` checkpoints with.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laser_rag.util import atomic_write

CONFIG_NAME = "laser_config.json"

#: The instruction the query template carries by default (``Instruct: {instruction}\nQuery: {text}``).
DEFAULT_INSTRUCTION = "Given a question, retrieve passages that help answer it"

POOLINGS = ("mean", "last")

#: What the authors append after the chat template's generation prompt: an empty thinking block (Qwen3's format).
THINK_SUFFIX = "<think>\n\n</think>\n\n"


@dataclass
class LaSERConfig:
    """How a LaSER encoder turns text into a vector.

    Every field has a default; a checkpoint saves the config it was trained with and reloads with it.
    """

    #: Where the backbone comes from: a hub id, a local directory, a ``.gguf`` file or ``pkg:<package>/<file>``
    #: for a model file carried by an installed Python package. Empty when the weights sit beside this config.
    base_model: str = ""
    #: A short readable name for collection names; empty = "basic" for K=1, else "laser-k{K}".
    name: str = ""
    #: K, the number of latent thinking steps. K=1 is a plain single pass (last-token pooling).
    num_thinking_steps: int = 3
    #: How the K last-layer states become one vector: "mean" (the paper) or "last" (the final step only).
    pooling: str = "mean"
    #: Wrap every input (queries and documents) in the tokenizer's chat template as one user turn, with the
    #: generation prompt added (the released checkpoints' training format).
    chat_template: bool = False
    #: Text appended after the rendered input (after the generation prompt when ``chat_template`` is on), e.g.
    #: `THINK_SUFFIX`. Truncation never cuts it.
    assistant_suffix: str = ""
    #: Query template; ``{instruction}`` and ``{text}`` are filled in.
    query_template: str = "Instruct: {instruction}\nQuery: {text}"
    #: The task instruction put into the query template (a call can pass another one).
    query_instruction: str = DEFAULT_INSTRUCTION
    #: Document template; documents carry no instruction.
    document_template: str = "{text}"
    #: The explicit view (teacher, and rewrite-then-retrieve): the rendered query followed by a rationale.
    explicit_template: str = "{query}\n{rationale}"
    #: Append the tokenizer's EOS token to every input (the paper's ``[q; EOS]``).
    append_eos: bool = False
    #: Token budget of a document (template included); longer texts are cut (and the cut is reported).
    max_length: int = 512
    #: Token budget of a query; None = ``max_length``.
    query_max_length: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.num_thinking_steps, int) or self.num_thinking_steps < 1:
            raise ValueError(f"num_thinking_steps must be an integer >= 1, got {self.num_thinking_steps!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("max_length", "query_max_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 8):
                raise ValueError(f"{name} must be at least 8 tokens, got {value!r}")
        for name, fields in (
            ("query_template", ("{text}",)),
            ("document_template", ("{text}",)),
            ("explicit_template", ("{query}", "{rationale}")),
        ):
            template = getattr(self, name)
            missing = [f for f in fields if f not in template]
            if missing:
                raise ValueError(f"{name} must contain {', '.join(missing)}: {template!r}")

    @property
    def query_budget(self) -> int:
        """The token budget of a query (``query_max_length``, else ``max_length``)."""
        return self.query_max_length or self.max_length

    def format_query(self, text: str, instruction: str | None = None) -> str:
        """The query template filled in (without the chat wrapper, which needs the tokenizer)."""
        instruction = self.query_instruction if instruction is None else instruction
        return self.query_template.format(instruction=instruction, text=text)

    def format_document(self, text: str) -> str:
        """The document template filled in (without the chat wrapper)."""
        return self.document_template.format(text=text)

    def format_explicit(self, query: str, rationale: str) -> str:
        """The explicit view for a config without the chat template: the templated query, then the rationale."""
        return self.explicit_template.format(query=self.format_query(query), rationale=rationale)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaSERConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LaSER config fields: {unknown}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        return atomic_write(Path(directory) / CONFIG_NAME, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> LaSERConfig:
        return cls.from_dict(json.loads((Path(directory) / CONFIG_NAME).read_text(encoding="utf-8")))


#: The input format of the released checkpoints, as the authors train and evaluate them (ignorejjj/LaSER:
#: ``train_laser_qwen3.sh`` passes ``--add_chat_template``, ``--query_prefix "Instruct: {instruct}\nQuery: {query}"``,
#: ``--passage_prefix ""``, 512-token queries and passages, K=3; ``collator.py`` renders one user turn with
#: ``add_generation_prompt=True`` and appends ``<think>\n\n</think>\n\n``; no EOS is appended; the teacher reads the
#: rendered query immediately followed by the rationale).
RELEASED_PRESET: dict[str, Any] = {
    "num_thinking_steps": 3,
    "pooling": "mean",
    "chat_template": True,
    "assistant_suffix": THINK_SUFFIX,
    "query_template": "Instruct: {instruction}\nQuery: {text}",
    "document_template": "{text}",
    "explicit_template": "{query}{rationale}",
    "append_eos": False,
    "max_length": 512,
    "query_max_length": 512,
}

_RELEASED_NAME = re.compile(r"laser[-_]qwen3[-_](0\.6|4|8)b(?![0-9a-z])", re.IGNORECASE)


def released_preset(source: str | Path) -> dict[str, Any] | None:
    """The released checkpoints' input format if ``source`` is one of them, else None.

    ``source`` is a hub id (``Alibaba-NLP/LaSER-Qwen3-0.6B``, ``-4B``, ``-8B``) or a local copy whose path shows
    the name (``~/models/LaSER-Qwen3-4B``, a hub cache folder ``models--Alibaba-NLP--LaSER-Qwen3-8B/snapshots/…``).
    """
    text = str(source).replace("\\", "/")
    return dict(RELEASED_PRESET) if _RELEASED_NAME.search(text) else None
