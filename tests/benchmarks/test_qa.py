"""laser_rag_benchmarks.qa: SQuAD-style answer metrics, bootstrap / McNemar statistics, and the QA sets' loading."""

from __future__ import annotations

import json

import pytest

from laser_rag_datasets.shared import read_json_lines, shared_data_dir, shared_dataset, shared_file, split_of
from laser_rag_benchmarks.qa import (
    QAItem,
    QASet,
    answer_in_text,
    bootstrap_ci,
    cover_match,
    exact_match,
    f1_score,
    load_qa,
    mcnemar,
    normalize_answer,
    paired_bootstrap,
)


@pytest.fixture(scope="module")
def shared():
    if shared_data_dir() is None:
        pytest.skip("shared datasets not found (set $LASER_RAG_SHARED_DATA)")
    return shared_data_dir()


# --- metrics ------------------------------------------------------------------------------------------------------


def test_normalize_answer_is_squads():
    assert normalize_answer("The  Cat!") == "cat"
    assert normalize_answer("  An apple, a PEAR and the plum. ") == "apple pear and plum"
    assert normalize_answer("theory") == "theory"  # articles only as whole words
    assert normalize_answer("U.S.A.") == "usa"


def test_exact_match_takes_the_best_alias():
    assert exact_match("the Eiffel Tower", ["Eiffel tower"]) == 1.0
    assert exact_match("Tower", ["Eiffel Tower"]) == 0.0
    assert exact_match("NYC", ["New York City", "NYC"]) == 1.0
    assert exact_match("Paris", "paris.") == 1.0  # one answer as a plain string


def test_f1_partial_overlap_by_hand():
    # prediction tokens: cat sat (2); gold: cat sat on mat (4); common 2 -> p = 1, r = 1/2, F1 = 2/3
    assert f1_score("The cat sat", ["cat sat on the mat"]) == pytest.approx(2 / 3)
    # best over answers; repeated tokens count with multiplicity: "x b b" vs "b b c" -> common 2, p = r = 2/3
    assert f1_score("x b b", ["nothing", "b b c"]) == pytest.approx(2 / 3)
    assert f1_score("", ["anything"]) == 0.0
    assert f1_score("Barack Obama", ["Barack Obama"]) == 1.0


def test_f1_yes_no_rule():
    assert f1_score("yes", ["no"]) == 0.0
    assert f1_score("no", ["no"]) == 1.0
    assert f1_score("yes it is", ["yes"]) == 0.0  # gold is yes/no and they differ: no partial credit
    assert f1_score("no", ["no way"]) == 0.0  # prediction is yes/no and differs


def test_cover_match_and_answer_in_text():
    assert cover_match("I think it is the Eiffel Tower, in Paris.", ["eiffel tower"]) == 1.0
    assert cover_match("a tower", ["Eiffel Tower"]) == 0.0
    assert cover_match("anything", [""]) == 0.0  # an empty gold answer never matches
    assert answer_in_text(["1991"], "Freddie Mercury died on 24 November 1991 in London.")
    assert answer_in_text(["The Beatles", "Beatles"], "songs by the beatles!")
    assert not answer_in_text(["Queen"], "Freddie Mercury died in 1991.")


# --- statistics -----------------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_data():
    small = [1, 0, 1, 1, 0, 1, 0, 1, 1, 0]
    mean, low, high = bootstrap_ci(small)
    assert mean == pytest.approx(0.6) and low <= mean <= high and 0 <= low < high <= 1
    big_mean, big_low, big_high = bootstrap_ci(small * 20)
    assert big_mean == pytest.approx(0.6) and big_low <= big_mean <= big_high
    assert big_high - big_low < (high - low) / 2
    assert bootstrap_ci(small, seed=3) == bootstrap_ci(small, seed=3)  # seeded
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_paired_bootstrap():
    a = [1.0, 0.0, 1.0, 0.5, 1.0]
    assert paired_bootstrap(a, a) == (0.0, 0.0, 0.0)
    diff, low, high = paired_bootstrap([1] * 50, [0] * 40 + [1] * 10)
    assert diff == pytest.approx(0.8) and 0 < low <= diff <= high <= 1
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1, 0], [1])


def test_mcnemar_exact():
    assert mcnemar([1, 0, 1], [1, 0, 1]) == 1.0  # no discordant pair
    # 3 questions only a got right, none only b: p = 2 * (1/2)^3 = 0.25
    assert mcnemar([1, 1, 1, 0], [0, 0, 0, 0]) == pytest.approx(0.25)
    # b = 1, c = 4 (n = 5): p = 2 * (C(5,0) + C(5,1)) / 32 = 0.375
    assert mcnemar([True, False, False, False, False, True], [False, True, True, True, True, True]) == pytest.approx(
        0.375)
    assert mcnemar([1, 0], [0, 1]) == 1.0  # capped at 1
    assert mcnemar([1] * 10, [0] * 10) == pytest.approx(2 / 2 ** 10)


# --- loading files --------------------------------------------------------------------------------------------------


HOTPOT_ROWS = [
    {"_id": "q1", "question": "Which city is the Eiffel Tower in?", "answer": "Paris", "type": "bridge",
     "context": [["Eiffel Tower", ["The Eiffel Tower is a tower ", "in Paris. "]],
                 ["Berlin", ["Berlin is a city."]]],
     "supporting_facts": [["Eiffel Tower", 0], ["Eiffel Tower", 1]]},
    {"id": "q2", "question": "Is Berlin a city?", "answer": "yes", "type": "comparison",
     "context": [["Berlin", ["Berlin is a city."]]],
     "supporting_facts": [["Berlin", [0], ["Berlin is a city."], {"id": "7"}]]},  # AMOR's layout
]


