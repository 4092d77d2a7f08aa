"""laser_rag_training.report: the results table (steps, relative gains, licences) and its command."""

from __future__ import annotations

from pathlib import Path

from laser_rag_training.report import LONG_ROWS, ROWS, markdown


def test_report_table_has_steps_and_relative_gains():
    def row(label, ndcg, steps=None):
        metrics = {s: {"ndcg_cut_10": ndcg, "recall_10": ndcg} for s in ("strategyqa", "hotpotqa_evidence")}
        out = {"label": label, "num_thinking_steps": 3, "metrics": metrics, "train_command": "", "eval_command": "x"}
        if steps:
            out["train"] = {"steps": steps, "train_seconds": 600, "cpu_seconds": 540, "seconds_per_step": 4,
                            "cpu_seconds_per_step": 3}
        return out

    rows = {"basic": row("B", 0.5, 160), "laser": row("L", 0.55, 160), "backbone-k1": row("U", 0.1)}
    table = markdown({"eval_sets": ["strategyqa", "hotpotqa_evidence"], "split": "validation", "rows": rows})
    lines = table.splitlines()
    assert lines[0].startswith("| model | K | steps | strategyqa nDCG@10 |")
    assert "| B | 3 | 160 | 0.5000 |" in lines[2] and "| U | 3 | - |" in lines[4]
    assert "laser vs basic on strategyqa: +10.0% relative nDCG@10." in table and "latent-only" not in table
    assert "StrategyQA (allenai)" in table  # the licence of every set shown


def test_rows_name_commands_that_exist():
    configs = {row.config for row in (*ROWS, *LONG_ROWS) if row.config}
    root = Path(__file__).resolve().parents[2]
    assert all((root / config).is_file() for config in configs)
    laser = next(row for row in ROWS if row.name == "laser")
    assert laser.train_command() == "laser-rag train --config training/configs/laser.yaml"
    assert laser.eval_command() == "python -m laser_rag_training.report --rows laser --force"
    long = next(row for row in LONG_ROWS if row.name == "laser-long")
    assert long.eval_command() == "python -m laser_rag_training.report --table long --rows laser-long --force"


def test_a_row_without_its_local_checkpoint_is_skipped_with_how_to_make_it(tmp_path, monkeypatch):
    from laser_rag_training.report import ROUND1_EXTRACT, _missing_checkpoint

    monkeypatch.chdir(tmp_path)  # no runs/ here
    rows = {row.name: row for row in LONG_ROWS}
    assert _missing_checkpoint(rows["backbone-k1"]) is None  # a packaged model: loading it reports any problem
    assert "laser-rag train --config training/configs/laser-long.yaml" in _missing_checkpoint(rows["laser-long"])
    assert ROUND1_EXTRACT in _missing_checkpoint(rows["round1-laser"])
    assert "runs/laser-long/final" in _missing_checkpoint(rows["laser-long-teacher"])
    (tmp_path / "runs/laser-long/final").mkdir(parents=True)
    (tmp_path / "runs/laser-long/final/laser_config.json").write_text("{}")
    assert _missing_checkpoint(rows["laser-long"]) is None and _missing_checkpoint(rows["laser-long-teacher"]) is None


def test_a_row_with_its_own_document_length_is_read_at_it(tmp_path, monkeypatch):
    """The table caps documents at 128 tokens; a row that sets `Row.max_length` reads them at its own length, even
    past the checkpoint's (the 128-token encoder read at 256), and the results say which length each row used."""
    import json

    import typer
    from typer.testing import CliRunner

    import laser_rag_training.report as report

    read_at = []

    class Encoder:  # stands in for a trained checkpoint whose documents end at 128 tokens
        num_thinking_steps, dtype = 3, "torch.float32"

        def __init__(self, max_length=128):
            self.config = type("Config", (), {"max_length": max_length})()

        def with_config(self, max_length):
            return Encoder(max_length)

    def evaluate(encoder, sets, split, explicit=False):
        read_at.append(encoder.config.max_length)
        return {name: {"ndcg_cut_10": 0.5, "recall_10": 0.5} for name in sets}

    monkeypatch.setattr("laser_rag.encoders.LaSEREncoder.from_pretrained", lambda source, **_: Encoder())
    monkeypatch.setattr(report, "_missing_checkpoint", lambda row: None)
    monkeypatch.setattr(report, "evaluate", evaluate)
    app = typer.Typer()
    app.command()(report.report)
    out = tmp_path / "long.json"
    result = CliRunner().invoke(app, ["--table", "long", "--rows", "no-output-kd-long", "--rows",
                                      "no-output-kd-long-read256", "--sets", "scifact", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert read_at == [128, 256]
    assert rows["no-output-kd-long"]["max_length"] == 128 and rows["no-output-kd-long-read256"]["max_length"] == 256
