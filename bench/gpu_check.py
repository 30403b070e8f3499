"""GPU check of the train half: CPU-vs-device equality, training steps, G/D speed, `pgrf train` s/kimg, FID rate.

One prepared script for one GPU, at most about 5 minutes. Each section's result is written to
``DIR/gpu_check.json`` as soon as it is done (a timeout keeps the finished ones); ``--only SECTION`` reruns one
section and keeps the others' results in the file. ``--device cpu --quick`` is a tiny run of the same code on
the CPU (a unit test runs it).

Sections:
  equality  G's patches and depth and D's logits on the CPU and on the device (small preset, fp32, eval mode,
            constant synthesis noise, no jitter, every random draw made on the CPU and copied): max |difference|
  steps     20 steps of ``pgrf.train.loop.step`` on the device, lazy R1 every 4 steps and ADA at p 0.2: all finite
  speed     G and D forward + backward ms/image at the paper preset (bench/models.py's steps), with
            ``--reference PATH`` (a checkout of universome/epigraf) the reference's networks beside them
  train     ``pgrf train`` on synthetic shards it packs itself (256², batch 64, 64² patches, paper preset):
            s/kimg of its last stats tick and peak memory (CUDA: max_memory_allocated; CPU: peak RSS)
  fid       generated images/s through FID's path (``generated_statistics``: G renders, detector features), with
            ``--inception FILE`` or a randomly initialised FID Inception (the same network and 2048 features)
``--quick``: the tiny preset, 32² data, batch 4, fewer steps and images in every section.

On the device machine (Python 3.12, torch 2.11 CUDA, numpy 2; its image lacks webdataset, braceexpand, pyspng
and isal, which travel as wheels). Once, here, in the repository root:
    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl webdataset==1.0.2 braceexpand==0.1.7 pyspng==0.1.4 isal==1.9.1
Then one run, carrying .whl (timeout_s 420 leaves time for the install):
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . .whl/*.whl \
        && export PYTHONPATH=/tmp/site && PYTHONUNBUFFERED=1 timeout 330 python3 bench/gpu_check.py --out $OUT
    (the checkout's build needs setuptools >= 77 there; failing that, install the wheels alone and export
    PYTHONPATH=/tmp/site:$PWD)
    (add --reference DIR with a carried checkout of universome/epigraf, --inception FILE with carried weights;
    rerun one section with --only NAME --out $OUT after copying the earlier gpu_check.json into $OUT)
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pgrf import runtime
from pgrf.cameras import DEFAULT_FOV, DEFAULT_RADIUS
from pgrf.data.source import ShardSource
from pgrf.evaluate.inception import FIDInceptionV3, load_detector
from pgrf.evaluate.metrics import generated_statistics
from pgrf.formats.stats_log import StatsLine, read_stats
from pgrf.model.discriminator import Discriminator
from pgrf.model.generator import Generator
from pgrf.model.patches import PatchSampler
from pgrf.model.poses import sample_poses
from pgrf.model.presets import preset
from pgrf.model.rays import patch_rays
from pgrf.train import loop
from pgrf.train.options import TrainOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/'s own modules, also when imported from elsewhere
from common import synthetic_shards  # noqa: E402
from models import bench_preset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULT_FILE = "gpu_check.json"
SECTIONS = ("equality", "steps", "speed", "train", "fid")
TOLERANCE = 1e-3
"""Largest |CPU − device| difference the equality section calls equal (fp32 kernels differ by round-off)."""


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_difference(cpu: torch.Tensor, other: torch.Tensor) -> float:
    return (cpu - other.cpu()).abs().max().item()


def equality(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """G (patches, depth) and D (logits) on the CPU and on ``device`` from the same weights and inputs."""
    runtime.allow_tf32(False)
    name = "tiny" if args.quick else "small"
    config = preset(name)
    torch.manual_seed(0)
    generator, disc = Generator(config).eval(), Discriminator(config).eval()
    on_device = copy.deepcopy(generator).to(device), copy.deepcopy(disc).to(device)
    n, draws = 8, torch.Generator().manual_seed(0)
    z = torch.randn(n, config.z_dim, generator=draws)
    c2w, intrinsics, _ = sample_poses(n, DEFAULT_RADIUS, DEFAULT_FOV, np.random.default_rng(0))
    sampler = PatchSampler(config.resolution, config.patch_resolution, anneal_kimg=config.anneal_kimg)
    patch = sampler.sample(n, config.anneal_kimg / 2, group_size=config.mbstd_group, generator=draws)

    @torch.no_grad()
    def outputs(G: Generator, D: Discriminator, at: torch.device, images_in: torch.Tensor | None) -> dict[str, torch.Tensor]:
        inputs = [t.to(at) for t in (z, c2w, intrinsics, patch)]
        images = G(inputs[0], None, *inputs[1:])  # eval mode: no ray jitter, constant synthesis noise
        planes = G.planes(inputs[0], None, noise_mode="const")
        depth = G.render(planes, patch_rays(*inputs[1:], config.patch_resolution), jitter=False).depth
        logits = D((images if images_in is None else images_in).to(at), inputs[3])  # D judges the CPU's images on both
        return {"images": images, "depth": depth, "logits": logits}

    cpu = outputs(generator, disc, torch.device("cpu"), None)
    other = outputs(*on_device, device, cpu["images"])
    differences = {f"max_abs_diff_{name}": max_difference(cpu[name], other[name]) for name in cpu}
    scales = {f"max_abs_{name}": cpu[name].abs().max().item() for name in cpu}
    return {"preset": name, "batch": n, **differences, **scales, "tolerance": TOLERANCE,
            "equal": all(value <= TOLERANCE for value in differences.values())}


def shards(args: argparse.Namespace, work: Path, resolution: int) -> Path:
    """Synthetic shards at ``resolution`` in ``work`` (made once; fewer samples with ``--quick``)."""
    models, views = (8, 4) if args.quick else (16, 8)
    return synthetic_shards(work / f"shards-{resolution}", resolution, models, views)


def steps(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """20 training steps on ``device`` (4 with ``--quick``) with R1 every 4 steps and ADA (p 0.2 at the start)."""
    name, resolution, batch, count = ("tiny", 32, 4, 4) if args.quick else ("small", 64, 16, 20)
    options = TrainOptions(shards=str(shards(args, work, resolution)), out=str(work / "runs-steps"),
                           preset=name, batch=batch, device=str(device), workers=2, kimg=1e9, r1_interval=4)
    run = loop.build(options, runtime.setup(str(device)))
    run.ada.p_tensor = torch.tensor(0.2, dtype=torch.float64)
    batches = loop.batches_of(run)
    start = time.perf_counter()
    history = [loop.step(run, next(batches)) for _ in range(count)]  # raises PgrfError on a non-finite loss
    synchronise(device)
    seconds = time.perf_counter() - start
    return {"preset": name, "resolution": resolution, "batch": batch, "steps": len(history),
            "r1_steps": sum("r1" in losses for losses in history), "ada_p": run.ada.p,
            "finite": all(math.isfinite(value) for losses in history for value in losses.values()),
            "last": history[-1], "s_per_step": seconds / len(history)}


def speed(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """bench/models.py's G, synthesis, render and D steps (and the reference's, given ``--reference``)."""
    name, batch, repeats = ("tiny", 4, 1) if args.quick else ("paper", 64, 3)
    reference = args.reference if args.reference is not None and args.reference.is_dir() else None
    results = bench_preset(name, preset(name), batch, repeats, device, reference)
    if device.type != "cuda":  # peak memory is measured on CUDA only (NaN elsewhere)
        results = {key: value for key, value in results.items() if not key.endswith("_peak_gib")}
    return {"preset": name, "reference": str(reference) if reference else "skipped (no --reference checkout)", **results}


def train(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """``pgrf train`` in a subprocess for three stats ticks; the last tick's figures (the first holds the warm-up)."""
    name, resolution, batch, tick_steps, workers = ("tiny", 32, 4, 2, 2) if args.quick else ("paper", 256, 64, 10, 4)
    tick_kimg = tick_steps * batch / 1000
    command = [sys.executable, "-m", "pgrf", "train", "--shards", str(shards(args, work, resolution)), "--out", str(work / "runs-train"),
               "--name", "check", "--preset", name, "--batch", str(batch),
               "--kimg", f"{3 * tick_kimg:g}", "--tick-kimg", f"{tick_kimg:g}", "--snapshot-kimg", "1000",
               "--sample-kimg", "1000", "--workers", str(workers), "--device", str(device)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=args.train_timeout, check=False)
    if done.returncode:
        raise RuntimeError(f"pgrf train exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    ticks = [line for line in read_stats(work / "runs-train" / "check") if isinstance(line, StatsLine)]
    last = ticks[-1]
    peak = ({"peak_gpu_mib": last.peak_gpu_mib} if device.type == "cuda" else {"peak_rss_mib": last.peak_rss_mib})
    patch = preset(name).with_dataset(resolution, 0).patch_resolution
    return {"preset": name, "resolution": resolution, "batch": batch, "patch": patch, "ticks": len(ticks),
            "s_per_kimg": last.s_per_kimg, "images_per_s": last.images_per_s, **peak,
            "wall_s": time.perf_counter() - start}


def fid(args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    """Generated images/s through ``generated_statistics`` (render at the dataset resolution, detector features)."""
    name, resolution, num = ("tiny", 32, 4) if args.quick else ("paper", 256, 64)
    card = ShardSource.open(shards(args, work, resolution)).pack_card()
    info = card.info([], "synthetic")
    torch.manual_seed(0)
    generator = Generator(preset(name).with_dataset(resolution, 0)).to(device).eval()
    detector = load_detector(args.inception, device) if args.inception else FIDInceptionV3().to(device).eval()
    batch = min(16, num)
    generated_statistics(generator, info, detector, batch, batch=batch)  # warm-up
    synchronise(device)
    start = time.perf_counter()
    stats = generated_statistics(generator, info, detector, num, batch=batch)
    synchronise(device)
    seconds = time.perf_counter() - start
    return {"preset": name, "resolution": resolution, "images": num, "batch": batch,
            "detector": str(args.inception) if args.inception else "stand-in: FID Inception, random weights",
            "features": int(stats.mean.shape[0]), "images_per_s": num / seconds}


RUNNERS: dict[str, Callable[[argparse.Namespace, torch.device, Path], dict[str, Any]]] = {
    "equality": equality, "steps": steps, "speed": speed, "train": train, "fid": fid}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder of gpu_check.json (default: $OUT)")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run this section (repeatable); default: all")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check of the script)")
    parser.add_argument("--reference", type=Path, default=None, help="a checkout of universome/epigraf (speed section)")
    parser.add_argument("--inception", type=Path, default=None, help="FID detector weights (fid section)")
    parser.add_argument("--train-timeout", type=float, default=150.0, help="seconds pgrf train may take")
    args = parser.parse_args(argv)
    if args.out is None:
        if "OUT" not in os.environ:
            parser.error("give --out DIR or set OUT")
        args.out = Path(os.environ["OUT"])
    return args


def write(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` at once (a kill mid-write leaves the previous version)."""
    part = path.with_suffix(".part")
    part.write_text(json.dumps(document, indent=2), encoding="utf-8")
    part.replace(path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = runtime.resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / RESULT_FILE
    document = json.loads(path.read_text(encoding="utf-8")) if args.only and path.is_file() else {"sections": {}}
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}"
    document.update(device=machine, torch=torch.__version__, python=platform.python_version(), quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="pgrf-gpu-check-") as tmp:
        for name in args.only or SECTIONS:
            start = time.perf_counter()
            print(f"{name} …", flush=True)
            try:
                result = RUNNERS[name](args, device, Path(tmp))
            except Exception as error:  # noqa: BLE001 - recorded, and the next section still runs
                result = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}
            result["section_s"] = time.perf_counter() - start
            if device.type == "cuda":  # the next section (or pgrf train's own process) gets the memory back
                gc.collect()
                torch.cuda.empty_cache()
            document["sections"][name] = result
            write(path, document)
            print(f"{name}: {json.dumps(result)[:600]}", flush=True)


if __name__ == "__main__":
    main()
