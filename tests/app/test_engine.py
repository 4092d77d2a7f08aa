"""The app's engine (no UI): uploads are parsed as data inside the app's folder and survive restarts, a bad file
changes nothing, corpora are indexed lazily once per encoder, K reaches the thinking mode only, a failing mode
stays in its own result, and the latentrag mode answers with its agent (or says that its checkpoint is missing)."""

from __future__ import annotations

import json
import re

import pytest

from laser_rag import store
from laser_rag.errors import CorpusError
from laser_rag.modes import MODES, RetrievalMode, collection_modes
from laser_rag_app.corpora import safe_name
from laser_rag_app.engine import stages


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "app"
    store.close_all()


def test_modes_come_from_the_registry():
    assert [p.mode for p in collection_modes()] == [RetrievalMode.BASIC, RetrievalMode.LASER, RetrievalMode.LATENTRAG]
    assert [m for m, p in MODES.items() if p.thinks] == [RetrievalMode.LASER]
    assert stages("latentrag") == ("prefill", "thought", "subquery", "retrieval", "answer")
    assert stages("rewrite") == ("rewrite", "encode", "search", "generate")


def test_safe_names_stay_inside_the_folder():
    assert safe_name("../../etc/passwd.md") == "passwd.md"
    assert safe_name("C:\\Users\\me\\notes.TXT") == "notes.txt"
    assert safe_name(".bashrc") == "bashrc"
    assert safe_name("a b;rm -rf.jsonl") == "a_b_rm_-rf.jsonl"
    assert safe_name("") == "upload"
    assert len(safe_name("x" * 300 + ".md")) <= 80


def test_upload_is_copied_parsed_indexed_and_kept_across_restarts(tmp_path, data_dir, make_engine, notes_file):
    source = notes_file(tmp_path, "my notes.md")
    engine = make_engine(data_dir)
    corpus = engine.add_upload(source, "../../outside/my notes.md")
    stored = list((data_dir / "uploads").rglob("*.md"))
    assert [p.name for p in stored] == ["my_notes.md"] and not (data_dir.parent / "outside").exists()
    assert corpus.label == "Your file: my_notes.md" and engine.is_indexed(corpus)
    manifest = (data_dir / "uploads" / "manifest.json").read_text()
    assert "my_notes.md" in manifest and not list((data_dir / "uploads").glob("*.tmp"))

    result = engine.answer("basic", "assert statement", corpus.key, top_k=3)
    assert result.error is None and result.answer == "an answer"
    assert result.hits and set(result.timings) == {"rewrite", "encode", "search", "generate"}

    store.close_all()  # as after a restart: the store is reopened from disk
    restarted = make_engine(data_dir)
    assert corpus.key in [c.key for c in restarted.corpora()]
    assert restarted.is_indexed(restarted.corpus(corpus.key))


def test_corpora_are_indexed_lazily_chunked_with_progress_and_rebuilt_for_a_new_encoder(
        data_dir, tiny_laser, make_engine):
    engine = make_engine(data_dir, tiny_laser)
    assert "not indexed yet" in engine.describe("pydoc-64")
    seen = []
    status = engine.ensure_indexed("pydoc-64", lambda fraction, message: seen.append((fraction, message)))
    assert status.startswith("Python reference: first 64 topics: 64 documents, indexed.")
    assert seen[-1] == (1.0, "indexed") and [f for f, _ in seen] == sorted(f for f, _ in seen)
    done = [re.fullmatch(r"laser-k3 encoder: ([\d,]+) of ([\d,]+) passages|laser encoder: ([\d,]+) of ([\d,]+) "
                         r"passages", message) for _, message in seen]
    last = [m for m in done if m][-1]
    assert last.group(3) == last.group(4)
    # long topics were cut to what the LaSER encoder reads; the hashing encoder reads them whole
    corpus = engine.corpus("pydoc-64")
    assert len(engine.passages(corpus, tiny_laser)) > 64 == len(engine.passages(corpus, engine.encoder("basic")))
    laser_collection = store.collection_name("pydoc-64", tiny_laser.label)
    assert engine.client.count(laser_collection) == len(engine.passages(corpus, tiny_laser))

    store.close_all()
    retrained = make_engine(data_dir, tiny_laser.with_config(pooling="last"))  # same names, other vectors
    assert retrained.encoder("laser").label == tiny_laser.label
    assert not retrained.is_indexed(retrained.corpus("pydoc-64"))  # rebuilt, never mixed
    retrained.ensure_indexed("pydoc-64")
    assert retrained.answer("laser", "assert statement", "pydoc-64", top_k=1).hits