def test_hotpotqa_layout_json_list_and_jsonl_load_the_same(tmp_path):
    listed, lines = tmp_path / "dev.json", tmp_path / "dev.jsonl"
    listed.write_text(json.dumps(HOTPOT_ROWS), encoding="utf-8")
    lines.write_text("\n".join(json.dumps(row) for row in HOTPOT_ROWS) + "\n", encoding="utf-8")
    a, b = load_qa(listed), load_qa(lines)
    assert a.items == b.items and a.corpus == b.corpus and a.name == "dev"
    assert [item.id for item in a.items] == ["q1", "q2"] and [item.kind for item in a.items] == ["bridge", "comparison"]
    assert len(a.corpus) == 2  # "Berlin" appears in both questions: pooled once
    texts = {doc.id: (doc.title, doc.text) for doc in a.corpus}
    assert [texts[d] for d in a.items[0].supporting] == [("Eiffel Tower", "The Eiffel Tower is a tower in Paris.")]
    assert [texts[d] for d in a.items[1].supporting] == [("Berlin", "Berlin is a city.")]
    assert a.items[0].answers == ["Paris"]
    one = load_qa(lines, limit=1)
    assert isinstance(one, QASet) and len(one.items) == 1 and one.corpus == a.corpus


def test_musique_layout_keeps_answerable_items_with_aliases(tmp_path):
    paragraphs = [{"idx": 0, "title": "T", "paragraph_text": " text ", "is_supporting": True},
                  {"idx": 1, "title": "U", "paragraph_text": "other", "is_supporting": False}]
    rows = [{"id": "2hop__1_2", "question": "Q1?", "answer": "North", "answer_aliases": ["N", "North"],
             "answerable": True, "paragraphs": paragraphs},
            {"id": "2hop__3_4", "question": "Q2?", "answer": "x", "answer_aliases": [], "answerable": False,
             "paragraphs": [{"idx": 0, "title": "V", "paragraph_text": "v", "is_supporting": True}]}]
    path = tmp_path / "musique.jsonl"
    path.write_text("\n".join(map(json.dumps, rows)), encoding="utf-8")
    qa = load_qa(path)
    assert qa.items == [QAItem("2hop__1_2", "Q1?", ["North", "N"], [qa.corpus[0].id], "2hop")]
    assert [(doc.title, doc.text) for doc in qa.corpus] == [("T", "text"), ("U", "other")]


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_qa(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="nosuchset"):
        load_qa("nosuchset")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.jsonl"):
        load_qa(empty)
    no_answer = tmp_path / "no_answer.json"
    no_answer.write_text(json.dumps([{k: v for k, v in HOTPOT_ROWS[0].items() if k != "answer"}]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_answer\.json.*'answer'"):
        load_qa(no_answer)
    no_context = tmp_path / "no_context.jsonl"
    no_context.write_text(json.dumps({"_id": "x", "question": "q", "answer": "a"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"no_context\.jsonl.*'context'"):
        load_qa(no_context)
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json"):
        load_qa(broken)


# --- the shared sets ------------------------------------------------------------------------------------------------


def test_shared_hotpotqa_matches_the_retrieval_set(shared):
    qa = load_qa("hotpotqa")
    assert qa.name == "hotpotqa" and len(qa.items) == 100
    dataset = shared_dataset("hotpotqa", "all")
    assert [doc.id for doc in qa.corpus] == [doc.id for doc in dataset.corpus]
    assert {item.id: set(item.supporting) for item in qa.items} == {q: set(d) for q, d in dataset.qrels.items()}
    assert {item.kind for item in qa.items} == {"bridge", "comparison"}
    raw = {row["_id"]: row["answer"] for row in read_json_lines(shared_file("hotpotqa/dev_100.jsonl"))}
    assert all(item.answers == [raw[item.id]] for item in qa.items)
    assert len(load_qa("hotpotqa", limit=10).items) == 10


def test_shared_musique_is_the_answerable_half(shared):
    qa = load_qa("musique")
    rows = {row["id"]: row for row in read_json_lines(shared_file("musique/musique_full_v1.0_train_first100.jsonl"))}
    assert len(qa.items) == sum(row["answerable"] for row in rows.values()) == 50
    assert all(rows[item.id]["answerable"] and item.supporting for item in qa.items)
    assert any(len(item.answers) > 1 for item in qa.items)  # aliases kept
    assert all(item.answers[0] == rows[item.id]["answer"] for item in qa.items)
    ids = {doc.id for doc in shared_dataset("musique", "all").corpus}
    assert {doc.id for doc in qa.corpus} <= ids  # the same ids as the retrieval set


def test_shared_strategyqa_is_the_test_split(shared):
    qa = load_qa("strategyqa")
    assert qa.items and all(item.answers in (["yes"], ["no"]) and item.supporting for item in qa.items)
    assert all(split_of(" ".join(item.question.lower().split())) == "test" for item in qa.items)
    assert [doc.id for doc in qa.corpus] == [doc.id for doc in shared_dataset("strategyqa", "test").corpus]
    corpus_ids = {doc.id for doc in qa.corpus}
    assert all(set(item.supporting) <= corpus_ids for item in qa.items)
