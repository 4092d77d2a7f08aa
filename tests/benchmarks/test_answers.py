"""laser_rag_benchmarks.answers: reference answers from the shared sets, and the ragas metrics that need no LLM."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from laser_rag_benchmarks.answers import AnswerSample, answer_records, score_answers, summarize, summary_markdown


def test_answer_records_have_references(shared_data):
    hotpot = answer_records("hotpotqa", shared_data)
    assert len(hotpot) == 100 and all(r.answer and r.reference_contexts for r in hotpot)
    musique = answer_records("musique", shared_data)
    assert 0 < len(musique) <= 50  # the answerable half
    assert len(answer_records("hotpotqa", shared_data, limit=3)) == 3
    with pytest.raises(ValueError):
        answer_records("scifact")


def test_no_llm_ragas_metrics_and_nan_counting():
    gold = "Paris is the capital of France."
    samples = [
        AnswerSample("1", "laser", "What is the capital of France?", "Paris", [gold, "Berlin is in Germany."],
                     "Paris", [gold]),
        AnswerSample("2", "laser", "Capital of Italy?", "", ["Rome is the capital of Italy."], "Rome",
                     ["Rome is the capital of Italy."], error="timed out"),
    ]
    rows = score_answers(samples, progress=False)
    assert rows[0]["exact_match"] == 1.0 and rows[0]["string_presence"] == 1.0
    assert rows[0]["context_recall"] == 1.0 and rows[1]["context_recall"] == 1.0
    assert rows[1]["string_presence"] == 0.0 and rows[1]["generation_failed"]
    assert "faithfulness" not in rows[0]  # no judge given
    judged = {"id": "3", "mode": "laser", "generation_failed": False, "faithfulness": math.nan,
              "errors": {"faithfulness": "RagasOutputParserException"}}
    summary = summarize(rows + [judged])
    assert summary["laser"]["faithfulness_nan"] == 1 and math.isnan(summary["laser"]["faithfulness"])
    assert summary["laser"]["failures"] == {"faithfulness: RagasOutputParserException": 1}
    assert summary["laser"]["exact_match"] == pytest.approx(0.5)
    table = summary_markdown(summary)
    assert "n/a (0/1 scored)" in table and table.startswith("| mode | samples | context_recall |")


def test_importing_the_module_changes_no_environment_variable():
    env = {k: v for k, v in os.environ.items() if k != "RAGAS_DO_NOT_TRACK"}
    code = ("import os, laser_rag_benchmarks.answers; assert 'RAGAS_DO_NOT_TRACK' not in os.environ; "
            "import laser_rag_benchmarks.answers as a; a._offline_ragas(); print(os.environ['RAGAS_DO_NOT_TRACK'])")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "true"  # set before ragas is first imported, not at import
