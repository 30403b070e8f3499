"""Discovery of Megascans assets downloaded from Fab: a folder of Fab zips and/or their extracted folders.

One Fab download is one asset at one quality tier::

    <library>/<Name>_<id>_<tier>.zip       (or the same, extracted, as a folder)
        <name>_<tier>.gltf (+ .bin, textures)  every LOD and, for plants, every variant in one file;
                                               LOD nodes carry extras.lod = {index, mesh}, billboard
                                               materials end in _Billboard; the tier is the file name's
                                               last _ token (and extras.tier)
        <id>.json                              Bridge-style metadata: id, name, categories (type first), tags

One model per base mesh (plant variant) of the chosen tier — the highest present, or the category's
``tier`` — made of its LOD0 nodes (ModelSpec.objects); labels exactly as Bridge's (datasets/quixel.py).
Zips are extracted once into a cache (datasets/archives.py), never into the library.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgrf.assets import archives, quixel
from pgrf.assets.naming import safe_id, unique_ids
from pgrf.config import Category
from pgrf.errors import PgrfError
from pgrf.formats import gltf
from pgrf.formats.catalog import Catalog, ModelSpec, Problem

TIERS = ("low", "medium", "high", "raw")
"""Fab's quality tiers, lowest first; a tier not listed ranks below all of them."""
VARIANT = re.compile(r"var_?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class _Download:
    """One asset at one tier: its glTF, its metadata and where it came from (a zip or a folder)."""

    origin: Path
    gltf: Path
    doc: dict[str, Any]
    meta: dict[str, Any]
    tier: str

    @property
    def asset_id(self) -> str:
        return str(self.meta.get("id") or self.gltf.stem.rsplit("_", 1)[0])


def is_fab_library(root: Path) -> bool:
    """Whether ``root`` holds Fab downloads (zips or folders with a .gltf) rather than a Bridge library.

    Cheap: only the top-level zips' member lists and the top-level folders' own files are looked at."""
    if (root / "Downloaded").is_dir():
        return False
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix.lower() == ".zip" and _zip_has_gltf(entry):
            return True
        if entry.is_dir() and next(entry.glob("*.gltf"), None) is not None:
            return True
    return False


def _zip_has_gltf(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as handle:
            return any(name.lower().endswith(".gltf") for name in handle.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def discover(root: Path, category: Category) -> Catalog:
    """All models of a category in a folder of Fab downloads."""
    catalog = Catalog(category=category.name, root=str(root))
    by_asset: dict[str, list[_Download]] = {}
    for download in _downloads(root, catalog.problems):
        if _wanted(download.meta, category):
            by_asset.setdefault(download.asset_id, []).append(download)
    models: list[ModelSpec] = []
    for asset_id, downloads in sorted(by_asset.items()):
        chosen = _tier(downloads, category)
        if chosen is None:
            present = ", ".join(sorted({d.tier for d in downloads}))
            catalog.problems.append(Problem(str(downloads[0].origin), f"asset {asset_id} has no '{category.tier}' tier "
                                            f"(present: {present}); download it from Fab or change the category's tier"))
            continue
        found, problem = _models(chosen, category)
        models.extend(found)
        if problem:
            catalog.problems.append(problem)
    catalog.models = unique_ids(models)
    if not catalog.models and not catalog.problems:
        catalog.problems.append(Problem(str(root), "no Fab downloads (zips or folders holding a .gltf and its .json) "
                                                   f"of type {', '.join(category.types)} here"))
    return catalog


def _downloads(root: Path, problems: list[Problem]) -> list[_Download]:
    """Every glTF of the library's zips and folders; a folder and its own zip count once (the folder wins)."""
    found: dict[tuple[str, str], _Download] = {}
    entries = sorted(root.iterdir(), key=lambda p: (p.is_file(), p.name))
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith("."):
            folder = entry
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            try:
                folder = archives.extracted(entry)
            except PgrfError as error:
                problems.append(Problem(str(entry), str(error)))
                continue
        else:
            continue
        for path in sorted(folder.rglob("*.gltf")):
            download = _read(entry, path, problems)
            if download is not None:
                found.setdefault((download.asset_id, download.tier), download)
    return list(found.values())


def _read(origin: Path, path: Path, problems: list[Problem]) -> _Download | None:
    """The download of one glTF; what is wrong is a problem of ``origin`` (the zip or folder) naming the file."""
    reason = gltf.problem(path)
    if reason:
        problems.append(Problem(str(origin), f"{path.name}: {reason}"))
        return None
    meta_files = sorted(p for p in path.parent.glob("*.json"))
    if not meta_files:
        problems.append(Problem(str(origin), f"{path.name}: no Fab metadata (.json) next to it; re-download the asset"))
        return None
    try:
        meta = json.loads(meta_files[0].read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("top level is not an object")
    except (ValueError, UnicodeDecodeError) as error:
        problems.append(Problem(str(origin), f"{meta_files[0].name}: metadata does not parse ({error}); "
                                             "re-download the asset"))
        return None
    doc = gltf.load(path).doc
    return _Download(origin, path, doc, meta, _tier_name(path, doc))


def _tier_name(path: Path, doc: dict[str, Any]) -> str:
    """``extras.tier`` of the document, its asset or first scene, else the file name's last ``_`` token."""
    for holder in (doc, doc.get("asset") or {}, *(doc.get("scenes") or [])[:1]):
        extras = holder.get("extras") if isinstance(holder, dict) else None
        if isinstance(extras, dict) and extras.get("tier"):
            return str(extras["tier"]).lower()
    return path.stem.rsplit("_", 1)[-1].lower()


def _wanted(meta: dict[str, Any], category: Category) -> bool:
    """The asset's type (its first category) is one of the category's types, and its words match."""
    types = quixel.categories(meta)
    kind = types[0].strip().lower() if types and isinstance(types[0], str) else ""
    if kind and kind not in {t.lower() for t in category.types}:
        return False
    return quixel.matches(meta, category)


def _tier(downloads: list[_Download], category: Category) -> _Download | None:
    if category.tier:
        return next((d for d in downloads if d.tier == category.tier.lower()), None)
    return max(downloads, key=lambda d: (TIERS.index(d.tier) if d.tier in TIERS else -1, d.tier))


def _models(download: _Download, category: Category) -> tuple[list[ModelSpec], Problem | None]:
    """One model per base mesh of the download's LOD0 nodes."""
    groups: dict[str, list[str]] = {}
    for node in gltf.lod0(gltf.mesh_nodes(download.doc)):
        groups.setdefault(node.mesh, []).append(node.name)
    if not groups:
        return [], Problem(str(download.origin), f"{download.gltf.name}: no LOD0 mesh nodes; re-download the asset")
    asset_id = download.asset_id
    asset_name = str(download.meta.get("name") or asset_id)
    class_name = quixel.class_name(download.meta, asset_name, category)
    models = []
    for mesh, names in sorted(groups.items()):
        variant = VARIANT.search(mesh)
        suffix = f"var{int(variant[1])}" if variant else safe_id(mesh)
        models.append(ModelSpec(
            model_id=safe_id(asset_id if len(groups) == 1 else f"{asset_id}_{suffix}"),
            asset_id=asset_id,
            asset_name=asset_name,
            category=category.name,
            class_name=class_name,
            source="fab",
            files=(str(download.gltf),),
            objects=tuple(names),
        ))
    return models, None
