"""The bundled sample asset library: procedural plants and food in Megascans and plain-folder layouts.

Deterministic and small (a few MB). Contents, chosen so every branch of discovery and rendering runs:

- ``Downloaded/3dplant``: three species with two variants each (leaf cards and grass blades cut out
  by an Opacity texture, stems, Translucency) plus one sparse species of bare twigs that the
  ``min_mean_alpha`` filter removes.
- ``Downloaded/3d``: an apple (modern naming, Gloss instead of Roughness), a pair of mushrooms in one
  multi-object asset (old ``Aset_`` naming, upper-case extensions, tagged only "mushroom"), and a
  crispbread so flat that the ``dims_product`` filter removes it.
- ``models/<collection>/``: the same plants as GLB and the food as OBJ and glTF (plain-folder layout).
- ``--with-faults``: a corrupt mesh, a JSON that does not parse, a missing texture and an empty mesh.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pgrf.assets.procedural import Atlas, Mesh, box, card, curve, lathe, strip, tube
from pgrf.render.blender.mesh_export import export_files

LEAVES: tuple = (0.0, 0.0, 0.75, 1.0)
STEM: tuple = (0.78, 0.0, 1.0, 1.0)
JPEG_QUALITY = 90


@dataclass
class Part:
    """One object of a model file."""

    name: str
    mesh: Mesh


@dataclass
class SampleAsset:
    """One Megascans-style asset: metadata, texture maps and one or more meshes (variants or objects)."""

    asset_id: str
    name: str
    asset_type: str  # "3d" or "3dplant"
    categories: list[str]
    tags: list[str]
    atlas: Atlas
    opacity: bool
    translucency: bool
    models: dict[str, list[Part]]  # variant or object suffix -> parts
    gloss: bool = False
    old_naming: bool = False
    collection: str = ""
    semantic: dict[str, object] = field(default_factory=dict)
    in_folders: bool = True  # also written to the plain-folder layout


# --- plants -----------------------------------------------------------------------------------


def _leaf_atlas(color: tuple[int, int, int], stem: tuple[int, int, int], shape: str, rng: np.random.Generator) -> Atlas:
    atlas = Atlas(background=tuple(int(c * 0.6) for c in color))
    atlas.leaf(LEAVES, color, shape)
    atlas.fill(STEM, stem, rng)
    return atlas


def _fern(rng: np.random.Generator) -> list[Part]:
    parts = []
    for i in range(int(rng.integers(7, 10))):
        angle = 2 * np.pi * i / 8 + rng.normal(0, 0.2)
        direction = np.array([np.cos(angle), np.sin(angle), rng.uniform(1.0, 1.6)])
        path = curve(np.zeros(3), direction, rng.uniform(0.45, 0.6), droop=0.5)
        pieces = [tube(path, np.linspace(0.008, 0.003, len(path)), STEM, sides=5)]
        tangent = np.diff(path, axis=0)
        for k in range(1, len(path) - 1):
            across = np.cross(tangent[k], [0.0, 0.0, 1.0])
            across /= np.linalg.norm(across)
            for side in (-1, 1):
                leaflet = 0.13 * (1 - k / len(path)) + 0.04
                direction = side * across + 0.3 * tangent[k] / np.linalg.norm(tangent[k])
                pieces.append(card(path[k], direction, tangent[k], leaflet, leaflet * 0.45, LEAVES))
        parts.append(Part(f"frond_{i}", Mesh.merge(pieces)))
    return parts


def _shrub(rng: np.random.Generator) -> list[Part]:
    pieces = [tube(np.array([[0, 0, 0], [0.01, 0, 0.25], [0, 0.02, 0.5]]), np.array([0.03, 0.025, 0.015]), STEM)]
    for i in range(6):
        angle = 2 * np.pi * i / 6 + rng.normal(0, 0.3)
        start = np.array([0.0, 0.0, rng.uniform(0.15, 0.45)])
        direction = np.array([np.cos(angle), np.sin(angle), rng.uniform(0.6, 1.2)])
        path = curve(start, direction, rng.uniform(0.35, 0.5), droop=0.2, points=6)
        pieces.append(tube(path, np.linspace(0.014, 0.005, len(path)), STEM, sides=5))
        for point in path[2:]:
            for _ in range(3):
                leaf_dir = rng.normal(size=3) + [0, 0, 0.6]
                pieces.append(card(point, leaf_dir, np.cross(leaf_dir, rng.normal(size=3)), 0.16, 0.1, LEAVES))
    return [Part("shrub", Mesh.merge(pieces))]


def _grass(rng: np.random.Generator) -> list[Part]:
    pieces = []
    for _ in range(48):
        base = np.append(rng.normal(0, 0.06, 2), 0.0)
        lean = np.append(rng.normal(0, 0.35, 2), 1.0)
        path = curve(base, lean, rng.uniform(0.5, 0.8), droop=rng.uniform(0.1, 0.35))
        pieces.append(strip(path, np.linspace(0.04, 0.006, len(path)), np.cross(lean, [0.0, 0.0, 1.0]) + [1e-3, 0, 0], LEAVES))
    return [Part("grass", Mesh.merge(pieces))]


def _twigs(rng: np.random.Generator) -> list[Part]:
    pieces = []
    for i in range(3):
        angle = 2 * np.pi * i / 3
        path = curve(np.zeros(3), [np.cos(angle), np.sin(angle), 0.8], 0.9, droop=0.1, points=6)
        pieces.append(tube(path, 0.004, STEM, sides=4))
    return [Part("twigs", Mesh.merge(pieces))]


def _plant(asset_id: str, name: str, tags: list[str], shape: str, color: tuple, build: Callable, seed: int, variants: int) -> SampleAsset:
    rng = np.random.default_rng(seed)
    atlas = _leaf_atlas(color, (92, 70, 45), shape, rng)
    models = {f"Var{v}": build(np.random.default_rng(seed * 100 + v)) for v in range(1, variants + 1)}
    return SampleAsset(
        asset_id, name, "3dplant", ["3d plant", "plant"] + tags, ["plant", "3d plant"] + tags, atlas,
        opacity=True, translucency=True, models=models, collection=name.lower().replace(" ", "_"),
        semantic={"name": name, "asset_type": "3D plant", "subject_matter": "plant"},
    )


# --- food -------------------------------------------------------------------------------------


def _apple(rng: np.random.Generator) -> SampleAsset:
    atlas = Atlas(background=(170, 30, 25))
    atlas.fill((0.0, 0.0, 0.78, 1.0), (175, 28, 22), rng, roughness=90)
    atlas.spots((0.0, 0.0, 0.78, 1.0), (220, 180, 60), 120, 2, rng)
    atlas.fill(STEM, (80, 60, 30), rng)
    t = np.linspace(0.0, 1.0, 17)
    radius = 0.04 * np.sin(np.pi * t) + 0.036 * np.sin(np.pi * t) ** 0.5
    height = 0.075 * (1 - np.cos(np.pi * t)) - 0.01 * np.sin(2 * np.pi * t)
    body = lathe(radius + 1e-4, height, (0.0, 0.0, 0.78, 1.0))
    stem = tube(np.array([[0, 0, 0.14], [0.004, 0, 0.16], [0.01, 0, 0.175]]), 0.003, STEM, sides=5)
    return SampleAsset("tgmlbdyp", "Red Apple", "3d", ["food", "fruit"], ["food", "fruit", "apple", "red"], atlas,
                       opacity=False, translucency=False, models={"": [Part("apple", Mesh.merge([body, stem]))]}, gloss=True,
                       collection="fruit", semantic={"name": "Apple", "asset_type": "3D asset"})


def _mushroom(seed: int, height: float, cap: float) -> list[Part]:
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, 12)
    stalk = lathe(cap * 0.18 * (1.2 - 0.3 * t), height * t, (0.0, 0.0, 1.0, 0.45), segments=16)
    c = np.linspace(0.0, 1.0, 12)
    cap_mesh = lathe(cap * np.sin(0.5 * np.pi * (1 - c)) + 1e-4, height + cap * 0.45 * np.sin(0.5 * np.pi * c) + rng.normal(0, 0.002, 12),
                     (0.0, 0.5, 1.0, 1.0), segments=20)
    return [Part("stalk", stalk), Part("cap", cap_mesh)]


def _mushrooms(rng: np.random.Generator) -> SampleAsset:
    atlas = Atlas(background=(230, 220, 190))
    atlas.fill((0.0, 0.0, 1.0, 0.48), (232, 222, 196), rng)
    atlas.fill((0.0, 0.5, 1.0, 1.0), (200, 25, 20), rng, roughness=110)
    atlas.spots((0.0, 0.5, 1.0, 1.0), (245, 245, 235), 40, 4, rng)
    return SampleAsset("uk4pdgnfw", "Amanita Muscaria", "3d", ["nature", "mushroom"], ["mushroom", "amanita", "fungus"], atlas,
                       opacity=False, translucency=False, models={"01": _mushroom(11, 0.09, 0.05), "02": _mushroom(12, 0.12, 0.06)},
                       old_naming=True, collection="mushroom")


def _crispbread(rng: np.random.Generator) -> SampleAsset:
    atlas = Atlas(background=(200, 160, 100))
    atlas.fill((0.0, 0.0, 1.0, 1.0), (205, 165, 105), rng)
    atlas.spots((0.0, 0.0, 1.0, 1.0), (150, 110, 60), 200, 2, rng)
    return SampleAsset("vhzdaa3", "Crispbread", "3d", ["food", "bread"], ["food", "bread", "flat"], atlas,
                       opacity=False, translucency=False, models={"": [Part("crispbread", box((0.2, 0.09, 0.008), (0.0, 0.0, 1.0, 1.0)))]},
                       collection="bread", in_folders=False)


def sample_assets() -> list[SampleAsset]:
    """Every asset of the clean sample library, deterministically."""
    rng = np.random.default_rng(20221128)
    return [
        _plant("sfmhcbkr", "Sword Fern", ["fern"], "narrow", (60, 120, 45), _fern, 1, 2),
        _plant("rbfqjd2", "Boxwood Shrub", ["shrub", "bush"], "broad", (45, 100, 35), _shrub, 2, 2),
        _plant("vlkhdjxq", "Tall Grass", ["grass"], "blade", (110, 140, 60), _grass, 3, 2),
        _plant("tdxwcafa", "Dry Twigs", ["twig", "dry"], "blade", (120, 100, 70), _twigs, 4, 1),
        _apple(rng),
        _mushrooms(rng),
        _crispbread(rng),
    ]


# --- writing ----------------------------------------------------------------------------------


def _texture_name(asset: SampleAsset, map_name: str) -> str:
    prefix = f"Aset_{asset.asset_id}" if asset.old_naming else asset.asset_id
    return f"{prefix}_2K_{map_name}.jpg"


def _mesh_name(asset: SampleAsset, key: str) -> str:
    if asset.asset_type == "3dplant":
        return f"{key}/{key}_LOD0.fbx"
    stem = f"Aset_food_{asset.asset_id}" if asset.old_naming else asset.asset_id
    suffix = f"_{key}" if key else ""
    return f"{stem}{suffix}_LOD0.FBX" if asset.old_naming else f"{stem}{suffix}_LOD0.fbx"


def _metadata(asset: SampleAsset, maps: list[str], meshes: list[str]) -> dict:
    meta: dict = {
        "id": asset.asset_id,
        "name": asset.name,
        "categories": asset.categories,
        "tags": asset.tags,
        "maps": [{"type": m.lower(), "resolution": "2048x2048", "uri": m} for m in maps],
        "meshes": [{"type": "lod", "uris": [{"uri": m, "lod": 0}]} for m in meshes],
        "meta": [{"key": "scanArea", "name": "Scan Area", "value": "0.3x0.3 m"}],
    }
    if asset.semantic:
        meta["semanticTags"] = asset.semantic
    if asset.old_naming:  # old downloads lack several fields
        del meta["maps"], meta["meta"]
    return meta


def _write_megascans(asset: SampleAsset, root: Path, work: Path, exports: list[dict]) -> None:
    folder = root / "Downloaded" / asset.asset_type / f"{asset.name.lower().replace(' ', '_')}_{asset.asset_id}"
    texture_dir = folder / "Textures" / "Atlas" if asset.asset_type == "3dplant" else folder
    texture_dir.mkdir(parents=True, exist_ok=True)
    map_files = []
    for map_name, image in asset.atlas.maps(asset.opacity, asset.translucency, asset.gloss).items():
        path = texture_dir / _texture_name(asset, map_name)
        image.save(path, quality=JPEG_QUALITY)
        map_files.append(str(path.relative_to(folder)))
    meshes = []
    for key, parts in asset.models.items():
        mesh_name = _mesh_name(asset, key)
        meshes.append(mesh_name)
        exports.append(_export_item(folder / mesh_name, "fbx", parts, asset, work, texture=None))
    (folder / f"{asset.asset_id}.json").write_text(json.dumps(_metadata(asset, map_files, meshes), indent=2), encoding="utf-8")


def _write_folder_models(asset: SampleAsset, root: Path, work: Path, exports: list[dict]) -> None:
    """Plants as GLB, the apple as glTF, other food as OBJ; base colour RGBA texture next to them."""
    collection = root / "models" / asset.collection
    collection.mkdir(parents=True, exist_ok=True)
    texture = work / f"{asset.asset_id}_basecolor.png"
    rgba = asset.atlas.albedo.copy()
    rgba.putalpha(asset.atlas.opacity if asset.opacity else Image.new("L", rgba.size, 255))
    rgba.save(texture)
    for key, parts in asset.models.items():
        stem = f"{asset.collection}_{key.lower()}" if key else asset.collection
        if asset.asset_type == "3dplant":
            fmt = "glb"
        else:
            fmt = "gltf" if asset.gloss else "obj"
        exports.append(_export_item(collection / f"{stem}.{fmt}", fmt, parts, asset, work, texture=texture))


def _export_item(path: Path, fmt: str, parts: list[Part], asset: SampleAsset, work: Path, texture: Path | None) -> dict:
    objects = []
    for part in parts:
        npz = work / f"{asset.asset_id}_{path.stem}_{part.name}.npz"
        np.savez(npz, vertices=part.mesh.vertices, faces=part.mesh.faces, uvs=part.mesh.uvs)
        material = {"name": f"{asset.collection}_mat", "texture": str(texture) if texture else None, "alpha": asset.opacity}
        objects.append({"name": part.name, "mesh": str(npz), "material": material})
    return {"path": str(path), "format": fmt, "objects": objects}


def make_sample_library(root: Path, with_faults: bool = False) -> list[SampleAsset]:
    """Write the sample library under ``root`` (replacing what pgrf wrote there before)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("Downloaded", "models"):
        shutil.rmtree(root / sub, ignore_errors=True)
    assets = sample_assets()
    exports: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pgrf-sample-") as tmp:
        work = Path(tmp)
        for asset in assets:
            _write_megascans(asset, root, work, exports)
            if asset.in_folders:
                _write_folder_models(asset, root, work, exports)
        if with_faults:
            _write_faults(root, work, exports)
        export_files({"files": exports}, work / "export.json")
    return assets


