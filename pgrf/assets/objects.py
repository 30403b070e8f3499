"""``split_objects``: one model per mesh object of a multi-object file, with the object listing cached.

Listing needs Blender (``pgrf.render.blender.inspect``); each file's listing is cached under the archive cache,
keyed by the file's path, size and modification time, so a library is inspected once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from pgrf.assets.archives import cache_root, file_key
from pgrf.assets.naming import safe_id, unique_ids
from pgrf.fileio import atomic_path
from pgrf.formats.catalog import ModelSpec
from pgrf.render.blender.inspect import list_objects


def _cache_file(path: str) -> Path:
    return cache_root() / "objects" / f"{file_key(Path(path), 24)}.json"


def object_names(files: list[str]) -> dict[str, list[str] | str]:
    """Mesh object names of each file (or Blender's reason it cannot be read), from the cache or one Blender run."""
    listing: dict[str, list[str] | str] = {}
    for path in files:
        cached = _cache_file(path)
        if cached.is_file():
            listing[path] = json.loads(cached.read_text(encoding="utf-8"))["objects"]
    fresh = list_objects([path for path in files if path not in listing])
    for path, names in fresh.items():
        cached = _cache_file(path)
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as partial:
            partial.write_text(json.dumps({"file": path, "objects": names}), encoding="utf-8")
    return {**listing, **fresh}


def split_models(models: list[ModelSpec]) -> list[ModelSpec]:
    """Each usable single-file model whose file holds several mesh objects becomes one model per object
    (``<model>_<object>``, ``objects = (object,)``); others are kept as they are."""
    listing = object_names(sorted({m.files[0] for m in models if _splittable(m)}))
    result: list[ModelSpec] = []
    for model in models:
        listed = listing.get(model.files[0]) if _splittable(model) else None
        names = list(model.objects) or (listed if isinstance(listed, list) else [])
        if len(names) <= 1:
            result.append(model)
            continue
        result.extend(replace(model, model_id=safe_id(f"{model.model_id}_{name}"), objects=(name,)) for name in names)
    return unique_ids(result)


def _splittable(model: ModelSpec) -> bool:
    return model.usable and len(model.files) == 1
