"""Typer options generated from a dataclass, so a setting is declared once (its type, default and help live on the
dataclass field) and every command that takes it stays in step. Used through `laser_rag.cli_options.dataclass_options`;
`mode_source_options` generates the per-mode options from the registry (`laser_rag.modes.source_fields`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Collection
from typing import Annotated, Any

import typer

_OPTION_KEYWORDS = frozenset(inspect.signature(typer.Option).parameters) - {"default", "param_decls"}


def dataclass_options(cls: type, *, param: str, include: Collection[str] | None = None,
                      exclude: Collection[str] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command: one ``--field-name`` option per init field of the dataclass ``cls`` (all of them,
    or those in ``include``, minus ``exclude``), and the command is called with ``cls(**values)`` as its ``param``
    argument. A field's default is the option's default; its ``metadata`` entries that are `typer.Option` keywords
    (``help``, ``min``, ``max``, ``envvar``, ...) are passed on, and ``flags`` replaces the option's
    names (e.g. ``("-k", "--top-k")``). Fields left out keep the dataclass default.

    Example::

        @app.command()
        @dataclass_options(GenerationConfig, param="generation")
        def ask(question: str, generation: GenerationConfig) -> None: ...
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    chosen = [f for f in dataclasses.fields(cls)
              if f.init and (include is None or f.name in include) and f.name not in exclude]
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=_default(f),
                               annotation=Annotated[hints[f.name], _option(f, hints[f.name])]) for f in chosen]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        if param not in signature.parameters:
            raise TypeError(f"{command.__name__} has no parameter {param!r} to receive a {cls.__name__}")
        clashes = {p.name for p in extra} & set(signature.parameters)
        if clashes:
            raise TypeError(f"{command.__name__} already has parameters {sorted(clashes)} of {cls.__name__}")
        kept = [p for p in signature.parameters.values() if p.name != param]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {f.name: kwargs.pop(f.name) for f in chosen if f.name in kwargs}
            return command(*args, **kwargs, **{param: cls(**values)})

        wrapper.__signature__ = signature.replace(parameters=[*kept, *extra])
        wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}
        return wrapper

    return decorate


def mode_source_options(*, param: str, agents: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a typer command with the per-mode options of the registry (``--<mode>-model`` for each mode that
    owns a collection, and ``--<mode>-checkpoint`` for each agent mode when ``agents``:
    `laser_rag.modes.source_fields`); the command is called with a `laser_rag.modes.ModeSources` as its ``param``
    argument. The options are those of the modes registered when the command is defined."""
    from laser_rag.modes import ModeSources, source_fields

    options = dataclasses.make_dataclass("ModeSourceOptions", source_fields(agents=agents), frozen=True)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def convert(*args: Any, **kwargs: Any) -> Any:
            kwargs[param] = ModeSources.from_options(dataclasses.asdict(kwargs[param]))
            return command(*args, **kwargs)

        return dataclass_options(options, param=param)(convert)

    return decorate


def _option(field: dataclasses.Field, annotation: Any) -> Any:
    keywords = {key: value for key, value in field.metadata.items() if key in _OPTION_KEYWORDS}
    flag = field.name.replace("_", "-")
    declaration = f"--{flag}/--no-{flag}" if annotation is bool else f"--{flag}"  # a bool can be turned off too
    return typer.Option(*field.metadata.get("flags", (declaration,)), **keywords)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty
