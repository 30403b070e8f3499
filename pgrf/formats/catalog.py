"""The asset catalog: what discovery finds (renderable models and the things it could not use), what render takes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrf.fileio import atomic_path


@dataclass(frozen=True)
class ModelSpec:
    """One model to render: where its files are and how it is labelled."""

    model_id: str
    asset_id: str
    asset_name: str
    category: str
    class_name: str
    source: str
    files: tuple[str, ...]
    textures: dict[str, str] = field(default_factory=dict)
    objects: tuple[str, ...] = ()
    """Names of the mesh objects (glTF nodes, Blender objects) of ``files`` that form this model; empty: all."""
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def root(self) -> Path:
        """The folder holding all of the model's files and textures: what its importer may read lies under it."""
        return Path(os.path.commonpath([str(Path(f).parent) for f in self.files] + list(self.textures.values())))


@dataclass(frozen=True)
class Problem:
    """Something in the library that could not be used, and why."""

    path: str
    reason: str


@dataclass
class Catalog:
    """Models of one category plus the library's unusable entries and the models its exclude file removed."""

    category: str
    root: str
    models: list[ModelSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    excluded: list[ModelSpec] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The catalog as ``pgrf assets list --json`` writes it (excluded models are left out)."""
        return {
            "category": self.category,
            "root": self.root,
            "models": [
                {"model_id": m.model_id, "asset_id": m.asset_id, "asset_name": m.asset_name, "class_name": m.class_name,
                 "source": m.source, "files": list(m.files), "textures": dict(sorted(m.textures.items())),
                 "usable": m.usable, "problems": list(m.problems)}
                for m in self.models
            ],
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
        }


def write_catalog(path: Path, catalog: Catalog) -> None:
    """Write ``catalog.to_json()`` to ``path`` atomically."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(catalog.to_json(), indent=2) + "\n", encoding="utf-8")
