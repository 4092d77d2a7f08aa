"""`ServeConfig`: every setting of the embeddings service, declared once (the ``laser-rag serve`` options are its
fields). Light: no Ray, no torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from laser_rag.errors import ServeConfigError


def _help(text: str, **more) -> dict:
    return {"help": text, **more}


@dataclass(frozen=True)
class ServeConfig:
    """How the service runs: the model, where it listens, how many replicas, how requests are batched and bounded."""

    model: Optional[str] = field(default=None, metadata=_help(
        "Encoder to serve: a LaSER checkpoint, builtin:laser / builtin:basic, a hub id or a local model (default: "
        "the embedded LaSER model)."))
    model_name: Optional[str] = field(default=None, metadata=_help(
        "Name clients send as `model` (default: the encoder's label); `<name>:query` embeds queries."))
    host: str = field(default="127.0.0.1", metadata=_help("Address to bind (127.0.0.1 unless told)."))
    port: int = field(default=8000, metadata=_help("HTTP port.", min=1, max=65535))
    replicas: int = field(default=1, metadata=_help("Model replicas (each loads its own copy).", min=1))
    gpus_per_replica: float = field(default=0.0, metadata=_help("GPUs per replica (0: CPU).", min=0))
    cpus_per_replica: float = field(default=1.0, metadata=_help("CPUs Ray reserves per replica.", min=0))
    api_key: Optional[str] = field(default=None, metadata=_help(
        "Require `Authorization: Bearer KEY` on every route but /health.", envvar="LASER_RAG_SERVE_API_KEY"))
    dtype: Optional[str] = field(default=None, metadata=_help(
        "float32 / bfloat16 / float16 (default: $LASER_RAG_DTYPE, else the encoder's choice for the device)."))
    max_batch_size: int = field(default=32, metadata=_help(
        "Requests batched into one encoder call (1: one request at a time).", min=1))
    batch_wait_timeout_s: float = field(default=0.01, metadata=_help(
        "How long the first request of a batch waits for others.", min=0))
    encode_batch_size: int = field(default=16, metadata=_help(
        "Texts per forward pass inside a batch (length-bucketed as the in-process encoder does).", min=1))
    max_queued_requests: int = field(default=64, metadata=_help(
        "Requests waiting for a replica beyond those it holds; more get 503 with Retry-After.", min=1))
    retry_after_s: int = field(default=1, metadata=_help("Retry-After of a 503 (seconds).", min=1))
    max_texts: int = field(default=256, metadata=_help("Texts per request (more: 400).", min=1))
    max_text_tokens: int = field(default=8192, metadata=_help(
        "Tokens of one text before truncation (more: 400); texts past the encoder's max_length are cut as "
        "in-process.", min=1))
    max_request_tokens: int = field(default=65536, metadata=_help("Tokens of all texts of a request (more: 400).",
                                                                  min=1))
    max_request_bytes: int = field(default=2 * 1024 * 1024, metadata=_help("Body size (more: 413).", min=1))
    max_thinking_steps: int = field(default=16, metadata=_help(
        "Largest per-request num_thinking_steps.", min=1))
    max_instruction_chars: int = field(default=1000, metadata=_help("Longest per-request query instruction.",
                                                                    min=1))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            low = f.metadata.get("min")
            high = f.metadata.get("max")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    (low is not None and value < low) or (high is not None and value > high)):
                raise ServeConfigError(f"{f.name} must be in [{low}, {high if high is not None else 'inf'}], "
                                       f"got {value!r}")
        if self.model_name is not None and (not self.model_name.strip() or self.model_name.endswith(QUERY_SUFFIX)):
            raise ServeConfigError(f"model_name must be non-empty and not end with {QUERY_SUFFIX!r}, got "
                                   f"{self.model_name!r}")

    @property
    def url(self) -> str:
        """Where clients reach the service (``base_url`` of an OpenAI client is this plus ``/v1``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"


#: A served model's name plus this suffix embeds queries (``laser-smollm2-135m:query``).
QUERY_SUFFIX = ":query"
