"""Asset discovery on the sample library (its files are written by Blender's exporters)."""

from __future__ import annotations

from pathlib import Path

from pgrf.assets.discovery import discover
from pgrf.assets.sample_library import make_sample_library
from pgrf.config import load_config
from tests.helpers import CONFIG, run_pgrf


def _catalog(library: Path, name: str):
    cfg = load_config(CONFIG)
    category = cfg.category(name)
    return discover(cfg.library_root(category, str(library)), category)


def test_plants_one_model_per_variant_with_species_classes(sample_library: Path) -> None:
    catalog = _catalog(sample_library, "sample-plants")
    models = {m.model_id: m for m in catalog.models}
    assert set(models) == {"rbfqjd2_var1", "rbfqjd2_var2", "sfmhcbkr_var1", "sfmhcbkr_var2", "vlkhdjxq_var1",
                           "vlkhdjxq_var2", "tdxwcafa_var1", "xmissing_var1"}
    assert models["sfmhcbkr_var2"].class_name == "sword fern"
    assert models["sfmhcbkr_var2"].files[0].endswith("Var2/Var2_LOD0.fbx")
    assert set(models["rbfqjd2_var1"].textures) == {"albedo", "normal", "roughness", "opacity", "translucency"}
    assert "Textures/Atlas" in models["rbfqjd2_var1"].textures["opacity"]
    assert not models["xmissing_var1"].usable
    assert any("Albedo" in p for p in models["xmissing_var1"].problems)
    assert sum(m.usable for m in catalog.models) == 7


def test_food_merges_mushrooms_and_splits_multi_object_assets(sample_library: Path) -> None:
    catalog = _catalog(sample_library, "sample-food")
    models = {m.model_id: m for m in catalog.models}
    assert {"tgmlbdyp", "uk4pdgnfw_01", "uk4pdgnfw_02", "vhzdaa3", "xcorrupt", "xempty"} == set(models)
    assert models["uk4pdgnfw_01"].class_name == "mushroom"  # tagged only "mushroom", not "food"
    assert models["uk4pdgnfw_02"].files[0].endswith("Aset_food_uk4pdgnfw_02_LOD0.FBX")  # old names, upper-case
    assert models["tgmlbdyp"].class_name == "fruit"
    assert "gloss" in models["tgmlbdyp"].textures and "roughness" not in models["tgmlbdyp"].textures
    assert [p.path for p in catalog.problems] == [str(sample_library / "Downloaded/3d/bad_json_xbadjson/xbadjson.json")]
    assert "does not parse" in catalog.problems[0].reason


def test_plain_folders_class_is_the_collection(sample_library: Path) -> None:
    catalog = _catalog(sample_library, "sample-models")
    by_class: dict[str, set[str]] = {}
    for model in catalog.models:
        by_class.setdefault(model.class_name, set()).add(Path(model.files[0]).suffix)
    assert by_class == {"boxwood_shrub": {".glb"}, "sword_fern": {".glb"}, "tall_grass": {".glb"},
                        "dry_twigs": {".glb"}, "fruit": {".gltf"}, "mushroom": {".obj"}}
    assert not catalog.problems


def test_sample_library_is_deterministic_and_small(sample_library: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    make_sample_library(again, with_faults=True)
    files = sorted(p.relative_to(sample_library) for p in sample_library.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((sample_library / f).read_bytes() == (again / f).read_bytes() for f in files)
    assert sum((sample_library / f).stat().st_size for f in files) < 5_000_000
    suffixes = {f.suffix.lower() for f in files}
    assert {".fbx", ".obj", ".glb", ".gltf", ".jpg", ".json"} <= suffixes


def test_assets_list_command(sample_library: Path) -> None:
    result = run_pgrf("assets", "list", "--category", "sample-food", "--library", str(sample_library))
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "uk4pdgnfw_01" in out and "mushroom" in out
    assert "6 models (6 usable, 0 with problems) in 4 classes; 1 unusable entries" in out


def test_sample_library_behaves_like_a_bridge_library_for_the_real_categories(sample_library: Path) -> None:
    for real, sample in (("plants", "sample-plants"), ("food", "sample-food")):
        ids = [m.model_id for m in _catalog(sample_library, real).models]
        assert ids == [m.model_id for m in _catalog(sample_library, sample).models]
