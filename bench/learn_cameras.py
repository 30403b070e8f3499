"""Camera check by learning: G, trained on one six-coloured cube, must render the view the data has at each camera.

Run from the repository root: ``.venv/bin/python bench/learn_cameras.py [--minutes 45] [--preset small] [--json FILE]``.

Data: a cube whose six faces have six distinct colours, written by this script as an OBJ with an
MTL in a temporary plain-folder library (its own assets.toml category), rendered with ``pgrf render``
under even white light (``--views`` views at twice ``--resolution``) and packed at ``--resolution``
with ``pgrf pack --no-mirror``: a mirrored view would show the cube's mirror image, a different
object. A preset (``--preset``, default small: ~3,600 steps in 45 minutes on two quiet cores; tiny is
faster and learns less) then trains on it on the CPU with D conditioned on the camera's Fourier-encoded
yaw and pitch (``--camera-cond``, ModelConfig.camera_cond; the fakes' cameras are drawn uniformly on
the sphere, as in training) for ``--minutes``.

Check: G_ema renders every dataset camera i for several seeds z. For one object G should have learnt
that object, so every z should show real view i there. Over the N × N pairs (G at camera i, real
view j), both over the dataset's background, the report gives the mean PSNR of the matched pairs
(i = j), of the shuffled ones (i ≠ j), the share of cameras whose own real view is the nearest one
(retrieval), and the matched PSNR with deliberately broken conventions fed to G (yaw + π/2, yaw + π,
pitch → π − pitch); the same figures for the run's initial G give the zero point. Matched must beat
shuffled by ``--margin`` dB and every broken convention by ``--broken-margin`` dB (exit 1 otherwise):
a wrong camera convention anywhere between the renderer's cameras.json, the shards, the loop and G's
rays would make G's view at camera i another view of the cube, which is what these pairings measure.
(Yaw + π/2 keeps the cube's top and bottom faces where they were, so it is the mildest of the three.)

Training is chunked: ``pgrf.train.loop.train`` runs a few minutes at a time and resumes from its
latest checkpoint (exactly as ``pgrf train --resume latest``) until the time is spent; run again
with the same ``--work-dir``, the script continues that run for another ``--minutes``. Schedules that
depend on kimg (blur fade, β anneal) are fixed at the start and do not depend on the time limit.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import in_work_dir, report

from pgrf.data.loader import exact_loader
from pgrf.formats.card import read_card
from pgrf.model.checkpoint import LATEST, load_checkpoint, load_generator
from pgrf.model.generator import Generator, seeded_latents
from pgrf.model.poses import camera_tensors
from pgrf.train import loop
from pgrf.train.options import TrainOptions

CATEGORY = "cube"
BATCH = 8
TICK_STEPS = 5
FIRST_STEPS = 10

# Corners of [-1, 1]³ and the six faces, each counter-clockwise seen from outside, with its colour.
CORNERS = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
FACES = {
    "red": ((1, 0, 0), (0.9, 0.05, 0.05)),
    "cyan": ((-1, 0, 0), (0.05, 0.8, 0.8)),
    "green": ((0, 1, 0), (0.05, 0.7, 0.05)),
    "magenta": ((0, -1, 0), (0.8, 0.05, 0.8)),
    "blue": ((0, 0, 1), (0.05, 0.1, 0.9)),
    "yellow": ((0, 0, -1), (0.9, 0.85, 0.05)),
}


def _face(normal: tuple[int, int, int]) -> list[int]:
    """1-based OBJ indices of the face with outward ``normal``, counter-clockwise seen from outside."""
    n = np.array(normal, float)
    corners = [i for i, c in enumerate(CORNERS) if np.dot(c, n) > 0]
    centre = n  # the face's centre
    u = np.cross(n, [0.0, 0.0, 1.0] if abs(n[2]) < 1 else [1.0, 0.0, 0.0])
    v = np.cross(n, u)
    angles = [math.atan2(np.dot(np.subtract(CORNERS[i], centre), v), np.dot(np.subtract(CORNERS[i], centre), u))
              for i in corners]
    return [corners[i] + 1 for i in np.argsort(angles)]


def write_cube_library(root: Path) -> Path:
    """A plain-folder library with one collection holding the six-coloured cube (OBJ + MTL); returns its assets.toml."""
    folder = root / "library" / CATEGORY
    folder.mkdir(parents=True, exist_ok=True)
    mtl = [f"newmtl {name}\nKd {r} {g} {b}\nKa 0 0 0\nKs 0 0 0\nNs 1\nillum 1\n" for name, (_, (r, g, b)) in FACES.items()]
    (folder / "cube.mtl").write_text("\n".join(mtl))
    obj = ["mtllib cube.mtl", *(f"v {x} {y} {z}" for x, y, z in CORNERS)]
    for name, (normal, _) in FACES.items():
        obj += [f"usemtl {name}", "f " + " ".join(str(i) for i in _face(normal))]
    (folder / "cube.obj").write_text("\n".join(obj) + "\n")
    config = root / "assets.toml"
    config.write_text(f'[categories.{CATEGORY}]\nlibrary = "library"\nsource = "folders"\nclass_from = "folder"\n'
                      "min_mean_alpha = 0.0\n")
    return config


def prepare(work: Path, views: int, resolution: int) -> Path:
    """Write the cube, render it at 2·``resolution`` and pack it at ``resolution`` (unless done before); returns
    the shard folder."""
    if (work / "shards" / "dataset.json").is_file():
        return work / "shards"
    config = write_cube_library(work)
    pgrf = [sys.executable, "-m", "pgrf"]
    subprocess.run([*pgrf, "render", "-c", CATEGORY, "--config", str(config), "--out", str(work / "renders"),
                    "--views", str(views), "--resolution", str(2 * resolution), "--samples", "16", "--no-denoise",
                    "--hdri", "none", "--workers", "1"], check=True)
    subprocess.run([*pgrf, "pack", str(work / "renders" / CATEGORY), "--config", str(config), "--out", str(work / "shards"),
                    "--resolution", str(resolution), "--no-mirror", "--samples-per-shard", "64"], check=True)
    return work / "shards"


def train_for(options: TrainOptions, minutes: float) -> tuple[Path, dict[str, float]]:
    """Train for about ``minutes`` in chunks of at most ~2 minutes, each resuming the last checkpoint; a run
    already in the work folder (an earlier invocation's) is continued. A chunk's size comes from the wall
    time per step of the one before (start-up included), so a machine that slows down overruns by little."""
    checkpoint = Path(options.out) / str(options.name) / "checkpoints" / LATEST
    start = time.perf_counter()
    seconds_per_step = None
    while (left := minutes * 60 - (time.perf_counter() - start)) > 20 or not checkpoint.is_file():
        done = load_checkpoint(checkpoint).meta.progress.step if checkpoint.is_file() else 0
        steps = max(1, int(min(left, 120) / seconds_per_step)) if seconds_per_step else FIRST_STEPS
        chunk = time.perf_counter()
        loop.train(replace(options, kimg=(done + steps) * BATCH / 1000, resume="latest" if done else None))
        seconds_per_step = (time.perf_counter() - chunk) / steps
    steps = load_checkpoint(checkpoint).meta.progress.step
    return checkpoint.parent.parent, {"train_minutes": (time.perf_counter() - start) / 60, "kimg": steps * BATCH / 1000,
                                      "steps": steps}


def real_views(shards: Path) -> dict[str, torch.Tensor]:
    """Every view of the shards: images in [0, 1] (over the card's background) and their cameras."""
    batches = list(exact_loader(shards, 64))
    return {"image": torch.cat([b["image"] for b in batches]).float() / 255,
            "yaw": torch.cat([b["yaw"] for b in batches]), "pitch": torch.cat([b["pitch"] for b in batches])}


@torch.no_grad()
def renders(generator: Generator, yaw: torch.Tensor, pitch: torch.Tensor, radius: float, fov: float, seeds: list[int],
            resolution: int) -> torch.Tensor:
    """G at the cameras (yaw, pitch) for every seed: (len(seeds), N, 3, res, res) in [0, 1]."""
    c2w, intrinsics = camera_tensors(yaw.double().numpy(), pitch.double().numpy(), radius, fov)
    out = []
    for z in seeded_latents(seeds, generator.config.z_dim):
        zs = z[None].expand(len(c2w), -1)
        images = [generator.render_image(zs[i:i + 32], None, c2w[i:i + 32], intrinsics[i:i + 32], resolution)
                  for i in range(0, len(c2w), 32)]
        out.append((torch.cat(images) + 1) / 2)
    return torch.stack(out)


def psnr_matrix(fakes: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of every pair (G at camera i, real view j): (N, N) for fakes and reals of N views each."""
    mse = torch.cdist(fakes.flatten(1).double(), reals.flatten(1).double()).square() / reals[0].numel()
    return -10 * torch.log10(mse.clamp_min(1e-10))


BROKEN = {"yaw_plus_90deg": (math.pi / 2, False), "yaw_plus_180deg": (math.pi, False), "pitch_flipped": (0.0, True)}
"""Deliberately broken conventions fed to G: (added yaw, pitch → π − pitch)."""


def camera_figures(fakes: torch.Tensor, broken: dict[str, torch.Tensor], reals: torch.Tensor) -> dict[str, float]:
    """Matched, shuffled and broken-convention PSNR (mean over seeds and views), and nearest-real retrieval."""
    n = reals.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    tables = [psnr_matrix(fake, reals) for fake in fakes]
    matched = torch.stack([table.diagonal().mean() for table in tables])
    figures = {"psnr_matched_db": float(matched.mean()), "psnr_matched_std_over_seeds_db": float(matched.std(correction=0)),
               "psnr_shuffled_db": float(torch.stack([table[off].mean() for table in tables]).mean())}
    for name, wrong in broken.items():
        figures[f"psnr_broken_{name}_db"] = float(torch.stack([psnr_matrix(w, reals).diagonal().mean() for w in wrong]).mean())
    nearest = torch.stack([(table.argmax(dim=1) == torch.arange(n)).double().mean() for table in tables])
    return {**figures, "nearest_real_is_own_view": float(nearest.mean()), "nearest_by_chance": 1 / n}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=45.0, help="training time (wall clock, resumed chunks)")
    parser.add_argument("--preset", default="small", help="model sizes (small: a clear result in 45 min on 2 quiet cores)")
    parser.add_argument("--views", type=int, default=96, help="rendered views of the cube")
    parser.add_argument("--resolution", type=int, default=32, help="dataset resolution R (rendered at 2R, packed at R)")
    parser.add_argument("--patch-res", type=int, default=16, help="patch resolution r of G and D")
    parser.add_argument("--blur-kimg", type=float, default=1.0, help="the blur on D's inputs fades over this many kimg")
    parser.add_argument("--reuse-fakes", action="store_true", help="D judges G's fakes of the step (pgrf train --reuse-fakes)")
    parser.add_argument("--seeds", type=int, default=4, help="latents z rendered at every camera")
    parser.add_argument("--margin", type=float, default=2.0, help="dB by which matched must beat shuffled")
    parser.add_argument("--broken-margin", type=float, default=0.5, help="dB by which matched must beat every broken convention")
    parser.add_argument("--work-dir", type=Path, help="keep the dataset and run here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    def run(work: Path) -> dict[str, float]:
        shards = prepare(work, args.views, args.resolution)
        options = TrainOptions(shards=str(shards), out=str(work / "runs"), name="cameras", preset=args.preset, camera_cond=True,
                               batch=BATCH,
                               patch_res=args.patch_res, reuse_fakes=args.reuse_fakes, workers=0, device="cpu", blur_kimg=args.blur_kimg,
                               tick_kimg=TICK_STEPS * BATCH / 1000, snapshot_kimg=1e9, sample_kimg=1e9)
        folder, figures = train_for(options, args.minutes)
        generator, _ = load_generator(folder / "checkpoints")
        camera, real = read_card(shards).camera, real_views(shards)
        torch.manual_seed(options.seed)  # the initial G of the run, as pgrf.train.loop.build makes it
        untrained = Generator(generator.config, generator.background).eval().requires_grad_(False)
        figures = {"preset": args.preset, "reuse_fakes": args.reuse_fakes, "views": len(real["image"]), "resolution": args.resolution,
                   "patch_res": args.patch_res, **figures}
        for name, model in (("", generator), ("untrained_", untrained)):
            def at(yaw_shift: float, flip: bool, model: Generator = model) -> torch.Tensor:
                pitch = math.pi - real["pitch"] if flip else real["pitch"]
                return renders(model, real["yaw"] + yaw_shift, pitch, camera.radius, camera.fov, list(range(args.seeds)),
                               args.resolution)

            scores = camera_figures(at(0.0, False), {key: at(*change) for key, change in BROKEN.items()}, real["image"])
            figures.update({name + key: value for key, value in scores.items()})
        return figures

    figures = in_work_dir(args.work_dir, "pgrf-learn-cameras-", run)
    report("camera check by learning", figures, args.json)
    matched = figures["psnr_matched_db"]
    broken = max(figures[f"psnr_broken_{name}_db"] for name in BROKEN)
    if matched - figures["psnr_shuffled_db"] < args.margin or matched - broken < args.broken_margin:
        print(f"matched PSNR beats shuffled by {matched - figures['psnr_shuffled_db']:.2f} dB (needs {args.margin}) and "
              f"the best broken convention by {matched - broken:.2f} dB (needs {args.broken_margin})")
        raise SystemExit(1)

if __name__ == "__main__":
    main()
