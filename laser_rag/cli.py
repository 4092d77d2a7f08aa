"""``laser-rag``: index a corpus, search it, ask questions over it; more commands come from installed extras.

Each command is a small function that parses options and delegates to a module (`laser_rag.retrieval`,
`laser_rag.rag`, `laser_rag.store`); heavy imports happen inside the commands, so ``laser-rag --help`` is fast.
The ``--mode`` choices and the per-mode ``--<mode>-model`` / ``--<mode>-checkpoint`` options come from the registry
(`laser_rag.modes`: the modes registered when this module is imported); the store options from `StoreOptions`, the
query options that search and ask share from `QueryOptions`, the generation options from
`laser_rag.llm.GenerationConfig` (all through `dataclass_options`).

    laser-rag index notes/ --corpus notes                  # embedded Qdrant under the user data dir
    laser-rag search "how do I rotate the logs?" --corpus notes -k 5
    laser-rag ask "how do I rotate the logs?" --corpus notes --mode rewrite
    laser-rag index notes/ --corpus notes --hybrid         # also store BM25 sparse vectors (or: upgrade-hybrid)
    laser-rag search "logrotate" --corpus notes --hybrid   # dense + BM25, fused in Qdrant
    laser-rag collections
    laser-rag migrate                                      # a local-mode folder's collections to Qdrant Edge

Plugins: every entry point of the group ``laser_rag.commands`` is a plain function registered as a command of
that name (the app's ``demo``, the trainer's ``train``, the benchmarks' ``eval`` and ``convert``). A plugin module
must be light at import; its function wraps its body in `run_command`, so the errors laser_rag raises on purpose
(`laser_rag.errors.LaserRagError`) print as one red line::

    def hello(name: Annotated[str, typer.Argument()]) -> None:
        from laser_rag.cli import run_command

        run_command(_hello_body, name)
"""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from laser_rag._store_options import BulkLoad, CollectionOptions
from laser_rag.cli_options import dataclass_options, mode_source_options
from laser_rag.errors import CollectionNotFoundError, LaserRagError
from laser_rag.llm import GenerationConfig
from laser_rag.modes import MODES, ModePreset, ModeSources, RetrievalMode, preset
from laser_rag.ray_index import RayIndexing, ray_module

#: The entry-point group of plugin commands.
PLUGIN_GROUP = "laser_rag.commands"

app = typer.Typer(help="RAG with LaSER latent-thinking embeddings over Qdrant.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
_output = {"verbose": False}


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", help="Show the model libraries' progress bars and "
                                                                  "info logs (hidden by default).")] = False) -> None:
    _output["verbose"] = verbose


#: The ``--mode`` choices: the modes registered when this module is imported.
ModeName = Literal[tuple(chosen.name for chosen in MODES.values())]


@dataclass(frozen=True)
class StoreOptions:
    """Which Qdrant store a command works on (``--qdrant-path``, ``--qdrant-url``, ``--api-key``)."""

    qdrant_path: Optional[Path] = field(default=None, metadata={
        "help": "Embedded Qdrant folder (default: the user data dir, or $LASER_RAG_QDRANT_PATH)."})
    qdrant_url: Optional[str] = field(default=None, metadata={
        "help": "A Qdrant server or cluster instead of the embedded store.", "envvar": "LASER_RAG_QDRANT_URL"})
    api_key: Optional[str] = field(default=None, metadata={"help": "Qdrant API key.", "envvar": "QDRANT_API_KEY"})
    grpc: bool = field(default=False, metadata={"flags": ("--grpc",),
                                                "help": "Talk to the Qdrant server over gRPC (port 6334)."})

    def connect(self):
        """The Qdrant store (`laser_rag.store.connect`: the embedded engine of a folder, or a client of a server)."""
        from laser_rag import store

        return store.connect(self.qdrant_path, url=self.qdrant_url, api_key=self.api_key, prefer_grpc=self.grpc)


