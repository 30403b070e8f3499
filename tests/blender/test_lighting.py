"""The world light on real Cycles renders: the studio light and its rotation change the pixels, and
``--hdri none`` with Blender's default dither gives exactly the pixels of the even white light pgrf used
before studio lights existed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import run_pgrf

FLAGS = ["--views", "2", "--resolution", "32", "--samples", "4", "--no-denoise", "--limit", "1"]
"""The apple (first sample-food model in id order), 2 views at 32²."""
MODEL = "tgmlbdyp"
EVEN_LIGHT_PIXELS = ["a31be0abd69d70d46f4acce9eaba662e9fe49ec79ce32b692064dd40bd53440c",
                     "ddac3c868dd4b89c6f119266d5f929f2773e3015c077788fb4d81d6f2d44e6e0"]
"""sha256 of the RGBA pixels of both views, rendered with FLAGS by the scene code before studio lights were added
(commit e457de1, Blender 5.0.1, x86-64 CPU); Cycles on the CPU gives the same pixels for any thread count."""
FOOD = """
[categories.sample-food]
source = "megascans"
types = ["3d"]
match = ["food", "mushroom"]
class_from = "category"
"""


def _render(library: Path, tmp_path: Path, name: str, render_block: str, *flags: str) -> list[np.ndarray]:
    config = tmp_path / f"{name}.toml"
    config.write_text(f"[render]\n{render_block}\n{FOOD}")
    out = tmp_path / name
    result = run_pgrf("render", "-c", "sample-food", "--config", str(config), "--library", str(library),
                      "--out", str(out), *FLAGS, *flags)
    assert result.returncode == 0, result.stderr
    views = out / "sample-food" / MODEL / "views"
    return [np.asarray(Image.open(views / f"{i:04d}.png")) for i in range(2)]


def _lit(pixels: list[np.ndarray]) -> np.ndarray:
    """Mean RGB of the opaque pixels of both views."""
    return np.concatenate([p[p[..., 3] == 255][:, :3] for p in pixels]).astype(float).mean(0)


def test_none_with_the_old_dither_restores_the_old_pixels(sample_library: Path, tmp_path: Path) -> None:
    pixels = _render(sample_library, tmp_path, "none", "dither = 1.0", "--hdri", "none")
    assert [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels] == EVEN_LIGHT_PIXELS
    render = json.loads((tmp_path / "none" / "sample-food" / MODEL / "cameras.json").read_text())["render"]
    assert (render["hdri"], render["hdri_file"], render["dither"]) == (None, None, 1.0)


def test_studio_light_and_its_rotation_change_the_render(sample_library: Path, tmp_path: Path) -> None:
    even = _render(sample_library, tmp_path, "even", "dither = 0.0", "--hdri", "none")
    studio = _render(sample_library, tmp_path, "studio", "dither = 0.0")  # the default: hdri = "studio"
    turned = _render(sample_library, tmp_path, "turned", "dither = 0.0\nworld_rotation = 120.0")
    for a, b in ((even, studio), (studio, turned)):
        assert all(np.array_equal(x[..., 3], y[..., 3]) for x, y in zip(a, b))  # same cameras, same silhouettes
        difference = np.mean([np.abs(x[..., :3].astype(float) - y[..., :3]).mean() for x, y in zip(a, b)])
        assert difference > 5.0, difference  # mean |Δ| of 0–255 levels over whole images (measured: 20 and 14)
    assert _lit(studio).sum() < 0.9 * _lit(even).sum()  # the studio light is dimmer than a white sky of strength 1
    render = json.loads((tmp_path / "turned" / "sample-food" / MODEL / "cameras.json").read_text())["render"]
    assert render["hdri"] == "studio" and render["hdri_file"].endswith("datafiles/studiolights/world/studio.exr")
    assert (render["world_rotation"], render["dither"]) == (120.0, 0.0)
