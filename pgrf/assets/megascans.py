"""Discovery of Quixel Megascans libraries as downloaded by Bridge (and from the web).

Layout (tolerating the variations real libraries have)::

    <library>/Downloaded/3d/<name>_<id>/<id>.json              metadata (a hint: the disk decides)
                                        <id>_LOD0.fbx           one model per distinct LOD0 stem
                                        <id>_2K_Albedo.jpg …     textures <prefix>_<1K|2K|4K|8K>_<Map>[_LOD<n>].<ext>
    <library>/Downloaded/3dplant/<name>_<id>/<id>.json
                                             Textures/Atlas/<prefix>_2K_Albedo.jpg …
                                             Var1/Var1_LOD0.fbx  one model per variant (``Var 1``, ``var_1`` too)
    <library>/Downloaded/3d/<id>.zip                            a zipped asset, next to or instead of its folder
    <library>/<Name>_<id>_<res>_3d_ms/                          a web download (``_3dplant_ms`` for plants)

Old downloads name files ``Aset_<...>_LOD0.fbx`` and maps ``_Diffuse``/``_Translucent``; normal maps may be
per LOD (``_Normal_LOD0``); maps may come as JPG and EXR; extensions may be upper case; JSON fields may be
missing. Zips are read through the archive cache, never extracted into the library. Anything that cannot be
used is reported as a ``Problem`` or a model ``problem``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgrf.assets import archives, quixel
from pgrf.assets.naming import mesh_rank, safe_id, unique_ids
from pgrf.config import Category
from pgrf.errors import PgrfError
from pgrf.formats.catalog import Catalog, ModelSpec, Problem

TEXTURE_PATTERN = re.compile(
    r"^(?P<prefix>.+?)_(?P<size>\d+)K_(?P<map>[A-Za-z]+)(?:_LOD(?P<lod>\d+))?\.(?P<ext>jpe?g|png|exr|tiff?)$", re.IGNORECASE
)
MAP_NAMES = {"albedo": "albedo", "diffuse": "albedo", "normal": "normal", "roughness": "roughness", "gloss": "gloss",
             "opacity": "opacity", "translucency": "translucency", "translucent": "translucency"}
"""File-name map → the material's map; ``Diffuse`` and ``Translucent`` are the legacy names."""
FLOAT_SUFFIXES = (".exr",)
LOD0_PATTERN = re.compile(r"^(?P<stem>.*?)_?LOD0\.(?P<ext>fbx|obj|abc)$", re.IGNORECASE)
VARIANT_PATTERN = re.compile(r"^\s*var[\s_-]*(?P<n>\d+)\s*$", re.IGNORECASE)
WEB_PATTERN = re.compile(r"^(?P<name>.+)_(?P<id>[A-Za-z0-9]+)_(?P<res>\d+K)_(?P<type>3d|3dplant)_ms$", re.IGNORECASE)
COMMON_WORDS = 8
"""How many of the words carried by unmatched assets a 'nothing matched' problem names."""


@dataclass
class _Scan:
    """What one discovery run looked at: assets judged and the words of those that did not match."""

    category: Category
    texture_size: str
    looked: int = 0
    unmatched: Counter = field(default_factory=Counter)


def discover(root: Path, category: Category, texture_size: str = "2K") -> Catalog:
    """All models of a category in a Bridge library rooted at ``root``."""
    downloaded = root / "Downloaded" if (root / "Downloaded").is_dir() else root
    catalog = Catalog(category=category.name, root=str(root))
    scan = _Scan(category, texture_size)
    models: list[ModelSpec] = []
    type_dirs = []
    for asset_type in category.types:
        type_dir = _child(downloaded, asset_type)
        if type_dir is not None:
            type_dirs.append(type_dir)
            models.extend(_entries(type_dir, asset_type, scan, catalog))
    wanted = {t.lower() for t in category.types}
    for parent in dict.fromkeys((root, downloaded)):
        for entry in sorted(parent.iterdir()):
            web = WEB_PATTERN.match(entry.stem if entry.suffix.lower() == ".zip" else entry.name)
            if web and web["type"].lower() in wanted:
                models.extend(_entry(entry, web["type"], scan, catalog))
    catalog.models = unique_ids(models)
    if not catalog.models and not catalog.problems:
        catalog.problems.append(_nothing_found(downloaded, type_dirs, scan))
    return catalog