def test_a_bad_file_gets_a_message_and_changes_nothing(tmp_path, data_dir, make_engine, notes_file):
    engine = make_engine(data_dir)
    good = engine.add_upload(notes_file(tmp_path))
    before = engine.client.collection_names()
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "no closing brace"\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"broken.jsonl, line 2: invalid JSON") as raised:
        engine.add_upload(bad)
    assert str(data_dir) not in str(raised.value)  # no server path in the message
    script = tmp_path / "run.py"
    script.write_text("print('never executed')\n")
    with pytest.raises(CorpusError, match="not a corpus file"):
        engine.add_upload(script)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(CorpusError, match="empty"):
        engine.add_upload(empty)
    assert engine.client.collection_names() == before
    assert [c.key for c in engine.uploads.corpora()] == [good.key]
    assert len(list((data_dir / "uploads").iterdir())) == 2  # the good file's folder and the manifest


def test_a_failing_mode_reports_in_its_own_result_and_k_reaches_the_thinking_mode_only(
        tmp_path, data_dir, tiny_laser, make_engine, notes_file):
    steps = []
    thoughts = tiny_laser.thoughts  # the LaSER column embeds its query through thoughts (shown under its passages)

    def spy(texts, kind="query", **kwargs):
        steps.append(kwargs.get("num_thinking_steps"))
        return thoughts(texts, kind, **kwargs)

    tiny_laser.thoughts = spy
    engine = make_engine(data_dir, tiny_laser)
    corpus = engine.add_upload(notes_file(tmp_path))
    assert engine.default_steps() == 3
    results = {mode: engine.answer(mode, "assert statement", corpus.key, top_k=2, steps=5) for mode in MODES}
    assert results[RetrievalMode.BASIC].answer == results[RetrievalMode.LASER].answer == "an answer"
    assert results[RetrievalMode.BASIC].error is None and results[RetrievalMode.LASER].error is None
    rewrite = results[RetrievalMode.REWRITE]
    assert rewrite.error.startswith("Generation failed: stand-in hit its time limit") and not rewrite.hits
    assert rewrite.answer == "abc"  # what the model wrote before its time ran out
    assert steps == [5] and engine.encoder("basic").queries == ["assert statement"]
    assert len(results[RetrievalMode.LASER].thoughts.steps) == 5 and results[RetrievalMode.BASIC].thoughts is None
    missing = engine.answer("laser", "anything", "no-such-corpus")
    assert missing.error == "CorpusError: unknown corpus 'no-such-corpus'"
    assert engine.answer("laser", "  ", corpus.key).error == "Type a question first."


def test_collections_are_indexed_hybrid_and_the_toggle_reaches_every_mode(tmp_path, data_dir, make_engine, notes_file):
    engine = make_engine(data_dir)
    corpus = engine.add_upload(notes_file(tmp_path))
    for mode in MODES:
        name = store.collection_name(corpus.key, engine.encoder(mode).label)
        assert store.VectorCollection.open_existing(engine.client, name).hybrid
    for mode in (RetrievalMode.BASIC, RetrievalMode.LASER):
        dense, hybrid = (engine.answer(mode, "assert statement", corpus.key, top_k=2, hybrid=flag)
                         for flag in (False, True))
        assert dense.error is None and hybrid.error is None and hybrid.hits and hybrid.answer == "an answer"
        assert set(hybrid.timings) == {"rewrite", "encode", "search", "generate"}


