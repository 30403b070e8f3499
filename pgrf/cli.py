"""The ``pgrf`` command line (Typer + rich)."""

from __future__ import annotations

import sys
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
    from pgrf.datasets.assets import Catalog
    from pgrf.render.runner import Outcome, Plan

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
    card = run_pack(renders, out, load_config(config), options, console=errors)
    counts, removed = card["counts"], card["filters"]["removed_models"]
    console.print(f"{counts['samples']} samples ({counts['unique_views']} views, {counts['models']} models, {counts['classes']} "
                  f"classes) in {len(card['shards'])} shards → {escape(str(out))}; filters removed {removed['min_mean_alpha']} "
                  f"sparse and {removed['min_dim_product']} small models")
    for file in card["skipped_bad"]["files"]:
        errors.print(f"[yellow]skipped[/yellow] unreadable {escape(file)}")


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