@dataclass(frozen=True)
class QueryOptions:
    """What ``search`` and ``ask`` share (``index`` takes the first three): the mode, the collection, and how the
    query is read and searched."""

    mode: ModeName = field(default=RetrievalMode.LASER.value, metadata={
        "flags": ("--mode", "-m"),
        "help": "; ".join(f"{chosen.name}: {chosen.description}" for chosen in MODES.values())})
    corpus: Optional[str] = field(default=None, metadata={
        "help": "Corpus name; the collection is <corpus>-<encoder label>."})
    collection: Optional[str] = field(default=None, metadata={"help": "Exact collection name (overrides --corpus)."})
    steps: Optional[int] = field(default=None, metadata={
        "help": "K latent steps for this query (a LaSER encoder, no rewriting).", "min": 1})
    instruction: Optional[str] = field(default=None, metadata={
        "help": "Task instruction for the query (default: the encoder's own)."})
    llm: Optional[str] = field(default=None, metadata={
        "help": "An OpenAI-compatible URL (vLLM, llama.cpp, Ollama) or a local model (default: "
                "SmolLM2-135M-Instruct)."})
    llm_model: str = field(default="default", metadata={
        "help": "Model name to request from an OpenAI-compatible server."})
    as_json: bool = field(default=False, metadata={"flags": ("--json",), "help": "Print JSON instead of text."})
    hybrid: bool = field(default=False, metadata={
        "flags": ("--hybrid",), "help": "Hybrid search: fuse the dense ranking with BM25 over the collection's sparse "
                                        "vectors (index with --hybrid, or run `laser-rag upgrade-hybrid` once)."})
    rescore: bool = field(default=True, metadata={
        "help": "A quantized collection: rescore its candidates with the original vectors."})
    oversampling: Optional[float] = field(default=None, metadata={
        "help": "A quantized collection: rescore k x this many candidates (default 1).", "min": 1.0})

    @property
    def preset(self) -> ModePreset:
        return preset(self.mode)


CollectionOpt = Annotated[Optional[str], typer.Option("--collection", help="Exact collection name (overrides "
                                                                           "--corpus).")]
KOpt = Annotated[int, typer.Option("-k", "--top-k", min=1, help="How many passages to retrieve.")]


# ---------------------------------------------------------------------------------------------------------------
# The error boundary (also for plugins)


