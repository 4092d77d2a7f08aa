"""The service on Ray Serve: `Gateway`, the FastAPI ingress (auth, size limits, OpenAI-shaped errors, 503 with
Retry-After when the queue is full), in front of `EmbeddingModel` replicas (the encoder, with ``@serve.batch``
dynamic batching across concurrent requests).

Imports Ray: only `laser_rag.serving.start` and ``laser-rag serve`` load this module. No ``from __future__ import
annotations``: FastAPI reads the routes' annotations at runtime.
"""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry; read when Ray is imported

import asyncio  # noqa: E402
import copy  # noqa: E402
import hmac  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.exceptions import BackPressureError  # noqa: E402
from ray.serve.handle import DeploymentHandle  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

from laser_rag.serving.config import ServeConfig  # noqa: E402
from laser_rag.serving.protocol import (  # noqa: E402
    ApiError,
    EmbeddingJob,
    ModelInfo,
    check_tokens,
    parse_request,
    parse_tokenize_request,
    response_body,
    too_large,
)

logger = logging.getLogger("ray.serve")  # Serve writes this logger's records to the replica logs


@serve.deployment
class EmbeddingModel:
    """One replica: the encoder. Requests wait up to ``batch_wait_timeout_s`` for others; a batch's texts go to the
    encoder's own ``encode_*`` (length-bucketed, ``encode_batch_size`` per forward pass), one group per input type,
    K and instruction, so a vector does not depend on the batch it was served in."""

    def __init__(self, config: ServeConfig) -> None:
        if config.dtype:
            os.environ["LASER_RAG_DTYPE"] = config.dtype  # this replica's own process
        from laser_rag import runtime
        from laser_rag.encoders import LaSEREncoder, load_encoder

        self._config = config
        self._encoder = load_encoder(config.model)
        # a fast tokenizer is not safe to share across threads: the event loop counts tokens with its own copy
        self._counter = copy.deepcopy(self._encoder.tokenizer)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="laser-rag-encoder")
        self._batched.set_max_batch_size(config.max_batch_size)
        self._batched.set_batch_wait_timeout_s(config.batch_wait_timeout_s)
        encoder = self._encoder
        self._info = ModelInfo(
            name=config.model_name or encoder.label, dimension=encoder.dimension, fingerprint=encoder.fingerprint,
            label=encoder.label, precision=encoder.precision, max_length=encoder.max_length,
            num_thinking_steps=encoder.num_thinking_steps if isinstance(encoder, LaSEREncoder) else None)
        self._runtime = runtime.runtime_summary()
        logger.info("laser-rag: serving %r (%s), %s", self._info.name, encoder.fingerprint, self._runtime)

    def info(self) -> ModelInfo:
        return self._info

    def runtime(self) -> str:
        """Device, dtype and torch threads of this replica (`laser_rag.runtime.runtime_summary`)."""
        return self._runtime

    async def embed(self, job: EmbeddingJob) -> dict:
        """Vectors of one request, or the `ApiError` that refuses it (returned, so one bad request never fails a
        batch)."""
        counts = self._count(job.texts)
        try:
            check_tokens(counts, self._config)
        except ApiError as error:
            return {"error": error}
        start = time.perf_counter()
        vectors, timing = await self._batched(job)
        waited = (time.perf_counter() - start) * 1000 - timing["encode_ms"]
        return {"vectors": vectors, "prompt_tokens": sum(counts), "timing": {**timing, "wait_ms": waited}}

    async def tokenize(self, texts: list[str], rendered: bool) -> list[int] | list[list[int]]:
        """``rendered``: each text's token count as a document (template included, `BaseEncoder.count_tokens`);
        else each text's token ids alone (no special tokens), for token-aware chunking on the client."""
        if rendered:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._worker, lambda: [self._encoder.count_tokens(t) for t in texts])
        return self._ids(texts)

    def _ids(self, texts) -> list[list[int]]:
        return self._counter(list(texts), add_special_tokens=False, return_attention_mask=False,
                             verbose=False)["input_ids"]

    def _count(self, texts) -> list[int]:
        return [len(ids) for ids in self._ids(texts)]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)  # the config's values are set in __init__
    async def _batched(self, jobs: list[EmbeddingJob]) -> list[tuple[np.ndarray, dict]]:
        start = time.perf_counter()
        groups: dict[tuple, list[int]] = {}
        for index, job in enumerate(jobs):
            groups.setdefault(job.group, []).append(index)
        out: list[np.ndarray | None] = [None] * len(jobs)
        loop = asyncio.get_running_loop()
        for (input_type, steps, instruction), members in groups.items():
            texts = [text for index in members for text in jobs[index].texts]
            vectors = await loop.run_in_executor(self._worker, self._encode, input_type, steps, instruction, texts)
            offset = 0
            for index in members:
                out[index] = vectors[offset:offset + len(jobs[index].texts)]
                offset += len(jobs[index].texts)
        timing = {"batch_requests": len(jobs), "batch_texts": sum(len(job.texts) for job in jobs),
                  "encode_ms": (time.perf_counter() - start) * 1000}
        return [(vectors, timing) for vectors in out]

    def _encode(self, input_type: str, steps: int | None, instruction: str | None, texts: list[str]) -> np.ndarray:
        options = {} if steps is None else {"num_thinking_steps": steps}
        size = self._config.encode_batch_size
        if input_type == "query":
            return self._encoder.encode_queries(texts, instruction=instruction, batch_size=size,
                                                show_progress_bar=False, **options)
        return self._encoder.encode_documents(texts, batch_size=size, show_progress_bar=False, **options)


