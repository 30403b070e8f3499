"""Discovery of plain model folders: ``<library>/<collection>/<model>.glb|.gltf|.fbx|.obj``.

This is the layout EpiGRAF's authors exported: the collection folder is the class. A model may also
sit in its own subfolder (``<collection>/<model>/<model>.gltf`` with its buffers and textures).
A glTF that requires an extension Blender cannot read, or a glTF or OBJ that names files outside its folder, is a
problem here, not a failed render; a glTF holding
LODs renders its LOD0 nodes without billboards (formats/gltf.py).
"""

from __future__ import annotations

from pathlib import Path

from pgrf.assets.naming import MESH_SUFFIXES, mesh_rank, safe_id, unique_ids
from pgrf.config import Category
from pgrf.formats import gltf, obj
from pgrf.formats.catalog import Catalog, ModelSpec, Problem

CHECKS = {".glb": gltf.problem, ".gltf": gltf.problem, ".obj": obj.problem}
"""Why a model file of these formats cannot render as it is (or None), found before Blender sees it."""


def discover(root: Path, category: Category) -> Catalog:
    """Every model file under ``root``'s collection folders."""
    catalog = Catalog(category=category.name, root=str(root))
    models = []
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix.lower() in MESH_SUFFIXES:
            catalog.problems.append(Problem(str(path), "model file outside a collection folder; "
                                                       "move it into <collection>/ (the folder names the class)"))
        elif path.is_dir() and not path.name.startswith("."):
            found, problems = _collection(path, category)
            models.extend(found)
            catalog.problems.extend(problems)
    catalog.models = unique_ids(models)
    if not catalog.models and not catalog.problems:
        catalog.problems.append(Problem(str(root), "no <collection>/<model>.glb|.gltf|.fbx|.obj files here"))
    return catalog


def _collection(folder: Path, category: Category) -> tuple[list[ModelSpec], list[Problem]]:
    candidates = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES]
    for sub in (p for p in folder.iterdir() if p.is_dir()):
        candidates.extend(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES and p.stem == sub.name)
    best: dict[str, Path] = {}
    for path in sorted(candidates):
        if path.stem not in best or mesh_rank(path.suffix) < mesh_rank(best[path.stem].suffix):
            best[path.stem] = path
    problems = []
    for stem, path in list(best.items()):
        check = CHECKS.get(path.suffix.lower())
        reason = check(path) if check else None
        if reason:
            problems.append(Problem(str(path), reason))
            del best[stem]
    class_name = folder.name.strip().lower()
    models = [
        ModelSpec(
            model_id=safe_id(f"{folder.name}_{stem}"),
            asset_id=safe_id(f"{folder.name}_{stem}"),
            asset_name=stem,
            category=category.name,
            class_name=class_name,
            source="folders",
            files=(str(path),),
        )
        for stem, path in sorted(best.items())
    ]
    return models, problems
