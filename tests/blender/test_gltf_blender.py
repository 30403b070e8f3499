"""glTF inputs through real Cycles renders: a meshopt GLB renders pixel-equal to its uncompressed twin, and a Fab
asset renders its LOD0 only (no other LOD, no billboard). Models go through the worker's render_model; a failed
import names the importer's error."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pgrf.assets import archives
from pgrf.assets.discovery import discover
from pgrf.config import Category
from pgrf.formats.catalog import ModelSpec
from tests.helpers import REPO
from tests.libraries.gltf_assets import LODS, GltfBuilder, box, two_boxes, write_fab_zip

SCRIPT = REPO / "tests" / "blender" / "gltf_render.py"


def _spec(category: str, files: tuple[str, ...], objects: tuple[str, ...] = ()) -> ModelSpec:
    """The same ids for every twin, so every render uses the same cameras."""
    return ModelSpec(model_id="twin", asset_id="twin", asset_name="twin", category=category, class_name="twin",
                     source="folders", files=files, objects=objects)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """RGBA views (views, H, W, 4) per category of every twin."""
    tmp = tmp_path_factory.mktemp("gltf")
    boxes = two_boxes()
    fab_root = tmp / "fab"
    fab_root.mkdir()
    write_fab_zip(fab_root, "tbdpec3r", "Wild Grass", "high")
    mp = pytest.MonkeyPatch()
    mp.setenv(archives.CACHE_ENV, str(tmp / "cache"))
    try:
        catalog = discover(fab_root, Category(name="fab", source="fab", types=["3dplant"]))
    finally:
        mp.undo()
    fab = next(m for m in catalog.models if m.model_id == "tbdpec3r_var1")
    lod0 = GltfBuilder()
    leaf = lod0.material("MI_tbdpec3r", (0.2, 0.6, 0.2, 1.0))
    lod0.node("only", lod0.mesh([(*box(*LODS["Var1"][0]), leaf)]))
    specs = [
        _spec("plain", (str(boxes.write_glb(tmp / "plain.glb")),)),
        _spec("meshopt", (str(boxes.write_meshopt_glb(tmp / "meshopt.glb")),)),
        replace(fab, model_id="twin", asset_id="twin", category="fab"),
        _spec("lod0", (str(lod0.write_glb(tmp / "lod0.glb")),)),
        replace(fab, model_id="twin", asset_id="twin", category="lod1", objects=("SM_tbdpec3r_Var1_LOD1",)),
    ]
    jobs = tmp / "jobs.json"
    jobs.write_text(json.dumps([asdict(s) for s in specs]))
    result = subprocess.run([sys.executable, str(SCRIPT), str(jobs), str(tmp / "out")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count(" rendered") == len(specs), result.stdout
    return {s.category: np.stack([np.asarray(Image.open(p)) for p in sorted((tmp / "out" / s.category / "twin" / "views").glob("*.png"))])
            for s in specs}


def test_a_meshopt_glb_renders_pixel_equal_to_its_uncompressed_twin(rendered: dict[str, np.ndarray]) -> None:
    assert rendered["plain"].shape == (2, 48, 48, 4) and rendered["plain"][..., 3].mean() > 10
    assert np.array_equal(rendered["meshopt"], rendered["plain"])


def test_a_fab_asset_renders_lod0_only(rendered: dict[str, np.ndarray]) -> None:
    alpha = rendered["fab"][..., 3].astype(np.int16)
    assert np.array_equal(alpha, rendered["lod0"][..., 3])  # the same mask as LOD0 alone
    assert np.abs(alpha - rendered["lod1"][..., 3]).mean() > 20  # and visibly not another LOD's


def test_a_failed_import_names_the_importers_error_not_bpys_location(tmp_path: Path) -> None:
    gltf = two_boxes().write_gltf(tmp_path / "short.gltf")
    gltf.with_suffix(".bin").write_bytes(gltf.with_suffix(".bin").read_bytes()[:40])
    script = ("import sys\nfrom pathlib import Path\nfrom pgrf.render.blender.importing import ImportFailed, import_files\n"
              "try:\n    import_files((sys.argv[1],), (), Path(sys.argv[2]), Path(sys.argv[1]).parent)\nexcept ImportFailed as error:\n"
              "    print('REASON', error)\n")
    result = subprocess.run([sys.executable, "-c", script, str(gltf), str(tmp_path / "scratch")], capture_output=True,
                            text=True, cwd=REPO)
    reason = result.stdout.rpartition("REASON ")[2].strip()  # Blender's own report may end without a newline
    assert reason == "short.gltf: Blender could not import it (ValueError: buffer is smaller than requested size)", \
        result.stderr[-2000:]
