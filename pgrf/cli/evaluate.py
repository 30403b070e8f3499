"""``pgrf fid``, ``pgrf sample``, ``pgrf video`` and ``pgrf mesh``: what a trained G makes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import Progress

from pgrf.cli.app import app, console, errors, note, with_options
from pgrf.devices import DEVICE_CHOICES
from pgrf.errors import PgrfError
from pgrf.evaluate.options import FidOptions, MeshOptions, SampleOptions, VideoOptions
from pgrf.extras import require

if TYPE_CHECKING:
    from pgrf.formats.card import DatasetInfo
    from pgrf.model.generator import Generator

CheckpointArgument = Annotated[Path, typer.Argument(help="A checkpoint of pgrf train (.pt), or its checkpoints folder (latest.pt).")]
PICTURE_HELP = {
    "truncation": "Truncation ψ toward the average w (1: none).",
    "class_": f"Class index or name {note('default: drawn per seed')}.",
    "device": f"{DEVICE_CHOICES}.",
    "resolution": "Render size in pixels " + note("default: the dataset's") + ".",
    "pitch": "Camera polar angle from +Z in degrees (90: level, less: from above).",
    "columns": f"Grid columns {note('default: ⌈√seeds⌉')}.",
}
"""The help of the flags every picture of G shares."""
FLAGS = {"class_": ("--class",), "kid": ("--kid",), "random_poses": ("--random-poses",), "spiral": ("--spiral",),
         "depth": ("--depth",), "alpha": ("--alpha",), "mirror": ("--mirror/--no-mirror",)}
"""Flag names that differ from the field's own (on/off switches without a --no- form)."""
FID_HELP = {
    "protocol": "fid50k_full (50,000 generated images, every real one: final numbers) | fid2k (2,048: ablations, training).",
    "num": f"Generated images instead of the protocol's {note('custom')}.",
    "kid": "Also compute KID.",
    "truncation": PICTURE_HELP["truncation"],
    "seed": "Seed of the generated latents, poses and classes.",
    "batch": "Images rendered at a time.",
    "workers": "Data loader processes for the real images.",
    "mirror": "Add every real image's mirrored copy " + note("default: if the run trained with --mirror"),
    "device": PICTURE_HELP["device"],
}
SAMPLE_HELP = {**PICTURE_HELP, "seeds": "Seeds: a range 0-15, a list 1,5,7, or both.",
               "yaw": "Camera yaw in degrees (azimuth from +X toward +Y).",
               "random_poses": "A random camera per seed, drawn like the data's.", "batch": "Seeds rendered at a time."}
VIDEO_HELP = {**PICTURE_HELP, "seeds": "Seeds: a range 0-3, a list 1,5,7, or both.", "frames": "Frames per full turn.",
              "fps": "Frames per second.", "spiral": "Swing the pitch ±20° once per turn.",
              "depth": "Also write a depth video (OUT_depth).", "alpha": "Also write an opacity video (OUT_alpha)."}
MESH_HELP = {**PICTURE_HELP, "seed": "The seed whose object to extract.",
             "resolution": "Density samples per axis over [-1, 1].",
             "threshold": "Surface density level σ, or auto: √(median σ · max σ) of the grid, halfway between empty "
                          "space and matter in log-density."}


@app.command()
@with_options(FidOptions, FID_HELP, flags=FLAGS)
def fid(
    checkpoint: CheckpointArgument,
    shards: Annotated[str, typer.Option(help="The real images: a shard folder of pgrf pack (or tars, a brace pattern).")],
    inception: Annotated[Optional[str], typer.Option(
        envvar="PGRF_INCEPTION", help="FID detector: pytorch-fid's pt_inception-2015-12-05 state dict or NVIDIA's "
                                      "TorchScript inception-2015-12-05.pt (the paper's numbers).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result as JSON here.")] = None,
    **values: Any,
) -> None:
    """FID (and KID) of G_ema's renders against the real images of the shards; real statistics are cached by the
    shards and the detector. Under torchrun every rank takes a share of the real and generated images."""
    require("train", "pgrf fid")
    from pgrf import runtime
    from pgrf.data.source import ShardSource
    from pgrf.evaluate.metrics import compute_fid, inception_network
    from pgrf.formats.fid_record import write_fid_json
    from pgrf.model.checkpoint import ema_generator, load_checkpoint

    options = FidOptions(**values)
    count, mirror = options.generated, options.mirror
    context = runtime.setup(options.device)
    runtime.allow_tf32(False)  # the FID detector and G in full fp32, as the reference
    try:
        network = inception_network(inception, context.device)
        source = ShardSource.open(shards)  # opened once; a missing shard folder is an error before any work
        loaded = load_checkpoint(checkpoint, context.device)
        generator = ema_generator(loaded, context.device)
        if mirror is None:  # as the run flipped its reals on the fly (pgrf train --mirror) or not
            mirror = bool(loaded.meta.options.get("mirror", False))
        with Progress(console=errors, disable=not context.main) as progress:
            tasks = {"real": progress.add_task("real images", total=None), "fake": progress.add_task("generated", total=count)}
            result = compute_fid(generator, loaded.meta.dataset, source, network, num=count, batch=options.batch,
                                 device=context.device, seed=options.seed, psi=options.truncation, with_kid=options.kid,
                                 workers=options.workers, mirror=mirror,
                                 progress=lambda kind, n: progress.advance(tasks[kind], n * context.world))
    finally:
        runtime.teardown()
    if not context.main:
        return
    source = "cached" if result.real_stats_cached else "computed"
    errors.print(f"real statistics {source}: {escape(str(result.real_stats or 'not cached'))}")
    line = f"FID {result.fid:.4f}"
    if result.kid is not None and result.kid_std is not None:
        line += f", KID×10³ {result.kid * 1e3:.4f} ± {result.kid_std * 1e3:.4f}"
    reals = f"{result.num_real} real images" + (" (mirrored copies added)" if mirror else "")
    console.print(f"{line} ({result.protocol}: {result.num_fake} generated vs {reals}, "
                  f"ψ={options.truncation}, detector {result.detector.kind} {result.detector.sha256[:12]}, {result.seconds:.1f} s)")
    if json_out:
        write_fid_json(json_out, result, str(checkpoint), shards, options.truncation, options.seed)


