"""Render benchmark: pgrf's renderer against the original M-Plants way of rendering.

Run from the repository root: ``.venv/bin/python bench/render.py [--quick] [--json FILE]``.

It builds the bundled sample library in a temporary folder and renders the ``sample-plants`` and
``sample-food`` categories of ``assets.toml`` twice:

- **ours**: ``pgrf render`` as the CLI runs it (``plan()`` + ``Runner``), with the ``[render]`` defaults
  of assets.toml (adaptive sampling, denoiser, persistent data, a fresh scene per model, workers
  recycled every ``recycle_after`` models); only views, resolution and ``workers = 1`` are overridden;
- **baseline**: ``bench/render_baseline.py``, one long-lived Blender process with 128 samples per pixel,
  no adaptive sampling, denoiser or persistent data, and every compute device enabled.

Both use the same cameras, materials, normalisation and world light (the config's: the studio light by
default). Figures: views per second (wall clock, Blender start-up included) at 256² and 1024², PSNR of
both against a 1024-sample reference, and the peak resident memory early and late in a long run.
A lighting table compares ours under the config's light with ours under the even white world light pgrf
used before (``hdri = none``, Blender's default dither 1.0): views/s and PSNR against a 1024-sample
reference lit the same way. bpy is only ever imported in subprocesses.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import in_work_dir
from PIL import Image
from rich.console import Console
from rich.table import Table

from pgrf.assets.discovery import discover
from pgrf.assets.sample_library import make_sample_library
from pgrf.cli.reporting import RichReporter
from pgrf.config import Category, Config, RenderSettings, load_config, with_overrides
from pgrf.formats.catalog import Catalog, ModelSpec
from pgrf.formats.renders import view_file
from pgrf.formats.schema import to_json
from pgrf.render.options import RenderRun
from pgrf.render.runner import Runner, plan

REPO = Path(__file__).resolve().parent.parent
BASELINE_SCRIPT = Path(__file__).resolve().parent / "render_baseline.py"
CATEGORIES = ("sample-plants", "sample-food")
BASELINE_SAMPLES = 128
REFERENCE_SAMPLES = 1024
REFERENCE_SEED = 12345
"""Cycles seed of the reference: different from the renders' seed 0, so their noise is not shared."""
WINDOW = 10
"""Models per memory window: the first and the last ``WINDOW`` models of the long run are compared."""

console = Console(width=None if sys.stdout.isatty() else 120)
progress_console = Console(stderr=True)

Model = tuple[Category, ModelSpec]


@dataclass(frozen=True)
class Speed:
    """Views rendered in a wall-clock time."""

    views: int
    seconds: float

    @property
    def views_per_s(self) -> float:
        return self.views / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"views": self.views, "seconds": round(self.seconds, 2), "views_per_s": round(self.views_per_s, 4)}


# --- command line ------------------------------------------------------------------------------

DEFAULTS = {"models_256": 4, "views_256": 16, "models_1024": 2, "views_1024": 2, "psnr_models": 2, "psnr_views": 2,
            "psnr_views_1024": 1, "memory_models": 50, "memory_resolution": 64,
            "lighting_models": 1, "lighting_views": 2, "lighting_psnr_views": 1, "lighting_resolution": 1024}
QUICK = {"models_256": 3, "views_256": 2, "models_1024": 1, "views_1024": 1, "psnr_models": 2, "psnr_views": 1,
         "psnr_views_1024": 0, "memory_models": 20, "memory_resolution": 32,
         "lighting_models": 2, "lighting_views": 2, "lighting_psnr_views": 1, "lighting_resolution": 256}
EVEN_LIGHT = {"hdri": "none", "dither": 1.0}
"""The world light and dither pgrf rendered with before the studio light became the default."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; every count left out takes its default, or its --quick value."""
    parser = argparse.ArgumentParser(description="Benchmark pgrf rendering against the M-Plants baseline.")
    parser.add_argument("--quick", action="store_true", help="a few minutes instead of ~15: fewer models and views")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--work-dir", type=Path, help="keep the library and renders here (default: a temporary folder)")
    parser.add_argument("--config", type=Path, default=REPO / "assets.toml", help="config whose [render] block is 'ours'")
    for name, value in DEFAULTS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {value}, quick {QUICK[name]}")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# --- models ------------------------------------------------------------------------------------


