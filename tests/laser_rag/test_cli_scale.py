"""``laser-rag index`` with the collection options and a bulk load, ``search`` with rescoring, on an embedded folder
(what CI has; the same options against a Qdrant server: tests/laser_rag/test_store.py with QDRANT_URL)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import typer
from typer.testing import CliRunner

from laser_rag import store as _store
from laser_rag.cli import app
from laser_rag.store import BulkLoad, CollectionOptions

runner = CliRunner()
MINILM = ["--mode", "basic", "--basic-model", "all-minilm-l6-v2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, short_passages):
    folder = tmp_path_factory.mktemp("notes")
    for number, doc in enumerate(short_passages[:6]):
        (folder / f"{number}.md").write_text(doc.text.strip() + "\n")
    return folder


@pytest.fixture()
def where(tmp_path):
    yield ["--qdrant-path", str(tmp_path / "qdrant")]
    _store.close_all()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_the_options_come_from_the_dataclasses():
    commands = typer.main.get_command(app).commands
    index = {param.name for param in commands["index"].params}
    assert {f.name for f in dataclasses.fields(CollectionOptions)} <= index
    assert {f.name for f in dataclasses.fields(BulkLoad)} | {"bulk_load", "grpc"} <= index
    assert {"rescore", "oversampling", "grpc"} <= {param.name for param in commands["search"].params}


def test_a_bulk_index_is_searchable_with_rescoring_options(minilm, corpus, where):
    indexed = invoke("index", corpus, "--corpus", "notes", "--bulk-load", *MINILM, *where)
    assert indexed.exit_code == 0, indexed.output
    assert "6 added, 0 already there, 6 in total" in indexed.stdout
    found = invoke("search", "what does pass do?", "-k", "2", "--no-rescore", "--oversampling", "2", "--json",
                   *MINILM, *where)
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.stdout)["hits"]) == 2


@pytest.mark.parametrize("options", [["--shard-number", "2"], ["--replication-factor", "3"]])
def test_server_only_options_on_an_embedded_store_fail_clearly(minilm, corpus, where, options):
    result = invoke("index", corpus, "--corpus", "notes", *options, *MINILM, *where)
    assert result.exit_code == 1
    assert "server" in result.output and options[0].removeprefix("--").replace("-", "_") in result.output
    listed = invoke("collections", *where)
    assert "notes-" not in listed.output  # nothing was created


@pytest.mark.parametrize(("options", "message"), [
    (["--upload-parallel", "2"], "--bulk-load"),
    (["--index-timeout", "5"], "--bulk-load"),
    (["--quantization", "int4"], "int4"),
    (["--shard-number", "0"], "--shard-number"),
])
def test_bad_index_options_are_usage_errors(corpus, where, options, message):
    result = invoke("index", corpus, *options, *MINILM, *where)
    assert result.exit_code == 2 and message in result.output


def test_oversampling_below_one_is_a_usage_error(where):
    result = invoke("search", "anything", "--oversampling", "0.5", *MINILM, *where)
    assert result.exit_code == 2 and "--oversampling" in result.output