def run_command(command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a command body. An error laser_rag raises on purpose (`LaserRagError`) becomes one red line on stderr
    and exit code 1; anything else keeps its traceback (it is a bug). Qdrant clients are closed at the end."""
    try:
        return command(*args, **kwargs)
    except LaserRagError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    finally:
        _close_clients()


def _close_clients() -> None:
    store = sys.modules.get("laser_rag.store")  # not imported: the command opened no client
    if store is not None:
        store.close_all()


def main() -> None:
    """The ``laser-rag`` entry point: the CLI, without third-party deprecation warnings (this process only; the
    library itself never filters warnings). laser_rag's own warnings, e.g. `TruncationWarning`, still show."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        app()


# ---------------------------------------------------------------------------------------------------------------
# Shared steps


def _announce() -> None:
    """One start-up line on stderr before a model loads: device, dtype and threads (the model libraries' progress
    bars stay hidden unless ``--verbose``)."""
    from laser_rag import runtime

    runtime.quiet_model_loading(_output["verbose"])
    typer.echo(f"laser-rag: {runtime.runtime_summary()}", err=True)


def _open(query: QueryOptions, where: StoreOptions, models: ModeSources, *, k: int = 10, create: bool = False,
          recreate: bool = False, generation: GenerationConfig | None = None, embed_url: str | None = None,
          layout: Any = None):
    """The retriever of a command: connect (a dead server fails before any model loads), announce, load the
    encoder (or reach the embeddings service at ``embed_url``), then the rewriter's LLM if the preset rewrites."""
    from laser_rag.retrieval import RetrievalOptions, encoder_for, open_retriever

    chosen = query.preset
    client = where.connect()
    _announce()
    if embed_url:
        from laser_rag.encoders.remote import RemoteEncoder

        encoder = RemoteEncoder(embed_url)
    else:
        encoder = encoder_for(chosen.mode, models.encoder(chosen))
    collection = query.collection
    if collection is None and query.corpus is None:
        collection = _only_collection(client, encoder.label)
    generation = generation or GenerationConfig()
    return open_retriever(chosen.mode, query.corpus or "default", client=client, encoder=encoder,
                          llm=_rewriter(chosen, query, generation), collection=collection, create=create,
                          recreate=recreate, collection_options=layout,
                          options=RetrievalOptions(k=k, hybrid=query.hybrid, rescore=query.rescore,
                                                   oversampling=query.oversampling))


def _collection_names(client) -> list[str]:
    from laser_rag.store.engine import as_engine

    return as_engine(client).collection_names()


def _only_collection(client, label: str) -> str:
    """With neither --corpus nor --collection: the one collection of this encoder, if there is exactly one."""
    names = [name for name in _collection_names(client) if name.endswith(f"-{label}")]
    if len(names) == 1:
        return names[0]
    if not names:
        raise CollectionNotFoundError(f"no collection for the encoder {label!r} yet: run `laser-rag index PATH` "
                                      "first")
    raise typer.BadParameter(f"several collections for the encoder {label!r}: {', '.join(names)}; pick one with "
                             "--corpus or --collection", param_hint="--corpus")


def _rewriter(chosen: ModePreset, query: QueryOptions, generation: GenerationConfig):
    """The preset's query rewriter on the command's LLM (None for a mode that does not rewrite: no LLM loads)."""
    if not chosen.rewrites:
        return None
    from laser_rag.llm import as_llm
    from laser_rag.retrieval import rewriter_for

    return rewriter_for(chosen, as_llm(query.llm, model=query.llm_model, config=generation), generation=generation)


# ---------------------------------------------------------------------------------------------------------------
# Core commands


@app.command()
@dataclass_options(StoreOptions, param="where")
@dataclass_options(QueryOptions, param="query", include=("mode", "corpus", "collection"))
@dataclass_options(CollectionOptions, param="layout")
@dataclass_options(BulkLoad, param="load")
@dataclass_options(RayIndexing, param="distributed", include=("workers", "gpus_per_worker"))
@mode_source_options(param="models", agents=False)
def index(
    path: Annotated[Path, typer.Argument(exists=True, help="A BEIR directory, a .jsonl or .parquet file, or a folder "
                                                           "of .txt/.md files.")],
    models: Any,
    distributed: Any,
    load: Any,
    layout: Any,
    query: Any,
    where: Any,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents encoded and stored per step.")] = 64,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Index only the first N documents.")] = None,
    chunk: Annotated[Optional[bool], typer.Option("--chunk/--no-chunk", help="Split documents longer than the "
                                                  "encoder reads (default: yes, except for a BEIR directory).")]
    = None,
    recreate: Annotated[bool, typer.Option(help="Drop the collection first (e.g. after changing the encoder).")]
    = False,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="Also store BM25 sparse vectors, for --hybrid search (a "
                                         "new collection; an existing one: `laser-rag upgrade-hybrid`).")] = False,
    embed_url: Annotated[Optional[str], typer.Option("--embed-url", help="Embed through a running `laser-rag serve` "
                                                     "at this URL (API key: $LASER_RAG_EMBED_API_KEY) instead of "
                                                     "loading the model here.")] = None,
    bulk_load: Annotated[bool, typer.Option("--bulk-load", help="A large first load: a Qdrant server builds no "
                                            "HNSW index until the end (then waits for it), in --upload-parallel "
                                            "streams.")] = False,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="auto|local|ADDRESS",
                                               help="Encode on Ray (the distributed extra): auto (the cluster this "
                                                    "machine belongs to), local (a Ray instance started here) or a "
                                                    "cluster address.")] = None,
) -> None:
    """Index a corpus (re-running adds only what is missing; an interrupted run resumes). The index is built before
    it returns, so the first search does not wait."""
    def body():
        from laser_rag.corpus import is_beir_directory, load_corpus

        if load != BulkLoad() and not bulk_load:
            raise typer.BadParameter("--upload-parallel and --index-timeout apply with --bulk-load",
                                     param_hint="--bulk-load")
        if distributed != RayIndexing() and ray is None:
            raise typer.BadParameter("--workers and --gpus-per-worker apply with --ray", param_hint="--ray")
        if ray is not None:
            ray_module()  # Ray missing: the error before any model loads
        documents = load_corpus(path)[:limit]
        name = query.corpus or (path.stem if path.is_file() else path.resolve().name)
        # a mode that searches another's collection indexes that one
        owner = dataclasses.replace(query, mode=query.preset.owner.name, corpus=name, hybrid=hybrid)
        retriever = _open(owner, where, models, create=True, recreate=recreate, embed_url=embed_url, layout=layout)
        split = chunk if chunk is not None else not is_beir_directory(path)
        report = retriever.index(documents, batch_size=batch_size, chunk=split, progress=True,
                                 bulk=load if bulk_load else None,
                                 ray=None if ray is None else dataclasses.replace(distributed, address=ray))
        if not bulk_load:  # a bulk load built it already
            retriever.collection.build_index(progress=True)
        typer.echo(f"{retriever.collection.name}: {report.added} added, {report.skipped} already there, "
                   f"{retriever.collection.count()} in total ({report.seconds:.1f} s, "
                   f"{report.documents_per_second:.1f} documents/s)")

    run_command(body)


