"""The embeddings service (`laser_rag.serving`): one real Serve instance for the module on 127.0.0.1 (a free port),
serving the real default model in fp32; the OpenAI-compatible API with raw HTTP, the real LangChain and LlamaIndex
clients, `RemoteEncoder` and ``laser-rag index --embed-url``."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("ray.serve")

KEY = "test-key"
DOCS = ["Rayleigh scattering favours short wavelengths, so the sky looks blue.",
        "The mitochondrion is the powerhouse of the cell.",
        "A short one.",
        "Python's with statement calls __enter__ and __exit__ on a context manager, even when the block raises an "
        "exception, which makes it the idiomatic way to release files, locks and connections.",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "Qdrant stores vectors with payloads and searches them with HNSW."]
QUERIES = ["why is the sky blue?", "what does a mitochondrion do?", "how does `with` release a lock?"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def service():
    """The service, small limits so the refusals are cheap to provoke; a long batch wait so concurrent requests
    share batches."""
    import ray

    from laser_rag.serving import ServeConfig, start, stop

    config = ServeConfig(port=_free_port(), api_key=KEY, dtype="float32", max_batch_size=4, batch_wait_timeout_s=0.3,
                         max_queued_requests=8, max_texts=8, max_text_tokens=300, max_request_tokens=1000,
                         max_request_bytes=32 * 1024, max_thinking_steps=4)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        start(config)
        yield config
    finally:
        stop()
        ray.shutdown()


@pytest.fixture(scope="module")
def name(service) -> str:
    return _call(service, "GET", "/v1/models")[1]["data"][0]["id"]


def _call(config, method: str, path: str, body=None, *, key: str | None = KEY, raw: bytes | None = None):
    """(status, JSON body, headers) of one request."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(config.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def _vectors(body) -> np.ndarray:
    return np.array([item["embedding"] for item in sorted(body["data"], key=lambda item: item["index"])],
                    dtype=np.float32)


def _assert_same(served: np.ndarray, local: np.ndarray) -> None:
    assert served.shape == local.shape
    cosines = (served * local).sum(axis=1) / np.linalg.norm(served, axis=1) / np.linalg.norm(local, axis=1)
    assert cosines.min() >= 0.9999, cosines


def test_models_carry_the_encoders_identity_for_both_input_types(service, encoder, name):
    status, body, _ = _call(service, "GET", "/v1/models")
    assert status == 200
    assert [(m["id"], m["input_type"]) for m in body["data"]] == [(name, "document"), (f"{name}:query", "query")]
    for model in body["data"]:
        assert model["fingerprint"] == encoder.fingerprint and model["dimension"] == encoder.dimension
        assert model["label"] == encoder.label and model["precision"] == "float32"
    assert _call(service, "GET", "/health", key=None)[:2] == (200, {"status": "ok", "model": name})


def test_served_vectors_equal_the_in_process_encoders_whatever_batch_they_share(service, encoder, name):
    """Concurrent requests of documents and queries (other lengths, another K, another instruction) are batched
    together; each answer equals the in-process encoder's."""
    jobs = [({"model": name, "input": DOCS[:3]}, encoder.encode_documents(DOCS[:3])),
            ({"model": name, "input": DOCS[3]}, encoder.encode_documents(DOCS[3:4])),
            ({"model": f"{name}:query", "input": QUERIES}, encoder.encode_queries(QUERIES)),
            ({"model": name, "input_type": "query", "input": QUERIES[:1], "instruction": "Find the physics."},
             encoder.encode_queries(QUERIES[:1], instruction="Find the physics.")),
            ({"model": name, "input": DOCS[4:], "num_thinking_steps": 1},
             encoder.encode_documents(DOCS[4:], num_thinking_steps=1)),
            ({"model": name, "input": DOCS[4:]}, encoder.encode_documents(DOCS[4:]))]
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: _call(service, "POST", "/v1/embeddings", job[0]), jobs))
    for (request, local), (status, body, _) in zip(jobs, answers):
        assert status == 200, body
        _assert_same(_vectors(body), local)
        assert body["model"] == request["model"] and body["object"] == "list"
    assert max(int(headers["X-Batch-Requests"]) for _, _, headers in answers) > 1  # they did share batches
    k1, k3 = _vectors(answers[4][1]), _vectors(answers[5][1])
    assert not np.allclose(k1, k3, atol=1e-3)  # the per-request K was applied


