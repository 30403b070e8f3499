"""Asset discovery on hand-made variations of real Bridge libraries (the sample library: tests/blender/test_discovery_blender.py)."""

from __future__ import annotations

import json
from pathlib import Path

from pgrf import fileio
from pgrf.assets.discovery import discover
from pgrf.config import Category
from pgrf.paths import MODEL_ID_BYTES
from tests.libraries.gltf_assets import two_boxes


def _asset(root: Path, kind: str, folder: str, meta: dict | str | None, files: list[str]) -> Path:
    path = root / "Downloaded" / kind / folder
    path.mkdir(parents=True)
    if meta is not None:
        (path / f"{folder.rsplit('_', 1)[-1]}.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    for name in files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(b"x")
    return path


def test_real_library_variations(tmp_path: Path) -> None:
    _asset(tmp_path, "3d", "pear_abc", {"id": "abc"}, ["abc_LOD0.OBJ", "abc_LOD0.fbx", "abc_LOD1.fbx",
                                                     "abc_2K_Albedo.JPG", "abc_8K_Albedo.jpg", "abc_2K_Normal.png"])
    _asset(tmp_path, "3d", "plum_def", {"id": "def", "name": "Plum", "tags": ["Fruits"]}, ["def_High.fbx"])
    _asset(tmp_path, "3d", "nojson_ghi", None, ["ghi_LOD0.fbx"])
    _asset(tmp_path, "3d", "rock_jkl", {"id": "jkl", "categories": ["rock"]}, ["jkl_LOD0.fbx", "jkl_2K_Albedo.jpg"])
    category = Category(name="fruit", types=["3d"], match=["fruit"])
    catalog = discover(tmp_path, category)
    models = {m.model_id: m for m in catalog.models}
    assert set(models) == {"abc"}  # no tags at all: the type folder decides; the rock does not match
    assert models["abc"].files[0].endswith("abc_LOD0.fbx")  # FBX preferred over OBJ, LOD0 over LOD1
    assert models["abc"].textures["albedo"].endswith("abc_2K_Albedo.JPG")  # nearest to 2K
    reasons = {Path(p.path).name: p.reason for p in catalog.problems}
    assert "no LOD0 mesh" in reasons["plum_def"]
    assert "no <id>.json metadata" in reasons["nojson_ghi"]
    assert discover(tmp_path, Category(name="x", types=["3d"], match=["fruit"], exclude_words=["pear"])).models[0].model_id == "abc"


def test_not_a_bridge_library_is_reported(tmp_path: Path) -> None:
    catalog = discover(tmp_path, Category(name="plants", types=["3dplant"]))
    assert not catalog.models and "is this a Bridge library" in catalog.problems[0].reason


def test_model_ids_too_long_for_a_file_name_are_shortened_the_same_way_every_run(tmp_path: Path) -> None:
    collection = tmp_path / "lib" / ("c" * 150)
    collection.mkdir(parents=True)
    for stem in ("m" * 150 + "_a", "m" * 150 + "_b"):
        two_boxes().write_glb(collection / f"{stem}.glb")
    ids = [m.model_id for m in discover(tmp_path / "lib", Category(name="props", source="folders")).models]
    assert ids == [m.model_id for m in discover(tmp_path / "lib", Category(name="props", source="folders")).models]
    assert len(set(ids)) == 2 and all(i.startswith("c" * 100) and len(i) <= MODEL_ID_BYTES for i in ids)
    logs = tmp_path / "out" / ".logs"
    logs.mkdir(parents=True)
    for model_id in ids:  # what pgrf render names after a model: its log, its folder and their temporary names
        (logs / f"{model_id}.log").write_text("")
        (tmp_path / "out" / fileio.temporary_name(model_id)).mkdir()
