"""Document vectors computed once per encoder and corpus, kept on disk: a re-run of an evaluation encodes only its
queries, and an interrupted encoding resumes from its last saved chunk.

The key is the encoder's fingerprint (weights, K, templates, max lengths), its ``max_length`` and `corpus_hash`.
A file lock per key lets two processes (two evals, a notebook beside an eval) share one encoding instead of
racing on the same chunk files.

Example::

    vectors, seconds, cached = document_vectors(encoder, dataset.corpus)
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from laser_rag.util import atomic_write
from laser_rag.corpus import Document


def default_cache_dir() -> Path:
    """``<laser_rag cache>/eval-vectors`` (``$LASER_RAG_CACHE`` moves the laser_rag cache)."""
    from laser_rag import runtime

    return runtime.cache_dir() / "eval-vectors"


def corpus_hash(documents: Sequence[Document]) -> str:
    """sha256 of the corpus: ids, titles and texts, in order (how an encoder renders them is in its fingerprint)."""
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(json.dumps([doc.id, doc.title, doc.text], ensure_ascii=False).encode())
    return digest.hexdigest()


def document_vectors(encoder, documents: Sequence[Document], *, cache_dir: str | Path | None = None,
                     batch_size: int = 16, chunk_size: int = 512, progress: bool = True,
                     ) -> tuple[np.ndarray, float, bool]:
    """``encoder.encode_documents`` over ``documents`` (each as ``encoder.document_text(title, text)``), cached.

    Returns ``(vectors, seconds spent encoding now, whether everything came from the cache)``; ``cache_dir``
    defaults to `default_cache_dir`. Chunks of ``chunk_size`` documents are saved as they finish, so an
    interrupted encoding resumes.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    identity = {"encoder": encoder.fingerprint, "max_length": encoder.max_length, "corpus": corpus_hash(documents)}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    final = root / f"{key}.npy"
    shape = (len(documents), encoder.dimension)
    cached = _load_vectors(final, shape)
    if cached is not None:
        return cached, 0.0, True
    root.mkdir(parents=True, exist_ok=True)
    # Another process encoding the same corpus with the same encoder holds this lock: wait for it and read its
    # result rather than write the same chunks at the same time.
    with FileLock(str(root / f"{key}.lock")):
        cached = _load_vectors(final, shape)
        if cached is not None:
            return cached, 0.0, True
        vectors, seconds = _encode_in_chunks(encoder, documents, root / f"{key}.partial", batch_size, chunk_size,
                                             progress)
        _save_npy(final, vectors)
        atomic_write(root / f"{key}.json", json.dumps({**identity, "label": encoder.label,
                                                       "precision": encoder.precision, "documents": len(documents),
                                                       "seconds": round(seconds, 1)}, indent=2))
    return vectors, seconds, False


def _load_vectors(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if path.is_file():
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape == shape:
            return vectors
    return None


def _save_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write(path, buffer.getvalue())


def _encode_in_chunks(encoder, documents: Sequence[Document], parts: Path, batch_size: int, chunk_size: int,
                      progress: bool) -> tuple[np.ndarray, float]:
    """Encode ``documents`` chunk by chunk, each chunk saved under ``parts`` as it finishes (and reused by a rerun
    after an interruption); the chunks are removed once all are done."""
    parts.mkdir(parents=True, exist_ok=True)
    texts = [encoder.document_text(doc.title, doc.text) for doc in documents]
    chunks, seconds = [], 0.0
    bar = tqdm(total=len(texts), desc=f"documents ({encoder.label})", unit="doc", disable=not progress)
    for start in range(0, len(texts), chunk_size):
        part = parts / f"{start:09d}.npy"
        block = texts[start:start + chunk_size]
        if part.is_file():
            vectors = np.load(part, allow_pickle=False)
        else:
            tick = time.perf_counter()
            vectors = np.asarray(encoder.encode_documents(block, batch_size=batch_size, show_progress_bar=False),
                                 dtype=np.float32)
            seconds += time.perf_counter() - tick
            _save_npy(part, vectors)
        chunks.append(vectors)
        bar.update(len(block))
    bar.close()
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dimension), dtype=np.float32)
    for part in parts.glob("*.npy"):
        part.unlink()
    parts.rmdir()
    return vectors, seconds
