"""`pgrf import` on renders made with Blender the way EpiGRAF's authors made M-Plants (tests/libraries/epigraf_renders.py):
the imported c2w are pgrf's for the same (φ, θ), the object's projection covers the rendered alpha, stats counts
what the folder holds, and the processed zip built from it imports with the same cameras."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pgrf import cameras
from pgrf.config import Category
from pgrf.formats import renders as records
from pgrf.pipeline.import_renders import import_renders
from pgrf.pipeline.import_zip import ZipOptions, import_zip
from pgrf.pipeline.pack import PackOptions
from pgrf.pipeline.shards import iter_samples
from pgrf.pipeline.stats import compute_stats
from tests.helpers import REPO, silhouette
from tests.libraries.epigraf_renders import build_processed_zip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("epigraf")
    result = subprocess.run([sys.executable, str(REPO / "tests" / "libraries" / "epigraf_renders.py"), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_import_of_blender_renders_has_our_cameras_and_their_silhouettes(rendered: Path, tmp_path: Path) -> None:
    raw = rendered / "raw"
    assert sorted(p.name for p in (raw / "Coll_A" / "Thing_1").iterdir())[:3] == \
        ["000000.png", "000000_depth_0001.exr", "000000_normal_0001.png"]
    outcome = import_renders(raw, Category("plants"), tmp_path / "renders")
    assert not outcome.problems and outcome.views == 6
    category = tmp_path / "renders" / "plants"
    triangles = json.loads((rendered / "triangles.json").read_text())
    for model_id, collection, name in (("Thing_1", "Coll_A", "Thing 1"), ("Other_LOD0", "collB", "Other_LOD0")):
        doc = records.read_cameras(category / model_id)
        frames = json.loads((raw / collection / "metadata.json").read_text())[name]
        assert doc.class_name == collection and doc.render.passes == ["depth", "normal"]
        world = np.array(triangles[f"{collection}/{model_id}"])
        for view, frame in zip(doc.views, frames):
            yaw, pitch, _ = frame["camera_angles"]
            assert np.allclose(view.c2w, cameras.look_at_origin(yaw, pitch, 3.5), atol=1e-5)  # Blender stores float32
            assert np.isclose(np.cos(view.yaw - yaw), 1.0) and np.isclose(view.pitch, pitch, atol=1e-5)
            pixels, depth = cameras.project(world.reshape(-1, 3), np.array(view.c2w), np.array(view.intrinsics), 64)
            assert depth.min() > 0
            predicted = silhouette(pixels.reshape(-1, 3, 2), 64)
            alpha = np.asarray(Image.open(category / model_id / view.file))[..., 3] > 127
            iou = (predicted & alpha).sum() / (predicted | alpha).sum()
            flipped_iou = (predicted[:, ::-1] & alpha).sum() / (predicted[:, ::-1] | alpha).sum()
            assert iou > 0.9, (model_id, view.index, iou)
            assert flipped_iou < iou
    stats = compute_stats(category)
    assert (stats.models, stats.images, stats.classes) == (2, 6, 2)

    (tmp_path / "work").mkdir()
    archive = build_processed_zip(raw, tmp_path / "processed.zip", tmp_path / "work")
    result = import_zip(archive, tmp_path / "shards", PackOptions(resolution=32, mirror=False, name="z"), ZipOptions())
    assert not result.problems and result.card.counts.samples == 6
    for key, members in iter_samples(tmp_path / "shards" / "z-000000.tar"):
        meta = json.loads(members["json"])
        doc = records.read_cameras(category / meta["model_id"])
        assert np.allclose(meta["c2w"], doc.views[meta["view"]].c2w, atol=1e-5), key
        assert meta["class_name"] == doc.class_name
