"""BM25 over a corpus of `Document`s: the lexical anchor of the evaluation (a thin wrapper around ``bm25s``).

English stopwords are removed; words are stemmed with the Snowball English stemmer when PyStemmer is installed
(a core dependency; BEIR's BM25 figures are stemmed) and left as they are otherwise (``stemmed`` tells). Hybrid
search's sparse vectors (`laser_rag.sparse`) tokenize the same way.

Example::

    index = BM25(shared_dataset("scifact", "validation").corpus)
    index.search("vitamin D lowers the risk of fractures", k=3)   # [(doc_id, score), ...] best first
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from laser_rag.corpus import Document
from laser_rag.sparse import english_stemmer


class BM25:
    """An in-memory BM25 index (Lucene's variant, k1=1.5, b=0.75 by default) over ``documents``' title and text."""

    def __init__(self, documents: Sequence[Document], *, k1: float = 1.5, b: float = 0.75,
                 stem: bool = True) -> None:
        import bm25s

        if not documents:
            raise ValueError("BM25 needs at least one document")
        self.doc_ids = [doc.id for doc in documents]
        self._stemmer = english_stemmer() if stem else None
        self._model = bm25s.BM25(k1=k1, b=b)
        # words are what count here: the title and the text, as one bag (no encoder template involved)
        tokens = bm25s.tokenize([f"{doc.title} {doc.text}" for doc in documents], stopwords="en",
                                stemmer=self._stemmer, show_progress=False)
        self._model.index(tokens, show_progress=False)

    @property
    def stemmed(self) -> bool:
        return self._stemmer is not None

    def __len__(self) -> int:
        return len(self.doc_ids)

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        """The top ``k`` ``(doc_id, score)`` pairs for ``query``, best first; documents sharing no word score 0 and
        are left out."""
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, return_ids=False,
                                show_progress=False)
        if not tokens[0]:
            return []
        indices, scores = self._model.retrieve(tokens, k=min(k, len(self.doc_ids)), show_progress=False,
                                               n_threads=1)
        return [(self.doc_ids[int(i)], float(s)) for i, s in zip(indices[0], scores[0]) if s > 0]

    def search_many(self, queries: Mapping[str, str], k: int = 100) -> dict[str, dict[str, float]]:
        """``run[query_id][doc_id] = score`` for every query (the format of `laser_rag.evaluation.score_run`)."""
        return {qid: dict(self.search(text, k)) for qid, text in queries.items()}
