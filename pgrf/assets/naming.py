"""Naming and choosing files during discovery: safe unique model ids, mesh format preference."""

from __future__ import annotations

import re
from dataclasses import replace

from pgrf.formats.catalog import ModelSpec
from pgrf.paths import MODEL_ID_BYTES, short_name

MESH_SUFFIXES = (".fbx", ".obj", ".abc", ".glb", ".gltf")
"""Mesh formats pgrf imports, in order of preference when an asset has several."""


def safe_id(text: str) -> str:
    """A lowercase, filesystem- and WebDataset-key-safe id (no dots, no spaces), shortened with a hash of the whole
    text beyond ``MODEL_ID_BYTES``."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_")
    return short_name(cleaned, MODEL_ID_BYTES) if cleaned else "model"


def unique_ids(models: list[ModelSpec]) -> list[ModelSpec]:
    """Make model ids unique by suffixing repeats with _2, _3, … (order-stable)."""
    seen: dict[str, int] = {}
    result = []
    for model in sorted(models, key=lambda m: (m.model_id, m.files)):
        count = seen.get(model.model_id, 0) + 1
        seen[model.model_id] = count
        if count > 1:
            model = replace(model, model_id=f"{model.model_id}_{count}")
        result.append(model)
    return result


def mesh_rank(suffix: str) -> int:
    """Preference of a mesh file extension (lower is better); unknown formats rank last."""
    suffix = suffix.lower()
    return MESH_SUFFIXES.index(suffix) if suffix in MESH_SUFFIXES else len(MESH_SUFFIXES)
