"""laser_rag.bm25: the lexical anchor ranks by shared words, drops stopword-only queries, runs many queries."""

from __future__ import annotations

import pytest

from laser_rag.bm25 import BM25
from laser_rag.corpus import Document

CORPUS = [Document("a", "the cat sat on the mat", "Cats"), Document("b", "dogs chase cats in the park"),
          Document("c", "stock markets fell sharply on monday"), Document("d", "a recipe for lemon cake")]


def test_bm25_ranks_by_shared_words():
    index = BM25(CORPUS)
    assert len(index) == 4
    assert index.search("why did the stock markets fall", k=2)[0][0] == "c"
    assert index.search("the", k=3) == []  # stopwords only
    run = index.search_many({"q1": "cat mat"}, k=10)
    assert next(iter(run["q1"])) == "a"


def test_bm25_reads_the_title_too():
    index = BM25([*CORPUS, Document("e", "they erupt now and then", "Volcanoes")], stem=False)
    assert not index.stemmed
    assert [doc_id for doc_id, _ in index.search("volcanoes", k=3)] == ["e"]  # the word is in e's title only


def test_bm25_needs_documents():
    with pytest.raises(ValueError, match="at least one document"):
        BM25([])