def load_models(config: Config, library: Path) -> list[Model]:
    """Usable models of both categories, interleaved (plant, food, plant, …) so any prefix mixes them."""
    per_category = []
    for name in CATEGORIES:
        category = config.category(name)
        catalog = discover(config.library_root(category, str(library)), category, config.render.texture_size)
        per_category.append([(category, spec) for spec in sorted(catalog.models, key=lambda m: m.model_id) if spec.usable])
    longest = max(len(models) for models in per_category)
    return [models[i] for i in range(longest) for models in per_category if i < len(models)]


def by_category(models: list[Model]) -> list[tuple[Category, list[ModelSpec]]]:
    """Group models by category, in first-seen order, each group sorted by model id (the runner's order)."""
    groups: dict[str, tuple[Category, list[ModelSpec]]] = {}
    for category, spec in models:
        groups.setdefault(category.name, (category, []))[1].append(spec)
    return [(category, sorted(specs, key=lambda s: s.model_id)) for category, specs in groups.values()]


def repeated(models: list[Model], count: int) -> list[ModelSpec]:
    """``count`` models cycling through the library, each copy with its own id (r00-…, r01-…)."""
    specs = [spec for _, spec in models]
    copies = []
    for i in range(count):
        spec = specs[i % len(specs)]
        copies.append(replace(spec, model_id=f"r{i // len(specs):02d}-{spec.model_id}"))
    return copies


# --- ours --------------------------------------------------------------------------------------


def ours_settings(config: Config, views: int, resolution: int) -> RenderSettings:
    """The config's [render] defaults with only views, resolution and one worker overridden."""
    return with_overrides(config.render, views=views, resolution=resolution, workers=1)


def run_ours(groups: list[tuple[Category, list[ModelSpec]]], settings: RenderSettings, out_dir: Path) -> tuple[Speed, list[dict[str, Any]]]:
    """Render like ``pgrf render --force``, one Runner per category; wall time includes Blender start-up."""
    start, views, log = time.monotonic(), 0, []
    for category, specs in groups:
        category_dir = out_dir / category.name
        catalog = Catalog(category=category.name, root="", models=specs)
        todo = plan(catalog, category_dir, settings, RenderRun(force=True))
        outcome = Runner(category, category_dir, settings, force=True, reporter=RichReporter(progress_console)).run(todo)
        views += outcome.views
        log.extend(to_json(record) for record in outcome.records)  # the JSON of the render log, as the baseline reports
    _warn_failures("ours", log)
    return Speed(views, time.monotonic() - start), log


def ours_view(out_dir: Path, category: Category, model_id: str, index: int) -> Path:
    return out_dir / category.name / model_id / view_file(index)


# --- baseline ----------------------------------------------------------------------------------


def baseline_settings(settings: RenderSettings) -> RenderSettings:
    """The M-Plants sampling: a fixed sample count, no adaptive sampling, no denoiser."""
    return with_overrides(settings, samples=BASELINE_SAMPLES, adaptive_threshold=0.0, denoise=False)


