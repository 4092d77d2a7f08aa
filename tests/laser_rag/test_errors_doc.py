"""docs/errors.md lists every `LaserRagError` subclass, and its python code runs as written."""

from __future__ import annotations

import re
from pathlib import Path

from laser_rag import errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def _subclasses(cls: type) -> set[type]:
    return {cls} | {sub for child in cls.__subclasses__() for sub in _subclasses(child)}


def test_every_error_is_documented():
    rows = set(re.findall(r"^\| `(\w+)` \|", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE))
    defined = {cls.__name__ for cls in _subclasses(errors.LaserRagError) if cls.__module__ == errors.__name__}
    assert defined <= rows, f"add to docs/errors.md: {sorted(defined - rows)}"
    assert rows <= defined, f"no longer in laser_rag/errors.py: {sorted(rows - defined)}"


def test_the_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
