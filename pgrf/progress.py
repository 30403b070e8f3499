"""How library code tells the user what it is doing: one-line notes, and the progress of named tasks.

Library functions take a ``Reporter`` (default ``QUIET``, which shows nothing) instead of a console, and give it
plain text, never markup::

    reporter.note("renders/plants records no filters; ...")
    with reporter.task("pack", total=400, unit="samples") as advance:
        for shard in shards:
            ...
            advance(len(shard))

The command line passes its rich implementation (``pgrf.cli.reporting.RichReporter``: progress bars and yellow
``note``/``problem`` lines on stderr); tests pass one that records what it is told.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

NoteKind = Literal["note", "problem"]
"""``note``: a decision the user should know of; ``problem``: something wrong or left out."""


class Task:
    """One running task of a ``Reporter``: call it to advance by ``n`` units (a ``Callable[[int], None]``, so it can be
    handed on as a progress callback); ``status`` sets a short text shown beside it. This one does nothing."""

    def __call__(self, n: int = 1) -> None:
        """Advance the task by ``n`` units."""

    def status(self, text: str) -> None:
        """Replace the task's status text (e.g. ``2.30 views/s``)."""


class Reporter:
    """Where library code sends notes and progress. This base shows nothing (``QUIET``); an implementation overrides
    ``note`` and ``task``."""

    def note(self, text: str, kind: NoteKind = "note") -> None:
        """One line the user should read (plain text)."""

    @contextmanager
    def task(self, label: str, total: int | None = None, *, unit: str = "", status: str | None = None,
             done: int = 0) -> Iterator[Task]:
        """Show the progress of ``label`` while the block runs: ``total`` units (None: not known) of ``unit`` (e.g.
        ``samples``; empty: none shown), ``done`` of them already (a resumed run); ``status`` given, the task shows
        a status text, starting with it. Yields the ``Task`` to advance."""
        yield Task()


QUIET = Reporter()
"""The reporter of library calls given none: shows nothing."""
