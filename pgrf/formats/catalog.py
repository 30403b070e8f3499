"""The asset catalog: what discovery finds (renderable models and the things it could not use), what render takes."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class Problem:
    """Something in the library that could not be used, and why."""

    path: str
    reason: str


@dataclass
class Catalog:
    """Models of one category plus the library's unusable entries."""

    category: str
    root: str
    models: list[ModelSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
