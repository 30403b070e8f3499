"""The rendering baseline of bench/render.py: how the original M-Plants script rendered.

One Blender process renders every model into one long-lived scene: the previous model's objects are
deleted and the next model is imported next to the leftovers (orphan meshes, materials and images are
never purged), every compute device is enabled, and Cycles runs a fixed 128 samples per pixel with
adaptive sampling, the denoiser and persistent data off. Cameras, materials and normalisation are
pgrf's own, so the images match ``pgrf render`` view for view.

Usage: ``python bench/render_baseline.py JOB.json [--samples N] [--cycles-seed S]``. The job (written by bench/render.py)::

    {"settings": {...RenderSettings fields...}, "models": [dataclasses.asdict(ModelSpec), ...],
     "out_dir": "DIR", "result": "RESULT.json", "indices": null | [0, 1, ...]}

Views go to ``DIR/<model_id>/views/NNNN.png``; ``indices`` renders only those views of the
``settings.views`` sampled per model. After each model one line ``BASELINE {json}`` is printed and
RESULT.json is rewritten with every record so far (seconds, views, peak RSS of this process).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import bpy

from pgrf.cameras import sample_views
from pgrf.config import RenderSettings
from pgrf.formats.catalog import ModelSpec
from pgrf.formats.renders import view_file
from pgrf.render.blender import importing, materials, scene

GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def spec_from_dict(data: dict[str, Any]) -> ModelSpec:
    """A ModelSpec from its ``dataclasses.asdict`` form (JSON turns tuples into lists)."""
    return ModelSpec(**{**data, "files": tuple(data["files"]), "problems": tuple(data["problems"])})


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def enable_all_devices() -> str:
    """Enable every compute device Cycles sees (GPUs of the first backend that has any, plus the CPU)."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in GPU_BACKENDS:
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.refresh_devices()
        if any(d.type == backend for d in prefs.devices):
            for device in prefs.devices:
                device.use = True
            bpy.context.scene.cycles.device = "GPU"
            return f"{backend}+CPU: " + ", ".join(d.name for d in prefs.devices)
    bpy.context.scene.cycles.device = "CPU"
    return "CPU"


def setup(settings: RenderSettings) -> tuple[bpy.types.Object, str]:
    """The one scene of the run: fixed samples, no adaptive sampling, denoiser or persistent data."""
    scene.reset()
    scene.configure(replace(settings, device="cpu"))
    bpy.context.scene.render.use_persistent_data = False
    device = enable_all_devices()
    return scene.add_camera(settings.fov), device


def clear_model(camera: bpy.types.Object) -> None:
    """Delete the previous model's objects, keeping their meshes, materials and images (as the original did)."""
    for obj in list(bpy.data.objects):
        if obj != camera:
            bpy.data.objects.remove(obj, do_unlink=True)


def render_model(spec: ModelSpec, settings: RenderSettings, camera: bpy.types.Object, out_dir: Path,
                 indices: list[int] | None) -> dict[str, Any]:
    """Import, shade, normalise and render one model; returns its record."""
    start = time.monotonic()
    clear_model(camera)
    record: dict[str, Any] = {"model_id": spec.model_id, "views": 0}
    try:
        objects = importing.import_files(spec.files, spec.objects, out_dir / ".import")
        if spec.source == "megascans":
            materials.assign(objects, materials.megascans_material(spec.model_id, spec.textures))
        norm = importing.normalise(objects)
    except importing.ImportFailed as exc:
        return {**record, "status": "failed", "reason": str(exc), "seconds": time.monotonic() - start, "peak_rss_mb": peak_rss_mb()}
    if norm.dims_product < settings.min_dim_product:
        return {**record, "status": "skipped_small", "seconds": time.monotonic() - start, "peak_rss_mb": peak_rss_mb()}
    views = sample_views(spec.asset_id, spec.model_id, settings.seed, settings.views, settings.radius, settings.fov)
    for index in indices if indices is not None else range(len(views)):
        scene.place_camera(camera, views[index].c2w)
        bpy.context.scene.render.filepath = str(out_dir / spec.model_id / view_file(index))
        bpy.ops.render.render(write_still=True)
        record["views"] += 1
    return {**record, "status": "rendered", "seconds": time.monotonic() - start, "peak_rss_mb": peak_rss_mb()}


def run(job: dict[str, Any], samples: int | None, cycles_seed: int) -> dict[str, Any]:
    """Render every model of the job in this one process; writes and returns the result document."""
    settings = RenderSettings(**job["settings"])
    if samples is not None:
        settings = replace(settings, samples=samples)
    out_dir, result_path = Path(job["out_dir"]), Path(job["result"])
    start = time.monotonic()
    camera, device = setup(settings)
    bpy.context.scene.cycles.seed = cycles_seed
    result: dict[str, Any] = {"device": device, "blender": bpy.app.version_string, "samples": settings.samples,
                              "resolution": settings.resolution, "models": []}
    for data in job["models"]:
        record = render_model(spec_from_dict(data), settings, camera, out_dir, job.get("indices"))
        result["models"].append(record)
        result["views"] = sum(r["views"] for r in result["models"])
        result["seconds"] = time.monotonic() - start
        result_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print("BASELINE " + json.dumps(record), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("job", type=Path, help="job JSON written by bench/render.py")
    parser.add_argument("--samples", type=int, help="override the job's samples per pixel")
    parser.add_argument("--cycles-seed", type=int, default=0, help="Cycles' sampling seed (a reference uses another one "
                        "so its noise is not correlated with the renders it judges)")
    args = parser.parse_args()
    run(json.loads(args.job.read_text(encoding="utf-8")), args.samples, args.cycles_seed)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