def run_baseline(specs: list[ModelSpec], settings: RenderSettings, out_dir: Path, *, indices: list[int] | None = None,
                 samples: int | None = None, cycles_seed: int = 0) -> tuple[Speed, dict[str, Any]]:
    """Run bench/render_baseline.py on the models in one subprocess; wall time includes Blender start-up."""
    out_dir.mkdir(parents=True, exist_ok=True)
    job_file, result_file, log_file = out_dir / "job.json", out_dir / "result.json", out_dir / "baseline.log"
    job = {"settings": asdict(settings), "models": [asdict(s) for s in specs], "out_dir": str(out_dir),
           "result": str(result_file), "indices": indices}
    job_file.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, str(BASELINE_SCRIPT), str(job_file), "--cycles-seed", str(cycles_seed)]
    command += ["--samples", str(samples)] if samples else []
    progress_console.print(f"[bold]baseline[/bold] {len(specs)} models at {settings.resolution}² "
                           f"({samples or settings.samples} spp) → {log_file}")
    start = time.monotonic()
    with log_file.open("w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - start
    if code != 0:
        tail = "\n".join(log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise SystemExit(f"baseline failed (exit code {code}); end of {log_file}:\n{tail}")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    _warn_failures("baseline", result["models"])
    return Speed(result["views"], seconds), result


def _warn_failures(label: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        if record["status"] in ("failed", "timeout"):
            progress_console.print(f"[red]{label}: {record['model_id']} {record['status']}[/red]: {record.get('reason', '')}")


# --- figures -----------------------------------------------------------------------------------


def speed_figures(models: list[Model], config: Config, resolution: int, views: int, work: Path) -> dict[str, Any]:
    """Views per second of ours and of the baseline on the same models, views and resolution."""
    groups = by_category(models)
    settings = ours_settings(config, views, resolution)
    ours, _ = run_ours(groups, settings, work / f"ours-{resolution}")
    specs = [spec for _, group in groups for spec in group]
    baseline, result = run_baseline(specs, baseline_settings(settings), work / f"baseline-{resolution}")
    return {"resolution": resolution, "models": len(specs), "views_per_model": views, "ours": ours.to_dict(),
            "baseline": baseline.to_dict(), "ratio": _ratio(ours.views_per_s, baseline.views_per_s),
            "blender": result["blender"], "device": result["device"]}


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b > 0 else math.nan


def white_composite(path: Path) -> np.ndarray:
    """An RGBA PNG as float RGB in [0, 1], composited over white with its (straight) alpha."""
    with Image.open(path) as image:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return rgb * alpha + (1.0 - alpha)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (inf when identical)."""
    mse = float(np.mean((image - reference) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr_figures(models: list[Model], config: Config, resolution: int, views: int, psnr_models: int, psnr_views: int,
                 work: Path) -> dict[str, Any]:
    """PSNR of ours and of the baseline (from the speed run at ``resolution``) against a 1024-sample render."""
    settings = ours_settings(config, views, resolution)
    chosen = [m for m in models if _rendered(work, m, resolution)][:psnr_models]
    indices = list(range(min(psnr_views, views)))
    reference_dir = work / f"reference-{resolution}"
    run_baseline([spec for _, spec in chosen], baseline_settings(settings), reference_dir, indices=indices,
                 samples=REFERENCE_SAMPLES, cycles_seed=REFERENCE_SEED)
    rows = []
    for category, spec in chosen:
        for index in indices:
            reference = white_composite(reference_dir / spec.model_id / view_file(index))
            ours = white_composite(ours_view(work / f"ours-{resolution}", category, spec.model_id, index))
            baseline = white_composite(work / f"baseline-{resolution}" / spec.model_id / view_file(index))
            rows.append({"model_id": spec.model_id, "view": index, "ours": round(psnr(ours, reference), 3),
                         "baseline": round(psnr(baseline, reference), 3)})
    return {"reference_samples": REFERENCE_SAMPLES, "resolution": resolution, "views": rows,
            "ours_mean": _mean(r["ours"] for r in rows), "baseline_mean": _mean(r["baseline"] for r in rows)}


def _rendered(work: Path, model: Model, resolution: int) -> bool:
    """Whether both runs at ``resolution`` wrote view 0 of the model (filtered models have no views)."""
    category, spec = model
    return (ours_view(work / f"ours-{resolution}", category, spec.model_id, 0).is_file()
            and (work / f"baseline-{resolution}" / spec.model_id / view_file(0)).is_file())


def _mean(values: Any) -> float:
    values = list(values)
    return round(sum(values) / len(values), 3) if values else math.nan


def memory_figures(models: list[Model], config: Config, count: int, resolution: int, work: Path) -> dict[str, Any]:
    """Peak RSS early and late in a run of ``count`` models (1 view each): recycled workers vs one process."""
    specs = sorted(repeated(models, count), key=lambda s: s.model_id)
    category = replace(config.category(CATEGORIES[0]), name="bench-memory", min_mean_alpha=0.0)
    settings = ours_settings(config, 1, resolution)
    _, log = run_ours([(category, specs)], settings, work / f"memory-ours-{resolution}")
    _, result = run_baseline(specs, baseline_settings(settings), work / f"memory-baseline-{resolution}")
    ours_rss = [r.get("worker_peak_rss_mb", math.nan) for r in log]
    baseline_rss = [r["peak_rss_mb"] for r in result["models"]]
    window = min(WINDOW, count)
    return {"models": count, "resolution": resolution, "window": window,
            "ours": {"first_max_mb": round(max(ours_rss[:window]), 1), "last_max_mb": round(max(ours_rss[-window:]), 1),
                     "per_model_mb": [round(v, 1) for v in ours_rss]},
            "baseline": {"after_first_mb": round(baseline_rss[window - 1], 1), "after_last_mb": round(baseline_rss[-1], 1),
                         "per_model_mb": [round(v, 1) for v in baseline_rss]}}


def lighting_figures(models: list[Model], config: Config, resolution: int, views: int, psnr_views: int,
                     work: Path) -> list[dict[str, Any]]:
    """Views/s and PSNR (against a 1024-sample render lit the same way) of ours under the config's light and
    under the even white light."""
    groups = by_category(models)
    specs = [spec for _, group in groups for spec in group]
    indices = list(range(min(psnr_views, views)))
    default = ours_settings(config, views, resolution)
    rows = []
    for tag, settings in (("config", default), ("even", with_overrides(default, **EVEN_LIGHT))):
        out_dir = work / f"lighting-{tag}-{resolution}"
        speed, _ = run_ours(groups, settings, out_dir)
        reference_dir = work / f"lighting-{tag}-reference-{resolution}"
        run_baseline(specs, baseline_settings(settings), reference_dir, indices=indices, samples=REFERENCE_SAMPLES,
                     cycles_seed=REFERENCE_SEED)
        values = [psnr(white_composite(ours_view(out_dir, category, spec.model_id, index)),
                       white_composite(reference_dir / spec.model_id / view_file(index)))
                  for category, group in groups for spec in group for index in indices
                  if ours_view(out_dir, category, spec.model_id, index).is_file()]
        rows.append({"hdri": settings.hdri, "dither": settings.dither, "world_rotation": settings.world_rotation,
                     "resolution": resolution, "models": len(specs), "views_per_model": views, "ours": speed.to_dict(),
                     "psnr_views": len(values), "psnr_mean": _mean(round(v, 3) for v in values)})
    return rows


# --- report ------------------------------------------------------------------------------------


def print_details(figures: dict[str, Any]) -> None:
    """Rich tables of every figure."""
    speed = Table(title="Speed (wall clock, Blender start-up included)")
    for column in ("resolution", "models × views", "ours views/s", "ours s", "baseline views/s", "baseline s", "ratio"):
        speed.add_column(column, justify="right")
    for row in figures["speed"]:
        speed.add_row(f"{row['resolution']}²", f"{row['models']} × {row['views_per_model']}", f"{row['ours']['views_per_s']:.3f}",
                      f"{row['ours']['seconds']:.1f}", f"{row['baseline']['views_per_s']:.3f}", f"{row['baseline']['seconds']:.1f}",
                      f"{row['ratio']:.2f}×")
    console.print(speed)
    for run in figures["psnr"]:
        quality = Table(title=f"PSNR vs {run['reference_samples']} spp reference ({run['resolution']}², over white), dB")
        for column in ("model", "view", "ours", "baseline"):
            quality.add_column(column, justify="right")
        for row in run["views"]:
            quality.add_row(row["model_id"], str(row["view"]), f"{row['ours']:.2f}", f"{row['baseline']:.2f}")
        quality.add_row("mean", "", f"{run['ours_mean']:.2f}", f"{run['baseline_mean']:.2f}")
        console.print(quality)
    lighting = Table(title="Lighting: ours under the config's light and under the even white light")
    for column in ("hdri", "dither", "resolution", "models × views", "views/s", "PSNR (dB)", "PSNR views"):
        lighting.add_column(column, justify="right")
    for row in figures["lighting"]:
        lighting.add_row(row["hdri"], f"{row['dither']:g}", f"{row['resolution']}²", f"{row['models']} × {row['views_per_model']}",
                         f"{row['ours']['views_per_s']:.3f}", f"{row['psnr_mean']:.2f}", str(row["psnr_views"]))
    console.print(lighting)
    memory = figures["memory"]
    console.print(f"Memory, {memory['models']} models at {memory['resolution']}² (1 view): ours peak worker RSS "
                  f"models 1-{memory['window']} {memory['ours']['first_max_mb']:.0f} MiB, last {memory['window']} "
                  f"{memory['ours']['last_max_mb']:.0f} MiB; baseline peak RSS after model {memory['window']} "
                  f"{memory['baseline']['after_first_mb']:.0f} MiB, after model {memory['models']} "
                  f"{memory['baseline']['after_last_mb']:.0f} MiB")


def markdown(figures: dict[str, Any]) -> str:
    """The summary as a markdown table for the README."""
    memory = figures["memory"]
    n, w = memory["models"], memory["window"]
    lines = ["| resolution | ours views/s | baseline views/s | ratio |", "|---|---:|---:|---:|"]
    for row in figures["speed"]:
        lines.append(f"| {row['resolution']}² ({row['models']} models × {row['views_per_model']} views) | "
                     f"{row['ours']['views_per_s']:.3f} | {row['baseline']['views_per_s']:.3f} | {row['ratio']:.2f}× |")
    lines += ["", "| measure | ours | baseline |", "|---|---:|---:|"]
    lines += [f"| PSNR vs {run['reference_samples']} spp, {run['resolution']}², mean of {len(run['views'])} views (dB) | "
              f"{run['ours_mean']:.2f} | {run['baseline_mean']:.2f} |" for run in figures["psnr"] if run["views"]]
    lines += [
              f"| peak RSS, models 1-{w} of {n} (MiB) | {memory['ours']['first_max_mb']:.0f} "
              f"| {memory['baseline']['after_first_mb']:.0f} |",
              f"| peak RSS, models {n - w + 1}-{n} of {n} (MiB) | {memory['ours']['last_max_mb']:.0f} "
              f"| {memory['baseline']['after_last_mb']:.0f} |"]
    lines += ["", "| lighting (ours) | resolution | views/s | PSNR vs 1024 spp, same light (dB) |", "|---|---|---:|---:|"]
    lines += [f"| hdri {row['hdri']}, dither {row['dither']:g} | {row['resolution']}² ({row['models']} models × "
              f"{row['views_per_model']} views; PSNR of {row['psnr_views']}) | {row['ours']['views_per_s']:.3f} | "
              f"{row['psnr_mean']:.2f} |" for row in figures["lighting"]]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures were measured; a load average near the CPU count means other work shared the CPUs."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


# --- main --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every measurement, in order: speed at 256² and 1024², PSNR, memory, lighting."""
    figures: dict[str, Any] = {"machine": machine(), "options": {k: v for k, v in vars(args).items() if isinstance(v, (int, bool))}}
    if figures["machine"]["loadavg_start"][0] > 0.5:
        progress_console.print(f"[yellow]load average {figures['machine']['loadavg_start'][0]}: other processes use the CPU; "
                               "figures will be noisy[/yellow]")
    config = load_config(args.config)
    make_sample_library(work / "library")
    models = load_models(config, work / "library")
    figures["speed"] = [speed_figures(models[: args.models_256], config, 256, args.views_256, work),
                        speed_figures(models[: args.models_1024], config, 1024, args.views_1024, work)]
    figures["psnr"] = [psnr_figures(models[: args.models_256], config, 256, args.views_256, args.psnr_models, args.psnr_views, work),
                       psnr_figures(models[: args.models_1024], config, 1024, args.views_1024, args.psnr_models,
                                    args.psnr_views_1024, work)]
    figures["memory"] = memory_figures(models, config, args.memory_models, args.memory_resolution, work)
    figures["lighting"] = lighting_figures(models[: args.lighting_models], config, args.lighting_resolution, args.lighting_views,
                                           args.lighting_psnr_views, work)
    figures["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    shown = ("samples", "adaptive_threshold", "denoise", "device", "recycle_after", "hdri", "world_strength", "world_rotation",
             "dither")
    figures["ours_settings"] = {k: v for k, v in asdict(config.render).items() if k in shown}
    figures["baseline_settings"] = {"samples": BASELINE_SAMPLES, "adaptive_threshold": 0.0, "denoise": False, "persistent_data": False}
    return figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.monotonic()
    figures = in_work_dir(args.work_dir, "pgrf-bench-", lambda work: bench(args, work))
    figures["total_seconds"] = round(time.monotonic() - start, 1)
    print_details(figures)
    summary = markdown(figures)
    console.print(f"\nTotal {figures['total_seconds']:.0f} s; load average {figures['machine']['loadavg_start']} → "
                  f"{figures['machine']['loadavg_end']} ({figures['machine']['cpus']} CPUs)\n")
    print(summary)
    if args.json:
        args.json.write_text(json.dumps({**figures, "markdown": summary}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
