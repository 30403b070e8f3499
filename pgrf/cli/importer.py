"""``pgrf import epigraf-renders`` and ``pgrf import zip``: datasets made elsewhere → pgrf renders or shards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from pgrf.cli.app import App, ConfigOption, app, console, errors, interruptible, note, pick, reporter, with_options
from pgrf.cli.data import PACK_HELP
from pgrf.config import Category, load_config
from pgrf.limits import MAX_PIXELS
from pgrf.pipeline.import_zip import ZipOptions
from pgrf.pipeline.options import PackOptions

import_app = App(help="Import datasets made elsewhere: EpiGRAF's published renders, StyleGAN-family zips.",
                 no_args_is_help=True)
app.add_typer(import_app, name="import")


def _category(name: str, config: Optional[Path]) -> Category:
    """The category of the config in force (its min_mean_alpha and exclude file apply; the shipped default's when no
    assets.toml is given or found), or one without filters when the config does not define it."""
    cfg = load_config(config)
    if name not in cfg.categories:
        errors.print(f"category '{escape(name)}' is not in {escape(cfg.found)}: imported without filters")
        return Category(name)
    if cfg.shipped:
        errors.print(f"category '{escape(name)}': the filters of {escape(cfg.found)} apply (min_mean_alpha "
                     f"{cfg.categories[name].min_mean_alpha:g})")
    return cfg.category(name)


@import_app.command("epigraf-renders")
def epigraf_renders(
    root: Annotated[Path, typer.Argument(help="The folder of collections: <root>/<collection>/metadata.json.")],
    category: Annotated[str, typer.Option("--category", "-c", help="Category name (assets.toml filters apply when "
                                                                   "it is defined there).")],
    out: Annotated[Path, typer.Option(help="Renders folder; models go to <out>/<category>/.")] = Path("renders"),
    copy: Annotated[bool, typer.Option("--copy/--link", help="Copy the PNGs instead of linking to them.")] = False,
    workers: Annotated[int, typer.Option(help=f"Processes reading PNGs {note('default: CPU count')}.")] = 0,
    config: ConfigOption = None,
) -> None:
    """EpiGRAF's raw or filtered renders (megascans-rendering) → a pgrf render folder (resumable)."""
    from pgrf.pipeline.import_renders import import_renders

    with interruptible("imported models are kept; run the same command again to import the rest"):
        outcome = import_renders(root, _category(category, config), out, copy=copy,
                                 workers=workers or os.cpu_count() or 1, reporter=reporter)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items())) or "nothing new"
    console.print(f"{outcome.collections} collections: {counts} ({outcome.views} views in {outcome.seconds:.1f} s; "
                  f"{outcome.finished} imported before) → "
                  f"{escape(str(out / category))}; {len(outcome.problems)} problems")


ZIP_HELP = {
    "labels": "auto | class | camera (EG3D's 25 floats) | none.",
    "angles": "camera_angles convention: auto (pgrf when the zip came from pgrf export, else epigraf) | epigraf (the "
              "authors' M-Plants/M-Food zips) | pgrf | none.",
    "world": "The camera labels' world: zup (pgrf) | yup (EG3D).",
    "radius": f"Camera distance {note('default: the zip, else 3.5')}.",
    "fov": f"Full field of view, radians {note('default: the zip, else π/4')}.",
    "category": f"Category of the samples {note('default: the zip name')}.",
    "max_pixels": f"Leave out images with more pixels (width × height, read from the header) {note(f'default: {MAX_PIXELS:,}')}.",
}
ZIP_PACK = ("resolution", "mirror", "background", "samples_per_shard", "seed", "name", "workers")
"""The PackOptions an import of a zip takes as flags (it always skips unreadable images; no filter applies)."""


@import_app.command("zip")
@with_options(PackOptions, {**PACK_HELP, "mirror": "Add a mirrored copy of every image.",
                            "name": f"Shard name prefix {note('default: the zip name')}.",
                            "workers": "Processes measuring alpha and writing shards."}, only=ZIP_PACK, defaults={"mirror": False})
@with_options(ZipOptions, ZIP_HELP)
def zip_command(
    dataset: Annotated[Path, typer.Argument(help="A StyleGAN-family dataset zip (StyleGAN2-ADA, EG3D, EpiGRAF, pgrf export).")],
    out: Annotated[Path, typer.Option(help="Output folder for shards, index.parquet and dataset.json.")] = Path("shards"),
    **values: Any,
) -> None:
    """A StyleGAN-family dataset zip → pgrf shards, index and card, composited like pgrf pack (resumable)."""
    from pgrf.pipeline.import_zip import import_zip

    options, pack = pick(ZipOptions, values), pick(PackOptions, values, skip_bad=True)
    with interruptible("finished shards are kept; run the same command again to write the rest"):
        result = import_zip(dataset, out, pack, options, reporter=reporter)
    card = result.card
    for file in card.skipped_bad.files:
        errors.print(f"[yellow]problem[/yellow] unreadable {escape(file)}; left out", highlight=False)
    console.print(f"{card.counts.samples} samples ({card.counts.models} models, {card.counts.classes} classes) in "
                  f"{len(card.shards)} shards → {escape(str(out))}; "
                  f"{len(result.problems) + card.skipped_bad.samples} problems")
