"""Training speed: seconds per kimg and peak memory of the real training step, plus FID rendering rate.

Run from the repository root on a GPU machine: ``.venv/bin/python bench/train_gpu.py [--json FILE]``
(defaults: paper preset, 256² data, batch 64, 64² patches). ``--preset tiny --device cpu --batch 4
--steps 2`` runs the same code on a CPU as a check of the script.

Data are synthetic render folders (``pgrf.pipeline.synthetic``) packed into shards at the chosen
resolution, streamed by the real loader. Timed: ``--steps`` calls of ``pgrf.train.loop.step`` (G step,
D step with lazy R1, EMA, ADA with p fixed at ``--ada-p`` so augmentation costs what it does in a real
run) after ``--warmup`` steps, with the device synchronised. Anchor: the paper reports ≈11.4 s per
kimg on 8 V100s (≈91 V100-seconds per kimg); the goal is ≤ 20 s/kimg on one H100.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import report

from pgrf import runtime
from pgrf.cameras import DEFAULT_FOV, DEFAULT_RADIUS
from pgrf.config import load_config
from pgrf.model.poses import sample_poses
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.train.loop import batches_of, build, step
from pgrf.train.options import TrainOptions

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--ada-p", type=float, default=0.2)
    parser.add_argument("--fid-batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def render_rate(run: Any, batch: int, resolution: int) -> float:
    """Full-resolution G_ema images per second, rendered in ray chunks as FID does (after one warm-up)."""
    device = run.context.device
    c2w, intrinsics, _ = sample_poses(batch, DEFAULT_RADIUS, DEFAULT_FOV, np.random.default_rng(0))
    z = torch.randn(batch, run.config.z_dim, device=device)
    c = torch.eye(run.config.c_dim, device=device)[torch.zeros(batch, dtype=torch.long)] if run.config.c_dim else None
    rates = []
    for _ in range(2):
        synchronise(device)
        start = time.perf_counter()
        run.G_ema.render_image(z, c, c2w.to(device), intrinsics.to(device), resolution)
        synchronise(device)
        rates.append(batch / (time.perf_counter() - start))
    return rates[-1]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pgrf-bench-train-") as tmp:
        work = Path(tmp)
        renders = fake_renders(work / "renders", "bench", {f"m{i:02d}": 0.3 + 0.02 * i for i in range(16)}, views=8,
                               resolution=args.resolution)
        pack([renders], work / "shards", load_config(REPO / "assets.toml"),
             PackOptions(resolution=args.resolution, samples_per_shard=64, workers=2, min_mean_alpha=0.0))
        options = TrainOptions(shards=str(work / "shards"), out=str(work / "runs"), preset=args.preset, batch=args.batch,
                               device=args.device, workers=4, kimg=1e9)
        context = runtime.setup(options.device)
        run = build(options, context)
        run.ada.p = args.ada_p
        batches = batches_of(run)
        for _ in range(args.warmup):
            step(run, next(batches))
        synchronise(context.device)
        if context.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(context.device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step(run, next(batches))
        synchronise(context.device)
        seconds = time.perf_counter() - start
        figures = {"device": torch.cuda.get_device_name(context.device) if context.device.type == "cuda" else "cpu",
                   "preset": args.preset, "resolution": args.resolution, "patch": run.config.patch_resolution,
                   "batch": args.batch, "steps": args.steps, "s_per_step": seconds / args.steps,
                   "s_per_kimg": seconds / (args.steps * args.batch) * 1000}
        if context.device.type == "cuda":
            figures["peak_memory_gib"] = torch.cuda.max_memory_allocated(context.device) / 2**30
        figures["fid_render_images_per_s"] = render_rate(run, args.fid_batch, args.resolution)
    report(f"training step: {args.preset} preset, {args.resolution}², batch {args.batch}", figures, args.json)


if __name__ == "__main__":
    main()
