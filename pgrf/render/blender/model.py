"""Render one model: import, material, normalise, filter, views, cameras.json (runs in a worker)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import bpy
import numpy as np
from PIL import Image

from pgrf.cameras import sample_views
from pgrf.config import RenderSettings
from pgrf.fileio import temporary_name
from pgrf.formats.renders import RenderRecord, Status, cameras_document, view_file, write_cameras
from pgrf.render.blender import importing, materials, scene
from pgrf.render.blender.job import RenderJob

IMPORT_DIR = "import"
"""Subfolder of a model's work folder for glTF files rewritten before import (render/blender/glb.py)."""


def render_model(job: RenderJob, on_view: Callable[[int], None] = lambda i: None) -> RenderRecord:
    """Render a model into a temporary folder and move it into place; returns its log record."""
    start = time.monotonic()
    spec, settings = job.spec, job.settings
    scene.reset()
    device = scene.configure(settings, job.threads)
    category_dir = Path(job.category_dir)
    work = category_dir / temporary_name(spec.model_id)
    shutil.rmtree(work, ignore_errors=True)
    (work / "views").mkdir(parents=True)
    try:
        objects = importing.import_files(spec.files, spec.objects, work / IMPORT_DIR, spec.root)
        shutil.rmtree(work / IMPORT_DIR, ignore_errors=True)  # a rewritten glTF, imported (images packed)
        if spec.source == "megascans":
            materials.assign(objects, materials.megascans_material(spec.model_id, spec.textures))
        norm = importing.normalise(objects)
        record = RenderRecord(spec.model_id, Status.FAILED, asset_id=spec.asset_id, device=device, normalisation=norm)
        if norm.dims_product < settings.min_dim_product:
            reason = f"dims_product {norm.dims_product:.3f} < min_dim_product {settings.min_dim_product}"
            return replace(record, status=Status.SKIPPED_SMALL, reason=reason, seconds=time.monotonic() - start)
        camera = scene.add_camera(settings.fov)
        views = sample_views(spec.asset_id, spec.model_id, settings.seed, settings.views, settings.radius, settings.fov)
        coverage = []
        for index, view in enumerate(views):
            scene.place_camera(camera, view.c2w)
            coverage.append(_render_view(work, index, settings))
            on_view(index)
        doc = cameras_document(spec, settings, views, coverage, norm, device, bpy.app.version_string)
        write_cameras(work, doc)
        _move_into_place(work, category_dir / spec.model_id, job.force)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # no-op once moved into place
    sparse = doc.mean_alpha < job.min_mean_alpha
    reason = f"mean_alpha {doc.mean_alpha:.4f} < min_mean_alpha {job.min_mean_alpha}" if sparse else ""
    return replace(record, status=Status.SPARSE if sparse else Status.RENDERED, reason=reason, mean_alpha=doc.mean_alpha,
                   views=len(views), seconds=time.monotonic() - start)


def _render_view(work: Path, index: int, settings: RenderSettings) -> float:
    """Render one view to views/NNNN.png (and passes/NNNN.exr); returns its alpha coverage in [0, 1]."""
    render = bpy.context.scene.render
    path = work / view_file(index)
    render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    if settings.passes:
        _save_passes(work / "passes" / f"{index:04d}.exr")
    with Image.open(path) as image:
        alpha = np.asarray(image.getchannel("A"), dtype=np.float64)
    return float(alpha.mean() / 255.0)


def _save_passes(path: Path) -> None:
    """Write the last render's passes (depth, normal) as one multilayer EXR."""
    path.parent.mkdir(exist_ok=True)
    image_settings = bpy.context.scene.render.image_settings
    image_settings.media_type = "MULTI_LAYER_IMAGE"  # Blender 5.0: multilayer EXR is a media type
    image_settings.file_format = "OPEN_EXR_MULTILAYER"
    image_settings.color_depth = "32"
    try:
        bpy.data.images["Render Result"].save_render(filepath=str(path))
    finally:
        image_settings.media_type = "IMAGE"
        image_settings.file_format = "PNG"
        image_settings.color_mode = "RGBA"
        image_settings.color_depth = "8"


def _move_into_place(work: Path, final: Path, force: bool) -> None:
    """Atomically publish a finished model; with --force the old one is replaced, never half-deleted."""
    if final.exists():
        if not force:  # another process finished it meanwhile: keep theirs
            shutil.rmtree(work)
            return
        trash = final.with_name(temporary_name(f"old-{final.name}"))
        os.replace(final, trash)
        os.replace(work, final)
        shutil.rmtree(trash)
        return
    os.replace(work, final)
