"""laser_rag_training.trajectories: templated multi-step trajectories, their split hygiene and the retrieval filter."""

from __future__ import annotations

import collections
import json
import re

import pytest

from laser_rag_datasets.shared import (
    hotpotqa_evidence_records,
    read_json_lines,
    shared_data_dir,
    shared_dataset,
    shared_file,
    split_of,
    strategyqa_records,
)
from laser_rag_benchmarks.qa import load_qa
from laser_rag_training.trajectories import (
    MAX_STEPS,
    TRAJECTORY_SOURCES,
    Trajectory,
    TrajectoryStep,
    attach_documents,
    build_trajectories,
    strategyqa_trajectories,
    trajectory_corpus,
)

_REFERENCE = re.compile(r"#\s*\d")


def _key(question: str) -> str:
    return " ".join(question.lower().split())


@pytest.fixture(scope="module")
def trajectories() -> list[Trajectory]:
    if shared_data_dir() is None:
        pytest.skip("shared datasets not found (set $LASER_RAG_SHARED_DATA)")
    return build_trajectories()


def by_source(trajectories, source):
    return [t for t in trajectories if t.source == source]


def test_counts_per_source(trajectories, capsys):
    counts = collections.Counter(t.source for t in trajectories)
    steps = {s: collections.Counter(len(t.steps) for t in by_source(trajectories, s)) for s in TRAJECTORY_SOURCES}
    with capsys.disabled():
        shape = {source: dict(sorted(count.items())) for source, count in steps.items()}
        print(f"\ntrajectories per source: {dict(counts)}; trajectories by number of steps: {shape}")
    assert counts["strategyqa"] > 1000 and counts["hotpotqa"] > 300 and counts["musique"] >= 20
    assert set(counts) == set(TRAJECTORY_SOURCES)


def test_no_evaluation_question_is_a_trajectory(trajectories):
    sqa = by_source(trajectories, "strategyqa")
    held_out = {r["qid"] for split in ("validation", "test") for r in strategyqa_records(split)}
    assert all(split_of(_key(t.question)) == "train" for t in sqa) and not {t.qid for t in sqa} & held_out
    assert not {_key(t.question) for t in sqa} & {_key(item.question) for item in load_qa("strategyqa").items}

    hotpot = by_source(trajectories, "hotpotqa")
    assert all(split_of(t.qid) == "train" for t in hotpot)
    assert {t.qid for t in hotpot} <= {r["id"] for r in hotpotqa_evidence_records("train")}
    assert not {_key(t.question) for t in hotpot} & {_key(item.question) for item in load_qa("hotpotqa").items}

    musique = by_source(trajectories, "musique")
    rows = {row["id"]: row for row in read_json_lines(shared_file("musique/musique_full_v1.0_train_first100.jsonl"))}
    assert all(rows[t.qid]["answerable"] is False for t in musique)
    evaluated = load_qa("musique").items
    assert not {t.qid for t in musique} & {item.id for item in evaluated}
    assert not {_key(t.question) for t in musique} & {_key(item.question) for item in evaluated}
    hops = {step["id"] for item in evaluated for step in rows[item.id]["question_decomposition"]}
    assert not any({step["id"] for step in rows[t.qid]["question_decomposition"]} & hops for t in musique)


def test_every_trajectory_is_well_formed(trajectories):
    for t in trajectories:
        assert 1 <= len(t.steps) <= MAX_STEPS, t.qid
        assert t.answer and t.final_thought and t.question
        assert any(step.gold for step in t.steps), t.qid
        for step in t.steps:
            assert step.thought.strip() and step.subquery.strip(), t.qid
            assert len(step.thought.split()) <= 45, step.thought
            assert not step.documents and not step.document_titles
            # no decomposition reference left (a "#1" the question itself holds, "finished #1 in 1915", may stay)
            assert len(_REFERENCE.findall(step.subquery)) <= len(_REFERENCE.findall(t.question)), step.subquery
    assert all(t.answer in ("yes", "no") for t in by_source(trajectories, "strategyqa"))
    assert not any(_REFERENCE.search(s.subquery) for t in trajectories if t.source != "hotpotqa" for s in t.steps)


