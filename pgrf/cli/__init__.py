"""The ``pgrf`` command line (Typer + rich): one app, one module of commands per stage."""

from pgrf.cli import config, data, evaluate, importer, render, review, train  # noqa: F401  (importing a module registers its commands)
from pgrf.cli.app import app, main

__all__ = ["app", "main"]
