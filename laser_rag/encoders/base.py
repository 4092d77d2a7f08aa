"""`BaseEncoder`: what a collection, a retriever and the framework adapters need from an encoder.

numpy only (no torch import), so the store and the adapters can type against it cheaply. A concrete encoder
implements the identity properties, `count_tokens` and three ``_encode_*`` methods on already-validated lists;
the public ``encode_*`` methods here validate input once, for every encoder.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from laser_rag import _checks
from laser_rag.errors import InvalidInputError, InvalidInputTypeError
from laser_rag.thoughts import DEFAULT_TOP_K, Thoughts, require_latent_steps

#: The kinds of text `BaseEncoder.thoughts` reads.
THOUGHT_KINDS = ("query", "document")


class BaseEncoder(abc.ABC):
    """Turns queries and documents into float32, unit-length vectors (cosine similarity = dot product).

    Example::

        q = encoder.encode_queries(["why is the sky blue?"])                  # [1, dim]
        d = encoder.encode_documents([encoder.document_text("Sky", "Rayleigh scattering ...")])
        scores = q @ d.T
    """

    # ------------------------------------------------------------------ identity
    @property
    @abc.abstractmethod
    def dimension(self) -> int:
        """Length of a vector."""

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A stable id of everything that changes the vectors (weights, templates, max lengths, ...), not the
        dtype. Vectors of encoders with different fingerprints never share a collection."""

    @property
    def precision(self) -> str:
        """The dtype the vectors were computed in ("float32", "bfloat16", ...), recorded beside a collection."""
        return "float32"

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """A short readable name for collection names ("laser-k3", "basic", "all-minilm-l6-v2")."""

    @property
    @abc.abstractmethod
    def max_length(self) -> int:
        """Token budget of one document as the encoder reads it (template included)."""

    @property
    @abc.abstractmethod
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (for token-aware chunking)."""

    #: What `laser_rag.encoders.load_encoder` loaded this encoder from (None: built another way); a Ray worker
    #: loads the same model from it (`laser_rag.ray_index`).
    source: str | None = None

    # ------------------------------------------------------------------ capabilities
    #: Whether the encoder thinks K latent steps that can change (`with_thinking_steps`, and
    #: ``encode_queries(..., num_thinking_steps=K)``); a single-pass model has none.
    supports_thinking_steps: bool = False

    def with_thinking_steps(self, num_thinking_steps: int) -> BaseEncoder:
        """A view on the same weights thinking ``num_thinking_steps`` latent steps. ValueError for an encoder
        without latent steps (`supports_thinking_steps` False)."""
        raise InvalidInputError(f"num_thinking_steps applies to LaSER encoders only (those with latent steps): "
                         f"{self.label!r} is a single-pass model")

    # ------------------------------------------------------------------ text
    def document_text(self, title: str, text: str) -> str:
        """THE one way a document becomes encoder input: its title on the first line (when it has one), then its
        text (`laser_rag.corpus.document_text`). Every indexing path (the store, LlamaIndex, LangChain) goes
        through here."""
        from laser_rag.corpus import document_text

        return document_text(title, text)

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` occupies as a document (template included, before any truncation)."""

    # ------------------------------------------------------------------ encoding
    def encode_queries(
        self,
        texts: Sequence[str] | str,
        *,
        instruction: str | None = None,
        batch_size: int = 16,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed queries: ``[n, dim]`` float32, unit length (a str gives one ``[dim]`` vector).

        ``instruction`` replaces the encoder's task instruction for this call.
        """
        single, items = _text_list(texts, "query")
        instruction = _checks.optional_text(instruction, "instruction")
        _checks.positive_int(batch_size, "batch_size")
        if not items:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = self._encode_queries(items, instruction=instruction, batch_size=batch_size,
                                       show_progress_bar=show_progress_bar)
        return vectors[0] if single else vectors

    def encode_documents(
        self, texts: Sequence[str] | str, *, batch_size: int = 16, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Embed documents (pass `document_text` output): ``[n, dim]`` float32, unit length."""
        single, items = _text_list(texts, "document")
        _checks.positive_int(batch_size, "batch_size")
        if not items:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = self._encode_documents(items, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return vectors[0] if single else vectors

    def encode_explicit(
        self, queries: Sequence[str] | str, rationales: Sequence[str] | str, *, batch_size: int = 16
    ) -> np.ndarray:
        """Embed each query read together with its rationale in one pass (rewrite-then-retrieve; LaSER's teacher)."""
        single, queries = _text_list(queries, "query")
        _, rationales = _text_list(rationales, "rationale")
        if len(rationales) != len(queries):
            raise InvalidInputError(f"got {len(queries)} queries but {len(rationales)} rationales")
        _checks.positive_int(batch_size, "batch_size")
        if not queries:
            return np.empty((0, self.dimension), dtype=np.float32)
        vectors = self._encode_explicit(queries, rationales, batch_size=batch_size)
        return vectors[0] if single else vectors

    def thoughts(
        self,
        texts: Sequence[str] | str,
        kind: str = "query",
        *,
        top_k: int = DEFAULT_TOP_K,
        instruction: str | None = None,
        num_thinking_steps: int | None = None,
        batch_size: int = 16,
    ) -> list[Thoughts] | Thoughts:
        """What the encoder thought while embedding ``texts`` as ``kind`` ("query" or "document") inputs: per text, a
        `laser_rag.thoughts.Thoughts` with the ``top_k`` tokens of each of the K latent steps, from the very rollout
        that gives the vector (``encode_queries`` / ``encode_documents`` of the same batch give the same vectors; a
        str gives one `Thoughts`). ``instruction`` replaces the query instruction (queries only);
        ``num_thinking_steps`` overrides K for this call. InvalidInputError for an encoder without latent steps
        (`supports_thinking_steps` False)."""
        require_latent_steps(self)
        if kind not in THOUGHT_KINDS:
            raise InvalidInputError(f"kind must be one of {', '.join(THOUGHT_KINDS)}, got {kind!r}")
        single, items = _text_list(texts, kind)
        _checks.positive_int(top_k, "top_k")
        instruction = _checks.optional_text(instruction, "instruction")
        if instruction is not None and kind != "query":
            raise InvalidInputError("an instruction applies to queries only, not to documents")
        _checks.positive_int(batch_size, "batch_size")
        if not items:
            return []
        encoder = self if num_thinking_steps is None else self.with_thinking_steps(num_thinking_steps)
        found = encoder._thoughts(items, kind, top_k=top_k, instruction=instruction, batch_size=batch_size)
        return found[0] if single else found

    def _thoughts(self, texts: list[str], kind: str, *, top_k: int, instruction: str | None,
                  batch_size: int) -> list[Thoughts]:
        """Encoders with latent steps implement this (on validated input)."""
        raise NotImplementedError

    @abc.abstractmethod
    def _encode_queries(self, texts: list[str], *, instruction: str | None, batch_size: int,
                        show_progress_bar: bool | None) -> np.ndarray: ...

    @abc.abstractmethod
    def _encode_documents(self, texts: list[str], *, batch_size: int, show_progress_bar: bool | None) -> np.ndarray:
        ...

    @abc.abstractmethod
    def _encode_explicit(self, queries: list[str], rationales: list[str], *, batch_size: int) -> np.ndarray: ...


def _text_list(texts: Sequence[str] | str, what: str) -> tuple[bool, list[str]]:
    """(whether one str was given, the texts as a list); rejects non-str, empty and non-Unicode texts (a lone
    surrogate, which no tokenizer reads), naming the index (`laser_rag.errors.InvalidInputError`)."""
    single = isinstance(texts, str)
    if single:
        texts = [texts]
    elif isinstance(texts, bytes) or not isinstance(texts, Sequence):
        raise InvalidInputTypeError(f"{what}s must be a string or a list of strings, got {type(texts).__name__}")
    return single, [_checks.text(text, f"{what} at index {index}") for index, text in enumerate(texts)]

