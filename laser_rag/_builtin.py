"""THE one resolver of ``builtin:<name>`` sources: the checkpoints shipped inside the package (encoders and agents).

Light to import (no torch): `laser_rag.encoders.load_encoder` and `laser_rag.latentrag.resolve_checkpoint` both
read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from laser_rag.errors import ModelNotFoundError

PREFIX = "builtin:"
_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
#: Every checkpoint shipped inside the package, by its ``builtin:`` name.
SHIPPED = {
    "laser": _CHECKPOINTS / "laser-smollm2-135m",
    "basic": _CHECKPOINTS / "basic-smollm2-135m",
    "latentrag": _CHECKPOINTS / "latentrag-smollm2-135m",
    "explicit-agent": _CHECKPOINTS / "explicit-agent-smollm2-135m",
}


def resolve_builtin(source: str, *, names: Mapping[str, Path] = SHIPPED, marker: str | None = None) -> str:
    """``builtin:<name>`` -> the shipped checkpoint's directory (one of ``names``); anything else unchanged.

    With ``marker`` (a file a complete checkpoint holds), a name whose folder lacks it is not shipped:
    `ModelNotFoundError` then, as for an unknown name, listing what is shipped.
    """
    if not source.startswith(PREFIX):
        return source
    name = source.removeprefix(PREFIX)

    def shipped(path: Path) -> bool:
        return marker is None or (path / marker).is_file()

    if name not in names or not shipped(names[name]):
        found = [known for known, path in names.items() if shipped(path)]
        raise ModelNotFoundError(f"no built-in checkpoint {name!r}; shipped: {found}")
    return str(names[name])
