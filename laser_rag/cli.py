"""``laser-rag``: index a corpus, search it, ask questions over it; more commands come from installed extras.

Each command is a small function that parses options and delegates to a module (`laser_rag.retrieval`,
`laser_rag.rag`, `laser_rag.store`); heavy imports happen inside the commands, so ``laser-rag --help`` is fast.
The ``--mode`` choices and the per-mode ``--<mode>-model`` options come from the registry (`laser_rag.modes`); the
generation options from `laser_rag.llm.GenerationConfig` (`dataclass_options`).

    laser-rag index notes/ --corpus notes                  # embedded Qdrant under the user data dir
    laser-rag search "how do I rotate the logs?" --corpus notes -k 5
    laser-rag ask "how do I rotate the logs?" --corpus notes --mode rewrite
    laser-rag index notes/ --corpus notes --hybrid         # also store BM25 sparse vectors (or: upgrade-hybrid)
    laser-rag search "logrotate" --corpus notes --hybrid   # dense + BM25, fused in Qdrant
    laser-rag collections

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
import warnings
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from laser_rag.cli_options import dataclass_options
from laser_rag.errors import CollectionNotFoundError, LaserRagError
from laser_rag.llm import GenerationConfig
from laser_rag.modes import MODES, ModePreset, RetrievalMode, preset

#: The entry-point group of plugin commands.
PLUGIN_GROUP = "laser_rag.commands"

app = typer.Typer(help="RAG with LaSER latent-thinking embeddings over Qdrant.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _modes_help() -> str:
    return "; ".join(f"{p.mode.value}: {p.description}" for p in MODES.values())


def _encoder_sources() -> type:
    """A dataclass with one ``<mode>_model`` field per mode that owns a collection (the modes that search it share
    it): the CLI's ``--basic-model`` / ``--laser-model``, generated from the registry."""
    fields = []
    for mode, chosen in MODES.items():
        if chosen.collection_mode is not mode:
            continue
        users = ", ".join(m.value for m, p in MODES.items() if p.collection_mode is mode)
        help_text = (f"Encoder for --mode {users}: a LaSER checkpoint, a hub id or a sentence-transformers model "
                     f"(e.g. all-minilm-l6-v2). Default: {chosen.encoder}.")
        fields.append((f"{mode.value}_model", Optional[str], dataclasses.field(default=None,
                                                                               metadata={"help": help_text})))
    return dataclasses.make_dataclass("EncoderSources", fields, frozen=True)


EncoderSources = _encoder_sources()

ModeOpt = Annotated[RetrievalMode, typer.Option("--mode", "-m", help=_modes_help())]
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
StepsOpt = Annotated[Optional[int], typer.Option("--steps", min=1, help="K latent steps for this query (a LaSER "
                                                                        "encoder, no rewriting).")]
InstructionOpt = Annotated[Optional[str], typer.Option("--instruction", help="Task instruction for the query "
                                                                             "(default: the encoder's own).")]
LlmOpt = Annotated[Optional[str], typer.Option("--llm", help="An OpenAI-compatible URL (vLLM, llama.cpp, Ollama) "
                                                             "or a local model (default: SmolLM2-135M-Instruct).")]
LlmModelOpt = Annotated[str, typer.Option("--llm-model", help="Model name to request from an OpenAI-compatible "
                                                              "server.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
HybridOpt = Annotated[bool, typer.Option("--hybrid", help="Hybrid search: fuse the dense ranking with BM25 over the "
                                                          "collection's sparse vectors (index with --hybrid, or run "
                                                          "`laser-rag upgrade-hybrid` once).")]


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
    """One start-up line on stderr before a model loads: device, dtype and threads."""
    from laser_rag import runtime

    typer.echo(f"laser-rag: {runtime.runtime_summary()}", err=True)


def _open(mode: RetrievalMode, models, corpus: str | None, collection: str | None, qdrant_path: Path | None,
          qdrant_url: str | None, api_key: str | None, *, k: int = 10, create: bool = False, recreate: bool = False,
          llm: str | None = None, llm_model: str = "default", generation: GenerationConfig | None = None,
          hybrid: bool = False):
    """The retriever of a command: connect (a dead server fails before any model loads), announce, load the
    encoder, then the rewriter's LLM if the preset rewrites."""
    from laser_rag import store
    from laser_rag.retrieval import encoder_for, open_retriever

    chosen = preset(mode)
    client = store.connect(qdrant_path, url=qdrant_url, api_key=api_key)
    _announce()
    encoder = encoder_for(chosen.mode, _source(models, chosen))
    if collection is None and corpus is None:
        collection = _only_collection(client, encoder.label)
    rewriter = _rewriter(chosen, llm, llm_model, generation or GenerationConfig())
    return open_retriever(chosen.mode, corpus or "default", client=client, encoder=encoder, llm=rewriter,
                          collection=collection, create=create, recreate=recreate, k=k, hybrid=hybrid)


def _source(models, chosen: ModePreset) -> str | None:
    return getattr(models, f"{chosen.collection_mode.value}_model")


def _only_collection(client, label: str) -> str:
    """With neither --corpus nor --collection: the one collection of this encoder, if there is exactly one."""
    names = sorted(c.name for c in client.get_collections().collections if c.name.endswith(f"-{label}"))
    if len(names) == 1:
        return names[0]
    if not names:
        raise CollectionNotFoundError(f"no collection for the encoder {label!r} yet: run `laser-rag index PATH` "
                                      "first")
    raise typer.BadParameter(f"several collections for the encoder {label!r}: {', '.join(names)}; pick one with "
                             "--corpus or --collection", param_hint="--corpus")


def _rewriter(chosen: ModePreset, llm: str | None, llm_model: str, generation: GenerationConfig):
    """The preset's query rewriter (None for a mode that does not rewrite)."""
    if not chosen.rewrites:
        return None
    from laser_rag.llm import as_llm
    from laser_rag.retrieval import QueryRewriter

    return QueryRewriter(as_llm(llm, model=llm_model, config=generation),
                         max_new_tokens=generation.rewrite_max_new_tokens)


# ---------------------------------------------------------------------------------------------------------------
# Core commands


@app.command()
@dataclass_options(EncoderSources, param="models")
def index(
    path: Annotated[Path, typer.Argument(exists=True, help="A BEIR directory, a .jsonl file, or a folder of "
                                                           ".txt/.md files.")],
    models: Any,
    mode: ModeOpt = RetrievalMode.LASER,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents encoded and stored per step.")] = 64,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Index only the first N documents.")] = None,
    chunk: Annotated[Optional[bool], typer.Option("--chunk/--no-chunk", help="Split documents longer than the "
                                                  "encoder reads (default: yes, except for a BEIR directory).")]
    = None,
    recreate: Annotated[bool, typer.Option(help="Drop the collection first (e.g. after changing the encoder).")]
    = False,
    hybrid: Annotated[bool, typer.Option("--hybrid", help="Also store BM25 sparse vectors, for --hybrid search (a "
                                         "new collection; an existing one: `laser-rag upgrade-hybrid`).")] = False,
) -> None:
    """Index a corpus (re-running adds only what is missing; an interrupted run resumes)."""
    def body():
        from laser_rag.corpus import is_beir_directory, load_corpus

        documents = load_corpus(path)[:limit]
        name = corpus or (path.stem if path.is_file() else path.resolve().name)
        chosen = preset(mode)  # a mode that searches another's collection indexes that one
        retriever = _open(chosen.collection_mode, models, name, collection, qdrant_path, qdrant_url, api_key,
                          create=True, recreate=recreate, hybrid=hybrid)
        split = chunk if chunk is not None else not is_beir_directory(path)
        report = retriever.index(documents, batch_size=batch_size, chunk=split, progress=True)
        typer.echo(f"{retriever.collection.name}: {report.added} added, {report.skipped} already there, "
                   f"{retriever.collection.count()} in total ({report.seconds:.1f} s, "
                   f"{report.documents_per_second:.1f} documents/s)")

    run_command(body)


@app.command()
@dataclass_options(GenerationConfig, param="generation", include=("time_limit", "rewrite_max_new_tokens"))
@dataclass_options(EncoderSources, param="models")
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    models: Any,
    generation: Any,
    mode: ModeOpt = RetrievalMode.LASER,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    k: KOpt = 5,
    steps: StepsOpt = None,
    instruction: InstructionOpt = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    llm: LlmOpt = None,
    llm_model: LlmModelOpt = "default",
    as_json: JsonOpt = False,
    hybrid: HybridOpt = False,
) -> None:
    """Show the passages a query retrieves, with scores and stage timings."""
    def body():
        retriever = _open(mode, models, corpus, collection, qdrant_path, qdrant_url, api_key, k=k, llm=llm,
                          llm_model=llm_model, generation=generation, hybrid=hybrid)
        result = retriever.retrieve(query, instruction=instruction, num_thinking_steps=steps)
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(result), ensure_ascii=False, indent=2))
            return
        if result.rationale:
            typer.echo(f"reasoning: {result.rationale}\n")
        _print_hits(result.hits)
        typer.echo(_timing_line(result.timings))

    run_command(body)


