"""laser_rag_benchmarks (``laser-rag eval``): metrics against hand-computed values, mode parsing, slicing, the
document-vector cache, reports, the in-memory Qdrant retrievers, and the eval command end to end on a tiny BEIR
directory cut from a shared set."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from laser_rag.beir import RetrievalDataset, load_beir, save_beir
from laser_rag.corpus import Document
from laser_rag.evaluation import score_run
from laser_rag.modes import ModeSources, RetrievalMode
from laser_rag_benchmarks.cache import corpus_hash, document_vectors
from laser_rag_datasets.subsets import slice_dataset
from laser_rag_benchmarks.report import EvalReport, ModeFigures, results_table
from laser_rag_benchmarks.retrievers import DEFAULT_MODES, EvalSettings, build_retriever, parse_modes
from laser_rag_benchmarks.shared import SHARED_EVALS, shared_eval, shared_slice

# ----------------------------------------------------------------------------------------------- metrics and modes


def test_the_eval_metrics_match_hand_computed_values():
    qrels = {"q1": {"d1": 1, "d3": 1}, "q2": {"d2": 1}}
    ahead = {f"x{i}": 1.0 - i / 100 for i in range(10)}  # ten irrelevant documents ahead of q2's relevant one
    run = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7}, "q2": {**ahead, "d2": 0.5}}
    scores = score_run(qrels, run, EvalSettings(k=10).metrics)
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # relevant at ranks 1 and 3; ideal 1 and 2
    assert scores["ndcg_cut_10"] == pytest.approx(ndcg_q1 / 2)   # q2's relevant is at rank 11: 0
    assert scores["recall_10"] == pytest.approx(0.5)
    assert scores["recall_100"] == pytest.approx(1.0)
    assert scores["recip_rank@10"] == pytest.approx(0.5)          # 1 for q1, 0 for q2 (rank 11 is past the cut)


def test_settings_name_their_metrics_and_check_k():
    assert EvalSettings(k=5).metrics == ("ndcg_cut_5", "recall_5", "recall_100", "recip_rank@5")
    assert EvalSettings(k=100).metrics == ("ndcg_cut_100", "recall_100", "recip_rank@100")
    with pytest.raises(ValueError):
        EvalSettings(k=101)


def test_parse_modes():
    assert parse_modes("bm25, LASER,bm25") == ["bm25", "laser"]
    assert parse_modes(["rewrite"]) == ["rewrite"]
    assert parse_modes([RetrievalMode.BASIC]) == ["basic"]
    with pytest.raises(ValueError, match="unknown mode 'colbert'"):
        parse_modes("bm25,colbert")
    assert parse_modes("bm25,laser,laser+hybrid,MiniLM+Hybrid") == ["bm25", "laser", "laser+hybrid", "minilm+hybrid"]
    with pytest.raises(ValueError, match="unknown mode 'bm25\\+hybrid'"):
        parse_modes("bm25+hybrid")  # BM25 is the lexical side already
    with pytest.raises(ValueError, match="eval-qa"):
        parse_modes("laser,latentrag")  # an agent answers in several steps: eval-qa measures it
    assert EvalSettings(models=ModeSources({"basic": "my-basic"})).encoder_source("rewrite+hybrid") == "my-basic"


def test_the_modes_are_the_registry_plus_two_anchors():
    from laser_rag.modes import MODES

    # every single-query mode of the registry; an agent mode (latentrag) is measured by eval-qa instead
    assert DEFAULT_MODES == ("bm25", "minilm", *(mode.value for mode, p in MODES.items() if p.agent is None))
    assert "latentrag" not in DEFAULT_MODES


def test_settings_pick_each_mode_encoder_by_the_collection_it_searches():
    settings = EvalSettings(models=ModeSources({"laser": "my-laser", "basic": "my-basic"}))
    assert settings.encoder_source("laser") == "my-laser"
    assert settings.encoder_source("basic") == settings.encoder_source("rewrite") == "my-basic"
    assert EvalSettings().encoder_source("rewrite") is None


# ----------------------------------------------------------------------------------------------- data and caching


def _tiny() -> RetrievalDataset:
    corpus = [Document("a", "the cat sat on the mat", "Cats"), Document("b", "dogs chase cats in the park"),
              Document("c", "stock markets fell sharply on monday"), Document("d", "a recipe for lemon cake")]
    return RetrievalDataset("tiny", corpus, {"q1": "where did the cat sit", "q2": "why did markets fall",
                                             "q3": "no judgement"}, {"q1": {"a": 1}, "q2": {"c": 1}, "q3": {"d": 0}})


def test_slice_keeps_relevant_documents_and_order():
    sliced = slice_dataset(_tiny(), max_queries=1, max_docs=2, seed=0)
    assert list(sliced.queries) == ["q1"]
    assert "a" in {d.id for d in sliced.corpus} and len(sliced.corpus) == 2
    ids = [d.id for d in _tiny().corpus]
    assert [d.id for d in sliced.corpus] == sorted((d.id for d in sliced.corpus), key=ids.index)
    assert sliced.name == "tiny[1q,2d]"


class CountingEncoder:
    """A deterministic stand-in encoder that counts the documents it encodes (what the cache reads of one)."""

    dimension = 3
    fingerprint = "counting-v1"
    label = "counting"
    precision = "float32"
    max_length = 64

    def __init__(self):
        self.encoded = 0

    def document_text(self, title, text):
        return f"{title}\n{text}" if title else text

    def encode_documents(self, texts, batch_size=16, show_progress_bar=None):
        self.encoded += len(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_document_vectors_are_cached_by_encoder_and_corpus(tmp_path):
    corpus = _tiny().corpus
    encoder = CountingEncoder()
    first, _, cached = document_vectors(encoder, corpus, cache_dir=tmp_path, chunk_size=3, progress=False)
    assert not cached and encoder.encoded == 4
    assert first[0, 0] == len("Cats\nthe cat sat on the mat")  # the encoder's own document text
    again, seconds, cached = document_vectors(encoder, corpus, cache_dir=tmp_path, progress=False)
    assert cached and seconds == 0 and encoder.encoded == 4
    np.testing.assert_array_equal(first, again)
    changed = [*corpus[:3], Document("d", "a recipe for lemon tart")]
    assert corpus_hash(changed) != corpus_hash(corpus)
    assert corpus_hash([Document("a", "x", "T")]) != corpus_hash([Document("a", "x")])  # titles count
    document_vectors(encoder, changed, cache_dir=tmp_path, progress=False)
    assert encoder.encoded == 8
    assert sorted(p.suffix for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [".json", ".json",
                                                                                           ".npy", ".npy"]


def test_an_interrupted_encoding_resumes_from_its_chunks(tmp_path):
    corpus = _tiny().corpus

    class Failing(CountingEncoder):
        def encode_documents(self, texts, **kwargs):
            if self.encoded >= 2:
                raise KeyboardInterrupt
            return super().encode_documents(texts, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        document_vectors(Failing(), corpus, cache_dir=tmp_path, chunk_size=2, progress=False)
    encoder = CountingEncoder()
    vectors, _, _ = document_vectors(encoder, corpus, cache_dir=tmp_path, chunk_size=2, progress=False)
    assert encoder.encoded == 2 and vectors.shape == (4, 3)  # the first chunk came from disk


def test_two_evals_encoding_the_same_corpus_share_one_encoding(tmp_path):
    import threading
    import time

    corpus = _tiny().corpus

    class Slow(CountingEncoder):
        def encode_documents(self, texts, **kwargs):
            time.sleep(0.2)  # long enough for the other caller to arrive while this one encodes
            return super().encode_documents(texts, **kwargs)

    encoder, results = Slow(), []
    callers = [threading.Thread(target=lambda: results.append(document_vectors(
        encoder, corpus, cache_dir=tmp_path, chunk_size=2, progress=False))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(results) == 2 and encoder.encoded == 4  # encoded once; the second caller read the cache
    assert sorted(cached for _, _, cached in results) == [False, True]
    np.testing.assert_array_equal(results[0][0], results[1][0])


# ----------------------------------------------------------------------------------------------- the retrievers


def test_a_dense_retriever_searches_qdrant_exactly_with_cached_vectors(minilm, tmp_path):
    """minilm over an in-memory Qdrant collection: the same ranking as brute-force cosine over the same vectors,
    the collection filled from the cache (a second build encodes nothing)."""
    corpus = _tiny().corpus
    retriever = build_retriever("minilm", corpus, cache_dir=tmp_path, progress=False)
    assert retriever.collection.count() == 4 and retriever.mode == "minilm"
    result = retriever.retrieve("why did markets fall")
    docs = minilm.encode_documents([minilm.document_text(d.title, d.text) for d in corpus])
    scores = docs @ minilm.encode_queries(["why did markets fall"])[0]
    assert [hit.id for hit in result.hits] == [corpus[i].id for i in np.argsort(-scores)]
    assert [hit.score for hit in result.hits] == pytest.approx(sorted(scores, reverse=True), abs=1e-4)
    assert set(result.timings) >= {"encode_ms", "search_ms"}
    collections = {}
    build_retriever("minilm", corpus, cache_dir=tmp_path, progress=False, collections=collections)
    assert [indexed.cached for indexed in collections.values()] == [True]
    with pytest.raises(ValueError, match="not a dense mode"):
        build_retriever("bm25", corpus)


def test_hybrid_rows_share_the_dense_collection_and_time_the_sparse_stage(minilm, scifact_slice, tmp_path):
    from laser_rag_benchmarks.harness import evaluate_modes

    report = evaluate_modes(scifact_slice, "bm25,minilm,minilm+hybrid", cache_dir=tmp_path, progress=False)
    assert [r.mode for r in report.results] == ["bm25", "minilm", "minilm+hybrid"]
    dense, hybrid = report.result("minilm"), report.result("minilm+hybrid")
    assert hybrid.fingerprint == dense.fingerprint == minilm.fingerprint
    assert "BM25 sparse (stemmed, DBSF fusion in Qdrant)" in hybrid.encoder
    assert "sparse_ms" in hybrid.stages_ms and "sparse_ms" not in dense.stages_ms
    assert hybrid.index_seconds == dense.index_seconds  # one collection: the dense vectors were encoded once
    assert all(0.0 < r.metrics["ndcg_cut_10"] <= 1.0 for r in report.results)
    for result in report.results:  # the per-query figures are what the means average, for every judged query
        assert len(result.per_query) == report.num_queries
        assert result.metrics == {m: pytest.approx(np.mean([q[m] for q in result.per_query.values()]))
                                  for m in result.metrics}


# ----------------------------------------------------------------------------------------------- reports


def _result(mode, median, ndcg=0.5):
    return ModeFigures(mode=mode, encoder=mode, fingerprint=None, metrics={"ndcg_cut_10": ndcg, "recall_100": 1.0},
                      latency_ms={"median": median, "p95": median * 2, "mean": median}, stages_ms={}, num_queries=3)


def test_report_round_trip_table_and_ratio(tmp_path):
    report = EvalReport("tiny", 4, 3, asdict(EvalSettings()), [_result("laser", 20.0), _result("rewrite", 2000.0)])
    assert report.rewrite_laser_ratio == pytest.approx(100.0)
    path = report.save(tmp_path / "r.json")
    assert json.loads(path.read_text())["rewrite_laser_latency_ratio"] == pytest.approx(100.0)
    loaded = EvalReport.load(path)
    assert loaded == report and loaded.result(RetrievalMode.LASER) == loaded.result("laser")
    table = results_table(loaded)
    assert "| dataset | mode | nDCG@10 | R@100 | latency median (ms) | latency p95 (ms) |" in table
    assert "| tiny | rewrite | 0.500 | 1.000 | 2,000 | 4,000 |" in table
    assert "100.0x (LaSER at 1.0% of the rewrite pipeline's latency)" in table


def test_results_are_found_in_the_checkout_or_where_the_environment_says(tmp_path, monkeypatch):
    from laser_rag.errors import LaserRagError
    from laser_rag_benchmarks import shared

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.delenv(shared.RESULTS_ENV, raising=False)
    assert shared.find_results_dir() == repo / "benchmarks" / "results"  # this checkout's, not the package's data
    monkeypatch.setenv(shared.RESULTS_ENV, str(tmp_path / "mine"))
    assert shared.find_results_dir() == tmp_path / "mine"
    # an installed copy outside any checkout, run from elsewhere: a clear error, not a folder in site-packages
    monkeypatch.delenv(shared.RESULTS_ENV)
    monkeypatch.setattr(shared, "__file__", str(tmp_path / "site-packages" / "laser_rag_benchmarks" / "shared.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(shared.ResultsNotFoundError, match=shared.RESULTS_ENV) as caught:
        shared.find_results_dir()
    assert isinstance(caught.value, LaserRagError) and isinstance(caught.value, FileNotFoundError)
    monkeypatch.chdir(repo)
    assert shared.find_results_dir() == repo / "benchmarks" / "results"


def test_the_committed_reports_still_load():
    from laser_rag_benchmarks.shared import find_results_dir

    reports = [EvalReport.load(find_results_dir() / f"retrieval_{name}.json") for name in SHARED_EVALS]
    assert [r.mode for r in reports[0].results] == list(DEFAULT_MODES)
    assert all(set(r.settings) == set(asdict(EvalSettings())) for r in reports)


# ----------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_beir(tmp_path_factory, shared_data):
    """Two HotpotQA questions over their supporting paragraphs and a few distractors, written with save_beir."""
    from laser_rag_datasets.shared import shared_dataset

    sliced = slice_dataset(shared_dataset("hotpotqa", "validation", shared_data), max_queries=2, max_docs=7)
    return save_beir(sliced, tmp_path_factory.mktemp("beir") / "tiny", split="test")


def test_eval_command_end_to_end(tiny_beir, tmp_path):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    out = tmp_path / "report.json"
    args = ["eval", "--data", str(tiny_beir), "--modes", "bm25,basic,laser,rewrite", "--rewrite-max-new-tokens",
            "4", "--out", str(out), "--cache-dir", str(tmp_path / "vectors")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| dataset | mode | nDCG@10 | R@10 | R@100 | MRR@10 |" in result.output
    assert "rewrite/LaSER median query latency" in result.output
    report = EvalReport.load(out)
    assert [r.mode for r in report.results] == ["bm25", "basic", "laser", "rewrite"]
    assert report.num_queries == 2 and report.num_docs == len(load_beir(tiny_beir).corpus)
    for r in report.results:
        assert set(r.metrics) == {"ndcg_cut_10", "recall_10", "recall_100", "recip_rank@10"}
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values())
        assert r.metrics["recall_100"] == 1.0  # 7 documents: everything is in the top 100
        assert r.latency_ms["median"] > 0 and r.latency_ms["p95"] >= r.latency_ms["median"]
    rewrite = report.result("rewrite")
    assert rewrite.stages_ms["rewrite_ms"] > 0 and report.rewrite_laser_ratio is not None
    assert report.result("basic").fingerprint == rewrite.fingerprint  # rewrite searches basic's vectors
    assert report.command.startswith("laser-rag eval --data")


def test_convert_writes_a_beir_directory(tmp_path, shared_data):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["convert", "hotpotqa", str(tmp_path / "hp"), "--split", "validation"])
    assert result.exit_code == 0, result.output
    loaded = load_beir(tmp_path / "hp", "validation")
    assert len(loaded.queries) == 100 and "CC BY-SA" in (tmp_path / "hp" / "LICENSE.txt").read_text()
    result = CliRunner().invoke(app, ["convert", "msmarco", str(tmp_path / "ms")])
    assert result.exit_code == 1 and "unknown shared dataset" in result.output


def test_eval_command_rejects_two_sources(tmp_path):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--dataset", "hotpotqa"])
    assert result.exit_code == 1 and "either" in result.output
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "not found" in result.output
    result = CliRunner().invoke(app, ["eval", "--data", str(tmp_path), "--modes", "bm25,colbert"])
    assert result.exit_code == 2 and "unknown mode 'colbert'" in result.output  # a usage error, before any loading


def test_shared_eval_reuses_a_report_made_with_the_same_settings(tmp_path, shared_data):
    dataset = shared_slice("hotpotqa")
    plan = {k: v for k, v in SHARED_EVALS["hotpotqa"].items() if k not in ("split", "max_docs")}
    report = EvalReport(dataset.name, len(dataset.corpus), len(dataset.queries), asdict(EvalSettings(**plan)),
                        [_result("bm25", 1.0)])
    report.save(tmp_path / "retrieval_hotpotqa.json")
    assert shared_eval("hotpotqa", modes="bm25", results_dir=tmp_path) == report
    fresh = shared_eval("hotpotqa", modes="bm25", results_dir=tmp_path, max_queries=3, progress=False)
    assert fresh != report and fresh.num_queries == 3 and fresh.result("bm25").metrics["recall_100"] > 0