def _write_faults(root: Path, work: Path, exports: list[dict]) -> None:
    """Broken assets for tests: each must be reported, none may stop a run."""
    rng = np.random.default_rng(7)
    food = _apple(rng)
    downloaded = root / "Downloaded"

    corrupt = downloaded / "3d" / "broken_mesh_xcorrupt"
    corrupt.mkdir(parents=True)
    (corrupt / "xcorrupt_LOD0.fbx").write_bytes(b"Kaydara FBX Binary  \x00" + rng.bytes(2048))
    food.atlas.albedo.save(corrupt / "xcorrupt_2K_Albedo.jpg")
    (corrupt / "xcorrupt.json").write_text(json.dumps({"id": "xcorrupt", "name": "Broken Mesh", "categories": ["food", "fruit"]}))

    bad_json = downloaded / "3d" / "bad_json_xbadjson"
    bad_json.mkdir(parents=True)
    (bad_json / "xbadjson.json").write_text('{"id": "xbadjson", "name": ')
    (bad_json / "xbadjson_LOD0.obj").write_text("v 0 0 0\n")

    missing = downloaded / "3dplant" / "missing_texture_xmissing"
    (missing / "Textures" / "Atlas").mkdir(parents=True)
    Image.new("L", (8, 8), 255).save(missing / "Textures" / "Atlas" / "xmissing_2K_Opacity.jpg")
    listed = ["Textures/Atlas/xmissing_2K_Albedo.jpg", "Textures/Atlas/xmissing_2K_Opacity.jpg"]
    meta = {"id": "xmissing", "name": "Missing Texture", "categories": ["plant"], "maps": [{"uri": u} for u in listed]}
    (missing / "xmissing.json").write_text(json.dumps(meta))
    exports.append(_export_item(missing / "Var1" / "Var1_LOD0.fbx", "fbx", _twigs(rng), food, work, texture=None))

    empty = downloaded / "3d" / "empty_mesh_xempty"
    empty.mkdir(parents=True)
    (empty / "xempty_LOD0.obj").write_text("# an OBJ file without geometry\n")
    food.atlas.albedo.save(empty / "xempty_2K_Albedo.jpg")
    (empty / "xempty.json").write_text(json.dumps({"id": "xempty", "name": "Empty Mesh", "categories": ["food"]}))