def test_gold_is_the_annotated_evidence(trajectories):
    records = {r["qid"]: r for r in strategyqa_records("train")}
    for t in by_source(trajectories, "strategyqa"):  # golden_sentence is per step: the steps share it out exactly
        gold = [g for step in t.steps for g in step.gold]
        assert sorted(set(gold)) == sorted(text for _, text in records[t.qid]["positives"]), t.qid
    evidence = {r["id"]: r["evidence"] for r in hotpotqa_evidence_records("train")}
    for t in by_source(trajectories, "hotpotqa"):
        assert sorted(g for step in t.steps for g in step.gold) == sorted(evidence[t.qid]), t.qid
    for source in TRAJECTORY_SOURCES:
        texts = {doc.text for doc in trajectory_corpus(source)}
        assert all(g in texts for t in by_source(trajectories, source) for step in t.steps for g in step.gold), source


def test_trajectory_corpus_leaves_out_evaluation_evidence(trajectories):
    for source, name in (("strategyqa", "strategyqa"), ("hotpotqa", "hotpotqa_evidence")):
        corpus = {doc.id for doc in trajectory_corpus(source)}
        train = {d for docs in shared_dataset(name, "train").qrels.values() for d in docs}
        held = {d for split in ("validation", "test") for docs in shared_dataset(name, split).qrels.values()
                for d in docs}
        assert train <= corpus and not (held - train) & corpus
    musique = trajectory_corpus("musique")
    assert all(doc.title for doc in musique) and len({doc.id for doc in musique}) == len(musique)
    evaluated = load_qa("musique")
    supporting = {doc.text for doc in evaluated.corpus if doc.id in {d for i in evaluated.items for d in i.supporting}}
    assert not supporting & {doc.text for doc in musique}
    with pytest.raises(ValueError, match="unknown trajectory source"):
        trajectory_corpus("scifact")


def test_round_trip(trajectories):
    for t in trajectories[::50]:
        data = json.loads(json.dumps(t.to_dict()))
        assert Trajectory.from_dict(data) == t
        assert isinstance(Trajectory.from_dict(data).steps[0], TrajectoryStep)


def test_attach_documents_keeps_only_trajectories_that_found_their_gold(trajectories):
    sample = [t for source in TRAJECTORY_SOURCES for t in by_source(trajectories, source)[:5]]
    sample = [Trajectory.from_dict(t.to_dict()) for t in sample]  # copies: attach_documents fills them in place
    calls = []

    def gold_search(queries):
        calls.append(len(queries))
        steps = [step for t in sample for step in t.steps]
        assert queries == [step.subquery for step in steps]
        # the gold inside a longer document, whitespace changed; then filler beyond k
        return [[("T", "Intro.  " + "  ".join(step.gold[:1] or ["none"]) + " More.")] + [("F", "filler")] * 4
                for step in steps]

    kept = attach_documents(sample, gold_search, k=3)
    assert kept == sample and calls == [sum(len(t.steps) for t in sample)]  # one batched call
    assert all(len(step.documents) == len(step.document_titles) == 3 for t in kept for step in t.steps)
    assert kept[0].steps[0].document_titles == ["T", "F", "F"]
    assert all(Trajectory.from_dict(json.loads(json.dumps(t.to_dict()))) == t for t in kept)

    unrelated = attach_documents(sample, lambda queries: [[("X", "Nothing to see here.")] for _ in queries])
    assert unrelated == [] and sample[0].steps[0].documents == ["Nothing to see here."]
    with pytest.raises(ValueError, match="result lists"):
        attach_documents(sample, lambda queries: [])


def test_build_options(trajectories):
    few = build_trajectories(per_source=3)
    assert collections.Counter(t.source for t in few) == {source: 3 for source in TRAJECTORY_SOURCES}
    assert [t.qid for t in few[:3]] == [t.qid for t in by_source(trajectories, "strategyqa")[:3]]
    with pytest.raises(ValueError, match="unknown trajectory source"):
        build_trajectories(["scifact"])
    with pytest.raises(ValueError, match="only split='train'"):
        strategyqa_trajectories("validation")
