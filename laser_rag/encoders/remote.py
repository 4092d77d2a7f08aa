"""`RemoteEncoder`: the encoder of a running ``laser-rag serve`` (`laser_rag.serving`), so indexers and retrievers
share one model over HTTP. It carries the served model's identity (``GET /v1/models``: fingerprint, label,
dimension, precision), so a collection it fills is the collection the in-process encoder fills, and the encoder
guard of a collection still compares fingerprints. Standard library only (no torch).

Example::

    from laser_rag.encoders.remote import RemoteEncoder

    encoder = RemoteEncoder("http://127.0.0.1:8000")     # API key: api_key= or $LASER_RAG_EMBED_API_KEY
    vectors = encoder.encode_documents(["Rayleigh scattering favours short wavelengths."])
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from laser_rag.encoders.base import BaseEncoder
from laser_rag.errors import EmbeddingServiceError
from laser_rag.serving.config import QUERY_SUFFIX

#: The environment variable `RemoteEncoder` reads its API key from when none is given.
API_KEY_ENV = "LASER_RAG_EMBED_API_KEY"


class RemoteEncoder(BaseEncoder):
    """Embeds through an OpenAI-compatible ``laser-rag serve`` at ``url``; ``model`` picks a served model (default:
    the only one). Queries go to ``<model>:query``, documents to ``<model>``."""

    def __init__(self, url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout: float = 300.0) -> None:
        self._url = url.rstrip("/").removesuffix("/v1")
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._timeout = timeout
        served = [m for m in self._request("GET", "/v1/models")["data"]
                  if m.get("input_type") == "document" and "fingerprint" in m]
        chosen = [m for m in served if model is None or m["id"] == model]
        if len(chosen) != 1:
            names = [m["id"] for m in served]
            raise EmbeddingServiceError(f"{self._url} serves {names}: pass model= one of them" if chosen or model is None
                                        else f"{self._url} does not serve {model!r}; it serves {names}")
        self._model = chosen[0]
        self._tokenizer = _RemoteTokenizer(self)

    # ------------------------------------------------------------------ identity (the served model's)
    @property
    def url(self) -> str:
        return self._url

    @property
    def model(self) -> str:
        return self._model["id"]

    @property
    def dimension(self) -> int:
        return int(self._model["dimension"])

    @property
    def fingerprint(self) -> str:
        return self._model["fingerprint"]

    @property
    def precision(self) -> str:
        return self._model["precision"]

    @property
    def label(self) -> str:
        return self._model["label"]

    @property
    def max_length(self) -> int:
        return int(self._model["max_length"])

    @property
    def tokenizer(self) -> Any:
        """A callable tokenizer (``tokenizer(text, add_special_tokens=False)["input_ids"]``) that asks the service,
        for token-aware chunking in the served model's tokens."""
        return self._tokenizer

    def __repr__(self) -> str:
        return f"RemoteEncoder(url={self._url!r}, model={self.model!r}, fingerprint={self.fingerprint[:12]})"

    # ------------------------------------------------------------------ text and vectors
    def count_tokens(self, text: str) -> int:
        return self._request("POST", "/v1/tokenize", {"input": [text], "rendered": True})["data"][0]["tokens"]

    def _encode_queries(self, texts, *, instruction, batch_size, show_progress_bar) -> np.ndarray:
        extra = {} if instruction is None else {"instruction": instruction}
        return self._embed(texts, self.model + QUERY_SUFFIX, extra, batch_size)

    def _encode_documents(self, texts, *, batch_size, show_progress_bar) -> np.ndarray:
        return self._embed(texts, self.model, {}, batch_size)

    def _encode_explicit(self, queries, rationales, *, batch_size) -> np.ndarray:
        raise EmbeddingServiceError("the embeddings service embeds queries and documents only; a query read with "
                                    "its rationale (explicit) needs the encoder in-process")

    def _embed(self, texts: list[str], model: str, extra: dict, batch_size: int) -> np.ndarray:
        """``batch_size`` texts per request (at most the service's ``max_texts``)."""
        step = min(batch_size, int(self._model["limits"]["max_texts"]))
        out = []
        for start in range(0, len(texts), step):
            body = {"model": model, "input": texts[start:start + step], "encoding_format": "base64", **extra}
            data = sorted(self._request("POST", "/v1/embeddings", body)["data"], key=lambda item: item["index"])
            out += [np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data]
        return np.stack(out).astype(np.float32)

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise EmbeddingServiceError(f"{self._url}{path} answered {exc.code}: {_message(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EmbeddingServiceError(f"cannot reach the embeddings service at {self._url} ({exc}); start it with "
                                        "`laser-rag serve`") from None


class _RemoteTokenizer:
    """The slice of a Hugging Face tokenizer that chunking uses, answered by the service."""

    def __init__(self, encoder: RemoteEncoder) -> None:
        self._encoder = encoder

    def __call__(self, text: str | list[str], add_special_tokens: bool = False, **_: Any) -> dict:
        if add_special_tokens:
            raise ValueError("the remote tokenizer gives a text's own tokens only (add_special_tokens=False)")
        texts = [text] if isinstance(text, str) else list(text)
        ids = [item["input_ids"] for item in self._encoder._request("POST", "/v1/tokenize", {"input": texts})["data"]]
        return {"input_ids": ids[0] if isinstance(text, str) else ids}


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return str(error.reason)
