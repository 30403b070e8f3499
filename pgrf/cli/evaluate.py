"""``pgrf fid``, ``pgrf sample``, ``pgrf video`` and ``pgrf mesh``: what a trained G makes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import Progress

from pgrf.cli.app import DeviceOption, app, console, errors, note
from pgrf.errors import PgrfError
from pgrf.extras import require

if TYPE_CHECKING:
    from pgrf.formats.card import DatasetInfo
    from pgrf.model.generator import Generator

CheckpointArgument = Annotated[Path, typer.Argument(help="A checkpoint of pgrf train (.pt), or its checkpoints folder (latest.pt).")]
TruncationOption = Annotated[float, typer.Option("--truncation", help="Truncation ψ toward the average w (1: none).")]
ClassOption = Annotated[Optional[str], typer.Option("--class", help=f"Class index or name {note('default: drawn per seed')}.")]
ResolutionOption = Annotated[Optional[int], typer.Option(help="Render size in pixels " + note("default: the dataset's") + ".")]
PitchOption = Annotated[float, typer.Option(help="Camera polar angle from +Z in degrees (90: level, less: from above).")]
ColumnsOption = Annotated[Optional[int], typer.Option(help=f"Grid columns {note('default: ⌈√seeds⌉')}.")]


@app.command()
def fid(
    checkpoint: CheckpointArgument,
    shards: Annotated[str, typer.Option(help="The real images: a shard folder of pgrf pack (or tars, a brace pattern).")],
    inception: Annotated[Optional[str], typer.Option(
        envvar="PGRF_INCEPTION", help="FID detector: pytorch-fid's pt_inception-2015-12-05 state dict or NVIDIA's "
                                      "TorchScript inception-2015-12-05.pt (the paper's numbers).")] = None,
    protocol: Annotated[str, typer.Option(help="fid50k_full (50,000 generated images, every real one: final numbers) | "
                                               "fid2k (2,048: ablations, training).")] = "fid50k_full",
    num: Annotated[Optional[int], typer.Option(help=f"Generated images instead of the protocol's {note('custom')}.")] = None,
    kid: Annotated[bool, typer.Option("--kid", help="Also compute KID.")] = False,
    truncation: TruncationOption = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the generated latents, poses and classes.")] = 0,
    batch: Annotated[int, typer.Option(help="Images rendered at a time.")] = 16,
    workers: Annotated[int, typer.Option(help="Data loader processes for the real images.")] = 0,
    mirror: Annotated[Optional[bool], typer.Option(
        "--mirror/--no-mirror", help="Add every real image's mirrored copy " + note("default: if the run trained with --mirror"),
        show_default=False)] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result as JSON here.")] = None,
    device: DeviceOption = "auto",
) -> None:
    """FID (and KID) of G_ema's renders against the real images of the shards; real statistics are cached by the
    shards and the detector. Under torchrun every rank takes a share of the real and generated images."""
    require("train", "pgrf fid")
    from pgrf import runtime
    from pgrf.data.source import ShardSource
    from pgrf.evaluate.metrics import PROTOCOLS, compute_fid, inception_network
    from pgrf.formats.fid_record import write_fid_json
    from pgrf.model.checkpoint import ema_generator, load_checkpoint

    if protocol not in PROTOCOLS:
        raise PgrfError(f"--protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    count = num if num is not None else PROTOCOLS[protocol]
    context = runtime.setup(device)
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
            result = compute_fid(generator, loaded.meta.dataset, source, network, num=count, batch=batch,
                                 device=context.device, seed=seed, psi=truncation, with_kid=kid, workers=workers,
                                 mirror=mirror, progress=lambda kind, n: progress.advance(tasks[kind], n * context.world))
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
                  f"ψ={truncation}, detector {result.detector.kind} {result.detector.sha256[:12]}, {result.seconds:.1f} s)")
    if json_out:
        write_fid_json(json_out, result, str(checkpoint), shards, truncation, seed)


@app.command()
def sample(
    checkpoint: CheckpointArgument,
    out: Annotated[Path, typer.Option(help="The PNG grid to write.")] = Path("samples.png"),
    seeds: Annotated[str, typer.Option(help="Seeds: a range 0-15, a list 1,5,7, or both.")] = "0-15",
    truncation: TruncationOption = 1.0,
    class_: ClassOption = None,
    resolution: ResolutionOption = None,
    yaw: Annotated[float, typer.Option(help="Camera yaw in degrees (azimuth from +X toward +Y).")] = 30.0,
    pitch: PitchOption = 70.0,
    random_poses: Annotated[bool, typer.Option("--random-poses", help="A random camera per seed, drawn like the data's.")] = False,
    columns: ColumnsOption = None,
    batch: Annotated[int, typer.Option(help="Seeds rendered at a time.")] = 8,
    device: DeviceOption = "auto",
) -> None:
    """A grid of G_ema samples, one tile per seed, deterministic for the seeds."""
    require("train", "pgrf sample")
    import math

    from pgrf.evaluate.samples import sample_grid, save_png
    from pgrf.evaluate.views import class_index

    seed_list, generator, info, size = _seeded_generator(checkpoint, seeds, resolution, device)
    grid = sample_grid(generator, info, seed_list, size, truncation, class_index(class_, info.class_names),
                       math.radians(yaw), math.radians(pitch), random_poses, columns, batch)
    console.print(f"{len(seed_list)} samples at {size}² → {escape(str(save_png(grid, out)))}")


@app.command()
def video(
    checkpoint: CheckpointArgument,
    out: Annotated[Path, typer.Option(help="turntable.gif, turntable.mp4, or a folder name for PNG frames.")] = Path("turntable.gif"),
    seeds: Annotated[str, typer.Option(help="Seeds: a range 0-3, a list 1,5,7, or both.")] = "0-3",
    pitch: PitchOption = 70.0,
    frames: Annotated[int, typer.Option(help="Frames per full turn.")] = 120,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 30.0,
    spiral: Annotated[bool, typer.Option("--spiral", help="Swing the pitch ±20° once per turn.")] = False,
    depth: Annotated[bool, typer.Option("--depth", help="Also write a depth video (OUT_depth).")] = False,
    alpha: Annotated[bool, typer.Option("--alpha", help="Also write an opacity video (OUT_alpha).")] = False,
    truncation: TruncationOption = 1.0,
    class_: ClassOption = None,
    resolution: ResolutionOption = None,
    columns: ColumnsOption = None,
    device: DeviceOption = "auto",
) -> None:
    """A turntable video of a grid of seeds (360° of yaw), every frame rendered from the same tri-planes."""
    require("train", "pgrf video")
    import math

    from pgrf.evaluate.video import check_video_path, turntable, write_videos
    from pgrf.evaluate.views import class_index

    check_video_path(out)
    seed_list, generator, info, size = _seeded_generator(checkpoint, seeds, resolution, device)
    channels = ("rgb",) + ("depth",) * depth + ("alpha",) * alpha
    stream = turntable(generator, info, seed_list, size, frames, math.radians(pitch), spiral, truncation,
                       class_index(class_, info.class_names), channels, columns=columns)
    with Progress(console=errors) as progress:
        task = progress.add_task("frames", total=frames)
        written = write_videos(out, stream, fps, on_frame=lambda: progress.advance(task))
    for path in written:
        console.print(f"{frames} frames of {len(seed_list)} seeds at {size}² → {escape(str(path))}")


@app.command()
def mesh(
    checkpoint: CheckpointArgument,
    seed: Annotated[int, typer.Option(help="The seed whose object to extract.")] = 0,
    out: Annotated[Path, typer.Option(help="model.ply (binary, vertex colours) or model.obj.")] = Path("model.ply"),
    resolution: Annotated[int, typer.Option(help="Density samples per axis over [-1, 1].")] = 256,
    threshold: Annotated[str, typer.Option(help="Surface density level σ, or auto: √(median σ · max σ) of the grid, "
                                                "halfway between empty space and matter in log-density.")] = "auto",
    truncation: TruncationOption = 1.0,
    class_: ClassOption = None,
    device: DeviceOption = "auto",
) -> None:
    """G_ema's density on a grid → marching cubes → a mesh with vertex colours (world frame, +Z up)."""
    require("train", "pgrf mesh")
    from pgrf.evaluate.geometry import generator_mesh
    from pgrf.evaluate.mesh import save_mesh
    from pgrf.evaluate.views import class_index
    from pgrf.model.checkpoint import load_generator
    from pgrf.runtime import allow_tf32, resolve_device

    if out.suffix.lower() not in (".ply", ".obj"):
        raise PgrfError(f"mesh file must end in .ply or .obj, got {out.name}")
    if resolution < 2:
        raise PgrfError(f"--resolution must be at least 2, got {resolution}")
    level = _threshold(threshold)
    allow_tf32(False)
    generator, info = load_generator(checkpoint, resolve_device(device))
    result = generator_mesh(generator, seed, resolution, level, truncation, class_index(class_, info.class_names))
    out.parent.mkdir(parents=True, exist_ok=True)
    path = save_mesh(result, out)
    chosen = "auto " if level is None else ""
    console.print(f"{len(result.vertices)} vertices, {len(result.faces)} faces at {chosen}σ = {result.level:.4g} → "
                  f"{escape(str(path))}")


def _threshold(text: str) -> float | None:
    """``--threshold``: None for auto, else a finite number."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise PgrfError(f"--threshold must be auto or a density level (a number); got {text!r}")
    return value


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
