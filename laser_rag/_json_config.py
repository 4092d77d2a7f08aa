"""`JsonConfig`: how a checkpoint's dataclass config is written beside its weights and read back, written once."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, Self

from laser_rag.util import atomic_write


class JsonConfig:
    """A mixin for a dataclass saved as one JSON file (``_file``) in a checkpoint directory; unknown fields in the
    file are refused (``_label`` names the config in that message), missing ones take their defaults."""

    _file: ClassVar[str]
    _label: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls._label} config fields: {unknown}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        return atomic_write(Path(directory) / self._file, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        return cls.from_dict(json.loads((Path(directory) / cls._file).read_text(encoding="utf-8")))
