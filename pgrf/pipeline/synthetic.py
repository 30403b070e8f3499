"""Render folders without Blender: finished models exactly as ``pgrf render`` writes them, with simple
synthetic pixels, for tests and benchmarks of the stages after rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pgrf import cameras
from pgrf.config import NO_HDRI, Category, RenderSettings
from pgrf.formats import renders as records
from pgrf.formats.catalog import ModelSpec


def fake_renders(root: Path, category: str, models: dict[str, float], views: int = 3, resolution: int = 32,
                 recorded_alpha: float | None = 0.0, hdri: str = NO_HDRI) -> Path:
    """Write ``root/category/<model>/`` for each model id → mean alpha; returns the category folder.

    Each view is a left-aligned opaque box (width set by the model's alpha, so it is asymmetric and a
    flip is visible) over a transparent background; classes alternate ``class0``/``class1``; the render
    log also records one model skipped by the size filter. ``filters.json`` records ``recorded_alpha`` as the
    category's min_mean_alpha (None: no filters.json, as renders of pgrf versions before it was written). ``hdri``
    is the recorded world light (a studio light needs the render half's bpy wheel to be found).
    """
    category_dir = root / category
    settings = RenderSettings(views=views, resolution=resolution, hdri=hdri)
    if recorded_alpha is not None:
        records.write_filters(category_dir, records.filters_record(Category(category, min_mean_alpha=recorded_alpha),
                                                                   settings.min_dim_product, "pgrf render"))
    unit = resolution / 32
    for i, (model_id, alpha) in enumerate(models.items()):
        spec = ModelSpec(model_id, model_id, model_id, category, f"class{i % 2}", "megascans", ("x.fbx",))
        sampled = cameras.sample_views(model_id, model_id, 0, views, settings.radius, settings.fov)
        (category_dir / model_id / "views").mkdir(parents=True)
        for index in range(views):
            rgba = np.zeros((resolution, resolution, 4), np.uint8)
            rgba[..., 0] = 40 * index % 256  # a shade per view and model (wrapping as uint8 does)
            rgba[int(8 * unit):int(24 * unit), int(4 * unit):int((4 + 28 * alpha) * unit)] = (200, 50 * i % 256, 10, 255)
            Image.fromarray(rgba, "RGBA").save(category_dir / model_id / records.view_file(index))
        normalisation = records.Normalisation(1.0, [0.0, 0.0, 0.0], [2.0, 2.0, 2.0], 8.0)
        doc = records.cameras_document(spec, settings, sampled, [alpha] * views, normalisation, "CPU", "5.0.1")
        records.write_cameras(category_dir / model_id, doc)
    tiny = records.Normalisation(1.0, [0.0, 0.0, 0.0], [2.0, 0.1, 0.1], 0.02)
    records.append_record(category_dir, records.RenderRecord("tiny", records.Status.SKIPPED_SMALL, normalisation=tiny))
    return category_dir
