"""The ``pgrf`` command line (Typer + rich)."""

from pgrf.cli.app import app, main

__all__ = ["app", "main"]
