"""Points: a document's point id, its payload (one layout, whatever is installed), and `Hit`, a stored point read
back, whichever tool wrote it.

The payload of a document's point (`PAYLOAD_LAYOUT` 3)::

    {"text": document.text, "metadata": {**document.metadata, "doc_id": document.id, "title": document.title}}

These are LangChain's keys (``content_payload_key="text"``, ``metadata_payload_key="metadata"``). LlamaIndex's
QdrantVectorStore reads such a point through its fallback for points without ``_node_content`` (the ``text`` key is
the node text); `laser_rag.integrations.llama_index.LaSERQdrantVectorStore` reads it as the full node
(`laser_rag.integrations.llama_index.llama_node`). Layouts 1 and 2 added LlamaIndex's node fields beside these keys.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from laser_rag.corpus import Document

#: Version of the payload layout above (1 and 2 also held LlamaIndex's node fields, 2 only when it was installed).
PAYLOAD_LAYOUT = 3
#: Namespace of point ids: ``uuid5(POINT_NAMESPACE, document.id)``.
POINT_NAMESPACE = uuid.UUID("6f1c3b7e-2a4d-5c8e-9b0f-1d2e3f4a5b6c")
#: The payload field of a point's document id (a keyword index on servers).
DOC_ID_FIELD = "metadata.doc_id"
_RESERVED_METADATA = ("doc_id", "title")


def point_id(doc_id: str) -> str:
    """The Qdrant point id of a document: stable across runs, machines and processes."""
    return str(uuid.uuid5(POINT_NAMESPACE, str(doc_id)))


def point_metadata(doc: Document) -> dict[str, Any]:
    """A document's metadata as its point stores it: the corpus's own keys plus ``doc_id`` and ``title``."""
    return {**{k: v for k, v in doc.metadata.items() if k not in _RESERVED_METADATA}, "doc_id": doc.id,
            "title": doc.title}


def payload(doc: Document) -> dict[str, Any]:
    """The payload of a document's point (layout in the module docstring)."""
    return {"text": doc.text, "metadata": point_metadata(doc)}


def is_laser_rag_payload(stored: dict[str, Any] | None) -> bool:
    """Whether a stored payload is laser_rag's layout 3 (no LlamaIndex node fields beside our keys)."""
    stored = stored or {}
    metadata = stored.get("metadata")
    return (isinstance(stored.get("text"), str) and isinstance(metadata, dict) and "doc_id" in metadata
            and "_node_content" not in stored)


@dataclass(frozen=True)
class Hit:
    """One retrieved passage. ``id`` is the document id (not the Qdrant point id)."""

    id: str
    title: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_point(cls, point: Any) -> Hit:
        """A stored point (an engine's `PointRecord`, a qdrant-client search result or record) as a `Hit`. Reads
        laser_rag's layouts (1 to 3), LlamaIndex's (the serialised node in ``_node_content``: points its own
        pipeline wrote) and LangChain's (``page_content``)."""
        stored = point.payload or {}
        text = stored.get("text", stored.get("page_content"))
        metadata = stored.get("metadata")
        if (not isinstance(text, str) or not isinstance(metadata, dict)) and "_node_content" in stored:
            node = json.loads(stored["_node_content"])  # LlamaIndex's node, serialised: its text and metadata fields
            text = text if isinstance(text, str) else node.get("text")
            metadata = metadata if isinstance(metadata, dict) else node.get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        source = stored.get("doc_id")  # LlamaIndex's ref_doc_id when the node carries no doc_id of ours
        doc_id = metadata.pop("doc_id", None) or (source if source not in (None, "None") else None) or point.id
        title = metadata.pop("title", "") or ""
        score = getattr(point, "score", None)
        return cls(id=str(doc_id), title=str(title), text=text or "", score=float(score or 0.0), metadata=metadata)

    def document(self) -> Document:
        """The passage as a `laser_rag.corpus.Document` (what was indexed: id, text, title, metadata)."""
        return Document(self.id, self.text, self.title, dict(self.metadata))