def test_a_collection_indexed_before_hybrid_is_upgraded_in_place(tmp_path, data_dir, make_engine, notes_file):
    from laser_rag.retrieval import open_retriever

    engine = make_engine(data_dir)
    staged = engine.uploads.stage(notes_file(tmp_path))
    corpus, documents = staged.corpus, staged.documents
    engine._documents[corpus.key] = documents
    basic = engine.encoder("basic")
    old = open_retriever("basic", corpus=corpus.key, encoder=basic, client=engine.client, create=True)
    old.index(engine.passages(corpus, basic))  # as the app did before it went hybrid
    assert not old.collection.hybrid and documents
    ids = [p.id for p in engine.client.scroll(old.collection.name, limit=100)[0]]
    before = engine.client.vectors(old.collection.name, ids)
    engine._index(corpus, None)
    after = engine.client.vectors(old.collection.name, ids)
    assert store.VectorCollection.open_existing(engine.client, old.collection.name).hybrid
    assert before == after  # no dense vector re-encoded


def test_without_its_checkpoint_the_latentrag_column_says_so_and_the_others_answer(
        tmp_path, data_dir, make_engine, notes_file):
    engine = make_engine(data_dir, checkpoint=tmp_path / "missing")
    corpus = engine.add_upload(notes_file(tmp_path))
    name = store.collection_name(corpus.key, engine.encoder("latentrag").label)
    assert engine.client.count(name) == len(engine.passages(corpus, engine.encoder("latentrag")))
    results = {mode: engine.answer(mode, "assert statement", corpus.key, top_k=2) for mode in MODES}
    latent = results.pop(RetrievalMode.LATENTRAG)
    assert latent.error.startswith("LatentRAG checkpoint not found (missing): train one with "
                                   "`laser-rag train-latentrag`")
    assert "--latentrag-checkpoint" in latent.error and str(tmp_path) not in latent.error
    assert not latent.answer and not latent.steps and not latent.timings
    assert [r.answer for r in results.values()] == ["an answer", "an answer", "abc"]
    assert results[RetrievalMode.BASIC].error is None and results[RetrievalMode.LASER].error is None
    engine.preload()  # a missing agent is logged, never raised


def test_latentrag_mode_answers_with_the_agent_over_the_minilm_collection(
        tmp_path, data_dir, make_engine, minilm, latentrag_checkpoint):
    facts = {"Assert": "The assert statement checks a condition while debugging.",
             "Pass": "The pass statement does nothing.", "Del": "The del statement removes a name binding.",
             "Return": "The return statement leaves a function.", "Raise": "The raise statement raises an exception."}
    tiny = tmp_path / "statements.jsonl"
    tiny.write_text("".join(json.dumps({"title": t, "text": x}) + "\n" for t, x in facts.items()), encoding="utf-8")
    engine = make_engine(data_dir, latentrag=minilm, checkpoint=latentrag_checkpoint)
    corpus = engine.add_upload(tiny)
    name = store.collection_name(corpus.key, minilm.label)
    assert engine.client.count(name) == len(facts)
    result = engine.answer("latentrag", "What does the assert statement do?", corpus.key, top_k=1, steps=5,
                           hybrid=True, decode=True)
    assert result.error is None, result.error
    assert result.answer and result.forward_passes > 0
    (step,) = result.steps  # the fixture's agent retrieves once
    assert step.number == 1 and len(step.hits) == 3 and result.hits == step.hits  # its own top-k, not the slider's
    assert {hit.title for hit in step.hits} <= set(facts)
    assert isinstance(step.thought, str) and isinstance(step.subquery, str) and isinstance(result.final_thought, str)
    assert list(result.timings) == ["prefill", "thought", "subquery", "retrieval", "answer", "decode"]
    assert all(ms > 0 for ms in result.timings.values())