@app.command()
@dataclass_options(GenerationConfig, param="generation", include=("time_limit", "rewrite_max_new_tokens"))
@dataclass_options(StoreOptions, param="where")
@dataclass_options(QueryOptions, param="query")
@mode_source_options(param="models", agents=False)
def search(
    text: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.")],
    models: Any,
    query: Any,
    where: Any,
    generation: Any,
    k: KOpt = 5,
    show_thoughts: Annotated[bool, typer.Option("--show-thoughts", help="Also print what a LaSER encoder thought "
                                                "about the query: the top tokens of each latent step.")] = False,
) -> None:
    """Show the passages a query retrieves, with scores and stage timings."""
    def body():
        from laser_rag.thoughts import DEFAULT_TOP_K

        retriever = _open(query, where, models, k=k, generation=generation)
        result = retriever.retrieve(text, instruction=query.instruction, num_thinking_steps=query.steps,
                                    thoughts=DEFAULT_TOP_K if show_thoughts else None)
        if query.as_json:
            data = dataclasses.asdict(result)
            data["thoughts"] = result.thoughts.as_dict() if result.thoughts else None
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        if result.rationale:
            typer.echo(f"reasoning: {result.rationale}\n")
        if result.thoughts:
            typer.echo(f"thoughts:\n{textwrap.indent(result.thoughts.format_thoughts(), '  ')}\n")
        _print_hits(result.hits)
        typer.echo(_timing_line(result.timings))

    run_command(body)


@app.command()
@dataclass_options(GenerationConfig, param="generation")
@dataclass_options(StoreOptions, param="where")
@dataclass_options(QueryOptions, param="query")
@mode_source_options(param="models")
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    models: Any,
    query: Any,
    where: Any,
    generation: Any,
    k: KOpt = 4,
    decode: Annotated[bool, typer.Option("--decode", help="An agent mode (latentrag): decode the latent thoughts "
                                                          "and subqueries into text.")] = False,
) -> None:
    """Answer a question from the top-k passages, with per-stage timings. An agent mode (``--mode latentrag``):
    the multi-step agent answers (its checkpoint's own top-k and step cap; ``--decode`` shows its latent
    thoughts)."""
    def body():
        from laser_rag.llm import as_llm
        from laser_rag.rag import RAG

        if query.preset.agent is not None:
            _ask_agent(question, query, where, models, decode=decode)
            return
        retriever = _open(query, where, models, k=k, generation=generation)
        rewriter = retriever.rewriter  # the rewriter's LLM also answers
        generator = rewriter.llm if rewriter is not None else as_llm(query.llm, model=query.llm_model,
                                                                     config=generation)
        for answer in RAG(retriever, generator, k=k, generation=generation).stream(
                question, instruction=query.instruction, num_thinking_steps=query.steps):
            if isinstance(answer, str) and not query.as_json:
                typer.echo(answer, nl=False)  # the answer as it is generated
                sys.stdout.flush()
        if query.as_json:
            typer.echo(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, indent=2))
            return
        typer.echo("" if answer.text else "(empty answer)")  # ends the streamed line
        typer.echo("\nsources:")
        _print_hits(answer.hits, snippet=0)
        typer.echo(_timing_line(answer.timings))

    run_command(body)


