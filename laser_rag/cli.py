"""``laser-rag``: index a corpus, search it, ask questions over it.

Each command is a small function that parses options and delegates to a module (`laser_rag.retrieval`,
`laser_rag.rag`, `laser_rag.store`); heavy imports happen inside the commands so ``laser-rag --help`` is fast.
Add a command the same way: one function, ``@app.command()``, shared options from the ``*Opt`` aliases below.

    laser-rag index notes/ --corpus notes                  # embedded Qdrant under the user data dir
    laser-rag search "how do I rotate the logs?" --corpus notes -k 5
    laser-rag ask "how do I rotate the logs?" --corpus notes --mode rewrite
    laser-rag collections
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="RAG with LaSER latent-thinking embeddings over Qdrant.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


class Mode(str, Enum):  # mirrors laser_rag.retrieval.RetrievalMode without importing it at start-up
    basic = "basic"
    laser = "laser"
    rewrite = "rewrite"


ModeOpt = Annotated[Mode, typer.Option("--mode", "-m", help="basic: one pass; laser: K latent steps; rewrite: an "
                                                             "LLM reasons first, then one pass.")]
CorpusOpt = Annotated[Optional[str], typer.Option("--corpus", help="Corpus name; the collection is "
                                                                   "<corpus>-<encoder label>.")]
CollectionOpt = Annotated[Optional[str], typer.Option("--collection", help="Exact collection name (overrides "
                                                                           "--corpus).")]
PathOpt = Annotated[Optional[Path], typer.Option("--qdrant-path", help="Embedded Qdrant folder (default: the user "
                                                                       "data dir, or $LASER_RAG_QDRANT_PATH).")]
UrlOpt = Annotated[Optional[str], typer.Option("--qdrant-url", envvar="LASER_RAG_QDRANT_URL",
                                               help="A Qdrant server or cluster instead of the embedded store.")]
ApiKeyOpt = Annotated[Optional[str], typer.Option("--api-key", envvar="QDRANT_API_KEY", help="Qdrant API key.")]
KOpt = Annotated[int, typer.Option("-k", "--top-k", min=1, help="How many passages to retrieve.")]
LaserModelOpt = Annotated[Optional[str], typer.Option("--laser-model", help="LaSER encoder for --mode laser "
                                                                            "(default: the embedded one).")]
BasicModelOpt = Annotated[Optional[str], typer.Option(
    "--basic-model", help="Encoder for basic/rewrite: a LaSER checkpoint or a sentence-transformers model "
                          "(e.g. all-minilm-l6-v2). Default: builtin:basic, else the backbone with K=1.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _known_errors() -> tuple[type[Exception], ...]:
    from laser_rag._models import ModelNotFoundError
    from laser_rag.llm import GenerationError
    from laser_rag.store import StoreError

    return StoreError, ModelNotFoundError, GenerationError, FileNotFoundError, ValueError


def _run(command, *args, **kwargs):
    """Call a command body; known errors become one red line and exit code 1 (no traceback)."""
    try:
        return command(*args, **kwargs)
    except _known_errors() as exc:
        raise _fail(str(exc)) from exc


def _retriever(mode: Mode, corpus, collection, qdrant_path, qdrant_url, api_key, laser_model, basic_model, *,
               k: int = 10, create: bool = False, recreate: bool = False, llm=None):
    from laser_rag import store
    from laser_rag.encoders import encoder_label
    from laser_rag.retrieval import encoder_for, open_retriever

    client = store.connect(qdrant_path, url=qdrant_url, api_key=api_key)
    encoder = encoder_for(mode.value, laser_source=laser_model, basic_source=basic_model)
    if collection is None and corpus is None:
        collection = _only_collection(client, encoder_label(encoder))
    return open_retriever(mode.value, corpus=corpus or "default", collection=collection, encoder=encoder,
                          client=client, create=create, recreate=recreate, llm=llm, k=k)


def _only_collection(client, label: str) -> str:
    """With neither --corpus nor --collection: the one collection of this encoder, if there is exactly one."""
    names = sorted(c.name for c in client.get_collections().collections if c.name.endswith(f"-{label}"))
    if len(names) == 1:
        return names[0]
    if not names:
        raise FileNotFoundError(f"no collection for the encoder {label!r} yet: run `laser-rag index PATH` first")
    raise ValueError(f"several collections for the encoder {label!r}: {', '.join(names)}; pick one with --corpus "
                     "or --collection")


@app.command()
def index(
    path: Annotated[Path, typer.Argument(help="A BEIR directory, a .jsonl file, or a folder of .txt/.md files.")],
    mode: ModeOpt = Mode.laser,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    laser_model: LaserModelOpt = None,
    basic_model: BasicModelOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents encoded and stored per step.")] = 64,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Index only the first N documents.")] = None,
    recreate: Annotated[bool, typer.Option(help="Drop the collection first (e.g. after changing the encoder).")]
    = False,
) -> None:
    """Index a corpus (re-running adds only what is missing; an interrupted run resumes)."""
    def body():
        from laser_rag.datasets import load_corpus

        documents = load_corpus(path)[:limit]
        name = corpus or (path.stem if path.is_file() else path.resolve().name)
        encoder_mode = Mode.basic if mode is Mode.rewrite else mode  # rewrite searches basic's collection
        retriever = _retriever(encoder_mode, name, collection, qdrant_path, qdrant_url, api_key, laser_model,
                               basic_model, create=True, recreate=recreate)
        report = retriever.index(documents, batch_size=batch_size, progress=True)
        typer.echo(f"{retriever.collection.name}: {report.added} added, {report.skipped} already there, "
                   f"{retriever.collection.count()} in total ({report.seconds:.1f} s, "
                   f"{report.documents_per_second:.1f} documents/s)")

    _run(body)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    mode: ModeOpt = Mode.laser,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    k: KOpt = 5,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="K latent steps for this query "
                                                                         "(laser mode).")] = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    laser_model: LaserModelOpt = None,
    basic_model: BasicModelOpt = None,
    llm: Annotated[Optional[str], typer.Option(help="Rewrite mode: an OpenAI-compatible URL or a local model "
                                                    "(default: SmolLM2).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the passages a query retrieves, with scores and stage timings."""
    def body():
        retriever = _retriever(mode, corpus, collection, qdrant_path, qdrant_url, api_key, laser_model, basic_model,
                               k=k, llm=llm)
        result = retriever.retrieve(query, num_thinking_steps=steps)
        if as_json:
            typer.echo(json.dumps(_jsonable(result), ensure_ascii=False, indent=2))
            return
        if result.rationale:
            typer.echo(f"reasoning: {result.rationale}\n")
        _print_hits(result.hits)
        typer.echo(_timing_line(result.timings))

    _run(body)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    mode: ModeOpt = Mode.laser,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    k: KOpt = 4,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    laser_model: LaserModelOpt = None,
    basic_model: BasicModelOpt = None,
    llm: Annotated[Optional[str], typer.Option(help="An OpenAI-compatible URL (vLLM, llama.cpp, Ollama) or a "
                                                    "local model (default: SmolLM2-135M-Instruct).")] = None,
    llm_model: Annotated[str, typer.Option(help="Model name to request from an OpenAI-compatible server.")]
    = "default",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 128,
    time_limit: Annotated[float, typer.Option(help="Seconds the LLM may take per call.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the top-k passages, with per-stage timings."""
    def body():
        from laser_rag.llm import as_llm
        from laser_rag.rag import RAG

        generator = as_llm(llm, model=llm_model, timeout=time_limit, max_new_tokens=max_new_tokens)
        retriever = _retriever(mode, corpus, collection, qdrant_path, qdrant_url, api_key, laser_model, basic_model,
                               k=k, llm=generator)
        answer = RAG(retriever, generator, k=k, max_new_tokens=max_new_tokens).ask(question)
        if as_json:
            typer.echo(json.dumps(_jsonable(answer), ensure_ascii=False, indent=2))
            return
        typer.echo(answer.text or "(empty answer)")
        typer.echo("\nsources:")
        _print_hits(answer.hits, snippet=0)
        typer.echo(_timing_line(answer.timings))

    _run(body)


@app.command()
def collections(
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List the collections of a Qdrant store with their encoder and size."""
    def body():
        from laser_rag import store

        client = store.connect(qdrant_path, url=qdrant_url, api_key=api_key)
        for item in sorted(client.get_collections().collections, key=lambda c: c.name):
            info = (client.get_collection(item.name).config.metadata or {}).get(store.METADATA_KEY) or {}
            typer.echo(f"{item.name}\t{client.count(item.name).count} points\tencoder "
                       f"{info.get('encoder', '(not laser_rag)')}\t{info.get('fingerprint', '')}")

    _run(body)


@app.command("eval")
def eval_(
    context: typer.Context,
    data: Annotated[Optional[Path], typer.Option("--data", help="A BEIR directory: corpus.jsonl[.gz], queries.jsonl, "
                                                                "qrels/<split>.tsv.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Or a shared set: scifact, strategyqa, hotpotqa, "
                                                                     "musique, hotpotqa_evidence.")] = None,
    split: Annotated[Optional[str], typer.Option(help="Which qrels (default: test for --data, validation for "
                                                      "--dataset).")] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated: bm25, minilm, basic, laser, rewrite.")]
    = "bm25,minilm,basic,laser,rewrite",
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Cut-off of nDCG, Recall and MRR (Recall@100 is "
                                                               "always reported).")] = 10,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the JSON report here.")] = None,
    num_thinking_steps: Annotated[Optional[int], typer.Option(min=1, help="K for laser-mode queries (documents keep "
                                                                          "the encoder's own K).")] = None,
    max_queries: Annotated[Optional[int], typer.Option(min=1, help="Evaluate only the first N judged queries.")]
    = None,
    max_length: Annotated[Optional[int], typer.Option(min=8, help="Token limit of the LaSER encoders (documents "
                                                                  "longer are truncated; cheaper).")] = None,
    max_docs: Annotated[Optional[int], typer.Option(min=1, help="A sub-corpus: the evaluated queries' relevant "
                                                                "documents plus random distractors (seed 0) up to "
                                                                "N documents (cheaper; not comparable with the full "
                                                                "corpus).")] = None,
    laser_model: LaserModelOpt = None,
    basic_model: BasicModelOpt = None,
    llm: Annotated[Optional[str], typer.Option(help="The rewriter: an OpenAI-compatible URL or a local model "
                                                    "(default: SmolLM2).")] = None,
    llm_model: Annotated[str, typer.Option(help="Model name to request from an OpenAI-compatible server.")]
    = "default",
    rewrite_max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest rewrite, in tokens.")] = 64,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per encoder batch.")] = 16,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where document vectors are cached (default: the "
                                                           "laser_rag cache dir).")] = None,
) -> None:
    """Retrieval quality (nDCG, Recall, MRR) and query latency of each mode on a BEIR dataset; exact search."""
    def body():
        from laser_rag import benchmark

        settings = benchmark.EvalSettings(
            k=k, num_thinking_steps=num_thinking_steps, max_queries=max_queries, max_length=max_length,
            laser_model=laser_model, basic_model=basic_model, llm=llm, llm_model=llm_model,
            rewrite_max_new_tokens=rewrite_max_new_tokens, batch_size=batch_size)
        loaded, license = benchmark.load_dataset(data, dataset, split)
        benchmark.run_eval(loaded, modes, settings, max_docs=max_docs, out=out, license=license, cache_dir=cache_dir,
                           command=benchmark.command_line(context), echo=typer.echo)

    _run(body)


@app.command()
def convert(
    name: Annotated[str, typer.Argument(help="A shared set: scifact, strategyqa, hotpotqa, musique, "
                                             "hotpotqa_evidence.")],
    directory: Annotated[Path, typer.Argument(help="Where to write the BEIR directory.")],
    split: Annotated[str, typer.Option(help="Which queries (train, validation, test, all).")] = "validation",
) -> None:
    """Write a shared dataset as a BEIR directory (for `laser-rag eval --data`, or any BEIR tool)."""
    def body():
        from laser_rag.benchmark import export_shared

        written = export_shared(name, directory, split)
        typer.echo(f"wrote {written} (qrels/{split}.tsv; licence in LICENSE.txt)\n"
                   f"evaluate it with: laser-rag eval --data {written} --split {split}")

    _run(body)


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", exists=True, dir_okay=False,
                                                   help="A JSON/YAML training config (training/configs/*.yaml); "
                                                        "default: the built-in defaults.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config field, KEY=VALUE "
                                                                          "(repeatable; values read as YAML).")]
    = None,
) -> None:
    """Train (or resume) a LaSER encoder: dual-view self-distillation with LoRA (needs the [train] extra)."""
    def body():
        import yaml

        from training.train import main

        fields = {}
        for item in overrides or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--set expects KEY=VALUE, got {item!r}")
            fields[key] = yaml.safe_load(value)
        typer.echo(main(str(config) if config else None, **fields))

    _run(body)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 opens the app to your network).")]
    = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default: 7860, or the next free "
                                                                       "one).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(envvar="LASER_RAG_APP_DIR", help="The app's indexes and "
                                                     "uploads (default: <user data dir>/laser_rag/app).")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Corpus selected at start (default: a small HotpotQA "
                                                       "slice, or the Python reference without shared data).")]
    = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = 128,
    rewrite_max_new_tokens: Annotated[int, typer.Option(min=1, help="Longest rewrite, in tokens.")] = 64,
    time_limit: Annotated[float, typer.Option(help="Seconds the LLM may take per call.")] = 60.0,
    llm: Annotated[Optional[str], typer.Option(help="An OpenAI-compatible URL or a local model (default: "
                                                    "SmolLM2-135M-Instruct).")] = None,
    llm_model: Annotated[str, typer.Option(help="Model name to request from an OpenAI-compatible server.")]
    = "default",
    laser_model: LaserModelOpt = None,
    basic_model: BasicModelOpt = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests served at once (answers still take turns on "
                                                         "the CPU).")] = 4,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads for the models (default: one per "
                                                               "core; 1 is faster on a busy machine).")] = None,
) -> None:
    """Start the web app: basic, LaSER and rewrite-then-retrieve side by side, with per-stage latency."""
    def body():
        from app import AppSettings, launch

        settings = AppSettings(host=host, port=port, corpus=corpus, max_new_tokens=max_new_tokens,
                               rewrite_max_new_tokens=rewrite_max_new_tokens, time_limit=time_limit, llm=llm,
                               llm_model=llm_model, laser_model=laser_model, basic_model=basic_model,
                               concurrency=concurrency, threads=threads)
        if data_dir is not None:
            settings.data_dir = data_dir.expanduser()
        launch(settings)

    _run(body)


def _print_hits(hits, snippet: int = 160) -> None:
    for rank, hit in enumerate(hits, start=1):
        typer.echo(f"{rank:>2}. {hit.score:.4f}  {hit.id}  {hit.title}".rstrip())
        if snippet:
            text = " ".join(hit.text.split())
            typer.echo(f"    {text[:snippet]}{' ...' if len(text) > snippet else ''}")


def _timing_line(timings: dict[str, float]) -> str:
    return " | ".join(f"{key.removesuffix('_ms')} {value:.0f} ms" for key, value in timings.items())


def _jsonable(result) -> dict:
    import dataclasses

    data = dataclasses.asdict(result)
    data["mode"] = result.mode.value
    return data


if __name__ == "__main__":
    app()
