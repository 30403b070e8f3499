"""The one Typer app every command registers on, its consoles and reporter, shared options and the entry point."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from pgrf import __version__
from pgrf.cli.reporting import RichReporter
from pgrf.devices import DEVICE_CHOICES
from pgrf.errors import PgrfError


class _Untyped:
    """Help that lists flags and their texts without Typer's type names (``<int>``, ``<path>``)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            param.display_type_rich = _no_type
        return params


class Command(_Untyped, TyperCommand):
    """A command with untyped help."""


class Group(_Untyped, TyperGroup):
    """A group of commands with untyped help."""


class App(typer.Typer):
    """A Typer app whose groups and commands print untyped help."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return super().command(*args, cls=Command, **kwargs)


def _no_type(ctx: typer.Context) -> None:
    """The type column of a flag in ``--help``: left empty."""
    return None


def _console(stderr: bool) -> Console:
    """A console that never hard-wraps lines when it writes to a file or pipe (SLURM and CI logs)."""
    console = Console(stderr=stderr)
    console.soft_wrap = not console.is_terminal
    return console


def note(text: str) -> str:
    """``[text]`` for a help string, escaped so rich shows the brackets instead of reading them as markup."""
    return escape(f"[{text}]")


app = App(help="Render 3D asset libraries into posed multi-view datasets (EpiGRAF's M-Plants/M-Food).",
          no_args_is_help=True, pretty_exceptions_show_locals=False, add_completion=False)
console = _console(stderr=False)
errors = _console(stderr=True)
reporter = RichReporter(errors)
"""What library calls report to: progress bars and notes on stderr."""

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Config file (default: $PGRF_CONFIG or ./assets.toml).")]
LibraryOption = Annotated[Optional[str], typer.Option("--library", help="Library root; overrides the config and $PGRF_LIBRARY.")]
DeviceOption = Annotated[str, typer.Option(help=f"{DEVICE_CHOICES}.")]


def _version(value: bool) -> None:
    if value:
        console.print(f"pgrf {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False) -> None:
    """pgrf: render, pack and train on posed multi-view datasets."""


@contextmanager
def interruptible(kept: str) -> Iterator[None]:
    """Ctrl-C: one line saying what was kept and how to resume, exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        errors.print(f"[yellow]interrupted[/yellow]: {kept}")
        raise typer.Exit(130) from None


def main() -> None:
    """Console entry point: user errors are one red line and exit code 2, never a traceback."""
    try:
        app()
    except PgrfError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