def test_base64_is_the_float_vectors_and_usage_counts_the_texts_tokens(service, encoder, name):
    _, as_float, _ = _call(service, "POST", "/v1/embeddings", {"model": name, "input": DOCS[:2]})
    _, as_base64, _ = _call(service, "POST", "/v1/embeddings", {"model": name, "input": DOCS[:2],
                                                                "encoding_format": "base64"})
    decoded = np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in as_base64["data"]])
    np.testing.assert_allclose(decoded, _vectors(as_float), atol=1e-6)
    tokens = sum(len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in DOCS[:2])
    assert as_float["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_langchain_openai_embeddings_against_the_service(service, encoder, name):
    from langchain_openai import OpenAIEmbeddings

    base = dict(base_url=service.url + "/v1", api_key=KEY, check_embedding_ctx_length=False)
    documents = OpenAIEmbeddings(model=name, **base)
    queries = OpenAIEmbeddings(model=f"{name}:query", **base)
    _assert_same(np.array(documents.embed_documents(DOCS[:3]), dtype=np.float32), encoder.encode_documents(DOCS[:3]))
    _assert_same(np.array([queries.embed_query(QUERIES[0])], dtype=np.float32), encoder.encode_queries(QUERIES[:1]))


def test_llama_index_openai_like_embedding_against_the_service(service, encoder, name):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    documents = OpenAILikeEmbedding(model_name=name, api_base=service.url + "/v1", api_key=KEY)
    queries = OpenAILikeEmbedding(model_name=f"{name}:query", api_base=service.url + "/v1", api_key=KEY)
    _assert_same(np.array(documents.get_text_embedding_batch(DOCS[:2]), dtype=np.float32),
                 encoder.encode_documents(DOCS[:2]))
    _assert_same(np.array([queries.get_query_embedding(QUERIES[1])], dtype=np.float32),
                 encoder.encode_queries(QUERIES[1:2]))


BAD = {
    "an empty string": ({"input": "  "}, 400, "input[0] is empty"),
    "a number among the texts": ({"input": ["fine", 3]}, 400, "input[1] is token ids"),
    "token arrays": ({"input": [[1, 2, 3]]}, 400, "not a string"),
    "an object": ({"input": {"text": "x"}}, 400, "must be a string or a list of strings"),
    "no texts": ({"input": []}, 400, "empty list"),
    "too many texts": ({"input": ["text"] * 9}, 400, "at most 8 per request"),
    "a text past the token limit": ({"input": ["word " * 400]}, 400, "at most 300 per text"),
    "a request past the token limit": ({"input": ["word " * 250] * 5}, 400, "at most 1000 per request"),
    "a body past the byte limit": ({"input": ["x" * 40_000]}, 413, "at most 32768 bytes"),
    "dimensions": ({"input": "x", "dimensions": 64}, 400, "not Matryoshka-trained"),
    "another model": ({"model": "text-embedding-3-small", "input": "x"}, 404, "does not exist here"),
    "no model": ({"model": None, "input": "x"}, 400, "model is required"),
    "an unknown field": ({"input": "x", "temperature": 1}, 400, "unknown field"),
    "a bad encoding": ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format must be one of"),
    "K out of range": ({"input": "x", "num_thinking_steps": 0}, 400, "num_thinking_steps must be an integer in"),
    "an instruction for documents": ({"input": "x", "instruction": "Find"}, 400, "queries only"),
    "contradicting input types": ({"model": ":query", "input": "x", "input_type": "document"}, 400, "embeds queries"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_requests_get_a_clear_4xx_in_openais_error_shape(service, name, case):
    body, status, fragment = BAD[case]
    body = {"model": name, **body}
    if body["model"] == ":query":
        body["model"] = f"{name}:query"
    if body["model"] is None:
        del body["model"]
    got, answer, _ = _call(service, "POST", "/v1/embeddings", body)
    assert got == status, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"} and fragment in answer["error"]["message"]
    assert _call(service, "GET", "/health", key=None)[0] == 200


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"], ids=["broken", "a list", "not utf-8"])
def test_a_body_that_is_not_a_json_object_gets_400(service, raw):
    status, answer, _ = _call(service, "POST", "/v1/embeddings", raw=raw)
    assert status == 400 and "JSON" in answer["error"]["message"]


@pytest.mark.parametrize("key", [None, "wrong"], ids=["missing", "wrong"])
def test_wrong_or_missing_api_key_gets_401(service, name, key):
    for method, path, body in [("POST", "/v1/embeddings", {"model": name, "input": "x"}), ("GET", "/v1/models", None)]:
        status, answer, _ = _call(service, method, path, body, key=key)
        assert status == 401 and answer["error"]["code"] == "invalid_api_key"


def test_an_unknown_route_answers_in_the_error_shape(service):
    status, answer, _ = _call(service, "GET", "/v1/chat/completions")
    assert status == 404 and answer["error"]["code"] == "not_found"


def test_a_full_queue_answers_503_with_retry_after_and_the_service_lives_on(service, encoder, name):
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: _call(service, "POST", "/v1/embeddings", {"model": name, "input": DOCS[2]}),
                                range(40)))
    refused = [(body, headers) for status, body, headers in answers if status == 503]
    assert refused, "40 concurrent requests against 6 in flight and 8 queued: some must be refused"
    assert all(headers["Retry-After"] == "1" and body["error"]["code"] == "overloaded" for body, headers in refused)
    assert all(status in (200, 503) for status, _, _ in answers)
    status, body, _ = _call(service, "POST", "/v1/embeddings", {"model": name, "input": DOCS[2]})
    assert status == 200
    _assert_same(_vectors(body), encoder.encode_documents(DOCS[2:3]))


def test_remote_encoder_is_the_in_process_encoder_over_http(service, encoder):
    from laser_rag.encoders.remote import RemoteEncoder

    remote = RemoteEncoder(service.url, api_key=KEY)
    assert (remote.fingerprint, remote.label, remote.dimension, remote.max_length) == (
        encoder.fingerprint, encoder.label, encoder.dimension, encoder.max_length)
    _assert_same(remote.encode_queries(QUERIES[:2]), encoder.encode_queries(QUERIES[:2]))
    assert remote.count_tokens(DOCS[0]) == encoder.count_tokens(DOCS[0])
    assert remote.tokenizer(DOCS[1])["input_ids"] == encoder.tokenizer(DOCS[1], add_special_tokens=False)["input_ids"]


def test_remote_encoder_errors_say_what_is_wrong(service):
    from laser_rag.encoders.remote import RemoteEncoder
    from laser_rag.errors import EmbeddingServiceError

    with pytest.raises(EmbeddingServiceError, match="401"):
        RemoteEncoder(service.url, api_key="wrong")
    with pytest.raises(EmbeddingServiceError, match="does not serve 'nope'"):
        RemoteEncoder(service.url, api_key=KEY, model="nope")
    with pytest.raises(EmbeddingServiceError, match="cannot reach"):
        RemoteEncoder(f"http://127.0.0.1:{_free_port()}")


def test_index_embed_url_fills_the_collection_the_in_process_encoder_searches(service, encoder, tmp_path,
                                                                              monkeypatch):
    from typer.testing import CliRunner

    from laser_rag import store
    from laser_rag.cli import app
    from laser_rag.retrieval import open_retriever

    corpus = tmp_path / "notes.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n"
                              for i, text in enumerate(DOCS)))
    monkeypatch.setenv("LASER_RAG_EMBED_API_KEY", KEY)
    result = CliRunner().invoke(app, ["index", str(corpus), "--embed-url", service.url, "--qdrant-path",
                                      str(tmp_path / "qdrant"), "--corpus", "notes"])
    assert result.exit_code == 0, result.output
    assert "6 added" in result.output
    client = store.connect(tmp_path / "qdrant")
    try:
        retriever = open_retriever("laser", "notes", client=client, encoder=encoder)  # the guard accepts it
        assert retriever.retrieve(QUERIES[0], k=1).hits[0].id == "d0"
    finally:
        store.close_all()
