"""The one Typer app every command registers on, its consoles and reporter, shared options and the entry point."""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from pgrf import __version__
from pgrf.choices import literal_choices
from pgrf.cli.reporting import RichReporter
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

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Config file (default: $PGRF_CONFIG, else ./assets.toml, "
                                                                          "else the one pgrf ships; see pgrf config show).")]
LibraryOption = Annotated[Optional[str], typer.Option("--library", help="Library root; overrides the config and $PGRF_LIBRARY.")]


T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., None])


def with_options(cls: type, help: Mapping[str, str], *, flags: Mapping[str, tuple[str, ...]] | None = None,
                 extra: Mapping[str, Mapping[str, Any]] | None = None, only: Collection[str] | None = None,
                 overrides: Mapping[str, str] | None = None, types: Mapping[str, Any] | None = None,
                 defaults: Mapping[str, Any] | None = None) -> Callable[[F], F]:
    """A decorator giving a command one flag per field of the options dataclass ``cls`` (or the fields in ``only``),
    after the command's own parameters; its ``**values`` receive them (``pick`` builds the dataclass back). ``flags``
    names flags otherwise than ``--field-name``; ``extra`` gives more of ``typer.Option``'s arguments (``envvar``, …).

    Each flag has the field's type (a ``Literal`` as plain text, which the dataclass checks in one line naming the
    flag, ``pgrf.choices``; ``types`` may name another), default (or ``defaults[name]``) and ``help[name]``. ``overrides``: the fields are
    settings of a config the flags override; each defaults to None ("the config's") and ``overrides[name]`` is the
    config's value, shown in the help."""

    def decorate(command: F) -> F:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
        hints = typing.get_type_hints(cls)
        added = []
        for field in dataclasses.fields(cls):
            if only is not None and field.name not in only:
                continue
            hint = (types or {}).get(field.name, hints[field.name])
            if literal_choices(hint) is not None:
                hint = Optional[str] if type(None) in typing.get_args(hint) else str
            text = help[field.name]
            if overrides is not None:
                hint, default, text = Optional[hint], None, f"{text} {note(f'config: {overrides[field.name]}')}"
            elif defaults and field.name in defaults:
                default = defaults[field.name]
            elif field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = inspect.Parameter.empty
            option = typer.Option(*(flags or {}).get(field.name, ()), help=text, **(extra or {}).get(field.name, {}))
            added.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=Annotated[hint, option]))
        command.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        return command

    return decorate


def pick(cls: type[T], values: Mapping[str, Any], **fixed: Any) -> T:
    """The options dataclass ``cls`` from the flags among ``values`` that are its fields (and ``fixed``)."""
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in values.items() if key in names}, **fixed)


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