_api = FastAPI(title="laser-rag embeddings", docs_url=None, redoc_url=None, openapi_url=None)


@_api.exception_handler(ApiError)
async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


@_api.exception_handler(HTTPException)
async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    """Unknown routes and wrong methods answer in OpenAI's error shape too."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code)
    body = ApiError(error.status_code, f"{request.method} {request.url.path}: {error.detail}", code=code).body()
    return JSONResponse(body, status_code=error.status_code)


@_api.exception_handler(Exception)
async def _server_error(request: Request, error: Exception) -> JSONResponse:
    """A bug or a failed replica: still OpenAI's shape (the traceback is in the replica's log)."""
    logger.exception("%s %s failed", request.method, request.url.path)
    body = ApiError(500, f"the service failed on this request ({type(error).__name__}); see its logs",
                    type="server_error", code="internal_error").body()
    return JSONResponse(body, status_code=500)


@serve.deployment
@serve.ingress(_api)
class Gateway:
    """The HTTP front: checks what it can without the model, forwards the rest to `EmbeddingModel`."""

    def __init__(self, model: DeploymentHandle, config: ServeConfig) -> None:
        self._model = model
        self._config = config
        self._info: ModelInfo | None = None
        self._created = int(time.time())

    async def _model_info(self) -> ModelInfo:
        if self._info is None:
            self._info = await self._call("info")
        return self._info

    def _authorize(self, request: Request) -> None:
        key = self._config.api_key
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise ApiError(401, "missing or incorrect API key: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key")

    async def _call(self, method: str, *args):
        try:
            return await getattr(self._model, method).remote(*args)
        except BackPressureError:
            wait = self._config.retry_after_s
            raise ApiError(503, f"the service is at capacity (queue full); retry in {wait} s", type="server_error",
                           code="overloaded", headers={"Retry-After": str(wait)}) from None

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._config.max_request_bytes:
            raise too_large(int(declared), self._config)
        return await request.body()

    @_api.get("/health")
    async def health(self) -> dict:
        info = await self._model_info()
        return {"status": "ok", "model": info.name}

    @_api.get("/v1/models")
    async def models(self, request: Request) -> dict:
        self._authorize(request)
        return (await self._model_info()).models_body(self._config, self._created)

    @_api.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> JSONResponse:
        start = time.perf_counter()
        self._authorize(request)
        job = parse_request(await self._body(request), await self._model_info(), self._config)
        result = await self._call("embed", job)
        if "error" in result:
            raise result["error"]
        body = response_body(job, result["vectors"], result["prompt_tokens"])
        timing = result["timing"]
        logger.info("embeddings %s model=%s texts=%d tokens=%d batch=%d requests/%d texts wait=%.1f ms "
                    "encode=%.1f ms total=%.1f ms", job.request_id, job.model, len(job.texts), result["prompt_tokens"],
                    timing["batch_requests"], timing["batch_texts"], timing["wait_ms"], timing["encode_ms"],
                    (time.perf_counter() - start) * 1000)
        return JSONResponse(body, headers={"X-Request-Id": job.request_id,
                                           "X-Batch-Requests": str(timing["batch_requests"])})

    @_api.post("/v1/tokenize")
    async def tokenize(self, request: Request) -> dict:
        """Not OpenAI's: token counts as the encoder reads documents (``"rendered": true``) or each text's token
        ids, so a `RemoteEncoder` chunks documents in the served model's tokens."""
        self._authorize(request)
        texts, rendered = parse_tokenize_request(await self._body(request), self._config)
        result = await self._call("tokenize", texts, rendered)
        key = "tokens" if rendered else "input_ids"
        return {"data": [{"index": i, key: value} for i, value in enumerate(result)]}


def build_app(config: ServeConfig):
    """The Serve application of ``config``: a `Gateway` bound to ``config.replicas`` `EmbeddingModel` replicas."""
    model = EmbeddingModel.options(
        num_replicas=config.replicas,
        max_ongoing_requests=config.max_batch_size + 2,  # a full batch, plus room for info / tokenize calls
        max_queued_requests=config.max_queued_requests,
        ray_actor_options={"num_cpus": config.cpus_per_replica, "num_gpus": config.gpus_per_replica},
    ).bind(config)
    held = config.replicas * (config.max_batch_size + 2) + config.max_queued_requests
    return Gateway.options(num_replicas=1, max_ongoing_requests=held + 16,
                           ray_actor_options={"num_cpus": 0}).bind(model, config)
