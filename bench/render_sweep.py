"""Render-settings sweep: seconds per view and PSNR against a 1024-spp reference, one setting per row.

Run from the repository root: ``.venv/bin/python bench/render_sweep.py [--resolution 256] [--models 4]
[--views 3] [--work-dir DIR] [--json FILE]``.

Where ``bench/render.py`` compares whole runs (Blender start-up and imports included), this isolates
the cost and quality of the sampling settings: in one Blender process, each model of the sample
library is imported once per setting, one view is rendered untimed (BVH build, kernel load), then
``--views`` views are timed. PSNR is over white against the reference (1024 spp, another Cycles
seed); "alpha PSNR" compares the alpha channels alone, and "colour PSNR" composites our colour with
the reference's alpha — together they show whether the error sits in coverage or in shading. The
reference renders are kept in the work folder and reused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from common import in_work_dir
from PIL import Image
from render import REFERENCE_SAMPLES, REFERENCE_SEED, load_models, psnr
from rich.console import Console
from rich.table import Table

from pgrf.assets.sample_library import make_sample_library
from pgrf.cameras import sample_views
from pgrf.config import load_config, with_overrides
from pgrf.render.blender import importing, materials, scene

REPO = Path(__file__).resolve().parent.parent
DENOISE_FAST = {"denoising_prefilter": "FAST", "denoising_quality": "BALANCED"}
SETTINGS: dict[str, dict[str, Any]] = {
    "baseline: 128 spp fixed, no denoiser, no persistent data": {"samples": 128, "adaptive_threshold": 0.0, "denoise": False,
                                                                 "persistent": False},
    "ours: assets.toml defaults (32 spp, adaptive 0.02, OIDN accurate prefilter, high quality)": {},
    "32 spp, adaptive 0.02, OIDN fast prefilter, balanced quality": {"cycles": DENOISE_FAST},
    "32 spp, adaptive 0.02, no denoiser": {"denoise": False},
    "64 spp, adaptive 0.01, OIDN fast prefilter, balanced quality": {"samples": 64, "adaptive_threshold": 0.01, "cycles": DENOISE_FAST},
    "128 spp, adaptive 0.01, no denoiser": {"samples": 128, "adaptive_threshold": 0.01, "denoise": False},
    "128 spp fixed, no denoiser, spatial-split BVH": {"samples": 128, "adaptive_threshold": 0.0, "denoise": False,
                                                      "cycles": {"debug_use_spatial_splits": True}},
    "128 spp fixed, no denoiser, no light tree": {"samples": 128, "adaptive_threshold": 0.0, "denoise": False,
                                                  "cycles": {"use_light_tree": False}},
}
REFERENCE = {"samples": REFERENCE_SAMPLES, "adaptive_threshold": 0.0, "denoise": False, "seed": REFERENCE_SEED}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--models", type=int, default=4, help="first models of the sample library (plants and food interleaved)")
    parser.add_argument("--views", type=int, default=3, help="timed views per model")
    parser.add_argument("--work-dir", type=Path, help="keep the library, reference and renders here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    return parser.parse_args(argv)


def sampled_views(views: int) -> int:
    """How many cameras are drawn per model (the first ``views`` are timed, the next one warms up);
    the cameras depend on this count, so it also names the reference folder."""
    return max(views + 1, 16)


def render_setting(models: list[Any], options: dict[str, Any], resolution: int, views: int, out: Path) -> float:
    """Render ``views`` views of every model with one setting into ``out``; returns mean seconds per view."""
    config = load_config(REPO / "assets.toml")
    overrides = {k: options[k] for k in ("samples", "adaptive_threshold", "denoise") if k in options}
    settings = with_overrides(config.render, resolution=resolution, views=sampled_views(views), workers=1, **overrides)
    seconds = []
    for _, spec in models:
        scene.reset()
        scene.configure(settings)
        for name, value in options.get("cycles", {}).items():
            setattr(bpy.context.scene.cycles, name, value)
        bpy.context.scene.cycles.seed = options.get("seed", 0)
        bpy.context.scene.render.use_persistent_data = options.get("persistent", True)
        objects = importing.import_files(spec.files, spec.objects, out / ".import")
        if spec.source == "megascans":
            materials.assign(objects, materials.megascans_material(spec.model_id, spec.textures))
        importing.normalise(objects)
        camera = scene.add_camera(settings.fov)
        cameras = sample_views(spec.asset_id, spec.model_id, settings.seed, settings.views, settings.radius, settings.fov)
        for index in [views, *range(views)]:  # the first render (an extra view) only warms up
            scene.place_camera(camera, cameras[index].c2w)
            bpy.context.scene.render.filepath = str(out / spec.model_id / f"{index:04d}.png")
            start = time.perf_counter()
            bpy.ops.render.render(write_still=True)
            if index < views:
                seconds.append(time.perf_counter() - start)
    return float(np.mean(seconds))


def _rgba(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0


def quality(models: list[Any], views: int, out: Path, reference: Path) -> dict[str, float]:
    """Mean PSNR over white, of the alpha channel alone, and of our colour over the reference's alpha."""
    scores: dict[str, list[float]] = {"psnr": [], "alpha_psnr": [], "colour_psnr": []}
    for _, spec in models:
        for index in range(views):
            ours, ref = _rgba(out / spec.model_id / f"{index:04d}.png"), _rgba(reference / spec.model_id / f"{index:04d}.png")
            over_white = ref[..., :3] * ref[..., 3:] + 1 - ref[..., 3:]
            scores["psnr"].append(psnr(ours[..., :3] * ours[..., 3:] + 1 - ours[..., 3:], over_white))
            scores["alpha_psnr"].append(psnr(ours[..., 3], ref[..., 3]))
            scores["colour_psnr"].append(psnr(ours[..., :3] * ref[..., 3:] + 1 - ref[..., 3:], over_white))
    return {name: round(float(np.mean(values)), 2) for name, values in scores.items()}


def sweep(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    if not (work / "library").is_dir():
        make_sample_library(work / "library")
    models = load_models(load_config(REPO / "assets.toml"), work / "library")[: args.models]
    reference = work / f"reference-{args.resolution}px-{sampled_views(args.views)}cameras-{REFERENCE_SAMPLES}spp"
    if not all((reference / spec.model_id / f"{i:04d}.png").is_file() for _, spec in models for i in range(args.views)):
        render_setting(models, REFERENCE, args.resolution, args.views, reference)
    rows = []
    for number, (name, options) in enumerate(SETTINGS.items()):
        out = work / f"setting-{number}-{args.resolution}"
        seconds = render_setting(models, options, args.resolution, args.views, out)
        rows.append({"setting": name, "s_per_view": round(seconds, 3), **quality(models, args.views, out, reference)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = in_work_dir(args.work_dir, "pgrf-sweep-", lambda work: sweep(args, work))
    table = Table(title=f"render settings at {args.resolution}², {args.models} models × {args.views} views")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "setting" else "right")
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
