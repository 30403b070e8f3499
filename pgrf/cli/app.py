"""The ``pgrf`` command line (Typer + rich)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from pgrf import __version__
from pgrf.config import load_config, with_overrides
from pgrf.errors import PgrfError

if TYPE_CHECKING:
    from pgrf.formats.catalog import Catalog
    from pgrf.render.runner import Outcome, Plan
    from pgrf.model.checkpoint import DatasetInfo
    from pgrf.model.generator import Generator

app = typer.Typer(help="Render 3D asset libraries into posed multi-view datasets (EpiGRAF's M-Plants/M-Food).",
                  no_args_is_help=True, pretty_exceptions_show_locals=False, add_completion=False)
assets_app = typer.Typer(help="Inspect asset libraries and make the sample library.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Config file (default: $PGRF_CONFIG or ./assets.toml).")]
LibraryOption = Annotated[Optional[str], typer.Option("--library", help="Library root; overrides the config and $PGRF_LIBRARY.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"pgrf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False) -> None:
    """pgrf: render, pack and train on posed multi-view datasets."""


@assets_app.command("list")
def assets_list(
    category: Annotated[str, typer.Option("--category", "-c", help="Category from assets.toml.")],
    config: ConfigOption = None,
    library: LibraryOption = None,
) -> None:
    """List the models of a category: id, asset, class, files and problems."""
    from pgrf.datasets.discovery import discover

    cfg = load_config(config)
    cat = cfg.category(category)
    catalog = discover(cfg.library_root(cat, library), cat, cfg.render.texture_size)
    table = Table(title=f"{category}: {catalog.root}")
    for column in ("model id", "asset", "class", "files", "problems"):
        table.add_column(column, overflow="fold")
    for model in catalog.models:
        files = ", ".join(Path(f).name for f in model.files) + (f" +{len(model.textures)} maps" if model.textures else "")
        problems = "[red]" + escape("; ".join(model.problems)) if model.problems else ""
        table.add_row(model.model_id, escape(model.asset_name), escape(model.class_name), escape(files), problems)
    console.print(table)
    _print_problems(catalog, console)
    usable = sum(m.usable for m in catalog.models)
    classes = len({m.class_name for m in catalog.models if m.usable})
    console.print(f"{len(catalog.models)} models ({usable} usable, {len(catalog.models) - usable} with problems) "
                  f"in {classes} classes; {len(catalog.problems)} unusable entries")


@assets_app.command("make-sample")
def assets_make_sample(
    directory: Annotated[Path, typer.Argument(help="Where to write the library.")],
    with_faults: Annotated[bool, typer.Option("--with-faults", help="Add broken assets (for tests).")] = False,
) -> None:
    """Write the procedural sample library (Megascans and plain-folder layouts) to DIRECTORY."""
    from pgrf.datasets.sample_library import make_sample_library

    assets = make_sample_library(directory, with_faults=with_faults)
    models = sum(len(a.models) for a in assets)
    console.print(f"wrote {len(assets)} assets ({models} models){' and faulty assets' if with_faults else ''} to {directory}")


@app.command()
def render(
    category: Annotated[list[str], typer.Option("--category", "-c", help="Category from assets.toml (repeatable).")],
    config: ConfigOption = None,
    library: LibraryOption = None,
    out: Annotated[Path, typer.Option(help="Output root; renders go to OUT/<category>/.")] = Path("renders"),
    views: Annotated[Optional[int], typer.Option(help="Views per model [config: 128].")] = None,
    resolution: Annotated[Optional[int], typer.Option(help="Square image size [config: 1024].")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Cycles samples per pixel.")] = None,
    denoise: Annotated[Optional[bool], typer.Option("--denoise/--no-denoise", help="Denoise renders.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda | optix.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Parallel Blender worker processes.")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds per model before it is marked timeout.")] = None,
    shard_index: Annotated[int, typer.Option(help="This run's share of the models (0-based).")] = 0,
    num_shards: Annotated[int, typer.Option(help="Number of runs sharing the library.")] = 1,
    limit: Annotated[Optional[int], typer.Option(help="Render at most this many models per category in this run.")] = None,
    force: Annotated[bool, typer.Option(help="Re-render finished and filtered models.")] = False,
    passes: Annotated[Optional[str], typer.Option(help="Extra passes, comma-separated: depth,normal.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Camera seed.")] = None,
) -> None:
    """Render every model of the categories: 128 random views each, transparent PNGs and cameras."""
    from pgrf.datasets.discovery import discover
    from pgrf.render.runner import Runner, plan

    if not 0 <= shard_index < num_shards:
        raise PgrfError(f"--shard-index must be in [0, --num-shards); got {shard_index} of {num_shards}")
    if limit is not None and limit < 0:
        raise PgrfError(f"--limit must be 0 or more; got {limit}")
    cfg = load_config(config)
    pass_list = [p.strip() for p in passes.split(",") if p.strip()] if passes is not None else None
    settings = with_overrides(cfg.render, views=views, resolution=resolution, samples=samples, denoise=denoise,
                              device=device, workers=workers, timeout=timeout, passes=pass_list, seed=seed)
    failed = 0
    for name in category:
        cat = cfg.category(name)
        catalog = discover(cfg.library_root(cat, library), cat, settings.texture_size)
        category_dir = out / name
        todo = plan(catalog, category_dir, settings, force=force, shard_index=shard_index, num_shards=num_shards, limit=limit)
        _print_plan(name, catalog, todo)
        outcome = Runner(cat, category_dir, settings, force=force, console=errors).run(todo)
        if outcome.fatal:
            raise PgrfError(outcome.fatal)
        _print_outcome(name, outcome, category_dir)
        if outcome.interrupted:
            errors.print("[yellow]interrupted[/yellow]: finished models are kept; run the same command again to resume")
            raise typer.Exit(130)
        failed += outcome.failed
    raise typer.Exit(1 if failed else 0)


@app.command()
def pack(
    renders: Annotated[list[Path], typer.Argument(help="renders/<category> folders written by pgrf render.")],
    out: Annotated[Path, typer.Option(help="Output folder for shards, index.parquet and dataset.json.")] = Path("shards"),
    config: ConfigOption = None,
    resolution: Annotated[int, typer.Option(help="Square image size of the samples.")] = 256,
    mirror: Annotated[bool, typer.Option("--mirror/--no-mirror", help="Add a mirrored copy of every view.")] = True,
    background: Annotated[str, typer.Option(help="white | black.")] = "white",
    samples_per_shard: Annotated[int, typer.Option(help="Samples per shard (the last may be short).")] = 1000,
    seed: Annotated[int, typer.Option(help="Shuffle seed.")] = 0,
    name: Annotated[Optional[str], typer.Option(help="Shard name prefix [default: the first category].")] = None,
    min_mean_alpha: Annotated[Optional[float], typer.Option(help="Leave out models below this mean alpha [config].")] = None,
    workers: Annotated[int, typer.Option(help="Processes writing shards (the output does not depend on it).")] = 1,
    skip_bad: Annotated[bool, typer.Option(help="Skip and count unreadable PNGs instead of stopping.")] = False,
) -> None:
    """Pack finished renders into shuffled WebDataset shards with an index and a dataset card (resumable)."""
    from pgrf.pipeline.pack import PackOptions
    from pgrf.pipeline.pack import pack as run_pack

    options = PackOptions(resolution=resolution, mirror=mirror, background=background, samples_per_shard=samples_per_shard,
                          seed=seed, name=name or renders[0].name, min_mean_alpha=min_mean_alpha, workers=workers,
                          skip_bad=skip_bad)
    with _interruptible("finished shards are kept; run the same command again to write the rest"):
        card = run_pack(renders, out, load_config(config), options, console=errors)
    counts, removed = card["counts"], card["filters"]["removed_models"]
    console.print(f"{counts['samples']} samples ({counts['unique_views']} views, {counts['models']} models, {counts['classes']} "
                  f"classes) in {len(card['shards'])} shards → {escape(str(out))}; filters removed {removed['min_mean_alpha']} "
                  f"sparse and {removed['min_dim_product']} small models")
    for file in card["skipped_bad"]["files"]:
        errors.print(f"[yellow]skipped[/yellow] unreadable {escape(file)}")


@app.command()
def train(
    shards: Annotated[Path, typer.Option(help="A shard folder written by pgrf pack.")],
    out: Annotated[Path, typer.Option(help="Runs folder; the run is written to OUT/NAME.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Run name [default: <dataset>-<preset>].")] = None,
    kimg: Annotated[float, typer.Option(help="Train until this many thousand images have been seen.")] = 15000.0,
    batch: Annotated[int, typer.Option(help="Images per step over all processes.")] = 64,
    preset: Annotated[str, typer.Option(help="Model sizes: paper | small | tiny.")] = "paper",
    patch_res: Annotated[Optional[int], typer.Option(help="Patch resolution r [preset].")] = None,
    gamma: Annotated[float, typer.Option(help="R1 weight γ.")] = 0.05,
    schedule: Annotated[str, typer.Option(help="Patch scales: beta | uniform.")] = "beta",
    hyper: Annotated[bool, typer.Option("--hyper/--no-hyper", help="Hypernetwork-modulated D (off: the standard D).")] = True,
    mirror: Annotated[bool, typer.Option(help="Mirror reals on the fly (for shards packed with --no-mirror).")] = False,
    conditional: Annotated[bool, typer.Option("--conditional/--unconditional", help="Use class labels when there are several.")] = True,
    augment: Annotated[bool, typer.Option("--ada/--no-ada", help="Adaptive discriminator augmentation.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of weights, latents, patches and the data stream.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")] = "auto",
    workers: Annotated[int, typer.Option(help="Data loader processes per rank.")] = 2,
    snapshot_kimg: Annotated[float, typer.Option(help="Checkpoint every this many kimg.")] = 200.0,
    sample_kimg: Annotated[float, typer.Option(help="Sample grid every this many kimg.")] = 200.0,
    tick_kimg: Annotated[float, typer.Option(help="A stats.jsonl line every this many kimg.")] = 4.0,
    fid_kimg: Annotated[float, typer.Option(help="FID every this many kimg (0: off; needs --inception).")] = 0.0,
    inception: Annotated[Optional[str], typer.Option(envvar="PGRF_INCEPTION", help="FID Inception weights file.")] = None,
    resume: Annotated[Optional[str], typer.Option(help="latest (this run's last checkpoint) or a checkpoint file.")] = None,
) -> None:
    """Train the patch-wise tri-plane GAN on shards (one process, or every rank of torchrun)."""
    from pgrf.train.loop import train as run_train
    from pgrf.train.options import TrainOptions

    options = TrainOptions(shards=str(shards), out=str(out), name=name, kimg=kimg, batch=batch, preset=preset,
                           patch_res=patch_res, gamma=gamma, schedule=schedule, hyper=hyper, mirror=mirror,
                           conditional=conditional, augment=augment, seed=seed, device=device, workers=workers,
                           snapshot_kimg=snapshot_kimg, sample_kimg=sample_kimg, tick_kimg=tick_kimg, fid_kimg=fid_kimg,
                           inception=inception, resume=resume)
    with _interruptible("the last checkpoint is kept; run the same command with --resume latest to continue"):
        folder = run_train(options, console=errors)
    console.print(f"run → {escape(str(folder))} (checkpoints/latest.pt, samples/, stats.jsonl)")


@app.command()
def verify(shards: Annotated[Path, typer.Argument(help="A shard folder written by pgrf pack.")]) -> None:
    """Check shards against dataset.json and index.parquet: hashes, members, images, fields, keys, mirrored cameras."""
    from pgrf.pipeline.verify import verify as run_verify

    with Progress(console=errors) as progress:
        task = progress.add_task("verify", total=None)
        report = run_verify(shards, lambda n: progress.advance(task, n))
    for problem in report.problems:
        errors.print(f"[red]problem[/red] {escape(problem)}")
    verdict = f"{len(report.problems)} problems" if report.problems else "[green]OK[/green]"
    console.print(f"{report.shards} shards, {report.samples} samples: {verdict}")
    raise typer.Exit(1 if report.problems else 0)


@app.command()
def stats(
    path: Annotated[Path, typer.Argument(help="A shard folder (pgrf pack) or a renders folder (pgrf render).")],
    config: ConfigOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the statistics as JSON here.")] = None,
    plots: Annotated[Optional[Path], typer.Option(help="Write PNG plots (yaw, pitch, yaw-pitch scatter, classes, alpha) here.")] = None,
    min_mean_alpha: Annotated[Optional[float], typer.Option(help="Renders only: the sparse-model threshold [config].")] = None,
) -> None:
    """Dataset statistics as in the EpiGRAF appendix: counts, yaw/pitch distributions with KS tests, filters, classes."""
    from pgrf.datasets.stats import compute_stats, print_stats

    result = compute_stats(path, load_config(config), min_mean_alpha)
    print_stats(result, console)
    if json_out:
        result.write_json(json_out)
        errors.print(f"wrote {escape(str(json_out))}")
    if plots:
        from pgrf.datasets.plots import write_plots

        errors.print(f"wrote {len(write_plots(result, plots))} plots to {escape(str(plots))}")


@app.command()
def export(
    shards: Annotated[Path, typer.Argument(help="A shard folder written by pgrf pack.")],
    out: Annotated[Path, typer.Option(help="The dataset zip to write.")] = Path("dataset.zip"),
    labels: Annotated[str, typer.Option(help="camera (EG3D's 25 floats) | class (class indices).")] = "camera",
) -> None:
    """Export shards as a StyleGAN-family dataset zip (PNGs + dataset.json with labels and camera_angles)."""
    from pgrf.pipeline.export import export_zip, print_export

    print_export(export_zip(shards, out, labels, console=errors), console)


CheckpointArgument = Annotated[Path, typer.Argument(help="A checkpoint of pgrf train (.pt), or its checkpoints folder (latest.pt).")]
DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")]
TruncationOption = Annotated[float, typer.Option("--truncation", help="Truncation ψ toward the average w (1: none).")]
ClassOption = Annotated[Optional[str], typer.Option("--class", help="Class index or name [default: drawn per seed].")]
ResolutionOption = Annotated[Optional[int], typer.Option(help="Render size in pixels [default: the dataset's].")]
PitchOption = Annotated[float, typer.Option(help="Camera polar angle from +Z in degrees (90: level, less: from above).")]
ColumnsOption = Annotated[Optional[int], typer.Option(help="Grid columns [default: ⌈√seeds⌉].")]


@app.command()
def fid(
    checkpoint: CheckpointArgument,
    shards: Annotated[str, typer.Option(help="The real images: a shard folder of pgrf pack (or tars, a brace pattern).")],
    inception: Annotated[Optional[str], typer.Option(envvar="PGRF_INCEPTION", help="FID Inception weights file (pt_inception-2015-12-05).")] = None,
    num: Annotated[int, typer.Option(help="Generated images: 2048 (FID@2k) or 50000 (FID@50k).")] = 2048,
    kid: Annotated[bool, typer.Option("--kid", help="Also compute KID.")] = False,
    truncation: TruncationOption = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the generated latents, poses and classes.")] = 0,
    batch: Annotated[int, typer.Option(help="Images rendered at a time.")] = 16,
    workers: Annotated[int, typer.Option(help="Data loader processes for the real images.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the result as JSON here.")] = None,
    device: DeviceOption = "auto",
) -> None:
    """FID (and KID) of G_ema's renders against the real images of the shards; real statistics are cached by the shards."""
    import json

    from pgrf.datasets.loader import shard_urls
    from pgrf.evaluate.metrics import compute_fid, inception_network
    from pgrf.model.checkpoint import load_generator
    from pgrf.model.device import resolve_device

    target = resolve_device(device)
    network = inception_network(inception, target)
    shard_urls(shards)  # a missing shard folder is an error before any work
    generator, info = load_generator(checkpoint, target)
    with Progress(console=errors) as progress:
        tasks = {"real": progress.add_task("real images", total=None), "fake": progress.add_task("generated", total=num)}
        result = compute_fid(generator, info, shards, network, num=num, batch=batch, device=target, seed=seed,
                             psi=truncation, with_kid=kid, workers=workers,
                             progress=lambda kind, n: progress.advance(tasks[kind], n))
    source = "cached" if result["real_stats_cached"] else "computed"
    errors.print(f"real statistics {source}: {escape(str(result['real_stats'] or 'not cached'))}")
    line = f"FID {result['fid']:.4f}"
    if kid:
        line += f", KID×10³ {result['kid'] * 1e3:.4f} ± {result['kid_std'] * 1e3:.4f}"
    console.print(f"{line} ({result['num_fake']} generated vs {result['num_real']} real images, ψ={truncation}, "
                  f"{result['seconds']:.1f} s)")
    if json_out:
        json_out.write_text(json.dumps({"checkpoint": str(checkpoint), "shards": shards, "psi": truncation, "seed": seed,
                                        **result}, indent=2) + "\n")


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
    threshold: Annotated[float, typer.Option(help="Surface density level σ.")] = 10.0,
    truncation: TruncationOption = 1.0,
    class_: ClassOption = None,
    device: DeviceOption = "auto",
) -> None:
    """G_ema's density on a grid → marching cubes → a mesh with vertex colours (world frame, +Z up)."""
    from pgrf.evaluate.geometry import generator_mesh
    from pgrf.evaluate.mesh import save_mesh
    from pgrf.evaluate.views import class_index
    from pgrf.model.checkpoint import load_generator
    from pgrf.model.device import resolve_device

    if out.suffix.lower() not in (".ply", ".obj"):
        raise PgrfError(f"mesh file must end in .ply or .obj, got {out.name}")
    if resolution < 2:
        raise PgrfError(f"--resolution must be at least 2, got {resolution}")
    generator, info = load_generator(checkpoint, resolve_device(device))
    result = generator_mesh(generator, seed, resolution, threshold, truncation, class_index(class_, info.class_names))
    out.parent.mkdir(parents=True, exist_ok=True)
    path = save_mesh(result, out)
    console.print(f"{len(result.vertices)} vertices, {len(result.faces)} faces → {escape(str(path))}")


