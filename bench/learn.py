"""Learning check: a short CPU run of the small preset must beat the untrained generator.

Run from the repository root: ``.venv/bin/python bench/learn.py [--steps 1000] [--json FILE]``.

Data: the bundled sample food (an apple, two mushrooms, a crispbread that the size filter drops)
rendered with ``pgrf render`` at 32² (32 views each) and packed at 32² with mirrored copies. The
small preset then trains on whole 32² images (r = R = 32) for ``--steps`` steps of batch 8.

Distance between real and generated images: over N images each, the squared L2 distance of the
per-pixel mean images plus that of the per-pixel standard-deviation images (colour in [0, 1]),
and the same for coverage (1 − min over RGB: how far a pixel is from the white background). Fakes
are G_ema renders at poses drawn like the data's (uniform on the sphere) with the dataset's classes.
Both the untrained and the trained G are printed; the exit code is 1 if training did not help.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from pgrf.cameras import DEFAULT_FOV, DEFAULT_RADIUS
from pgrf.data.loader import exact_loader
from pgrf.model.checkpoint import load_generator
from pgrf.model.generator import Generator
from pgrf.model.poses import sample_poses
from pgrf.train.loop import train
from pgrf.train.options import TrainOptions

console = Console()
BATCH = 8


def prepare(work: Path) -> Path:
    """Render and pack the sample food at 32²; returns the shard folder."""
    run = [sys.executable, "-m", "pgrf"]
    subprocess.run([*run, "assets", "make-sample", str(work / "library")], check=True, capture_output=True)
    subprocess.run([*run, "render", "-c", "sample-food", "--library", str(work / "library"), "--out", str(work / "renders"),
                    "--views", "32", "--resolution", "32", "--samples", "16", "--no-denoise", "--workers", "2"], check=True)
    subprocess.run([*run, "pack", str(work / "renders" / "sample-food"), "--out", str(work / "shards"), "--resolution", "32",
                    "--samples-per-shard", "64"], check=True)
    return work / "shards"


def real_images(shards: Path) -> torch.Tensor:
    """Every real image as float in [0, 1] (N, 3, 32, 32)."""
    return torch.cat([b["image"] for b in exact_loader(shards, 64)]).float() / 255


@torch.no_grad()
def fake_images(generator: Generator, classes: torch.Tensor, c_dim: int, count: int, seed: int = 1) -> torch.Tensor:
    """``count`` G renders at data-like poses, in [0, 1]."""
    rng = np.random.default_rng(seed)
    c2w, intrinsics, _ = sample_poses(count, DEFAULT_RADIUS, DEFAULT_FOV, rng)
    z = torch.from_numpy(rng.standard_normal((count, generator.config.z_dim))).float()
    labels = classes[torch.from_numpy(rng.integers(0, len(classes), count))]
    c = F.one_hot(labels, c_dim).float() if c_dim else None
    images = [generator.render_image(z[i:i + 32], None if c is None else c[i:i + 32], c2w[i:i + 32], intrinsics[i:i + 32], 32)
              for i in range(0, count, 32)]
    return (torch.cat(images) + 1) / 2


def distance(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Per-pixel mean/std distances of colour and of coverage."""
    def moments(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(a.mean(0).sub(b.mean(0)).square().sum() + a.std(0).sub(b.std(0)).square().sum())

    colour = moments(real, fake)
    cover = moments(1 - real.min(dim=1).values, 1 - fake.min(dim=1).values)
    return {"colour": colour, "coverage": cover, "total": colour + cover}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="pgrf-learn-") as tmp:
        work = Path(tmp)
        shards = prepare(work)
        real = real_images(shards)
        classes = torch.cat([b["label"] for b in exact_loader(shards, 64)])
        options = TrainOptions(shards=str(shards), out=str(work / "runs"), name="learn", preset="small", batch=BATCH,
                               kimg=args.steps * BATCH / 1000, workers=1, device="cpu",
                               blur_kimg=args.steps * BATCH / 4000,  # the blur fades over the first quarter
                               tick_kimg=0.4, snapshot_kimg=1e9, sample_kimg=1e9)
        train(replace(options, name="untrained", kimg=BATCH / 1000))  # one step: the same config, barely trained
        untrained, _ = load_generator(work / "runs" / "untrained" / "checkpoints")
        run = train(options)
        trained, _ = load_generator(run / "checkpoints")
        c_dim = trained.config.c_dim
        figures = {"steps": args.steps, "real_images": len(real),
                   "untrained": distance(real, fake_images(untrained, classes, c_dim, len(real))),
                   "trained": distance(real, fake_images(trained, classes, c_dim, len(real)))}
    console.print_json(data=figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if figures["trained"]["total"] >= figures["untrained"]["total"]:
        console.print("[red]training did not reduce the distance[/red]")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