def _nothing_found(downloaded: Path, type_dirs: list[Path], scan: _Scan) -> Problem:
    """Why a library gave no models: no type folders, or assets that all carried other words."""
    types = ", ".join(scan.category.types)
    if not scan.looked:
        where = ", ".join(str(d) for d in type_dirs) or str(downloaded)
        return Problem(where, f"no asset folders of type {types} here; is this a Bridge library (it should hold Downloaded/)?")
    common = sorted(scan.unmatched.items(), key=lambda item: (-item[1], item[0]))[:COMMON_WORDS]
    words = ", ".join(f"{word} ({count})" for word, count in common)
    match = ", ".join(scan.category.match) or "(any)"
    return Problem(", ".join(str(d) for d in type_dirs) or str(downloaded),
                   f"none of the {scan.looked} assets of type {types} matched {match}; they carried instead: {words}; "
                   f"add some of these words to categories.{scan.category.name}.match")


def _child(folder: Path, name: str) -> Path | None:
    """A subfolder matched case-insensitively."""
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _asset_key(path: Path) -> str:
    """The asset id a folder or zip name carries (``<name>_<id>``, ``<id>``, ``<Name>_<id>_<res>_3d_ms``)."""
    name = path.stem if path.suffix.lower() == ".zip" else path.name
    web = WEB_PATTERN.match(name)
    return (web["id"] if web else name.rsplit("_", 1)[-1]).strip().lower()


def _entries(type_dir: Path, asset_type: str, scan: _Scan, catalog: Catalog) -> list[ModelSpec]:
    """The models of every asset folder of a type folder, and of every zip whose folder is absent."""
    entries = sorted(p for p in type_dir.iterdir() if p.is_dir() or p.suffix.lower() == ".zip")
    folders = {_asset_key(p) for p in entries if p.is_dir()}
    models = []
    for entry in entries:
        if entry.is_dir() or _asset_key(entry) not in folders:
            models.extend(_entry(entry, asset_type, scan, catalog))
    return models


def _entry(entry: Path, asset_type: str, scan: _Scan, catalog: Catalog) -> list[ModelSpec]:
    found, problem = _asset_models(entry, asset_type, scan)
    if problem:
        catalog.problems.append(problem)
    return found


def _asset_dirs(entry: Path) -> list[Path]:
    """The folders holding an asset's files: the folder itself and its zips' contents, or a zip's contents."""
    zips = [entry] if entry.is_file() else sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() == ".zip")
    dirs = [] if entry.is_file() else [entry]
    for archive in zips:
        contents = archives.extracted(archive)
        children = list(contents.iterdir())
        dirs.append(children[0] if len(children) == 1 and children[0].is_dir() else contents)
    return dirs


def _asset_models(entry: Path, asset_type: str, scan: _Scan) -> tuple[list[ModelSpec], Problem | None]:
    try:
        dirs = _asset_dirs(entry)
    except PgrfError as error:
        return [], Problem(str(entry), str(error))
    meta_file = _metadata_file(dirs, entry)
    if meta_file is None:
        return [], Problem(str(entry), "no <id>.json metadata; re-download the asset with Bridge")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        return [], Problem(str(meta_file), f"metadata does not parse ({exc}); re-download the asset with Bridge")
    scan.looked += 1
    if not quixel.matches(meta, scan.category):
        scan.unmatched.update(quixel.terms(meta) - quixel.GENERIC_CATEGORIES)
        return [], None
    asset_id = str(meta.get("id") or _asset_key(entry))
    asset_name = str(meta.get("name") or entry.name)
    class_name = quixel.class_name(meta, asset_name, scan.category)
    is_plant = asset_type.lower() == "3dplant"
    meshes = (_plant_meshes(dirs) or _asset_meshes(dirs)) if is_plant else _asset_meshes(dirs)
    if not meshes:
        return [], Problem(str(entry), "no LOD0 mesh (…_LOD0.fbx|.obj|.abc) found; download the asset with LOD0")
    maps = _texture_candidates(dirs, is_plant)
    models = []
    for suffix, mesh, lod in meshes:
        textures, problems = _textures(maps, scan.texture_size, lod)
        models.append(
            ModelSpec(
                model_id=safe_id(f"{asset_id}_{suffix}" if suffix else asset_id),
                asset_id=asset_id,
                asset_name=asset_name,
                category=scan.category.name,
                class_name=class_name,
                source="megascans",
                files=(str(mesh),),
                textures=textures,
                problems=tuple(problems),
            )
        )
    return models, None


