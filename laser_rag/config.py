"""The LaSER encoder's configuration: one dataclass, saved as ``laser_config.json`` beside the weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_NAME = "laser_config.json"

#: The instruction the paper's query template carries (``Instruct: {instruction}\nQuery: {text}``).
DEFAULT_INSTRUCTION = "Given a question, retrieve passages that help answer it"

POOLINGS = ("mean", "last")


@dataclass
class LaSERConfig:
    """How a LaSER encoder turns text into a vector.

    Every field has a default; a checkpoint saves the config it was trained with and reloads with it.
    """

    #: Where the backbone comes from: a hub id, a local directory, a ``.gguf`` file or ``pkg:<package>/<file>``
    #: for a model file carried by an installed Python package. Empty when the weights sit beside this config.
    base_model: str = ""
    #: K, the number of latent thinking steps. K=1 is a plain single pass (last-token pooling).
    num_thinking_steps: int = 3
    #: How the K last-layer states become one vector: "mean" (the paper) or "last" (the final step only).
    pooling: str = "mean"
    #: Query template; ``{instruction}`` and ``{text}`` are filled in.
    query_template: str = "Instruct: {instruction}\nQuery: {text}"
    #: The task instruction put into the query template.
    query_instruction: str = DEFAULT_INSTRUCTION
    #: Document template; documents carry no instruction.
    document_template: str = "{text}"
    #: The explicit view (teacher, and rewrite-then-retrieve): the templated query followed by a rationale.
    explicit_template: str = "{query}\n{rationale}"
    #: Append the tokenizer's EOS token to every input (the paper's ``[q; EOS]``).
    append_eos: bool = False
    #: Inputs longer than this many tokens are truncated (and the truncation is reported).
    max_length: int = 512

    def __post_init__(self) -> None:
        if not isinstance(self.num_thinking_steps, int) or self.num_thinking_steps < 1:
            raise ValueError(f"num_thinking_steps must be an integer >= 1, got {self.num_thinking_steps!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {self.max_length}")
        for name, fields in (
            ("query_template", ("{text}",)),
            ("document_template", ("{text}",)),
            ("explicit_template", ("{query}", "{rationale}")),
        ):
            template = getattr(self, name)
            missing = [f for f in fields if f not in template]
            if missing:
                raise ValueError(f"{name} must contain {', '.join(missing)}: {template!r}")

    def format_query(self, text: str) -> str:
        return self.query_template.format(instruction=self.query_instruction, text=text)

    def format_document(self, text: str) -> str:
        return self.document_template.format(text=text)

    def format_explicit(self, query: str, rationale: str) -> str:
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
        path = Path(directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> LaSERConfig:
        return cls.from_dict(json.loads((Path(directory) / CONFIG_NAME).read_text(encoding="utf-8")))
