"""Where `connect` connects: the embedded store of a folder (an `laser_rag.store.embedded.EmbeddedEngine`: Qdrant
Edge, plus the folder's qdrant-client local-mode collections not migrated yet), ``":memory:"`` or a server (a
qdrant-client client, with a reachability probe); the one-store-per-folder registry, `release` and `close_all` (also
at interpreter exit)."""

from __future__ import annotations

import atexit
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs
from qdrant_client import QdrantClient

from laser_rag.errors import QdrantUnavailableError, StoreError

if TYPE_CHECKING:
    from laser_rag.store.embedded import EmbeddedEngine

#: The location of a private in-memory store.
MEMORY = ":memory:"

_local_stores: dict[str, EmbeddedEngine] = {}  # folder -> the open store of that folder: closed ones are removed
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
) -> QdrantClient | EmbeddedEngine:
    """A Qdrant store.

    - ``url`` (and ``api_key``): a qdrant-client client of a Qdrant server or cluster. Reachability is checked at
      once: an unreachable server raises `QdrantUnavailableError` within about ``timeout`` seconds instead of
      hanging later.
    - ``path="\\:memory:"``: a qdrant-client client of a new, private in-memory store (tests, evaluation).
    - otherwise the embedded store of the folder ``path`` (default `default_qdrant_path`): an `Engine` running Qdrant
      Edge in ``<path>/edge`` (`laser_rag.store.embedded.EmbeddedEngine`; a collection the folder still holds in
      qdrant-client's local mode is used there until ``laser-rag migrate`` moves it). One store per folder per
      process: calling again returns the same one; `release` closes it. A folder another process has open raises
      `QdrantUnavailableError`.
    """
    if url:
        return _remote_client(url, api_key, timeout, prefer_grpc)
    if str(path) == MEMORY:
        return QdrantClient(location=MEMORY)
    from laser_rag.store.embedded import EmbeddedEngine  # it imports the engines, which import this module

    key = _folder_key(path)
    with _registry_lock:
        opened = _local_stores.get(key)
        if opened is not None and not opened.closed:
            return opened
        try:
            Path(key).mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file there, or a folder this user cannot write
            raise StoreError(f"cannot use {key} as an embedded Qdrant folder ({exc.strerror}); pass another "
                             "--qdrant-path") from exc
        opened = _local_stores[key] = EmbeddedEngine(key)
        return opened


def local_mode_client(folder: str | Path) -> QdrantClient:
    """A qdrant-client local-mode client on ``folder`` (Python, every query a scan): what the embedded store was
    before Qdrant Edge, still read by `laser_rag.store.embedded.EmbeddedEngine` and ``laser-rag migrate``, and
    measured by the benchmarks. `QdrantUnavailableError` when another process has it open."""
    try:
        return QdrantClient(path=str(folder))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise QdrantUnavailableError(
            f"the local Qdrant store {folder} is in use by another process (one process at a time can open an "
            "embedded store). Close the other process, use another --qdrant-path, or share one store through "
            "a Qdrant server (--qdrant-url)."
        ) from exc


def release(path: str | Path | None = None) -> None:
    """Close the registry's store of a local folder (e.g. so another process can open it)."""
    with _registry_lock:
        opened = _local_stores.pop(_folder_key(path), None)
    if opened is not None:
        opened.close()


def close_all() -> None:
    """Close every embedded store `connect` opened. Runs at interpreter exit too: Qdrant Edge builds the index of
    what was written since its last build when it closes, and a qdrant-client local client left to the garbage
    collector would close itself while Python is tearing its modules down, and print a traceback."""
    with _registry_lock:
        stores = list(_local_stores.values())
        _local_stores.clear()
    for opened in stores:
        opened.close()


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
