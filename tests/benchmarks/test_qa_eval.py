"""laser_rag_benchmarks.qa_eval: the end-to-end QA comparison (LatentRAG, explicit, direct, naive) on tiny untrained
checkpoints of the real SmolLM2 and a two-question HotpotQA slice; and its ``laser-rag eval-qa`` command."""

from __future__ import annotations

import json

import pytest

from laser_rag_benchmarks.qa import QASet
from laser_rag_benchmarks.qa_eval import SYSTEMS, parse_systems, qa_table, run_qa_eval

STAGES = {"prefill_ms", "thought_ms", "subquery_ms", "retrieval_ms", "answer_ms"}


def _shrink(directory) -> None:
    """Small loop limits and short documents, so that untrained models stop early and prefills stay short."""
    path = directory / "latentrag_config.json"
    config = json.loads(path.read_text())
    config.update(max_answer_tokens=4, max_decode_tokens=4, max_retrievals=1, document_chars=120)
    path.write_text(json.dumps(config))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared machine two threads contend with other work and run several times slower."""
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LASER_RAG_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Untrained LatentRAG and explicit-agent checkpoints (LoRA at its initialisation: the base model's behaviour)."""
    import torch

    pytest.importorskip("peft")
    from laser_rag_training.latentrag.config import LatentRAGTrainConfig
    from laser_rag_training.latentrag.train import ExplicitTrainer, LatentTrainer

    latent = tmp_path_factory.mktemp("latentrag")
    explicit = tmp_path_factory.mktemp("explicit")
    try:
        trainer = LatentTrainer(LatentRAGTrainConfig(), beta=0.03)
        trainer.save(latent, dtype=torch.float32)
        del trainer
        trainer = ExplicitTrainer(LatentRAGTrainConfig(system="explicit"), 0.03)
        trainer.save(explicit)
        del trainer
    except OSError as exc:  # no local copy of SmolLM2 / all-MiniLM-L6-v2
        pytest.skip(f"models not available: {exc}")
    _shrink(latent)
    _shrink(explicit)
    return latent, explicit


@pytest.fixture(scope="module")
def hotpot_rows():
    """The first two records of the shared HotpotQA dev file, official layout."""
    from laser_rag_datasets.shared import read_json_lines, shared_data_dir, shared_file

    if shared_data_dir() is None:
        pytest.skip("shared datasets not found (set $LASER_RAG_SHARED_DATA)")
    return read_json_lines(shared_file("hotpotqa/dev_100.jsonl"))[:2]


@pytest.fixture(scope="module")
def two_questions(hotpot_rows):
    from laser_rag_benchmarks.qa import load_qa

    qa = load_qa("hotpotqa", limit=2)
    titles = {title for row in hotpot_rows for title, _ in row["context"]}
    corpus = [doc for doc in qa.corpus if doc.title in titles]  # the two questions' paragraphs only
    assert 2 <= len(corpus) < len(qa.corpus)
    return QASet(qa.name, qa.items, corpus)


@pytest.fixture(scope="module")
def result(checkpoints, two_questions):
    latent, explicit = checkpoints
    return run_qa_eval(two_questions, latentrag_checkpoint=latent, explicit_checkpoint=explicit, warmup=0,
                       progress=False)  # the command's test runs the warm-up


def test_every_system_is_scored_on_every_question(result):
    assert result["dataset"] == "hotpotqa" and result["n"] == 2 and result["threads"] == 1
    assert list(result["systems"]) == list(SYSTEMS)
    for name, summary in result["systems"].items():
        assert summary["n"] == 2, name
        for metric in ("em", "f1", "cover_em"):
            mean, low, high = summary[metric]
            assert 0.0 <= low <= mean <= high <= 1.0, (name, metric)
        assert summary["latency_ms"]["mean"] > 0 and summary["latency_ms"]["median"] > 0
        assert summary["forward_passes"] >= 1
        assert 0.0 <= summary["questions_with_success"] <= 1.0
    json.dumps(result)  # JSON-serialisable as it is


def test_systems_run_interleaved_in_a_rotating_order(result):
    orders = [q["order"] for q in result["per_question"]]
    assert len(orders) == 2 and all(sorted(o) == sorted(SYSTEMS) for o in orders)
    assert orders[0] != orders[1] and orders[0][0] != orders[1][0]
    assert all(list(q["systems"]) == list(SYSTEMS) for q in result["per_question"])


