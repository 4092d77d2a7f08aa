"""qdrant-client clients: `connect` (embedded folder, ``":memory:"`` or a server), the one-client-per-folder registry,
`release`, `close_all` (also at interpreter exit) and the reachability probe of a server."""

from __future__ import annotations

import atexit
import os
import threading
import time
from pathlib import Path

import platformdirs
from qdrant_client import QdrantClient

from laser_rag.errors import QdrantUnavailableError, StoreError

#: The location of a private in-memory store.
MEMORY = ":memory:"

_local_clients: dict[str, QdrantClient] = {}  # folder -> the open client of that folder: closed ones are removed
_registry_lock = threading.Lock()


def default_qdrant_path() -> Path:
    """Where the embedded store lives: ``$LASER_RAG_QDRANT_PATH`` or ``<user data dir>/laser_rag/qdrant``."""
    return Path(os.environ.get("LASER_RAG_QDRANT_PATH") or Path(platformdirs.user_data_dir("laser_rag")) / "qdrant")


def connect(
    path: str | Path | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 5.0,
    prefer_grpc: bool = False,
) -> QdrantClient:
    """A Qdrant client.

    - ``url`` (and ``api_key``): a Qdrant server or cluster. Reachability is checked at once: an unreachable
      server raises `QdrantUnavailableError` within about ``timeout`` seconds instead of hanging later.
    - ``path="\\:memory:"``: a new, private in-memory store (tests, evaluation).
    - otherwise the embedded store in ``path`` (default `default_qdrant_path`). One client per folder per process:
      calling again returns the same client (qdrant-client allows one per folder); `release` closes it.
    """
    if url:
        return _remote_client(url, api_key, timeout, prefer_grpc)
    if str(path) == MEMORY:
        return QdrantClient(location=MEMORY)
    key = _folder_key(path)
    with _registry_lock:
        client = _local_clients.get(key)
        if client is not None and _still_open(client):
            return client
        try:
            Path(key).mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file there, or a folder this user cannot write
            raise StoreError(f"cannot use {key} as an embedded Qdrant folder ({exc.strerror}); pass another "
                             "--qdrant-path") from exc
        try:
            client = QdrantClient(path=key)
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            raise QdrantUnavailableError(
                f"the local Qdrant store {key} is in use by another process (one process at a time can open an "
                "embedded store). Close the other process, use another --qdrant-path, or share one store through "
                "a Qdrant server (--qdrant-url)."
            ) from exc
        _local_clients[key] = client
        return client


def release(path: str | Path | None = None) -> None:
    """Close the registry's client for a local folder (e.g. so another process can open it)."""
    with _registry_lock:
        client = _local_clients.pop(_folder_key(path), None)
    if client is not None:
        client.close()


def close_all() -> None:
    """Close every local client `connect` opened. Runs at interpreter exit too: a local client left to the garbage
    collector would close itself while Python is tearing its modules down, and print a traceback."""
    with _registry_lock:
        clients = list(_local_clients.values())
        _local_clients.clear()
    for client in clients:
        client.close()


atexit.register(close_all)


def client_kind(client: QdrantClient) -> str:
    """``"memory"``, ``"local"`` (an embedded folder) or ``"server"``, from the options the client was made with."""
    options = client.init_options
    if options.get("location") == MEMORY:
        return "memory"
    return "local" if options.get("path") is not None else "server"


def _folder_key(path: str | Path | None) -> str:
    """The registry's key of a local folder: its resolved path (default `default_qdrant_path`)."""
    folder = Path(path).expanduser() if path is not None else default_qdrant_path()
    return str(folder.resolve())


def _still_open(client: QdrantClient) -> bool:
    """False when someone closed the registry's client behind its back (``client.close()``): asked through the
    public API, since a closed local client refuses every call."""
    try:
        client.get_collections()
    except RuntimeError:
        return False
    return True


def _remote_client(url: str, api_key: str | None, timeout: float, prefer_grpc: bool) -> QdrantClient:
    from qdrant_client.http.exceptions import UnexpectedResponse

    kwargs = dict(url=url, api_key=api_key, prefer_grpc=prefer_grpc, check_compatibility=False)
    try:
        probe = QdrantClient(timeout=max(1, round(timeout)), **kwargs)
    except ValueError as exc:  # urllib3's LocationParseError and the client's own checks
        raise QdrantUnavailableError(f"{url!r} is not a Qdrant URL ({exc}); expected e.g. http://localhost:6333") \
            from exc
    started = time.perf_counter()
    try:
        probe.get_collections()
    except UnexpectedResponse as exc:
        hint = "the API key was rejected" if exc.status_code in (401, 403) else "is this a Qdrant server?"
        raise QdrantUnavailableError(f"Qdrant at {url} answered HTTP {exc.status_code} ({hint})") from exc
    except Exception as exc:  # ResponseHandlingException, httpx or grpc errors: they differ by transport
        raise QdrantUnavailableError(
            f"cannot reach a Qdrant server at {url} ({type(exc).__name__}: {exc}; gave up after "
            f"{time.perf_counter() - started:.1f} s). Check the URL and that the server runs, or leave out the "
            "URL to use the embedded local store."
        ) from exc
    finally:
        probe.close()
    return QdrantClient(timeout=max(30, round(timeout)), **kwargs)
