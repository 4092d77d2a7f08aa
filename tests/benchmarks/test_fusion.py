"""The fusion benchmark's choice rule: the best worst set against the better side, then the best mean."""

from laser_rag import store
from laser_rag_benchmarks.fusion import CANDIDATES, choose


def _set(dense: float, bm25: float, **fused: float) -> dict:
    scores = {"dense": dense, "bm25": bm25, **{name: fused.get(name, 0.0) for name, _ in CANDIDATES}}
    return {"scores": {run: {"ndcg_cut_10": value} for run, value in scores.items()}}


def test_the_choice_never_trades_a_loss_on_one_set_for_a_higher_mean():
    sets = {"a": _set(0.5, 0.6, **{"rrf-k2": 0.9, "dbsf": 0.7}),     # rrf-k2 far ahead here ...
            "b": _set(0.4, 0.8, **{"rrf-k2": 0.7, "dbsf": 0.8})}     # ... but under BM25 here
    chosen, summary = choose(sets)
    assert chosen == "dbsf"
    assert summary["dbsf"] == {"worst_ratio": 1.0, "mean_ndcg": 0.75}
    assert summary["rrf-k2"]["worst_ratio"] == round(0.7 / 0.8, 4) and summary["rrf-k2"]["mean_ndcg"] == 0.8


def test_every_candidate_is_a_valid_fusion_of_the_store():
    for _, options in CANDIDATES:
        store.fusion_query(**options)  # raises on a fusion search_hybrid would refuse
    assert store.DEFAULT_FUSION in {options["fusion"] for _, options in CANDIDATES}
