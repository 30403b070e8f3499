"""Exclude files, ``pgrf assets list --json`` and the 'nothing matched' problem (no Blender runs here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from pgrf.assets.discovery import discover
from pgrf.config import Category, load_config
from pgrf.formats import renders as records
from pgrf.formats.exclude import read_exclude, write_exclude
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.render.runner import plan
from tests.helpers import run_pgrf

OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 1\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n"


def _asset(root: Path, aid: str, categories: list[str], tags: list[str]) -> Path:
    """A Bridge 3D asset with a plain-text OBJ LOD0, a JPG albedo and its JSON."""
    folder = root / "Downloaded" / "3d" / f"{categories[-1]}_{aid}"
    folder.mkdir(parents=True)
    (folder / f"{aid}_LOD0.obj").write_text(OBJ)
    Image.new("RGB", (8, 8), (200, 100, 50)).save(folder / f"{aid}_2K_Albedo.jpg")
    (folder / f"{aid}.json").write_text(json.dumps({"id": aid, "name": aid.title(), "categories": categories, "tags": tags}))
    return folder


def test_exclude_file_ids_globs_comments(tmp_path: Path) -> None:
    path = tmp_path / "exclude.txt"
    path.write_text("# rejected by hand\nabc_var1\n  XYZ*   # a whole family\n\nq[0-9]z\n")
    rejected = read_exclude(path)
    assert rejected.patterns == ("abc_var1", "xyz*", "q[0-9]z")
    assert rejected.matches("abc_var1", "abc") and not rejected.matches("abc_var2", "abc")
    assert rejected.matches("anything", "xyzzy") and rejected.matches("XYZ_var3", "other")  # asset id, model id
    assert rejected.matches("q5z", "q5z") and not rejected.matches("qaz", "qaz")


def test_write_exclude_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "plants-exclude.txt"
    write_exclude(path, "plants", ["b_var2", "a*", "b_var2"])
    text = path.read_text()
    assert text.startswith("# pgrf exclude list for category 'plants', written 20")
    assert read_exclude(path).patterns == ("a*", "b_var2")


@pytest.mark.render
def test_assets_list_json_and_exclude(tmp_path: Path) -> None:
    library = tmp_path / "library"
    _asset(library, "apple1", ["3d", "food", "fruit"], ["apple"])
    _asset(library, "pear1", ["3d", "edible", "fruit"], ["pear"])
    (tmp_path / "exclude.txt").write_text("# bad scan\npear*\n")
    config = tmp_path / "assets.toml"
    config.write_text(f"library = {json.dumps(str(library))}\n[categories.food]\ntypes = ['3d']\n"
                      "match = ['food', 'edible']\nexclude = 'exclude.txt'\n")
    result = run_pgrf("assets", "list", "-c", "food", "--config", str(config), "--json", str(tmp_path / "food.json"))
    assert result.returncode == 0, result.stderr
    assert "1 excluded" in result.stdout
    data = json.loads((tmp_path / "food.json").read_text())
    assert list(data) == ["category", "root", "models", "problems"] and data["problems"] == []
    (model,) = data["models"]
    assert list(model) == ["model_id", "asset_id", "asset_name", "class_name", "source", "files", "textures", "usable", "problems"]
    assert model["model_id"] == "apple1" and model["usable"] and model["problems"] == []
    assert list(model["textures"]) == ["albedo"] and model["textures"]["albedo"].endswith("apple1_2K_Albedo.jpg")

    cfg = load_config(config)
    catalog = discover(cfg.library_root(cfg.category("food")), cfg.category("food"))
    assert [m.model_id for m in catalog.excluded] == ["pear1"]
    assert [m.model_id for m in plan(catalog, tmp_path / "renders", cfg.render).excluded] == ["pear1"]


def test_pack_counts_excluded_models_in_the_card(tmp_path: Path) -> None:
    category_dir = fake_renders(tmp_path / "renders", "food", {"apple1": 0.5, "pear1": 0.5})
    records.append_record(category_dir, records.RenderRecord("plum1", records.Status.EXCLUDED))  # never rendered
    (tmp_path / "exclude.txt").write_text("pear1\nplum1\n")
    config = tmp_path / "assets.toml"
    config.write_text("[categories.food]\nexclude = 'exclude.txt'\n")
    card = pack([category_dir], tmp_path / "shards", load_config(config), PackOptions(resolution=8))
    assert card.filters.removed_models["exclude"] == 2 and card.counts.models == 1


def test_nothing_matched_says_what_the_assets_carried(tmp_path: Path) -> None:
    for i in range(3):
        _asset(tmp_path, f"rock{i}", ["3d", "rock", "granite" if i else "basalt"], ["rock", "boulder"])
    catalog = discover(tmp_path, Category(name="food", types=["3d"], match=["food"]))
    (problem,) = catalog.problems
    assert problem.path == str(tmp_path / "Downloaded" / "3d")
    assert "none of the 3 assets of type 3d matched food" in problem.reason
    assert "boulder (3), rock (3), granite (2), basalt (1)" in problem.reason and "3d (" not in problem.reason
