"""The render stage's per-model files (DESIGN.md §2): ``cameras.json`` and ``render-log.jsonl``.

No bpy here: the orchestrator, workers, tests and later stages read these files without Blender.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgrf import __version__
from pgrf.cameras import View
from pgrf.config import RenderSettings
from pgrf.datasets.assets import ModelSpec

CAMERAS_SCHEMA = 1
CAMERAS_FILE = "cameras.json"
LOG_FILE = "render-log.jsonl"
TMP_PREFIX = ".tmp-"


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


def append_log(category_dir: Path, record: dict[str, Any], name: str = LOG_FILE) -> None:
    """Append one record to the JSON-lines log ``name`` with a single write (safe with several writers)."""
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}) + "\n"
    fd = os.open(category_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_log(category_dir: Path, name: str = LOG_FILE) -> list[dict[str, Any]]:
    """Every complete record of the JSON-lines log ``name`` (a line cut short by a crash is ignored)."""
    path = category_dir / name
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def latest_status(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most recent record of each model."""
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record["model_id"]] = record
    return latest


def temporary_name(stem: str) -> str:
    """Name of work in progress: ``.tmp-<stem>@<host>@<pid>``, so stale leftovers can be recognised."""
    return f"{TMP_PREFIX}{stem}@{socket.gethostname()}@{os.getpid()}"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` to write to: renamed to ``path`` when the block succeeds,
    deleted when it fails, so ``path`` is either the previous file or the complete new one."""
    partial = path.with_name(temporary_name(path.name))
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_stale_work(category_dir: Path) -> int:
    """Delete work-in-progress entries left by dead processes of this host; returns how many."""
    removed = 0
    host = socket.gethostname()
    for path in category_dir.glob(f"{TMP_PREFIX}*@*@*") if category_dir.is_dir() else ():
        _, owner, pid = path.name.rsplit("@", 2)
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
