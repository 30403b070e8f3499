"""Model benchmark: forward + backward time of G and D per image, and s/kimg of the real training step, per preset.

Run from the repository root: ``.venv/bin/python bench/models.py [--presets paper small] [--batch N]
[--repeats N] [--reference PATH] [--json FILE]``.

For each preset it times, after one warm-up step, with random latents, dataset-style cameras and
patches from the Beta schedule at T/2:

- **G**: a generator step (patch render, then backward of the mean), split into its two stages:
  mapping + synthesis of the tri-planes, and rendering (rays, 48+48 samples, tri-plane sampling, MLP);
- **D**: a discriminator step on r×r patches (forward and backward of the sum of logits);
- **s/kimg**: the training loop's own step (``pgrf.train.loop.step``: G's step, the fresh fakes of the
  updated G, D's step on them and on real patches, EMA, ADA) on a run built by ``loop.build`` on synthetic
  shards at the preset's resolution (two classes), ADA's p held at ``ADA_P`` so augmentation costs what
  it does mid-run. Each repeat times one step with lazy R1 and one without, weighted as a run takes them
  (one in ``r1_interval`` regularised); the loader's time is not in it (bench/loader.py).

Batch 4 on CPU, 64 on CUDA. On CUDA it also reports the peak memory of each step; D runs under bf16
autocast there, as in training (docs/training.md: mixed precision for D, G in fp32).

``--reference PATH`` (a checkout of github.com/universome/epigraf) adds a row per preset for the
authors' networks built at the same sizes (``reference_networks``: channel bases and maxima, tri-plane
resolution and channels, decoder width, samples per ray, mapping depth, resolution, patch size, D's
hypernetwork and minibatch-stddev group), timed by the same G, synthesis and D steps on the same inputs
(the reference's training loop is not run), and the ratio reference time / pgrf time (above 1: pgrf is
faster). The reference's CUDA ops (bias_act, upfirdn2d)
fall back to their pure-PyTorch paths on the CPU, where its D blocks run in fp32. Each repeat
times every step once, pgrf's and the reference's alternately, and the median is reported, so a
change of load on a shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import synthetic_shards
from rich.console import Console
from rich.table import Table

from pgrf import cameras, runtime
from pgrf.model.discriminator import Discriminator
from pgrf.model.generator import Generator
from pgrf.model.patches import PatchSampler
from pgrf.model.presets import ModelConfig, preset
from pgrf.model.rays import patch_rays
from pgrf.train import loop
from pgrf.train.options import TrainOptions

console = Console(width=None if sys.stdout.isatty() else 120)

ADA_P = 0.2
"""ADA's p while the training step is timed (p starts at 0 and grows as D overfits)."""


