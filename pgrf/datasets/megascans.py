"""Discovery of Quixel Megascans libraries as downloaded by Bridge.

Layout (tolerating the variations real libraries have)::

    <library>/Downloaded/3d/<name>_<id>/<id>.json              metadata
                                        <id>_LOD0.fbx           one model per distinct LOD0 stem
                                        <id>_2K_Albedo.jpg …     textures <prefix>_<1K|2K|4K|8K>_<Map>.<ext>
    <library>/Downloaded/3dplant/<name>_<id>/<id>.json
                                             Textures/Atlas/<prefix>_2K_Albedo.jpg …
                                             Var1/Var1_LOD0.fbx  one model per variant

Old downloads name files ``Aset_<...>_LOD0.fbx``; extensions may be upper case; JSON fields may be
missing. Anything that cannot be used is reported as a ``Problem`` or a model ``problem``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pgrf.config import Category
from pgrf.datasets import quixel
from pgrf.datasets.assets import mesh_rank, safe_id, unique_ids
from pgrf.formats.catalog import Catalog, ModelSpec, Problem

TEXTURE_PATTERN = re.compile(
    r"^(?P<prefix>.+?)_(?P<size>\d+K)_(?P<map>[A-Za-z]+)\.(?P<ext>jpe?g|png|exr|tiff?)$", re.IGNORECASE
)
LOD0_PATTERN = re.compile(r"^(?P<stem>.*?)_?LOD0\.(?P<ext>fbx|obj|abc)$", re.IGNORECASE)
VARIANT_PATTERN = re.compile(r"^var(?P<n>\d+)$", re.IGNORECASE)
MAPS_USED = ("albedo", "normal", "roughness", "gloss", "opacity", "translucency")


def discover(root: Path, category: Category, texture_size: str = "2K") -> Catalog:
    """All models of a category in a Bridge library rooted at ``root``."""
    downloaded = root / "Downloaded" if (root / "Downloaded").is_dir() else root
    catalog = Catalog(category=category.name, root=str(root))
    models: list[ModelSpec] = []
    for asset_type in category.types:
        type_dir = _child(downloaded, asset_type)
        if type_dir is None:
            continue
        for folder in sorted(p for p in type_dir.iterdir() if p.is_dir()):
            found, problem = _asset_models(folder, asset_type, category, texture_size)
            models.extend(found)
            if problem:
                catalog.problems.append(problem)
    catalog.models = unique_ids(models)
    if not catalog.models and not catalog.problems:
        types = ", ".join(category.types)
        catalog.problems.append(Problem(str(downloaded), f"no asset folders of type {types} here; "
                                                         "is this a Bridge library (it should hold Downloaded/)?"))
    return catalog


def _child(folder: Path, name: str) -> Path | None:
    """A subfolder matched case-insensitively."""
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _asset_models(folder: Path, asset_type: str, category: Category, texture_size: str) -> tuple[list[ModelSpec], Problem | None]:
    meta_file = _metadata_file(folder)
    if meta_file is None:
        return [], Problem(str(folder), "no <id>.json metadata; re-download the asset with Bridge")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        return [], Problem(str(meta_file), f"metadata does not parse ({exc}); re-download the asset with Bridge")
    if not quixel.matches(meta, category):
        return [], None
    asset_id = str(meta.get("id") or folder.name.rsplit("_", 1)[-1])
    asset_name = str(meta.get("name") or folder.name)
    class_name = quixel.class_name(meta, asset_name, category)
    is_plant = asset_type.lower() == "3dplant"
    textures, texture_problems = _textures(folder, meta, is_plant, texture_size)
    meshes = _plant_meshes(folder) if is_plant else _asset_meshes(folder)
    if not meshes:
        return [], Problem(str(folder), "no LOD0 mesh (…_LOD0.fbx|.obj|.abc) found; download the asset with LOD0")
    models = []
    for suffix, mesh in meshes:
        model_id = safe_id(f"{asset_id}_{suffix}" if suffix else asset_id)
        models.append(
            ModelSpec(
                model_id=model_id,
                asset_id=asset_id,
                asset_name=asset_name,
                category=category.name,
                class_name=class_name,
                source="megascans",
                files=(str(mesh),),
                textures=textures,
                problems=tuple(texture_problems),
            )
        )
    return models, None


def _metadata_file(folder: Path) -> Path | None:
    candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    if not candidates:
        return None
    by_id = [p for p in candidates if folder.name.lower().endswith(p.stem.lower())]
    return (by_id or candidates)[0]


def _plant_meshes(folder: Path) -> list[tuple[str, Path]]:
    meshes = []
    for variant in sorted((p for p in folder.iterdir() if p.is_dir() and VARIANT_PATTERN.match(p.name)), key=_variant_number):
        lod0 = _best_lod0(variant.iterdir())
        if lod0:
            meshes.append((f"var{_variant_number(variant)}", lod0[0][1]))
    return meshes


def _variant_number(path: Path) -> int:
    match = VARIANT_PATTERN.match(path.name)
    return int(match["n"]) if match else 0


def _asset_meshes(folder: Path) -> list[tuple[str, Path]]:
    """One mesh per distinct LOD0 stem; a multi-object asset has several (``…_01_LOD0``, ``…_02_LOD0``)."""
    found = _best_lod0(folder.iterdir())
    if len(found) <= 1:
        return [("", path) for _, path in found]
    common = _common_prefix([stem for stem, _ in found])
    return [(stem[len(common):].strip("_") or stem, path) for stem, path in found]


def _best_lod0(paths: Any) -> list[tuple[str, Path]]:
    """LOD0 files grouped by stem, keeping the preferred format of each."""
    best: dict[str, Path] = {}
    for path in paths:
        match = LOD0_PATTERN.match(path.name)
        if not match or not path.is_file():
            continue
        stem = match["stem"].rstrip("_")
        if stem not in best or mesh_rank(path.suffix) < mesh_rank(best[stem].suffix):
            best[stem] = path
    return sorted(best.items())


def _common_prefix(stems: list[str]) -> str:
    """The longest common prefix that ends at an underscore (so ``a_01``/``a_02`` keep ``01``/``02``)."""
    prefix = stems[0]
    for stem in stems[1:]:
        while not stem.startswith(prefix):
            prefix = prefix[:-1]
    return prefix[: prefix.rfind("_") + 1]


def _textures(folder: Path, meta: dict[str, Any], is_plant: bool, texture_size: str) -> tuple[dict[str, str], list[str]]:
    """The used texture maps (map name → file) at the resolution nearest ``texture_size``, and problems."""
    search = [folder / "Textures" / "Atlas", folder / "Textures", folder] if is_plant else [folder, folder / "Textures"]
    candidates: dict[str, list[tuple[int, Path]]] = {}
    for directory in search:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            match = TEXTURE_PATTERN.match(path.name)
            if match and match["map"].lower() in MAPS_USED:
                candidates.setdefault(match["map"].lower(), []).append((int(match["size"][:-1]), path))
        if candidates:
            break
    wanted = int(texture_size.upper()[:-1])
    chosen = {name: str(min(options, key=lambda o: (abs(o[0] - wanted), -o[0]))[1]) for name, options in candidates.items()}
    present = {p.name.lower() for p in folder.rglob("*") if p.is_file()}
    problems = [f"texture listed in metadata is missing: {name}"
                for name in _listed_textures(meta) if Path(name).name.lower() not in present]
    if "albedo" not in chosen:
        problems.append("no Albedo texture (<name>_<size>_Albedo.jpg); re-download the asset's textures")
    return chosen, problems


def _listed_textures(meta: dict[str, Any]) -> list[str]:
    """File names the metadata's ``maps`` or ``components`` lists claim are present."""
    names = []
    for key in ("maps", "components"):
        for entry in meta.get(key) or []:
            uri = entry.get("uri") if isinstance(entry, dict) else None
            if isinstance(uri, str) and TEXTURE_PATTERN.match(Path(uri).name):
                names.append(uri)
    return names