def _metadata_file(dirs: list[Path], entry: Path) -> Path | None:
    """The asset's JSON, preferring the one named after the asset id."""
    candidates = sorted(p for d in dirs for p in d.iterdir() if p.suffix.lower() == ".json" and p.is_file())
    if not candidates:
        return None
    by_id = [p for p in candidates if p.stem.lower() == _asset_key(entry) or entry.name.lower().endswith(p.stem.lower())]
    return (by_id or candidates)[0]


def _plant_meshes(dirs: list[Path]) -> list[tuple[str, Path, int]]:
    """One LOD0 mesh per variant folder (``Var1``, ``Var 1``, ``var_1`` …)."""
    variants: dict[int, Path] = {}
    for folder in dirs:
        for sub in folder.iterdir():
            match = VARIANT_PATTERN.match(sub.name)
            if sub.is_dir() and match and int(match["n"]) not in variants:
                lod0 = _best_lod0(sub.iterdir())
                if lod0:
                    variants[int(match["n"])] = lod0[0][1]
    return [(f"var{n}", path, 0) for n, path in sorted(variants.items())]


def _asset_meshes(dirs: list[Path]) -> list[tuple[str, Path, int]]:
    """One mesh per distinct LOD0 stem; a multi-object asset has several (``…_01_LOD0``, ``…_02_LOD0``)."""
    found = _best_lod0(p for d in dirs for p in d.iterdir())
    if len(found) <= 1:
        return [("", path, 0) for _, path in found]
    common = _common_prefix([stem for stem, _ in found])
    return [(stem[len(common):].strip("_") or stem, path, 0) for stem, path in found]


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


@dataclass(frozen=True)
class _Map:
    """One texture file on disk: its resolution in K, the LOD it is made for (None: every LOD)."""

    path: Path
    size: int
    lod: int | None


def _texture_candidates(dirs: list[Path], is_plant: bool) -> dict[str, list[_Map]]:
    """Texture files by material map, from the first folder that holds any (plants: the atlas first)."""
    subfolders = [Path("Textures") / "Atlas", Path("Textures"), Path()] if is_plant else [Path(), Path("Textures")]
    for directory in (d / sub for sub in subfolders for d in dirs):
        candidates: dict[str, list[_Map]] = {}
        for path in sorted(directory.iterdir()) if directory.is_dir() else ():
            match = TEXTURE_PATTERN.match(path.name)
            if match and match["map"].lower() in MAP_NAMES and path.is_file():
                lod = int(match["lod"]) if match["lod"] is not None else None
                candidates.setdefault(MAP_NAMES[match["map"].lower()], []).append(_Map(path, int(match["size"]), lod))
        if candidates:
            return candidates
    return {}


def _textures(candidates: dict[str, list[_Map]], texture_size: str, lod: int) -> tuple[dict[str, str], list[str]]:
    """The map files for a mesh of ``lod``: 8-bit files before EXR, then the mesh's LOD (else an all-LOD map,
    else the lowest LOD), then the resolution nearest ``texture_size`` (the larger on ties)."""
    wanted = int(texture_size.upper()[:-1])

    def rank(option: _Map) -> tuple:
        lod_rank = 0 if option.lod == lod else 1 if option.lod is None else 2 + option.lod
        return option.path.suffix.lower() in FLOAT_SUFFIXES, lod_rank, abs(option.size - wanted), -option.size

    chosen = {name: str(min(options, key=rank).path) for name, options in candidates.items()}
    if "roughness" in chosen:
        chosen.pop("gloss", None)
    problems = [] if "albedo" in chosen else ["no Albedo texture (<name>_<size>_Albedo.jpg or _Diffuse.jpg); "
                                              "re-download the asset's textures"]
    return chosen, problems
