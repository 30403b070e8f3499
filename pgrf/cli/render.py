"""``pgrf assets list``, ``pgrf assets make-sample`` and ``pgrf render``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pgrf.cli.app import App, ConfigOption, LibraryOption, app, console, errors, pick, reporter, with_options
from pgrf.config import STUDIO_LIGHTS, RenderSettings, hdri_file, load_config, with_overrides
from pgrf.errors import PgrfError
from pgrf.extras import require
from pgrf.render.options import RenderRun

if TYPE_CHECKING:
    from pgrf.formats.catalog import Catalog
    from pgrf.render.runner import Outcome, Plan

assets_app = App(help="Inspect asset libraries and make the sample library.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")

def _render_defaults() -> RenderSettings:
    """The [render] block of the active config ($PGRF_CONFIG or ./assets.toml), else the built-in defaults."""
    try:
        return load_config().render
    except PgrfError:
        return RenderSettings()


RENDER = _render_defaults()


def _config(key: str) -> str:
    """The [render] value a flag overrides, as its help shows it."""
    value = getattr(RENDER, key)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value) or "none"
    return str(value)


@assets_app.command("list")
def assets_list(
    category: Annotated[str, typer.Option("--category", "-c", help="Category from assets.toml.")],
    config: ConfigOption = None,
    library: LibraryOption = None,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Also write the catalog as JSON to this file.")] = None,
) -> None:
    """List the models of a category: id, asset, class, files and problems."""
    require("render", "pgrf assets list")
    from pgrf.assets.discovery import discover
    from pgrf.formats.catalog import write_catalog

    cfg = load_config(config)
    cat = cfg.category(category)
    catalog = discover(cfg.library_root(cat, library), cat, cfg.render.texture_size)
    if json_file is not None:
        write_catalog(json_file, catalog)
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
    excluded = f"; {len(catalog.excluded)} excluded by {escape(cat.exclude)}" if cat.exclude else ""
    console.print(f"{len(catalog.models)} models ({usable} usable, {len(catalog.models) - usable} with problems) "
                  f"in {classes} classes; {len(catalog.problems)} unusable entries{excluded}")


@assets_app.command("make-sample")
def assets_make_sample(
    directory: Annotated[Path, typer.Argument(help="Where to write the library.")],
    with_faults: Annotated[bool, typer.Option("--with-faults", help="Add broken assets (for tests).")] = False,
) -> None:
    """Write the procedural sample library (Megascans and plain-folder layouts) to DIRECTORY."""
    require("render", "pgrf assets make-sample")
    from pgrf.assets.sample_library import make_sample_library

    assets = make_sample_library(directory, with_faults=with_faults)
    models = sum(len(a.models) for a in assets)
    console.print(f"wrote {len(assets)} assets ({models} models){' and faulty assets' if with_faults else ''} to {directory}")


RENDER_HELP = {
    "views": "Views per model.",
    "resolution": "Square image size.",
    "samples": "Cycles samples per pixel.",
    "denoise": "Denoise renders.",
    "device": "auto | cpu | cuda | optix.",
    "workers": "Parallel Blender worker processes (on GPUs: at least one per GPU pins each to one card, round-robin).",
    "timeout": "Seconds per model before it is marked timeout.",
    "passes": "Extra passes, comma-separated: depth,normal.",
    "seed": "Camera seed.",
    "hdri": f"World light: a studio light bundled with bpy ({', '.join(STUDIO_LIGHTS)}), an HDRI image, or none for even "
            "white light.",
}
"""The ``[render]`` settings ``pgrf render`` takes as flags (each overrides the config's value), and their help."""
RUN_HELP = {
    "shard_index": "This run's share of the models (0-based).",
    "num_shards": "Number of runs sharing the library.",
    "limit": "Render at most this many models per category in this run.",
    "force": "Re-render finished and filtered models.",
}


@app.command()
@with_options(RenderRun, RUN_HELP)
@with_options(RenderSettings, RENDER_HELP, only=RENDER_HELP, overrides={key: _config(key) for key in RENDER_HELP},
              flags={"denoise": ("--denoise/--no-denoise",)}, types={"passes": str}, extra={"hdri": {"metavar": "NAME|FILE|none"}})
def render(
    category: Annotated[list[str], typer.Option("--category", "-c", help="Category from assets.toml (repeatable).")],
    config: ConfigOption = None,
    library: LibraryOption = None,
    out: Annotated[Path, typer.Option(help="Output root; renders go to OUT/<category>/.")] = Path("renders"),
    **values: Any,
) -> None:
    """Render every model of the categories into random views: transparent PNGs and their cameras."""
    require("render", "pgrf render")
    from pgrf.assets.discovery import discover
    from pgrf.render.blender.hdri import check_hdri
    from pgrf.render.runner import Runner, plan

    run = pick(RenderRun, values)
    cfg = load_config(config)
    given = {key: values[key] for key in RENDER_HELP}
    if given["passes"] is not None:
        given["passes"] = [p.strip() for p in given["passes"].split(",") if p.strip()]
    settings = with_overrides(cfg.render, **given)
    image = hdri_file(settings.hdri)  # a missing studio light or an unreadable image stops the run here, not in every worker
    if image is not None:
        check_hdri(image)
    failed = 0
    for name in category:
        cat = cfg.category(name)
        catalog = discover(cfg.library_root(cat, library), cat, settings.texture_size)
        category_dir = out / name
        todo = plan(catalog, category_dir, settings, run)
        _print_plan(name, catalog, todo)
        outcome = Runner(cat, category_dir, settings, force=run.force, reporter=reporter).run(todo)
        if outcome.fatal:
            raise PgrfError(outcome.fatal)
        _print_outcome(name, outcome, category_dir)
        if outcome.interrupted:
            errors.print("[yellow]interrupted[/yellow]: finished models are kept; run the same command again to resume")
            raise typer.Exit(130)
        failed += outcome.failed
    raise typer.Exit(1 if failed else 0)


def _print_problems(catalog: Catalog, out: Console) -> None:
    for problem in catalog.problems:
        out.print(f"[red]unusable[/red] {escape(problem.path)}: {escape(problem.reason)}")


def _print_plan(name: str, catalog: Catalog, todo: Plan) -> None:
    _print_problems(catalog, errors)
    notes = [f"{len(todo.todo)} to render", f"{len(todo.finished)} already finished", f"{len(todo.filtered)} filtered before"]
    if todo.unusable:
        notes.append(f"{len(todo.unusable)} unusable")
    if todo.excluded:
        notes.append(f"{len(todo.excluded)} excluded (exclude file)")
    if todo.other_shards:
        notes.append(f"{todo.other_shards} in other shards")
    if todo.over_limit:
        notes.append(f"{todo.over_limit} left for later (--limit)")
    errors.print(f"[bold]{name}[/bold]: {len(catalog.models)} models; " + ", ".join(notes))
    if todo.other_settings:
        errors.print(f"[yellow]note[/yellow]: {len(todo.other_settings)} finished models were rendered with other "
                     "views/resolution/seed/lighting; use --force to re-render them")


def _print_outcome(name: str, outcome: Outcome, category_dir: Path) -> None:
    table = Table(title=f"{name} → {category_dir}")
    table.add_column("status")
    table.add_column("models", justify="right")
    for status, count in sorted(outcome.counts.items()):
        table.add_row(status, str(count))
    rate = outcome.views / outcome.seconds if outcome.seconds else 0.0
    table.caption = f"{outcome.views} views in {outcome.seconds:.1f} s ({rate:.2f} views/s)"
    devices = sorted({r.device for r in outcome.records if r.device})
    if devices:
        table.caption += f" on {', '.join(devices)}"
    errors.print(table)
    for record in outcome.records:
        if record.status.error:
            errors.print(f"[red]{record.status}[/red] {record.model_id}: {escape(record.reason)}")