def _ask_agent(question: str, query: QueryOptions, where: StoreOptions, models: ModeSources, *,
               decode: bool) -> None:
    from laser_rag.latentrag import open_agent

    chosen = query.preset
    unused = {"--steps": query.steps, "--instruction": query.instruction, "--hybrid": query.hybrid or None}
    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} cannot apply to --mode {chosen.name}: the agent "
                                 "writes its own latent subqueries")
    client = where.connect()
    _announce()
    collection = query.collection
    if collection is None and query.corpus is None:
        from laser_rag.retrieval import encoder_for

        collection = _only_collection(client, encoder_for(chosen.mode, models.encoder(chosen)).label)
    agent = open_agent(query.corpus or "default", client=client, checkpoint=models.agent(chosen),
                       collection=collection, decode=decode)
    answer = agent.ask(question)
    if query.as_json:
        typer.echo(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, indent=2))
        return
    typer.echo(answer.text or "(empty answer)")
    for step in answer.steps:
        typer.echo(f"\nstep {step.number}" + (f": {step.subquery}" if step.subquery else ""))
        if step.thought:
            typer.echo(f"  thought: {step.thought}")
        _print_hits(step.hits, snippet=0)
    if not answer.steps:
        typer.echo("\n(answered without retrieving)")
    typer.echo(f"{_timing_line(answer.timings)}; {answer.forward_passes} forward passes")


@app.command()
@dataclass_options(StoreOptions, param="where")
def collections(where: Any) -> None:
    """List the collections of a Qdrant store with their encoder and size."""
    def body():
        from laser_rag import store
        from laser_rag.store.engine import as_engine

        engine = as_engine(where.connect())
        for name in engine.collection_names():
            info = store.recorded(engine, name) or {}
            sparse = info.get("sparse") or {}
            hybrid = ("\thybrid" if sparse.get("complete", True) else "\thybrid (upgrade unfinished)") if sparse else ""
            legacy = "\tlocal mode: run `laser-rag migrate`" if _in_local_mode(engine, name) else ""
            typer.echo(f"{name}\t{engine.count(name)} points\tencoder "
                       f"{info.get('encoder', '(not laser_rag)')}\t{info.get('fingerprint', '')}{hybrid}{legacy}")

    run_command(body)


@app.command("upgrade-hybrid")
@dataclass_options(StoreOptions, param="where")
def upgrade_hybrid(
    where: Any,
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="Upgrade every laser_rag collection of this "
                                                  "corpus (one per encoder).")] = None,
    collection: CollectionOpt = None,
) -> None:
    """Add BM25 sparse vectors to existing collections, for --hybrid (no dense vector is re-encoded; safe to
    interrupt and run again)."""
    def body():
        from laser_rag import store

        if (corpus is None) == (collection is None):
            raise typer.BadParameter("pass exactly one of --corpus and --collection", param_hint="--collection")
        client = where.connect()
        names = [collection] if collection is not None else _corpus_collections(client, corpus)
        for name in names:
            opened = store.VectorCollection.open_existing(client, name)
            if opened.hybrid:
                typer.echo(f"{name}: already hybrid")
                continue
            added = opened.enable_hybrid(progress=True)
            typer.echo(f"{name}: {added} sparse vectors added; --hybrid works on it now")

    run_command(body)


