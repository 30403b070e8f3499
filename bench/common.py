"""Shared by the benchmarks: real Cycles renders of the sample plants, synthetic shards, and the report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from pgrf.config import load_config
from pgrf.formats import renders as records
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders

T = TypeVar("T")


def in_work_dir(work_dir: Path | None, prefix: str, run: Callable[[Path], T]) -> T:
    """``run(folder)`` in ``work_dir`` (created and kept) or in a temporary folder removed afterwards."""
    if work_dir:
        work_dir.mkdir(parents=True, exist_ok=True)
        return run(work_dir.resolve())
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return run(Path(tmp))


def render_sample_plants(work: Path, views: int, resolution: int) -> Path:
    """Render the bundled sample plants with ``pgrf render`` (16 samples: pixels, not quality, matter here)."""
    subprocess.run([sys.executable, "-m", "pgrf", "assets", "make-sample", str(work / "library")], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pgrf", "render", "--category", "sample-plants", "--library", str(work / "library"),
                    "--out", str(work / "rendered"), "--views", str(views), "--resolution", str(resolution),
                    "--samples", "16", "--no-denoise", "--workers", "2"], check=True)
    return work / "rendered" / "sample-plants"


def synthetic_shards(work: Path, resolution: int, models: int = 16, views: int = 8) -> Path:
    """``work/shards``: synthetic renders (``pgrf.pipeline.synthetic``, two classes) packed at ``resolution``, made
    once (a folder already packed is reused); what training streams, without Blender."""
    shards = work / "shards"
    if not (shards / "dataset.json").is_file():
        renders = fake_renders(work / "renders", "bench", {f"m{i:02d}": 0.3 + 0.5 * i / models for i in range(models)},
                               views=views, resolution=resolution)
        pack([renders], shards, load_config(Path(__file__).resolve().parent.parent / "pgrf" / "defaults" / "assets.toml"),
             PackOptions(resolution=resolution, samples_per_shard=64, workers=2, min_mean_alpha=0.0))
    return shards


def replicate(source: Path, out: Path, copies: int) -> list[Path]:
    """``copies`` copies of every finished model of ``source`` under new ids in ``out``; returns every view PNG."""
    for model_id, model_dir in records.finished_models(source).items():
        for copy in range(copies):
            target = out / f"{model_id}c{copy}"
            shutil.copytree(model_dir, target)
            doc = records.read_cameras(target)
            records.write_cameras(target, replace(doc, model_id=f"{model_id}c{copy}"))
    return sorted(out.glob("*/views/*.png"))


def report(title: str, figures: dict[str, Any], json_path: Path | None) -> None:
    """Print the figures as a table (and write them as JSON when asked)."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)
    if json_path:
        json_path.write_text(json.dumps(figures, indent=2))