def _seeded_generator(checkpoint: Path, seeds: str, resolution: int | None,
                      device: str) -> tuple[list[int], Generator, DatasetInfo, int]:
    """What ``sample`` and ``video`` start from: the parsed seeds, G_ema and its dataset info, the render size."""
    from pgrf.evaluate.views import dataset_resolution, parse_seeds
    from pgrf.model.checkpoint import load_generator
    from pgrf.model.device import resolve_device

    seed_list = parse_seeds(seeds)
    generator, info = load_generator(checkpoint, resolve_device(device))
    return seed_list, generator, info, dataset_resolution(info, resolution)


@contextmanager
def _interruptible(kept: str) -> Iterator[None]:
    """Ctrl-C: one line saying what was kept and how to resume, exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        errors.print(f"[yellow]interrupted[/yellow]: {kept}")
        raise typer.Exit(130) from None


def _print_problems(catalog: Catalog, out: Console) -> None:
    for problem in catalog.problems:
        out.print(f"[red]unusable[/red] {escape(problem.path)}: {escape(problem.reason)}")


def _print_plan(name: str, catalog: Catalog, todo: Plan) -> None:
    _print_problems(catalog, errors)
    notes = [f"{len(todo.todo)} to render", f"{len(todo.finished)} already finished", f"{len(todo.filtered)} filtered before"]
    if todo.unusable:
        notes.append(f"{len(todo.unusable)} unusable")
    if todo.other_shards:
        notes.append(f"{todo.other_shards} in other shards")
    if todo.over_limit:
        notes.append(f"{todo.over_limit} left for later (--limit)")
    errors.print(f"[bold]{name}[/bold]: {len(catalog.models)} models; " + ", ".join(notes))
    if todo.other_settings:
        errors.print(f"[yellow]note[/yellow]: {len(todo.other_settings)} finished models were rendered with other "
                     "views/resolution/seed; use --force to re-render them")


def _print_outcome(name: str, outcome: Outcome, category_dir: Path) -> None:
    table = Table(title=f"{name} → {category_dir}")
    table.add_column("status")
    table.add_column("models", justify="right")
    for status, count in sorted(outcome.counts.items()):
        table.add_row(status, str(count))
    rate = outcome.views / outcome.seconds if outcome.seconds else 0.0
    table.caption = f"{outcome.views} views in {outcome.seconds:.1f} s ({rate:.2f} views/s)"
    devices = sorted({r["device"] for r in outcome.records if r.get("device")})
    if devices:
        table.caption += f" on {', '.join(devices)}"
    errors.print(table)
    for record in outcome.records:
        if record["status"] in ("failed", "timeout"):
            errors.print(f"[red]{record['status']}[/red] {record['model_id']}: {escape(record['reason'])}")


def main() -> None:
    """Console entry point: user errors are one red line and exit code 2, never a traceback."""
    try:
        app()
    except PgrfError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


