"""``manifest.parquet``: one row per view of every finished model, rebuilt from their cameras.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pgrf.fileio import atomic_path
from pgrf.formats.renders import LOG_FILE, finished_models, read_cameras

MANIFEST_FILE = "manifest.parquet"


def is_category(path: Path) -> bool:
    """A ``renders/<category>`` folder: it holds finished models, a render log or a manifest."""
    return bool(finished_models(path)) or (path / LOG_FILE).is_file() or (path / MANIFEST_FILE).is_file()


def categories(root: Path) -> list[Path]:
    """``root`` itself when it is a category folder, else the category folders directly under it (sorted)."""
    if is_category(root):
        return [root]
    return [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".") and is_category(p)]

MANIFEST_SCHEMA = pa.schema(
    [
        ("model_id", pa.string()),
        ("asset_id", pa.string()),
        ("category", pa.string()),
        ("class_name", pa.string()),
        ("view", pa.int32()),
        ("file", pa.string()),
        ("yaw", pa.float64()),
        ("pitch", pa.float64()),
        ("radius", pa.float64()),
        ("fov", pa.float64()),
        ("c2w", pa.list_(pa.float64(), 16)),
        ("intrinsics", pa.list_(pa.float64(), 9)),
        ("alpha_coverage", pa.float64()),
        ("mean_alpha", pa.float64()),
        ("resolution", pa.int32()),
    ]
)


def write_manifest(category_dir: Path) -> int:
    """Rebuild ``manifest.parquet`` from every finished model's cameras.json; returns the row count."""
    rows: dict[str, list[Any]] = {name: [] for name in MANIFEST_SCHEMA.names}
    for model_id, model_dir in finished_models(category_dir).items():
        doc = read_cameras(model_dir)
        for view in doc.views:
            values = {
                "model_id": model_id,
                "asset_id": doc.asset_id,
                "category": doc.category,
                "class_name": doc.class_name,
                "view": view.index,
                "file": f"{model_id}/{view.file}",
                "yaw": view.yaw,
                "pitch": view.pitch,
                "radius": doc.render.radius,
                "fov": doc.render.fov,
                "c2w": [x for row in view.c2w for x in row],
                "intrinsics": [x for row in view.intrinsics for x in row],
                "alpha_coverage": view.alpha_coverage,
                "mean_alpha": doc.mean_alpha,
                "resolution": doc.render.resolution,
            }
            for name, value in values.items():
                rows[name].append(value)
    table = pa.table(rows, schema=MANIFEST_SCHEMA)
    with atomic_path(category_dir / MANIFEST_FILE) as partial:
        pq.write_table(table, partial)
    return table.num_rows
