"""A real OpenAI-compatible chat server on loopback for tests: ``POST /v1/chat/completions`` with ``stream: true``
(server-sent events, one event per chunk of the wrapped LLM's stream), served by uvicorn in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@contextlib.contextmanager
def chat_server(llm) -> Iterator[str]:
    """Serve ``llm`` (an `laser_rag.llm.LLM` that streams) on 127.0.0.1, a free port; yields the base URL
    (``http://127.0.0.1:<port>/v1``)."""
    import uvicorn

    api = FastAPI()

    @api.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "this test server only streams"}}, status_code=400)
        messages = [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
        budget = body.get("max_completion_tokens") or body.get("max_tokens")

        def events():
            for chunk in llm.stream(messages, max_new_tokens=budget):
                yield _event(body, {"content": chunk}, None)
            yield _event(body, {}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="chat-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test chat server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _event(body: dict, delta: dict, finish: str | None) -> str:
    chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": body.get("model", ""),
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"