@app.command()
@dataclass_options(GenerationConfig, param="generation")
@dataclass_options(EncoderSources, param="models")
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    models: Any,
    generation: Any,
    mode: ModeOpt = RetrievalMode.LASER,
    corpus: CorpusOpt = None,
    collection: CollectionOpt = None,
    k: KOpt = 4,
    steps: StepsOpt = None,
    instruction: InstructionOpt = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
    llm: LlmOpt = None,
    llm_model: LlmModelOpt = "default",
    as_json: JsonOpt = False,
    hybrid: HybridOpt = False,
    agent_checkpoint: Annotated[Optional[str], typer.Option(
        "--agent-checkpoint", help="A trained LatentRAG checkpoint folder for --mode latentrag (default: the "
                                   "shipped one).")] = None,
    decode: Annotated[bool, typer.Option("--decode", help="--mode latentrag: decode the latent thoughts and "
                                                          "subqueries into text.")] = False,
) -> None:
    """Answer a question from the top-k passages, with per-stage timings. ``--mode latentrag``: the multi-step
    LatentRAG agent answers (its checkpoint's own top-k and step cap; ``--decode`` shows its latent thoughts)."""
    def body():
        from laser_rag.llm import as_llm
        from laser_rag.rag import RAG

        if preset(mode).agent:
            _ask_agent(question, preset(mode), models, corpus, collection, qdrant_path, qdrant_url, api_key,
                       checkpoint=agent_checkpoint, decode=decode, as_json=as_json,
                       unused={"--steps": steps, "--instruction": instruction, "--hybrid": hybrid or None})
            return
        retriever = _open(mode, models, corpus, collection, qdrant_path, qdrant_url, api_key, k=k, llm=llm,
                          llm_model=llm_model, generation=generation, hybrid=hybrid)
        rewriter = retriever.rewriter  # the rewriter's LLM also answers
        generator = rewriter.llm if rewriter is not None else as_llm(llm, model=llm_model, config=generation)
        answer = RAG(retriever, generator, k=k, generation=generation).ask(
            question, instruction=instruction, num_thinking_steps=steps)
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(answer), ensure_ascii=False, indent=2))
            return
        typer.echo(answer.text or "(empty answer)")
        typer.echo("\nsources:")
        _print_hits(answer.hits, snippet=0)
        typer.echo(_timing_line(answer.timings))

    run_command(body)


def _ask_agent(question: str, chosen: ModePreset, models, corpus, collection, qdrant_path, qdrant_url, api_key, *,
               checkpoint: str | None, decode: bool, as_json: bool, unused: dict) -> None:
    from laser_rag import store
    from laser_rag.latentrag import open_agent

    given = [name for name, value in unused.items() if value is not None]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} cannot apply to --mode {chosen.mode.value}: the agent "
                                 "writes its own latent subqueries")
    client = store.connect(qdrant_path, url=qdrant_url, api_key=api_key)
    _announce()
    if collection is None and corpus is None:
        from laser_rag.retrieval import encoder_for

        collection = _only_collection(client, encoder_for(chosen.mode, _source(models, chosen)).label)
    agent = open_agent(corpus or "default", client=client, checkpoint=checkpoint or chosen.agent,
                       collection=collection, decode=decode)
    answer = agent.ask(question)
    if as_json:
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
            info = store.recorded(client, item.name) or {}
            sparse = info.get("sparse") or {}
            hybrid = ("\thybrid" if sparse.get("complete", True) else "\thybrid (upgrade unfinished)") if sparse else ""
            typer.echo(f"{item.name}\t{client.count(item.name).count} points\tencoder "
                       f"{info.get('encoder', '(not laser_rag)')}\t{info.get('fingerprint', '')}{hybrid}")

    run_command(body)


@app.command("upgrade-hybrid")
def upgrade_hybrid(
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="Upgrade every laser_rag collection of this "
                                                  "corpus (one per encoder).")] = None,
    collection: CollectionOpt = None,
    qdrant_path: PathOpt = None,
    qdrant_url: UrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Add BM25 sparse vectors to existing collections, for --hybrid (no dense vector is re-encoded; safe to
    interrupt and run again)."""
    def body():
        from laser_rag import store

        if (corpus is None) == (collection is None):
            raise typer.BadParameter("pass exactly one of --corpus and --collection", param_hint="--collection")
        client = store.connect(qdrant_path, url=qdrant_url, api_key=api_key)
        names = [collection] if collection is not None else _corpus_collections(client, corpus)
        for name in names:
            opened = store.VectorCollection.open_existing(client, name)
            if opened.hybrid:
                typer.echo(f"{name}: already hybrid")
                continue
            added = opened.enable_hybrid(progress=True)
            typer.echo(f"{name}: {added} sparse vectors added; --hybrid works on it now")

    run_command(body)


def _corpus_collections(client, corpus: str) -> list[str]:
    """The laser_rag collections of a corpus: those named ``<corpus>-<the encoder label they record>``."""
    from laser_rag import store

    names = []
    for item in sorted(client.get_collections().collections, key=lambda c: c.name):
        info = store.recorded(client, item.name) or {}
        if info and item.name == store.collection_name(corpus, info.get("encoder", "")):
            names.append(item.name)
    if not names:
        raise CollectionNotFoundError(f"no laser_rag collection of the corpus {corpus!r} in this Qdrant store")
    return names


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
