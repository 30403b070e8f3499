"""A test library of Quixel Bridge patterns the sample library never has, written with real files:
meshes through Blender's own FBX/OBJ exporters, JPG maps with Pillow, EXR maps with Blender.

Each pattern is one asset (``PATTERNS`` maps the pattern to its asset id); ``make_bridge_library`` writes them
all under ``root`` (a library holding ``Downloaded/``) and returns where each went.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from pgrf.assets.procedural import Mesh, box
from pgrf.render.blender.mesh_export import export_files

FULL = (0.0, 0.0, 1.0, 1.0)
SPLIT_OBJECTS = {"pebble": ((-1.5, 0.0, 0.0), (0.6, 0.6, 0.4)), "twig": ((0.0, 0.0, 0.0), (2.0, 0.3, 0.3)),
                 "leaf": ((1.5, 0.0, 0.0), (0.8, 0.8, 0.1))}
"""The objects of the multi-object LOD0 file: name → (centre, size); each normalises to its own box."""

PATTERNS = {
    "normal_lod": "tnlod01",      # <id>_4K_Normal_LOD0/LOD1.jpg, JSON listing maps never downloaded
    "legacy": "tleg01",           # Aset_ names, _Diffuse and _Translucent maps, upper-case FBX
    "exr": "texr01",              # JPG and EXR copies of Albedo, Roughness only as EXR
    "variants": "tvar01",         # 3dplant with 'Var 1', 'var_2', 'VAR3 ' folders
    "zip_only": "tzip01",         # Downloaded/3d/<id>.zip and no folder
    "zip_beside": "tzip02",       # a folder and its <id>.zip next to it: the folder wins
    "web": "tweb01",              # <Name>_<id>_2K_3d_ms/ at the library root
    "edible": "tedi01",           # Quixel's food: categories ["3d", "edible", "baked goods"]
    "multi_object": "tmul01",     # one LOD0 FBX holding three mesh objects (split_objects)
}


def _box(centre: tuple[float, float, float], size: tuple[float, float, float]) -> Mesh:
    mesh = box(size, FULL)
    return Mesh(mesh.vertices + np.asarray(centre), mesh.faces, mesh.uvs)


def _meta(asset_id: str, name: str, categories: list[str], tags: list[str], maps: list[str]) -> dict:
    return {"id": asset_id, "name": name, "categories": categories, "tags": tags,
            "maps": [{"type": Path(m).stem.split("_")[-1].lower(), "uri": m} for m in maps]}


class _Writer:
    """Collects the files of the library: JSON and JPG now, meshes and EXR in one Blender run each."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root, self.work = root, work
        self.meshes: list[dict] = []
        self.exrs: list[str] = []

    def jpg(self, path: Path, color: tuple[int, int, int]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), color).save(path, quality=90)

    def exr(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.exrs.append(str(path))

    def mesh(self, path: Path, objects: dict[str, tuple], fmt: str = "") -> None:
        items = []
        for name, (centre, size) in objects.items():
            npz = self.work / f"{len(self.meshes)}_{name}.npz"
            mesh = _box(centre, size)
            np.savez(npz, vertices=mesh.vertices, faces=mesh.faces, uvs=mesh.uvs)
            items.append({"name": name, "mesh": str(npz), "material": {"name": "mat", "texture": None, "alpha": False}})
        self.meshes.append({"path": str(path), "format": fmt or path.suffix.lower()[1:], "objects": items})

    def meta(self, folder: Path, meta: dict) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{meta['id']}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def finish(self) -> None:
        export_files({"files": self.meshes}, self.work / "export.json")
        script = ("import sys, bpy\nfor p in sys.argv[1:]:\n"
                  "    im = bpy.data.images.new('m', 8, 8, float_buffer=True)\n"
                  "    im.pixels.foreach_set([0.5] * 256)\n"
                  "    im.filepath_raw = p; im.file_format = 'OPEN_EXR'; im.save()\n")
        subprocess.run([sys.executable, "-c", script, *self.exrs], check=True, capture_output=True)


def make_bridge_library(root: Path) -> dict[str, Path]:
    """Write every pattern under ``root``; returns pattern → the asset's folder or zip."""
    d3 = root / "Downloaded" / "3d"
    plants = root / "Downloaded" / "3dplant"
    where: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="pgrf-bridge-") as tmp:
        w = _Writer(root, Path(tmp))
        one = {"body": ((0.0, 0.0, 0.0), (1.0, 0.8, 0.6))}
        food, tags = ["3d", "food", "fruit"], ["food"]

        aid = PATTERNS["normal_lod"]
        folder = where["normal_lod"] = d3 / f"food_fruit_{aid}"
        for name in ("4K_Albedo", "4K_Normal_LOD0", "4K_Normal_LOD1", "4K_Roughness"):
            w.jpg(folder / f"{aid}_{name}.jpg", (200, 60, 40))
        w.mesh(folder / f"{aid}_LOD0.obj", one)
        listed = [f"{aid}_{m}" for m in ("8K_Albedo.exr", "8K_Normal_LOD0.exr", "4K_Albedo.jpg", "4K_Displacement.exr")]
        w.meta(folder, _meta(aid, "Red Apple", food, tags, listed))

        aid = PATTERNS["legacy"]
        folder = where["legacy"] = d3 / f"food_fruit_{aid}"
        w.jpg(folder / f"Aset_{aid}_2K_Diffuse.jpg", (180, 150, 60))
        w.jpg(folder / f"Aset_{aid}_2K_Translucent.jpg", (90, 90, 30))
        w.jpg(folder / f"Aset_{aid}_2K_Normal_LOD0.jpg", (128, 128, 255))
        w.mesh(folder / f"Aset_food_fruit_{aid}_LOD0.FBX", one, "fbx")
        w.meta(folder, {"id": aid, "name": "Old Pear", "categories": food})

        aid = PATTERNS["exr"]
        folder = where["exr"] = d3 / f"food_fruit_{aid}"
        w.jpg(folder / f"{aid}_2K_Albedo.jpg", (240, 200, 50))
        w.exr(folder / f"{aid}_2K_Albedo.exr")
        w.exr(folder / f"{aid}_2K_Roughness.exr")
        w.mesh(folder / f"{aid}_LOD0.obj", one)
        w.meta(folder, _meta(aid, "Lemon", food, tags, []))

        aid = PATTERNS["variants"]
        folder = where["variants"] = plants / f"plant_fern_{aid}"
        w.jpg(folder / "Textures" / "Atlas" / f"{aid}_2K_Albedo.jpg", (40, 160, 40))
        w.jpg(folder / "Textures" / "Atlas" / f"{aid}_2K_Normal.jpg", (128, 128, 255))
        for sub, var in (("Var 1", "Var1"), ("var_2", "var_2"), ("VAR3 ", "VAR3")):
            w.mesh(folder / sub / f"{var}_LOD0.obj", {"leaf": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.5))})
        w.meta(folder, _meta(aid, "Wild Fern", ["3dplant", "plant", "fern"], ["plant"], []))

        for key, name in (("zip_only", "Plum"), ("zip_beside", "Fig")):
            aid = PATTERNS[key]
            staging = Path(tmp) / "zips" / f"food_fruit_{aid}"
            w.jpg(staging / f"{aid}_2K_Albedo.jpg", (120, 40, 120))
            w.mesh(staging / f"{aid}_LOD0.obj", one)
            w.meta(staging, _meta(aid, name, food, tags, []))
            where[key] = d3 / f"{aid}.zip"
        aid = PATTERNS["zip_beside"]
        folder = d3 / f"food_fruit_{aid}"
        w.jpg(folder / f"{aid}_2K_Albedo.jpg", (120, 40, 120))
        w.mesh(folder / f"{aid}_LOD0.obj", one)
        w.meta(folder, _meta(aid, "Fig", food, tags, []))

        aid = PATTERNS["web"]
        folder = where["web"] = root / f"Green_Melon_{aid}_2K_3d_ms"
        w.jpg(folder / f"{aid}_2K_Albedo.jpg", (60, 200, 60))
        w.mesh(folder / f"{aid}_LOD0.fbx", one)
        w.meta(folder, _meta(aid, "Green Melon", food, tags, []))

        aid = PATTERNS["edible"]
        folder = where["edible"] = d3 / f"edible_baked goods_{aid}"
        w.jpg(folder / f"{aid}_2K_Albedo.jpg", (200, 160, 100))
        w.mesh(folder / f"{aid}_LOD0.obj", one)
        meta = _meta(aid, "Rye Bread", ["3d", "edible", "baked goods"], ["bread", "crust"], [])
        meta["semanticTags"] = {"name": "bread", "asset_type": "3D asset"}
        w.meta(folder, meta)

        aid = PATTERNS["multi_object"]
        folder = where["multi_object"] = d3 / f"nature_debris_{aid}"
        w.jpg(folder / f"{aid}_2K_Albedo.jpg", (110, 90, 70))
        w.mesh(folder / f"{aid}_LOD0.fbx", SPLIT_OBJECTS)
        w.meta(folder, _meta(aid, "Forest Debris", ["3d", "food", "debris"], ["debris"], []))

        w.finish()
        for key in ("zip_only", "zip_beside"):
            staging = Path(tmp) / "zips" / f"food_fruit_{PATTERNS[key]}"
            where[key].parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(where[key], "w") as archive:
                for path in sorted(staging.rglob("*")):
                    archive.write(path, path.relative_to(staging.parent))
            shutil.rmtree(staging)
    return where
