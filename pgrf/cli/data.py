"""``pgrf pack``, ``pgrf verify``, ``pgrf stats`` and ``pgrf export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.progress import Progress

from pgrf.cli.app import ConfigOption, app, console, errors, interruptible, note, reporter, with_options
from pgrf.config import load_config
from pgrf.pipeline.options import ExportOptions, PackOptions, StatsOptions

ShardsArgument = Annotated[Path, typer.Argument(help="A shard folder written by pgrf pack.")]
DEFAULT_RENDERS = Path("renders")
"""Where ``pgrf render`` writes by default, and so what ``pgrf pack`` packs when given no folder."""


PACK_HELP = {
    "resolution": "Square image size of the samples.",
    "mirror": "Add a mirrored copy of every view.",
    "background": "white | black.",
    "samples_per_shard": "Samples per shard (the last may be short).",
    "seed": "Shuffle seed.",
    "name": f"Shard name prefix {note('default: the first render folder')}.",
    "min_mean_alpha": f"Leave out models below this mean alpha {note('default: the filters of each category')}.",
    "workers": "Processes writing shards (the output does not depend on it).",
    "skip_bad": "Skip and count unreadable PNGs instead of stopping.",
}
"""The help of each ``PackOptions`` field (``pgrf import zip`` shares most of them)."""


@app.command()
@with_options(PackOptions, PACK_HELP)
def pack(
    renders: Annotated[Optional[list[Path]], typer.Argument(help="renders/<category> folders written by pgrf render "
                                                                 f"{note('default: the category in ./renders')}.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder for shards, index.parquet and dataset.json.")] = Path("shards"),
    config: ConfigOption = None,
    **values: Any,
) -> None:
    """Pack finished renders into shuffled WebDataset shards with an index and a dataset card (resumable)."""
    from pgrf.pipeline.pack import default_render_dirs
    from pgrf.pipeline.pack import pack as run_pack

    folders = renders or default_render_dirs(DEFAULT_RENDERS)
    options = PackOptions(**values)
    with interruptible("finished shards are kept; run the same command again to write the rest"):
        card = run_pack(folders, out, load_config(config), options, reporter=reporter)
    counts, removed = card.counts, card.filters.removed_models
    console.print(f"{counts.samples} samples ({counts.unique_views} views, {counts.models} models, {counts.classes} "
                  f"classes) in {len(card.shards)} shards → {escape(str(out))}; filters removed {removed['min_mean_alpha']} "
                  f"sparse and {removed['min_dim_product']} small models")
    for file in card.skipped_bad.files:
        errors.print(f"[yellow]skipped[/yellow] unreadable {escape(file)}")


@app.command()
def verify(shards: ShardsArgument) -> None:
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
@with_options(StatsOptions, {"min_mean_alpha": f"Renders only: the sparse-model threshold "
                                               f"{note('default: the filters of each category')}."})
def stats(
    path: Annotated[Path, typer.Argument(help="A shard folder (pgrf pack) or a renders folder (pgrf render).")],
    config: ConfigOption = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the statistics as JSON here.")] = None,
    plots: Annotated[Optional[Path], typer.Option(help="Write PNG plots (yaw, pitch, yaw-pitch scatter, classes, alpha) here.")] = None,
    **values: Any,
) -> None:
    """Dataset statistics as in the EpiGRAF appendix: counts, yaw/pitch distributions with KS tests, filters, classes."""
    from pgrf.cli.show import print_stats
    from pgrf.pipeline.stats import compute_stats

    result = compute_stats(path, load_config(config), StatsOptions(**values).min_mean_alpha)
    print_stats(result, console)
    if json_out:
        result.write_json(json_out)
        errors.print(f"wrote {escape(str(json_out))}")
    if plots:
        from pgrf.pipeline.plots import write_plots

        errors.print(f"wrote {len(write_plots(result, plots))} plots to {escape(str(plots))}")


@app.command()
@with_options(ExportOptions, {"labels": "camera (EG3D's 25 floats) | class (class indices)."})
def export(
    shards: ShardsArgument,
    out: Annotated[Path, typer.Option(help="The dataset zip to write.")] = Path("dataset.zip"),
    **values: Any,
) -> None:
    """Export shards as a StyleGAN-family dataset zip (PNGs + dataset.json with labels and camera_angles)."""
    from pgrf.cli.show import print_export
    from pgrf.pipeline.export import export_zip

    print_export(export_zip(shards, out, ExportOptions(**values).labels, reporter=reporter), console)
