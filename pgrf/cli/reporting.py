"""The command line's ``Reporter`` (pgrf.progress): rich progress bars and yellow ``note``/``problem`` lines on a
console (the CLI's stderr)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pgrf.progress import NoteKind, Reporter, Task


class RichReporter(Reporter):
    """Notes as ``note …`` / ``problem …`` lines (the word in yellow, the text escaped) and each task as one bar:
    bold label, bar, done/total, unit, status, elapsed, ``ETA`` and time remaining."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, text: str, kind: NoteKind = "note") -> None:
        self.console.print(f"[yellow]{kind}[/yellow] {escape(text)}", highlight=False)

    @contextmanager
    def task(self, label: str, total: int | None = None, *, unit: str = "", status: str | None = None,
             done: int = 0) -> Iterator[Task]:
        columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
        if unit:
            columns.append(TextColumn(escape(unit)))
        if status is not None:
            columns.append(TextColumn("{task.fields[status]}"))
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        with Progress(*columns, console=self.console) as progress:
            yield _RichTask(progress, progress.add_task(escape(label), total=total, completed=done,
                                                        status=escape(status or "")))


class _RichTask(Task):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress, self.task = progress, task

    def __call__(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def status(self, text: str) -> None:
        self.progress.update(self.task, status=escape(text))
