"""pgrf.progress: the reporting interface of library code, its silent default, the CLI's rich reporter, and what
the library reports through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console

from pgrf.cli.reporting import RichReporter
from pgrf.progress import QUIET, NoteKind, Reporter, Task


@dataclass
class Recorded:
    """One task a Recording reporter was given: label, total, unit, every advance and status, and whether it ended."""

    label: str
    total: int | None
    unit: str
    advances: list[int] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    ended: bool = False


class _RecordedTask(Task):
    def __init__(self, record: Recorded) -> None:
        self.record = record

    def __call__(self, n: int = 1) -> None:
        self.record.advances.append(n)

    def status(self, text: str) -> None:
        self.record.statuses.append(text)


class Recording(Reporter):
    """A reporter that keeps what it is told."""

    def __init__(self) -> None:
        self.notes: list[tuple[NoteKind, str]] = []
        self.tasks: list[Recorded] = []

    def note(self, text: str, kind: NoteKind = "note") -> None:
        self.notes.append((kind, text))

    @contextmanager
    def task(self, label: str, total: int | None = None, *, unit: str = "", status: str | None = None) -> Iterator[Task]:
        record = Recorded(label, total, unit, statuses=[status] if status is not None else [])
        self.tasks.append(record)
        try:
            yield _RecordedTask(record)
        finally:
            record.ended = True


def test_quiet_takes_notes_and_tasks_and_shows_nothing(capsys) -> None:
    QUIET.note("a note")
    QUIET.note("a problem", kind="problem")
    with QUIET.task("work", total=3, unit="items", status="-") as advance:
        advance()
        advance(2)
        advance.status("fast")
    with QUIET.task("unknown") as advance:
        advance(5)
    assert capsys.readouterr() == ("", "")


def test_the_rich_reporter_prints_notes_escaped_and_bars_with_unit_status_and_eta() -> None:
    console = Console(record=True, width=200)
    reporter = RichReporter(console)
    reporter.note("renders/[plants] records no filters")
    reporter.note("a.png: unreadable [bold]; left out", kind="problem")
    with reporter.task("render [x]", total=4, unit="samples", status="- views/s") as advance:
        advance(3)
        advance()
        advance.status("2.30 views/s")
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == "note renders/[plants] records no filters"
    assert lines[1] == "problem a.png: unreadable [bold]; left out"
    bar = " ".join(lines[2:])
    assert "render [x]" in bar and "4/4 samples 2.30 views/s" in bar and "ETA" in bar
