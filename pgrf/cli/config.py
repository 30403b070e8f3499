"""``pgrf config init`` and ``pgrf config show``: the annotated default config, and what is in force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pgrf.cli.app import App, ConfigOption, app, console, errors
from pgrf.config import DEFAULT_CONFIG, load_config, resolved_values, shipped_config
from pgrf.errors import PgrfError

config_app = App(help="Write the default assets.toml, or show the config in force and where each value came from.",
                 no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write the annotated default config (the shipped categories plants, food and sample-*) to PATH."""
    if path.exists() and not force:
        raise PgrfError(f"{path} exists; edit it, pass --force to replace it, or give another PATH")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped_config(), path)
    errors.print(f"wrote {escape(str(path))}; relative paths in it are relative to {escape(str(path.parent.resolve()))}")


@config_app.command("show")
def show(config: ConfigOption = None) -> None:
    """Print the resolved config: every key as ``key = value  # where it came from``."""
    cfg = load_config(config)
    console.print(f"# config: {escape(str(cfg.path))} (found as {escape(cfg.found)}); relative paths from "
                  f"{escape(str(cfg.base))}", highlight=False)
    rows = [(key, json.dumps(value), origin) for key, value, origin in resolved_values(cfg)]
    width = min(48, max(len(key) + len(value) for key, value, _ in rows) + 3)
    for key, value, origin in rows:
        console.print(escape(f"{f'{key} = {value}':<{width}}# {origin}"), highlight=False)
