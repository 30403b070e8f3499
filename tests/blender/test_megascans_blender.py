"""Bridge libraries as they are: each pattern of tests/libraries/bridge_assets.py is discovered,
and a multi-object FBX with split_objects renders one normalised model per object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgrf.assets import objects
from pgrf.assets.discovery import discover
from pgrf.config import Category, load_config
from pgrf.formats import renders as records
from tests.helpers import CONFIG, TINY, run_pgrf
from tests.libraries.bridge_assets import PATTERNS, SPLIT_OBJECTS, make_bridge_library

FOOD = Category(name="t-food", types=["3d"], match=["food"])


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bridge")
    make_bridge_library(root)
    return root


@pytest.fixture(autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.getbasetemp() / "pgrf-cache"
    monkeypatch.setenv("PGRF_CACHE", str(path))
    return path


def _models(library: Path, category: Category = FOOD) -> dict:
    return {m.model_id: m for m in discover(library, category).models}


def test_per_lod_normal_maps_and_disk_decides(library: Path) -> None:
    model = _models(library)[PATTERNS["normal_lod"]]
    assert model.usable, model.problems  # the JSON lists 8K EXR maps that were never downloaded
    assert Path(model.textures["normal"]).name == f"{PATTERNS['normal_lod']}_4K_Normal_LOD0.jpg"
    assert set(model.textures) == {"albedo", "normal", "roughness"}


def test_legacy_names(library: Path) -> None:
    model = _models(library)[PATTERNS["legacy"]]
    assert model.usable and Path(model.files[0]).suffix == ".FBX"
    assert {k: Path(v).name.split("_2K_")[1] for k, v in model.textures.items()} == {
        "albedo": "Diffuse.jpg", "translucency": "Translucent.jpg", "normal": "Normal_LOD0.jpg"}


def test_jpg_before_exr(library: Path) -> None:
    model = _models(library)[PATTERNS["exr"]]
    assert Path(model.textures["albedo"]).suffix == ".jpg" and Path(model.textures["roughness"]).suffix == ".exr"


def test_variant_folders_with_odd_spacing(library: Path) -> None:
    plants = Category(name="t-plants", types=["3dplant"], match=["plant"], class_from="asset")
    models = _models(library, plants)
    aid = PATTERNS["variants"]
    assert sorted(models) == [f"{aid}_var1", f"{aid}_var2", f"{aid}_var3"]
    assert {m.class_name for m in models.values()} == {f"wild fern {aid}"}


def test_zipped_assets_read_through_the_cache(library: Path, cache: Path) -> None:
    before = sorted(p.relative_to(library) for p in library.rglob("*"))
    models = _models(library)
    zipped = models[PATTERNS["zip_only"]]
    assert zipped.usable and Path(zipped.files[0]).is_relative_to(cache)
    beside = [m for m in models.values() if m.asset_id == PATTERNS["zip_beside"]]
    assert len(beside) == 1 and Path(beside[0].files[0]).is_relative_to(library)  # the folder wins over its zip
    assert sorted(p.relative_to(library) for p in library.rglob("*")) == before  # nothing extracted into the library


def test_web_download_folder(library: Path) -> None:
    model = _models(library)[PATTERNS["web"]]
    assert model.usable and model.asset_name == "Green Melon"


def test_shipped_food_finds_edible(library: Path) -> None:
    food = load_config(CONFIG).category("food")
    models = _models(library, food)
    assert PATTERNS["edible"] in models and models[PATTERNS["edible"]].class_name == "baked goods"
    assert food.min_mean_alpha == 0.05


def test_split_objects_lists_once_and_caches(library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split = Category(name="t-debris", types=["3d"], match=["debris"], split_objects=True)
    aid = PATTERNS["multi_object"]
    models = _models(library, split)
    assert {k: m.objects for k, m in models.items()} == {f"{aid}_{name}": (name,) for name in SPLIT_OBJECTS}

    def no_blender(files: list[str]) -> dict:
        assert not files, f"listed again: {files}"
        return {}

    monkeypatch.setattr(objects, "list_objects", no_blender)
    assert _models(library, split).keys() == models.keys()  # from the cache, without Blender


def test_split_objects_render_one_normalised_model_per_object(library: Path, tmp_path: Path) -> None:
    config = tmp_path / "assets.toml"
    config.write_text(f"library = {json.dumps(str(library))}\n[render]\nmin_dim_product = 0.0\n"
                      "[categories.debris]\ntypes = ['3d']\nmatch = ['debris']\nsplit_objects = true\n")
    result = run_pgrf("render", "-c", "debris", "--config", str(config), "--out", str(tmp_path / "out"),
                      *TINY[:1], "1", *TINY[2:])
    assert result.returncode == 0, result.stderr[-2000:]
    finished = records.finished_models(tmp_path / "out" / "debris")
    aid = PATTERNS["multi_object"]
    assert sorted(finished) == sorted(f"{aid}_{name}" for name in SPLIT_OBJECTS)
    for name, (_, size) in SPLIT_OBJECTS.items():
        dims = sorted(records.read_cameras(finished[f"{aid}_{name}"]).normalisation.dims)
        assert np.allclose(dims, sorted(2 * np.asarray(size) / max(size)), atol=1e-3), (name, dims)


def test_exr_maps_load_as_linear_never_srgb(library: Path) -> None:
    model = _models(library)[PATTERNS["exr"]]
    textures = {**model.textures, "albedo": model.textures["albedo"].replace(".jpg", ".exr")}
    script = ("import json, sys\nfrom pgrf.render.blender import materials\n"
              "m = materials.megascans_material('m', json.loads(sys.argv[1]))\n"
              "print(json.dumps({n.image.filepath.rsplit('_', 1)[-1]: n.image.colorspace_settings.name "
              "for n in m.node_tree.nodes if n.type == 'TEX_IMAGE'}))\n")
    result = subprocess.run([sys.executable, "-c", script, json.dumps(textures)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"Albedo.exr": "Linear Rec.709", "Roughness.exr": "Non-Color"}
