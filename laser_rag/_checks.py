"""Checks of what a caller passes to an entry point (encoders, retrievers, the answer loop, the adapters): each
returns the value or raises `laser_rag.errors.InvalidInputError` naming the argument, so a user's mistake reads as
one clear line and never reaches a tokenizer or Qdrant as a traceback."""

from __future__ import annotations

from typing import Any

from laser_rag.errors import InvalidInputError, InvalidInputTypeError


def text(value: Any, name: str, *, empty: bool = False) -> str:
    """``value`` if it is a str a tokenizer can read: not blank (unless ``empty``), no lone surrogate."""
    if not isinstance(value, str):
        raise InvalidInputTypeError(f"{name} is a {type(value).__name__}, not a str")
    if not empty and not value.strip():
        raise InvalidInputError(f"{name} is empty")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(f"{name} is not valid Unicode ({error.reason} at character {error.start})") \
                from None
    return value


def optional_text(value: Any, name: str) -> str | None:
    """None, or a str as `text` accepts it (an empty one included: an empty instruction is a choice)."""
    return None if value is None else text(value, name, empty=True)


def positive_int(value: Any, name: str) -> int:
    """``value`` if it is an int >= 1 (a bool is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputTypeError(f"{name} must be an integer >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def optional_positive_int(value: Any, name: str) -> int | None:
    """None, or an int as `positive_int` accepts it."""
    return None if value is None else positive_int(value, name)


def rescoring(rescore: Any, oversampling: Any) -> None:
    """How a quantized collection rescores: ``rescore`` a bool, ``oversampling`` None or a number >= 1."""
    if not isinstance(rescore, bool):
        raise InvalidInputTypeError(f"rescore must be True or False, got {type(rescore).__name__} {rescore!r}")
    if oversampling is not None and (isinstance(oversampling, bool) or not isinstance(oversampling, (int, float))
                                     or not oversampling >= 1):
        raise InvalidInputError(f"oversampling must be a number >= 1 (or None), got {oversampling!r}")
