"""The OpenAI embeddings API as the service speaks it: a request body becomes an `EmbeddingJob` (or an `ApiError`
with the status and body OpenAI clients expect), vectors become a response body. Pure: no Ray, no torch.

Which template a text gets: the model name ``<name>`` embeds documents, ``<name>:query`` queries; the
``input_type`` field ("query" / "document", as other embedding APIs name it) says the same. Default: documents.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from laser_rag.serving.config import QUERY_SUFFIX, ServeConfig

INPUT_TYPES = ("query", "document")
ENCODING_FORMATS = ("float", "base64")
#: Fields a request may carry: OpenAI's, plus this service's ``input_type``, ``num_thinking_steps``, ``instruction``.
FIELDS = frozenset({"input", "model", "encoding_format", "dimensions", "user", "input_type", "num_thinking_steps",
                    "instruction"})


class ApiError(Exception):
    """A request the service refuses: HTTP ``status`` and OpenAI's error body."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, type, code, param, headers)  # all in args: it pickles across replicas
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ModelInfo:
    """What the ingress knows of the served encoder (the replicas report it)."""

    name: str
    dimension: int
    fingerprint: str
    label: str
    precision: str
    max_length: int
    num_thinking_steps: int | None  # None: a single-pass encoder (no latent steps to choose)

    def models_body(self, config: ServeConfig, created: int) -> dict[str, Any]:
        """``GET /v1/models``: one entry per input type, each carrying the encoder's identity, so a remote encoder
        (`laser_rag.encoders.remote.RemoteEncoder`) records the same fingerprint as the in-process one."""
        limits = {"max_texts": config.max_texts, "max_text_tokens": config.max_text_tokens,
                  "max_request_tokens": config.max_request_tokens, "max_request_bytes": config.max_request_bytes,
                  "max_thinking_steps": config.max_thinking_steps}
        common = {"object": "model", "created": created, "owned_by": "laser-rag", "root": self.name,
                  "dimension": self.dimension, "fingerprint": self.fingerprint, "label": self.label,
                  "precision": self.precision, "max_length": self.max_length,
                  "num_thinking_steps": self.num_thinking_steps, "limits": limits}
        return {"object": "list", "data": [{"id": self.name, "input_type": "document", **common},
                                           {"id": self.name + QUERY_SUFFIX, "input_type": "query", **common}]}


@dataclass(frozen=True)
class EmbeddingJob:
    """One validated request: what to embed and how."""

    request_id: str
    model: str
    texts: tuple[str, ...]
    input_type: str
    encoding_format: str
    num_thinking_steps: int | None
    instruction: str | None

    @property
    def group(self) -> tuple[str, int | None, str | None]:
        """Requests with the same group share one encoder call inside a batch."""
        return self.input_type, self.num_thinking_steps, self.instruction


def parse_request(body: bytes, info: ModelInfo, config: ServeConfig) -> EmbeddingJob:
    """``POST /v1/embeddings`` body -> `EmbeddingJob`; raises `ApiError` (400/404/413) saying what is wrong."""
    payload = _json_object(body, config)
    unknown = sorted(set(payload) - FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown}; accepted: {sorted(FIELDS)}", param=unknown[0])
    input_type = _input_type(payload, info)
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ENCODING_FORMATS:
        raise ApiError(400, f"encoding_format must be one of {list(ENCODING_FORMATS)}, got {encoding!r}",
                       param="encoding_format")
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions != info.dimension:
        raise ApiError(400, f"dimensions={dimensions!r} is not supported: {info.name} is not Matryoshka-trained, its "
                            f"vectors always have {info.dimension} dimensions (leave dimensions out)",
                       param="dimensions", code="unsupported_parameter")
    return EmbeddingJob(request_id=uuid.uuid4().hex[:12], model=payload["model"], texts=_texts(payload, config),
                        input_type=input_type, encoding_format=encoding,
                        num_thinking_steps=_steps(payload, info, config),
                        instruction=_instruction(payload, input_type, config))


def parse_tokenize_request(body: bytes, config: ServeConfig) -> tuple[list[str], bool]:
    """``POST /v1/tokenize`` body (``{"input": str | [str], "rendered": bool}``) -> (texts, rendered)."""
    payload = _json_object(body, config)
    texts = payload.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) or len(texts) > config.max_texts:
        raise ApiError(400, f"input must be a string or a list of at most {config.max_texts} strings", param="input")
    return texts, bool(payload.get("rendered", False))


def _json_object(body: bytes, config: ServeConfig) -> dict:
    if len(body) > config.max_request_bytes:
        raise too_large(len(body), config)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(payload).__name__}")
    return payload


def too_large(size: int, config: ServeConfig) -> ApiError:
    return ApiError(413, f"the body is {size} bytes; at most {config.max_request_bytes} bytes are accepted (send "
                         "fewer or shorter texts per request)", code="request_too_large")


def _input_type(payload: dict, info: ModelInfo) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, f"model is required: {info.name!r} (documents) or {info.name + QUERY_SUFFIX!r} (queries)",
                       param="model")
    if model not in (info.name, info.name + QUERY_SUFFIX):
        raise ApiError(404, f"the model {model!r} does not exist here: this service serves {info.name!r} (documents) "
                            f"and {info.name + QUERY_SUFFIX!r} (queries)", param="model", code="model_not_found")
    by_name = "query" if model.endswith(QUERY_SUFFIX) else None
    given = payload.get("input_type")
    if given is not None and given not in INPUT_TYPES:
        raise ApiError(400, f"input_type must be one of {list(INPUT_TYPES)}, got {given!r}", param="input_type")
    if by_name and given == "document":
        raise ApiError(400, f"the model {model!r} embeds queries but input_type is 'document'", param="input_type")
    return by_name or given or "document"


def _texts(payload: dict, config: ServeConfig) -> tuple[str, ...]:
    if "input" not in payload:
        raise ApiError(400, "input is required: a string or a list of strings", param="input")
    texts = payload["input"]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list):
        raise ApiError(400, f"input must be a string or a list of strings, got {type(texts).__name__}", param="input")
    if not texts:
        raise ApiError(400, "input is an empty list: send at least one text", param="input")
    if len(texts) > config.max_texts:
        raise ApiError(400, f"input has {len(texts)} texts; at most {config.max_texts} per request",
                       param="input", code="too_many_inputs")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            kind = "token ids" if isinstance(text, (int, list)) else type(text).__name__
            raise ApiError(400, f"input[{index}] is {kind}, not a string: this service takes text only",
                           param="input")
        if not text.strip():
            raise ApiError(400, f"input[{index}] is empty", param="input")
    return tuple(texts)


def _steps(payload: dict, info: ModelInfo, config: ServeConfig) -> int | None:
    steps = payload.get("num_thinking_steps")
    if steps is None:
        return None
    if info.num_thinking_steps is None:
        raise ApiError(400, f"{info.name} is a single-pass encoder: it takes no num_thinking_steps",
                       param="num_thinking_steps")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= config.max_thinking_steps:
        raise ApiError(400, f"num_thinking_steps must be an integer in [1, {config.max_thinking_steps}], got "
                            f"{steps!r}", param="num_thinking_steps")
    return None if steps == info.num_thinking_steps else steps


def _instruction(payload: dict, input_type: str, config: ServeConfig) -> str | None:
    instruction = payload.get("instruction")
    if instruction is None:
        return None
    if input_type != "query":
        raise ApiError(400, "instruction applies to queries only (model '<name>:query' or input_type 'query')",
                       param="instruction")
    if not isinstance(instruction, str) or len(instruction) > config.max_instruction_chars:
        raise ApiError(400, f"instruction must be a string of at most {config.max_instruction_chars} characters",
                       param="instruction")
    return instruction


def check_tokens(counts: list[int], config: ServeConfig) -> None:
    """Refuse (400) a text or a request with more tokens than the limits."""
    for index, count in enumerate(counts):
        if count > config.max_text_tokens:
            raise ApiError(400, f"input[{index}] has {count} tokens; at most {config.max_text_tokens} per text",
                           param="input", code="context_length_exceeded")
    if sum(counts) > config.max_request_tokens:
        raise ApiError(400, f"the request has {sum(counts)} tokens; at most {config.max_request_tokens} per request",
                       param="input", code="context_length_exceeded")


def response_body(job: EmbeddingJob, vectors: np.ndarray, prompt_tokens: int) -> dict[str, Any]:
    """OpenAI's embeddings response; ``base64`` is the little-endian float32 bytes, as OpenAI's clients decode it."""
    vectors = np.asarray(vectors, dtype="<f4")
    if job.encoding_format == "base64":
        data = [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors]
    else:
        data = vectors.tolist()
    return {"object": "list", "model": job.model,
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(data)],
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}