def test_stage_timings_and_retrieval_counts(result):
    systems = result["systems"]
    assert STAGES <= set(systems["latentrag"]["stages_ms"])
    assert "decode_ms" in systems["latentrag+decode"]["stages_ms"]
    for question in result["per_question"]:
        assert STAGES <= set(question["systems"]["latentrag"]["timings"])
        assert question["systems"]["latentrag"]["timings"]["total_ms"] > 0
    assert systems["direct"]["retrievals"] == 0 and systems["direct"]["retrieval_success"] is None
    assert systems["naive"]["retrievals"] == 1
    assert systems["direct"]["stages_ms"]["retrieval_ms"] == 0
    for name in ("naive", "explicit", "latentrag", "latentrag+decode"):
        assert 0 <= systems[name]["retrievals"] <= 1  # max_retrievals 1
        rate = systems[name]["retrieval_success"]
        assert rate is None or 0.0 <= rate <= 1.0
    for question in result["per_question"]:
        naive = question["systems"]["naive"]
        assert len(naive["steps"]) == 1 and len(naive["steps"][0]["documents"]) == 3  # top-3
        assert naive["steps"][0]["subquery"] == question["question"]
        for step in question["systems"]["latentrag+decode"]["steps"]:  # decoded text for every latent retrieval
            assert isinstance(step["thought"], str) and isinstance(step["subquery"], str)
        for step in question["systems"]["latentrag"]["steps"]:
            assert "thought" not in step


def test_paired_comparisons_and_ratios(result):
    assert set(result["paired"]) == {"latentrag vs explicit", "latentrag vs direct", "latentrag vs naive"}
    for pair in result["paired"].values():
        diff, low, high = pair["em_diff"]
        assert -1.0 <= low <= diff <= high <= 1.0
        assert 0.0 <= pair["mcnemar_p"] <= 1.0
    assert result["latency_ratio"]["latentrag / explicit"] > 0
    assert result["threads"] >= 1 and len(result["load_average"]) == 3 and "torch thread" in result["runtime"]


def test_table_has_a_row_per_system(result):
    table = qa_table(result)
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1].strip() for row in rows] == list(SYSTEMS)
    assert "EM (95% CI)" in table and "latentrag vs explicit" in table and "latentrag / explicit" in table


def test_systems_parse_and_missing_checkpoints_name_the_trainer(tmp_path, two_questions):
    from laser_rag.errors import ModelNotFoundError

    assert parse_systems("latentrag, direct") == ("direct", "latentrag")
    with pytest.raises(ValueError, match="unknown system"):
        parse_systems("direct,colbert")
    with pytest.raises(ModelNotFoundError, match="laser-rag train-latentrag"):
        run_qa_eval(two_questions, latentrag_checkpoint=tmp_path, systems="latentrag", progress=False)
    with pytest.raises(ModelNotFoundError, match="explicit-agent.yaml"):
        run_qa_eval(two_questions, explicit_checkpoint=tmp_path, systems="direct", progress=False)


def test_eval_qa_command(tmp_path, checkpoints, hotpot_rows):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    latent, explicit = checkpoints
    data = tmp_path / "hotpot_dev.json"
    data.write_text(json.dumps(hotpot_rows))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval-qa", "--data", str(data), "--systems", "direct,latentrag", "--limit", "1",
                                      "--latentrag", str(latent), "--explicit", str(explicit), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["dataset"] == "hotpot_dev" and report["n"] == 1 and list(report["systems"]) == ["direct",
                                                                                                 "latentrag"]
    assert "| direct |" in result.output and "| latentrag |" in result.output
    assert "latentrag vs direct" in result.output
    assert report["setup"]["warmup"] == 1 and report["setup"]["max_retrievals"] == 1


def test_eval_qa_command_errors(tmp_path):
    from typer.testing import CliRunner

    from laser_rag.cli import app

    result = CliRunner().invoke(app, ["eval-qa", "--data", "hotpotqa", "--systems", "direct,colbert"])
    assert result.exit_code == 2 and "colbert" in result.output
    result = CliRunner().invoke(app, ["eval-qa", "--data", str(tmp_path / "missing.json")])
    assert result.exit_code == 1 and "not found" in result.output
