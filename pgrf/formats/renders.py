"""The render stage's per-model files (DESIGN.md §2): ``cameras.json`` and ``render-log.jsonl``.

No bpy here: the orchestrator, workers, tests and later stages read these files without Blender.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgrf import __version__, fileio
from pgrf.cameras import View
from pgrf.config import RenderSettings
from pgrf.formats.catalog import ModelSpec

CAMERAS_SCHEMA = 1
CAMERAS_FILE = "cameras.json"
LOG_FILE = "render-log.jsonl"


def view_file(index: int) -> str:
    return f"views/{index:04d}.png"


def cameras_document(
    spec: ModelSpec,
    settings: RenderSettings,
    views: list[View],
    coverage: list[float],
    normalisation: dict[str, Any],
    device: str,
    blender_version: str,
) -> dict[str, Any]:
    """The content of one model's ``cameras.json``."""
    return {
        "schema": CAMERAS_SCHEMA,
        "model_id": spec.model_id,
        "asset_id": spec.asset_id,
        "asset_name": spec.asset_name,
        "category": spec.category,
        "class_name": spec.class_name,
        "source_files": list(spec.files),
        "render": {
            "engine": "CYCLES",
            "device": device,
            "samples": settings.samples,
            "adaptive_threshold": settings.adaptive_threshold,
            "denoiser": "OPENIMAGEDENOISE" if settings.denoise else None,
            "resolution": settings.resolution,
            "fov": settings.fov,
            "radius": settings.radius,
            "seed": settings.seed,
            "passes": list(settings.passes),
            "hdri": settings.hdri or None,
        },
        "blender_version": blender_version,
        "pgrf_version": __version__,
        "normalisation": normalisation,
        "mean_alpha": float(sum(coverage) / len(coverage)) if coverage else 0.0,
        "views": [
            {
                "index": i,
                "file": view_file(i),
                "yaw": view.yaw,
                "pitch": view.pitch,
                "c2w": view.c2w.tolist(),
                "intrinsics": view.intrinsics.tolist(),
                "alpha_coverage": coverage[i],
            }
            for i, view in enumerate(views)
        ],
    }


def read_cameras(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / CAMERAS_FILE).read_text(encoding="utf-8"))


def finished_models(category_dir: Path) -> dict[str, Path]:
    """Model directories that were completed (renamed into place with their cameras.json)."""
    if not category_dir.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(category_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / CAMERAS_FILE).is_file()
    }


def append_record(category_dir: Path, record: dict[str, Any]) -> None:
    """Append one model's record to the category's render log."""
    fileio.append_log(category_dir, LOG_FILE, record)


def read_records(category_dir: Path) -> list[dict[str, Any]]:
    """Every complete record of the category's render log, oldest first."""
    return fileio.read_log(category_dir, LOG_FILE)


def latest_status(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most recent record of each model."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["model_id"]] = record
    return latest
