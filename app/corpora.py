"""What the app can search: the shared public sets (when ``../shared/data`` exists), the Python language reference
(always), and the files users upload.

An uploaded file is treated as data only: its name is reduced to a safe one (no folders, no leading dot, ASCII
letters, digits, ``.``, ``_``, ``-``), its bytes are copied into the app's data folder, and it is parsed there by
`laser_rag.corpus.load_corpus` (JSON lines or plain text; nothing is executed). A file that does not parse is
removed again and reported as `laser_rag.errors.CorpusError` (the message names no server path); the manifest
(``uploads/manifest.json``) lists only files that were indexed completely, so they come back after a restart.

The shared sets come as passages already (`laser_rag_datasets.shared`); the Python reference and uploads are
cut to what each encoder reads when they are indexed (``Corpus.chunk``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from laser_rag.util import atomic_write
from laser_rag.corpus import Document, load_corpus, pydoc_corpus
from laser_rag.errors import CorpusError
from laser_rag_datasets.shared import LICENSES, shared_data_dir, shared_dataset

logger = logging.getLogger(__name__)

ACCEPTED_SUFFIXES = (".jsonl", ".txt", ".md")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: The default corpus when the shared data is there: the paragraphs of the first HotpotQA dev questions (each
#: question brings its 2 supporting and 8 distractor paragraphs), small enough to index at start-up on a CPU.
HOTPOTQA_SLICE = 50
#: The default corpus otherwise: the first topics of the Python language reference, in topic order.
PYDOC_SLICE = 64
_SHARED = {
    "hotpotqa": "HotpotQA dev: all paragraphs",
    "strategyqa": "StrategyQA: evidence sentences",
    "hotpotqa_evidence": "HotpotQA: evidence sentences",
    "musique": "MuSiQue: paragraphs",
    "scifact": "SciFact: abstracts (CC BY-NC)",
}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Corpus:
    """A corpus the app can index and search. ``key`` names its collections (``<key>-<encoder label>``);
    ``chunk``: cut documents longer than an encoder reads (`laser_rag.corpus.chunk_documents`) when indexing
    (not for the shared sets, which are passages already)."""

    key: str
    label: str
    load: Callable[[], list[Document]] = field(compare=False, repr=False)
    note: str = ""
    chunk: bool = True


def builtin_corpora() -> list[Corpus]:
    """The shared sets (each loaded once per process) and the Python reference; the default one first."""
    corpora = []
    if shared_data_dir() is not None:
        corpora.append(Corpus(f"hotpotqa-{HOTPOTQA_SLICE}", f"HotpotQA dev: first {HOTPOTQA_SLICE} paragraphs",
                              lambda: _shared_corpus("hotpotqa")[:HOTPOTQA_SLICE], LICENSES["hotpotqa"], chunk=False))
        corpora += [Corpus(name, label, functools.partial(_shared_corpus, name), LICENSES[name], chunk=False)
                    for name, label in _SHARED.items()]
    corpora.append(Corpus(f"pydoc-{PYDOC_SLICE}", f"Python reference: first {PYDOC_SLICE} topics",
                          lambda: pydoc_corpus()[:PYDOC_SLICE], LICENSES["pydoc"]))
    corpora.append(Corpus("pydoc", "Python reference: all topics", pydoc_corpus, LICENSES["pydoc"]))
    return corpora


@functools.cache
def _shared_corpus(name: str) -> list[Document]:
    return shared_dataset(name, "validation").corpus


def example_questions(per_set: int = 4) -> dict[str, list[str]]:
    """Prompts from the shared data, by where they come from: HotpotQA dev questions whose supporting paragraphs
    are in the default slice, and StrategyQA validation questions. Empty without the shared data."""
    if shared_data_dir() is None:
        return {}
    examples = {}
    try:
        hotpot = shared_dataset("hotpotqa", "validation")
        in_slice = {doc.id for doc in hotpot.corpus[:HOTPOTQA_SLICE]}
        examples[f"HotpotQA dev (in \"HotpotQA dev: first {HOTPOTQA_SLICE} paragraphs\")"] = [
            question.strip() for qid, question in hotpot.queries.items() if set(hotpot.qrels[qid]) <= in_slice
        ][:per_set]
        strategy = shared_dataset("strategyqa", "validation")
        examples["StrategyQA validation (in \"StrategyQA: evidence sentences\")"] = list(
            strategy.queries.values())[:per_set]
    except (OSError, ValueError, KeyError) as exc:  # a partial copy of the shared data: no examples, no crash
        logger.warning("no example questions: %s", exc)
    return {label: questions for label, questions in examples.items() if questions}


# ---------------------------------------------------------------------------------------------------------------
# Uploads


def safe_name(name: str) -> str:
    """A file name that cannot leave a folder: the last path component, unsafe characters replaced, no leading
    dot, at most 80 characters, the suffix kept (lower case)."""
    base = re.split(r"[\\/]", str(name))[-1]
    stem, dot, suffix = base.rpartition(".")
    stem, suffix = (stem, f".{suffix.lower()}") if dot and stem.strip(". ") else (base, "")
    stem = _NAME_CHARS.sub("_", stem).strip("._-")[:80 - len(suffix)] or "upload"
    suffix = _NAME_CHARS.sub("", suffix)
    return f"{stem}{suffix}"


@dataclass
class StagedUpload:
    """A copied and parsed upload, not yet in the manifest."""

    corpus: Corpus
    folder: Path
    name: str
    digest: str
    documents: list[Document]


class Uploads:
    """Uploaded files under ``folder`` (one sub-folder per file, named by a hash of its name and content), and
    the manifest of those indexed completely."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.manifest = self.folder / "manifest.json"
        self._lock = threading.Lock()

    def corpora(self) -> list[Corpus]:
        corpora = []
        for entry in self._entries():
            path = self.folder / entry["folder"] / entry["name"]
            if path.is_file() and path.resolve().is_relative_to(self.folder.resolve()):
                corpora.append(self._corpus(entry["key"], entry["name"], path))
        return corpora

    def stage(self, source: str | Path, name: str | None = None) -> StagedUpload:
        """Copy ``source`` into the data folder under a safe name and parse it. Raises `CorpusError`."""
        source = Path(source)
        name = safe_name(name or source.name)
        if not name.lower().endswith(ACCEPTED_SUFFIXES):
            raise CorpusError(f"{name}: not a corpus file. Accepted: {', '.join(ACCEPTED_SUFFIXES)} "
                              "(JSON lines with a \"text\" field, plain text or markdown)")
        try:
            size = source.stat().st_size
            if size > MAX_UPLOAD_BYTES:
                raise CorpusError(f"{name}: {size / 2**20:.1f} MB is larger than the limit of "
                                  f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB")
            content = source.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{name}: could not read the upload ({exc.strerror or type(exc).__name__})") from exc
        digest = hashlib.sha256(name.encode() + b"\0" + content).hexdigest()
        folder = self.folder / digest[:16]
        target = folder / name
        if not target.resolve().is_relative_to(self.folder.resolve()):  # safe_name makes this impossible
            raise CorpusError(f"{name}: refused file name")
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        try:
            documents = load_corpus(target)
        except (ValueError, OSError) as exc:
            self.discard_folder(folder)
            raise CorpusError(_without_paths(str(exc), target, name)) from exc
        if not documents:
            self.discard_folder(folder)
            raise CorpusError(f"{name}: empty, no text found in the file")
        return StagedUpload(self._corpus(f"file-{digest[:12]}", name, target), folder, name, digest, documents)

    def commit(self, staged: StagedUpload) -> None:
        """Record a staged upload as indexed."""
        with self._lock:
            entries = [e for e in self._entries() if e["key"] != staged.corpus.key]
            entries.append({"key": staged.corpus.key, "name": staged.name, "folder": staged.folder.name,
                            "sha256": staged.digest, "passages": len(staged.documents),
                            "added": time.strftime("%Y-%m-%dT%H:%M:%S")})
            atomic_write(self.manifest, json.dumps(entries, indent=1, ensure_ascii=False))

    def known(self, key: str) -> bool:
        return any(entry["key"] == key for entry in self._entries())

    def discard_folder(self, folder: Path) -> None:
        if folder.resolve().parent == self.folder.resolve():
            shutil.rmtree(folder, ignore_errors=True)

    def _entries(self) -> list[dict]:
        if not self.manifest.is_file():
            return []
        try:
            entries = json.loads(self.manifest.read_text(encoding="utf-8"))
            return [e for e in entries if isinstance(e, dict) and {"key", "name", "folder"} <= e.keys()
                    and safe_name(e["name"]) == e["name"] and safe_name(e["folder"]) == e["folder"]]
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("ignoring the unreadable upload manifest %s: %s", self.manifest, exc)
            return []

    @staticmethod
    def _corpus(key: str, name: str, path: Path) -> Corpus:
        return Corpus(key, f"Your file: {name}", functools.partial(load_corpus, path), "uploaded file")


def _without_paths(message: str, path: Path, name: str) -> str:
    """An error message about the stored upload, with its server path (and folder) replaced by the file name."""
    return message.replace(str(path), name).replace(str(path.parent), ".")
