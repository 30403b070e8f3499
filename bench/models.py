"""Model benchmark: forward + backward time of G and D per image, per preset.

Run from the repository root: ``.venv/bin/python bench/models.py [--presets paper small] [--batch N]
[--repeats N] [--json FILE]``.

For each preset it times, after one warm-up step, with random latents, dataset-style cameras and
patches from the Beta schedule at T/2:

- **G**: a generator step (patch render, then backward of the mean), split into its two stages:
  mapping + synthesis of the tri-planes, and rendering (rays, 48+48 samples, tri-plane sampling, MLP);
- **D**: a discriminator step on r×r patches (forward and backward of the sum of logits).

Batch 4 on CPU, 64 on CUDA. On CUDA it also reports s/kimg = 1000 × (G + 2·D) per image (one G step
and a D step on real and fake patches; R1 and the loss are left out) and peak memory of each step;
D runs under fp16 autocast there (TRAINER.md: mixed precision for D, G in fp32).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from pgrf import cameras
from pgrf.model.discriminator import Discriminator
from pgrf.model.generator import Generator
from pgrf.model.patches import PatchSampler
from pgrf.model.presets import ModelConfig, preset
from pgrf.model.rays import patch_rays

console = Console(width=None if sys.stdout.isatty() else 120)


def dataset_cameras(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    yaw, pitch = cameras.sample_angles(n, np.random.default_rng(0))
    views = [cameras.View(float(a), float(b), cameras.DEFAULT_RADIUS, cameras.DEFAULT_FOV) for a, b in zip(yaw, pitch)]
    c2w = torch.tensor(np.stack([v.c2w for v in views]), dtype=torch.float32, device=device)
    k = torch.tensor(np.stack([v.intrinsics for v in views]), dtype=torch.float32, device=device)
    return c2w, k


def timed(step: Callable[[], None], repeats: int, device: torch.device) -> tuple[float, float]:
    """Seconds per call (after one warm-up call) and peak memory in GiB (CUDA only, else NaN)."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / repeats, torch.cuda.max_memory_allocated() / 2**30
    return (time.perf_counter() - start) / repeats, float("nan")


def bench_preset(name: str, config: ModelConfig, batch: int, repeats: int, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    generator, disc = Generator(config).to(device), Discriminator(config).to(device)
    c2w, k = dataset_cameras(batch, device)
    sampler = PatchSampler(config.resolution, config.patch_resolution, anneal_kimg=config.anneal_kimg)
    patch = sampler.sample(batch, config.anneal_kimg / 2, group_size=config.mbstd_group, device=device)
    z = torch.randn(batch, config.z_dim, device=device)
    size = config.patch_resolution
    amp = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()

    def g_step() -> None:
        generator.zero_grad(set_to_none=True)
        generator(z, None, c2w, k, patch, density_noise_std=0.5).mean().backward()

    def synthesis_step() -> None:
        generator.zero_grad(set_to_none=True)
        generator.planes(z).square().mean().backward()

    planes = generator.planes(z).detach().requires_grad_(True)

    def render_step() -> None:
        planes.grad = None
        rays = patch_rays(c2w, k, patch, size)
        generator.render(planes, rays, jitter=True, density_noise_std=0.5).rgb.mean().backward()

    images = torch.randn(batch, 3, size, size, device=device)

    def d_step() -> None:
        disc.zero_grad(set_to_none=True)
        with amp:
            logits = disc(images, patch)
        logits.float().sum().backward()

    results: dict[str, float] = {"batch": batch}
    for key, step in [("g", g_step), ("synthesis", synthesis_step), ("render", render_step), ("d", d_step)]:
        seconds, peak = timed(step, repeats, device)
        results[f"{key}_ms_per_image"] = 1000 * seconds / batch
        results[f"{key}_peak_gib"] = peak
    results["s_per_kimg"] = results["g_ms_per_image"] + 2 * results["d_ms_per_image"]  # ms/img × 1000 img / 1000
    results["g_params_m"] = sum(p.numel() for p in generator.parameters()) / 1e6
    results["d_params_m"] = sum(p.numel() for p in disc.parameters()) / 1e6
    console.print(f"[dim]{name}: done[/]")
    return results


def gib(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "small"])
    parser.add_argument("--batch", type=int, default=None, help="default: 64 on CUDA, 4 on CPU")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = args.batch or (64 if device.type == "cuda" else 4)
    cpu = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    machine = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    results = {name: bench_preset(name, preset(name), batch, args.repeats, device) for name in args.presets}

    table = Table(title=f"G and D forward + backward, ms per image, batch {batch} ({machine}, torch {torch.__version__})")
    for column in ["preset", "G", "  synthesis", "  render", "D", "s/kimg", "G peak GiB", "D peak GiB", "params G/D (M)"]:
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, f"{r['g_ms_per_image']:.1f}", f"{r['synthesis_ms_per_image']:.1f}",
                      f"{r['render_ms_per_image']:.1f}", f"{r['d_ms_per_image']:.1f}", f"{r['s_per_kimg']:.1f}",
                      gib(r["g_peak_gib"]), gib(r["d_peak_gib"]), f"{r['g_params_m']:.1f} / {r['d_params_m']:.1f}")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"device": machine, "torch": torch.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