@app.command()
@with_options(SampleOptions, SAMPLE_HELP, flags=FLAGS)
def sample(
    checkpoint: CheckpointArgument,
    out: Annotated[Path, typer.Option(help="The PNG grid to write.")] = Path("samples.png"),
    **values: Any,
) -> None:
    """A grid of G_ema samples, one tile per seed, deterministic for the seeds."""
    require("train", "pgrf sample")

    from pgrf.evaluate.samples import sample_grid, save_png
    from pgrf.evaluate.views import class_index

    options = SampleOptions(**values)
    seed_list, generator, info, size = _seeded_generator(checkpoint, options.seeds, options.resolution, options.device)
    grid = sample_grid(generator, info, seed_list, size, options.truncation, class_index(options.class_, info.class_names),
                       math.radians(options.yaw), math.radians(options.pitch), options.random_poses, options.columns,
                       options.batch)
    console.print(f"{len(seed_list)} samples at {size}² → {escape(str(save_png(grid, out)))}")


@app.command()
@with_options(VideoOptions, VIDEO_HELP, flags=FLAGS)
def video(
    checkpoint: CheckpointArgument,
    out: Annotated[Path, typer.Option(help="turntable.gif, turntable.mp4, or a folder name for PNG frames.")] = Path("turntable.gif"),
    **values: Any,
) -> None:
    """A turntable video of a grid of seeds (360° of yaw), every frame rendered from the same tri-planes."""
    require("train", "pgrf video")

    from pgrf.evaluate.video import check_video_path, turntable, write_videos
    from pgrf.evaluate.views import class_index

    options = VideoOptions(**values)
    check_video_path(out)
    seed_list, generator, info, size = _seeded_generator(checkpoint, options.seeds, options.resolution, options.device)
    channels = ("rgb",) + ("depth",) * options.depth + ("alpha",) * options.alpha
    stream = turntable(generator, info, seed_list, size, options.frames, math.radians(options.pitch), options.spiral,
                       options.truncation, class_index(options.class_, info.class_names), channels, columns=options.columns)
    with Progress(console=errors) as progress:
        task = progress.add_task("frames", total=options.frames)
        written = write_videos(out, stream, options.fps, on_frame=lambda: progress.advance(task))
    for path in written:
        console.print(f"{options.frames} frames of {len(seed_list)} seeds at {size}² → {escape(str(path))}")


@app.command()
@with_options(MeshOptions, MESH_HELP, flags=FLAGS)
def mesh(
    checkpoint: CheckpointArgument,
    out: Annotated[Path, typer.Option(help="model.ply (binary, vertex colours) or model.obj.")] = Path("model.ply"),
    **values: Any,
) -> None:
    """G_ema's density on a grid → marching cubes → a mesh with vertex colours (world frame, +Z up)."""
    require("train", "pgrf mesh")
    from pgrf.evaluate.geometry import generator_mesh
    from pgrf.evaluate.mesh import save_mesh
    from pgrf.evaluate.views import class_index
    from pgrf.model.checkpoint import load_generator
    from pgrf.runtime import allow_tf32, resolve_device

    options = MeshOptions(**values)
    if out.suffix.lower() not in (".ply", ".obj"):
        raise PgrfError(f"mesh file must end in .ply or .obj, got {out.name}")
    level = options.level
    allow_tf32(False)
    generator, info = load_generator(checkpoint, resolve_device(options.device))
    result = generator_mesh(generator, options.seed, options.resolution, level, options.truncation,
                            class_index(options.class_, info.class_names))
    out.parent.mkdir(parents=True, exist_ok=True)
    path = save_mesh(result, out)
    chosen = "auto " if level is None else ""
    console.print(f"{len(result.vertices)} vertices, {len(result.faces)} faces at {chosen}σ = {result.level:.4g} → "
                  f"{escape(str(path))}")


def _seeded_generator(checkpoint: Path, seeds: str, resolution: int | None,
                      device: str) -> tuple[list[int], Generator, DatasetInfo, int]:
    """What ``sample`` and ``video`` start from: the parsed seeds, G_ema and its dataset info, the render size."""
    from pgrf.evaluate.views import dataset_resolution, parse_seeds
    from pgrf.model.checkpoint import load_generator
    from pgrf.runtime import allow_tf32, resolve_device

    seed_list = parse_seeds(seeds)
    allow_tf32(False)
    generator, info = load_generator(checkpoint, resolve_device(device))
    return seed_list, generator, info, dataset_resolution(info, resolution)