def _in_local_mode(engine, name: str) -> bool:
    from laser_rag.store.embedded import EmbeddedEngine

    return isinstance(engine, EmbeddedEngine) and engine.in_local_mode(name)


def _corpus_collections(client, corpus: str) -> list[str]:
    """The laser_rag collections of a corpus: those named ``<corpus>-<the encoder label they record>``."""
    from laser_rag import store

    names = []
    for name in _collection_names(client):
        info = store.recorded(client, name) or {}
        if info and name == store.collection_name(corpus, info.get("encoder", "")):
            names.append(name)
    if not names:
        raise CollectionNotFoundError(f"no laser_rag collection of the corpus {corpus!r} in this Qdrant store")
    return names


@app.command()
def migrate(
    qdrant_path: Annotated[Optional[Path], typer.Option("--qdrant-path", help="The embedded Qdrant folder (default: "
                                                        "the user data dir, or $LASER_RAG_QDRANT_PATH).")] = None,
    collection: Annotated[Optional[list[str]], typer.Option("--collection", help="A collection to migrate "
                                                            "(repeatable; default: all).")] = None,
    to_url: Annotated[Optional[str], typer.Option("--to-url", help="Copy the embedded collections to this Qdrant "
                                                  "server or cluster instead.")] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="QDRANT_API_KEY", help="The server's API "
                                                   "key.")] = None,
    grpc: Annotated[bool, typer.Option("--grpc", help="Talk to the server over gRPC (port 6334).")] = False,
) -> None:
    """Move a folder's qdrant-client local-mode collections to its Qdrant Edge store (the embedded default), or copy
    its embedded collections to a Qdrant server (--to-url). No re-encoding; safe to interrupt and run again; counts
    and a sample of vectors are checked at the end."""
    def body():
        from laser_rag.store.migrate import describe
        from laser_rag.store.migrate import migrate as run

        for report in run(qdrant_path, collections=collection, to_url=to_url, api_key=api_key, prefer_grpc=grpc,
                          progress=True):
            typer.echo(describe(report))
        if to_url:
            typer.echo(f"the embedded copies are kept: pass --qdrant-url {to_url} to use the server's")

    run_command(body)


def _print_hits(hits, snippet: int = 160) -> None:
    for rank, hit in enumerate(hits, start=1):
        typer.echo(f"{rank:>2}. {hit.score:.4f}  {hit.id}  {hit.title}".rstrip())
        if snippet:
            text = " ".join(hit.text.split())
            typer.echo(f"    {text[:snippet]}{' ...' if len(text) > snippet else ''}")


def _timing_line(timings: dict[str, float]) -> str:
    return " | ".join(f"{key.removesuffix('_ms')} {value:.0f} ms" for key, value in timings.items())


# ---------------------------------------------------------------------------------------------------------------
# Plugin commands


def add_plugins(target: typer.Typer, found: Iterable[Any] | None = None) -> list[str]:
    """Register each entry point of `PLUGIN_GROUP` (or ``found``) as a command of ``target``; returns their names.

    A plugin that fails to load (an extra installed in part) still shows up, and running it says why; it does not
    break the other commands. A plugin cannot replace a core command.
    """
    taken = {info.name or info.callback.__name__ for info in target.registered_commands}
    added = []
    for entry in found if found is not None else entry_points(group=PLUGIN_GROUP):
        if entry.name in taken:
            continue
        try:
            command = entry.load()
        except Exception as exc:  # whatever a broken plugin raises at import, the core commands must still run
            target.command(name=entry.name, help=f"(unavailable: {type(exc).__name__}: {exc})",
                           context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
                _unavailable(entry.name, exc))
        else:
            target.command(name=entry.name)(command)
        taken.add(entry.name)
        added.append(entry.name)
    return added


def _unavailable(name: str, error: Exception) -> Callable[[], None]:
    def command() -> None:
        def body():
            raise LaserRagError(f"the {name!r} command could not be loaded ({type(error).__name__}: {error}); "
                                "install the laser-rag extra that provides it")

        run_command(body)

    return command


add_plugins(app)

if __name__ == "__main__":
    main()