def dataset_cameras(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``c2w``, ``intrinsics`` and (yaw, pitch) (n, 2) of n cameras drawn like the data's."""
    yaw, pitch = cameras.sample_angles(n, np.random.default_rng(0))
    views = [cameras.View(float(a), float(b), cameras.DEFAULT_RADIUS, cameras.DEFAULT_FOV) for a, b in zip(yaw, pitch)]
    c2w = torch.tensor(np.stack([v.c2w for v in views]), dtype=torch.float32, device=device)
    k = torch.tensor(np.stack([v.intrinsics for v in views]), dtype=torch.float32, device=device)
    return c2w, k, torch.tensor(np.stack([yaw, pitch], axis=1), dtype=torch.float32, device=device)


def timed(steps: dict[str, Callable[[], None]], repeats: int, device: torch.device) -> dict[str, tuple[float, float]]:
    """Median seconds per call of each step (after one warm-up call each; the steps take turns in every
    repeat) and its peak memory in GiB (CUDA only, else NaN)."""
    cuda = device.type == "cuda"
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    peaks = dict.fromkeys(steps, float("nan"))
    for step in steps.values():
        step()
    for _ in range(repeats):
        for name, step in steps.items():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
                peaks[name] = torch.cuda.max_memory_allocated() / 2**30
            seconds[name].append(time.perf_counter() - start)
    return {name: (statistics.median(values), peaks[name]) for name, values in seconds.items()}


def _omegaconf_stand_in() -> None:
    """The reference's network modules import ``omegaconf.DictConfig`` for type hints only; without the
    package installed, a stand-in module provides that name (the config itself is nested EasyDicts)."""
    if "omegaconf" not in sys.modules and importlib.util.find_spec("omegaconf") is None:
        module = types.ModuleType("omegaconf")
        module.DictConfig = dict  # type: ignore[attr-defined]
        sys.modules["omegaconf"] = module


def reference_networks(path: Path, config: ModelConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The authors' G and D (universome/epigraf checked out at ``path``) with the sizes of ``config``.

    The config mirrors the reference's Megascans run (configs/model/epigraf.yaml, training/patch_beta.yaml,
    dataset/megascans_*.yaml: its own camera, cube scale and white background), with every size taken from
    ``config``; no background model, no class or camera conditioning, as pgrf's rows.
    """
    if not (path / "src" / "training" / "networks_epigraf.py").is_file():
        raise SystemExit(f"--reference {path}: not a checkout of universome/epigraf (no src/training/networks_epigraf.py)")
    _omegaconf_stand_in()
    sys.path.insert(0, str(path.resolve()))
    from src.dnnlib import EasyDict
    from src.training.networks_discriminator import Discriminator as ReferenceD
    from src.training.networks_epigraf import Generator as ReferenceG

    resolution, patch_resolution = config.resolution, config.patch_resolution
    camera = EasyDict(fov=30.0, ray_start=0.75, ray_end=1.25, radius=1.0, dist="spherical_uniform")
    dataset = EasyDict(resolution=resolution, c_dim=0, camera=camera, white_back=True, last_back=False, cube_scale=0.475)
    patch = EasyDict(enabled=True, patch_params_cond=True, resolution=patch_resolution, min_scale_trg=patch_resolution / resolution,
                     max_scale=1.0, anneal_kimg=config.anneal_kimg, mbstd_group_size=config.mbstd_group, distribution="beta",
                     alpha=1.0, beta_val_start=config.beta_start, beta_val_end=config.beta_end)
    tri_plane = EasyDict(res=config.plane_resolution, feat_dim=config.plane_channels, fp32=True, has_view_cond=False,
                         posenc_period_len=0, mlp=EasyDict(n_layers=2, hid_dim=config.decoder_hidden))
    g_cfg = EasyDict(backbone="stylegan2", num_ray_steps=config.coarse_steps, clamp_mode="softplus", nerf_noise_std_init=1.0,
                     nerf_noise_kimg_growth=config.density_noise_kimg, density_shift=0.0, use_noise=True, tri_plane=tri_plane,
                     bg_model=EasyDict(type=None), patch=patch, dataset=dataset)
    d_cfg = EasyDict(patch=patch, hyper_mod=config.hyper, camera_cond=False, camera_cond_drop_p=0.0, camera_cond_noise_std=0.0,
                     camera_cond_raw=False, num_additional_start_blocks=int(math.log2(resolution // patch_resolution)))
    mapping = EasyDict(num_layers=config.mapping_layers, camera_cond=False, camera_cond_drop_p=0.0, camera_cond_noise_std=0.0,
                       mean_camera_pose=None)
    generator = ReferenceG(cfg=g_cfg, z_dim=config.z_dim, c_dim=0, w_dim=config.w_dim, img_resolution=resolution, img_channels=3,
                           mapping_kwargs=mapping, channel_base=config.g_channel_base, channel_max=config.g_channel_max,
                           conv_clamp=config.g_conv_clamp,
                           fused_modconv_default="inference_only")  # as the reference's train.py sets for training
    disc = ReferenceD(cfg=d_cfg, c_dim=0, img_resolution=patch_resolution, img_channels=3, channel_base=config.d_channel_base,
                      channel_max=config.d_channel_max, conv_clamp=config.d_conv_clamp, block_kwargs=EasyDict(freeze_layers=0),
                      mapping_kwargs=EasyDict(), epilogue_kwargs=EasyDict(mbstd_group_size=config.mbstd_group))
    return generator, disc


def params_m(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def bench_preset(name: str, config: ModelConfig, batch: int, repeats: int, device: torch.device,
                 reference: Path | None = None) -> dict[str, Any]:
    torch.manual_seed(0)
    generator, disc = Generator(config).to(device), Discriminator(config).to(device)
    c2w, k, angles = dataset_cameras(batch, device)
    sampler = PatchSampler(config.resolution, config.patch_resolution, anneal_kimg=config.anneal_kimg)
    patch = sampler.sample(batch, config.anneal_kimg / 2, group_size=config.mbstd_group, device=device)
    z = torch.randn(batch, config.z_dim, device=device)
    size = config.patch_resolution
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

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

    steps = {"g": g_step, "synthesis": synthesis_step, "render": render_step, "d": d_step}
    results: dict[str, Any] = {"batch": batch, "g_params_m": params_m(generator), "d_params_m": params_m(disc)}
    if reference:
        steps.update(reference_steps(reference, config, z, angles, patch, images, results, device))
    for key, (seconds, peak) in timed(steps, repeats, device).items():
        results[f"{key}_ms_per_image"] = 1000 * seconds / batch
        results[f"{key}_peak_gib"] = peak
    if reference:
        for key in ("g", "synthesis", "d"):
            results[f"ratio_{key}"] = results[f"ref_{key}_ms_per_image"] / results[f"{key}_ms_per_image"]
    console.print(f"[dim]{name}: networks done[/]")
    return results


def bench_loop(name: str, batch: int, repeats: int, device: torch.device, work: Path) -> dict[str, float]:
    """s/kimg of ``pgrf.train.loop.step`` at preset ``name`` on synthetic shards at its resolution (made in
    ``work``): median seconds of a step without and with lazy R1 after one warm-up step, weighted 15:1 (as
    ``r1_interval`` 16), and the peak memory of a step with R1 (CUDA only, else NaN)."""
    resolution = preset(name).resolution
    options = TrainOptions(shards=str(synthetic_shards(work / f"shards-{resolution}", resolution)), out=str(work / "runs"),
                           name=name, preset=name, batch=batch, device=device.type, workers=2, kimg=1e9)
    run = loop.build(options, runtime.setup(device.type))
    run.ada.p_tensor = torch.tensor(ADA_P, dtype=torch.float64)
    batches = loop.batches_of(run)
    interval = options.r1_interval
    loop.step(run, next(batches))  # warm-up (step 0 takes R1)
    batch_data = next(batches)  # every timed step trains on it

    def timed_step(regularised: bool) -> Callable[[], None]:
        def once() -> None:
            run.progress.step = (run.progress.step // interval + 1) * interval - (0 if regularised else 1)
            loop.step(run, batch_data)
        return once

    times = timed({"loop": timed_step(False), "loop_r1": timed_step(True)}, repeats, device)
    (plain, _), (regularised, peak) = times["loop"], times["loop_r1"]
    per_step = ((interval - 1) * plain + regularised) / interval
    console.print(f"[dim]{name}: training step done[/]")
    return {"loop_batch": batch, "loop_step_s": plain, "loop_r1_step_s": regularised, "loop_peak_gib": peak,
            "s_per_kimg": per_step / batch * 1000}


def reference_steps(path: Path, config: ModelConfig, z: torch.Tensor, angles: torch.Tensor, patch: torch.Tensor,
                    images: torch.Tensor, results: dict[str, Any], device: torch.device) -> dict[str, Callable[[], None]]:
    """The reference's G, synthesis and D steps on the same latents, cameras, patches and images as pgrf's.

    Its D is called as its training loop does, without autocast: on CUDA its four highest-resolution
    blocks run in fp16 by themselves (``num_fp16_res=4``), on the CPU everything runs in fp32.
    """
    torch.manual_seed(0)
    generator, disc = (m.to(device).train() for m in reference_networks(path, config))
    generator.synthesis.nerf_noise_std = 0.5  # as density_noise_std=0.5 in pgrf's G step
    results["ref_g_params_m"], results["ref_d_params_m"] = params_m(generator), params_m(disc)
    batch = z.shape[0]
    c = torch.zeros(batch, 0, device=device)
    camera = torch.cat([angles, torch.zeros(batch, 1, device=device)], dim=1)  # yaw, pitch, roll
    scale = patch[:, :1].expand(-1, 2).contiguous()
    patch_params = {"scales": scale, "offsets": patch[:, 1:].contiguous()}  # the same (s, δ) in [0, 1] units

    def g_step() -> None:
        generator.zero_grad(set_to_none=True)
        generator(z, c, camera.clone(), patch_params=patch_params).mean().backward()

    def synthesis_step() -> None:
        generator.zero_grad(set_to_none=True)
        planes = generator.synthesis.tri_plane_decoder(generator.mapping(z, c))
        planes.square().mean().backward()

    def d_step() -> None:
        disc.zero_grad(set_to_none=True)
        disc(images, c, patch_params=patch_params).float().sum().backward()

    return {"ref_g": g_step, "ref_synthesis": synthesis_step, "ref_d": d_step}


def gib(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "small"])
    parser.add_argument("--batch", type=int, default=None, help="default: 64 on CUDA, 4 on CPU")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=Path, default=None, help="a checkout of universome/epigraf to time side by side")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = args.batch or (64 if device.type == "cuda" else 4)
    cpu = f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    machine = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    with tempfile.TemporaryDirectory(prefix="pgrf-bench-models-") as work:
        results = {name: {**bench_preset(name, preset(name), batch, args.repeats, device, args.reference),
                          **bench_loop(name, batch, args.repeats, device, Path(work))} for name in args.presets}

    table = Table(title=f"G and D forward + backward, ms per image, and the training step's s/kimg, batch {batch} "
                        f"({machine}, torch {torch.__version__})")
    for column in ["preset", "G", "  synthesis", "  render", "D", "step s/kimg", "G peak GiB", "D peak GiB", "step peak GiB",
                   "params G/D (M)"]:
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, f"{r['g_ms_per_image']:.1f}", f"{r['synthesis_ms_per_image']:.1f}",
                      f"{r['render_ms_per_image']:.1f}", f"{r['d_ms_per_image']:.1f}", f"{r['s_per_kimg']:.1f}",
                      gib(r["g_peak_gib"]), gib(r["d_peak_gib"]), gib(r["loop_peak_gib"]),
                      f"{r['g_params_m']:.1f} / {r['d_params_m']:.1f}")
        if args.reference:
            table.add_row(f"{name} (reference)", f"{r['ref_g_ms_per_image']:.1f}", f"{r['ref_synthesis_ms_per_image']:.1f}", "–",
                          f"{r['ref_d_ms_per_image']:.1f}", "–", gib(r["ref_g_peak_gib"]), gib(r["ref_d_peak_gib"]), "–",
                          f"{r['ref_g_params_m']:.1f} / {r['ref_d_params_m']:.1f}")
            table.add_row(f"{name} reference / pgrf", f"{r['ratio_g']:.2f}", f"{r['ratio_synthesis']:.2f}", "",
                          f"{r['ratio_d']:.2f}", "", "", "", "", "")
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps({"device": machine, "torch": torch.__version__, "results": results}, indent=2))


if __name__ == "__main__":
    main()
