"""LatentRAG's configuration: one dataclass, saved as ``latentrag_config.json`` beside the weights.

It fixes everything the weights depend on (the LLM and retriever they were trained on, the number of latent thought
and subquery tokens, the projectors' shape) and the loop's limits (top-k, the retrieval cap, the answer budget).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laser_rag.util import atomic_write

CONFIG_NAME = "latentrag_config.json"

#: The paper's Prompt D.1, shortened to one line: the question, then the latent steps and the retrieved documents.
PROMPT = "Answer the following question by reasoning step by step and retrieving necessary information at each step: "
#: Prompts D.2/D.3: what the decoder reads before a block's projected latents.
DECODE_THOUGHT_PROMPT = "Decode the thought based on the latent representation: "
DECODE_QUERY_PROMPT = "Decode the subquery based on the latent representation: "


@dataclass
class LatentRAGConfig:
    """What a LatentRAG checkpoint is and how its loop runs (every field has a default)."""

    #: The LLM: a hub id, a local directory, a ``.gguf`` file or ``pkg:<package>/<file>``; "" = the project default.
    base_model: str = ""
    #: The pretrained retriever the subquery latents are projected into (a sentence-transformers model); the frozen
    #: reference copy of it encodes the documents, so a LatentRAG index is that model's collection.
    retriever: str = "all-minilm-l6-v2"
    #: m, latent thought tokens per step (the paper: 4).
    num_thought_tokens: int = 4
    #: n, latent subquery tokens per step (the paper: 16).
    num_query_tokens: int = 16
    #: Documents per retrieval, re-injected as text (the paper: 3).
    top_k: int = 3
    #: At most this many retrievals (the paper: 4); at the cap the agent answers.
    max_retrievals: int = 4
    #: Longest answer, in tokens (greedy; stops at EOS or a newline).
    max_answer_tokens: int = 32
    #: Longest decoded thought / subquery (latent decoding only).
    max_decode_tokens: int = 48
    #: Each retrieved document is cut to this many characters in the LLM's history (train and inference alike).
    document_chars: int = 400
    #: Projector (bidirectional self-attention + FFN): attention heads and the FFN's width factor.
    projector_heads: int = 8
    projector_ffn_factor: int = 2
    #: Softmax temperature of the retrieval KL (the paper calibrates it so that the top-3 hold ~0.5; 0.03 there).
    beta: float = 0.03
    #: A readable name (collections, the app).
    name: str = "latentrag"

    def __post_init__(self) -> None:
        for field in ("num_thought_tokens", "num_query_tokens", "top_k", "max_retrievals", "max_answer_tokens",
                      "max_decode_tokens", "document_chars", "projector_heads", "projector_ffn_factor"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LatentRAGConfig.{field} must be a positive integer, got {value!r}")
        if not self.beta > 0:
            raise ValueError(f"LatentRAGConfig.beta must be positive, got {self.beta!r}")

    @property
    def num_special(self) -> int:
        """Rows of the special-token table: m thought tokens, n subquery tokens, then the actions."""
        return self.num_thought_tokens + self.num_query_tokens + len(ACTIONS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentRAGConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LatentRAG config fields: {unknown}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        return atomic_write(Path(directory) / CONFIG_NAME, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> LatentRAGConfig:
        return cls.from_dict(json.loads((Path(directory) / CONFIG_NAME).read_text(encoding="utf-8")))


#: The two actions the LM head chooses between at the last thought token (`<query>` first).
ACTIONS = ("query", "answer")
QUERY, ANSWER = 0, 1
