"""pgrf.progress: the reporting interface of library code, its silent default, the CLI's rich reporter, and what
the library reports through it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from pgrf.cli.reporting import RichReporter
from pgrf.config import Category, load_config
from pgrf.pipeline.export import export_zip
from pgrf.pipeline.import_renders import import_renders
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.progress import QUIET, NoteKind, Reporter, Task
from tests.helpers import CONFIG
from tests.libraries.epigraf_renders import write_raw


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


@pytest.mark.parametrize("workers", [1, 2])  # counted in this process, and sent back by the worker processes
def test_pack_reports_its_filters_note_and_one_task_advanced_to_its_total(tmp_path: Path, workers: int) -> None:
    renders = fake_renders(tmp_path / "renders", "misc", {"a": 0.4, "b": 0.5, "c": 0.3}, recorded_alpha=None)
    reporter = Recording()
    card = pack([renders], tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=4,
                                                                                 workers=workers), reporter)
    assert [kind for kind, _ in reporter.notes] == ["note"] and "records no filters and 'misc' is no category" in reporter.notes[0][1]
    (task,) = reporter.tasks
    assert (task.label, task.total, task.unit, task.ended) == ("pack", card.counts.samples, "samples", True)
    assert sum(task.advances) == card.counts.samples == 18

    again = Recording()  # every shard is finished: nothing to write, nothing to note but the filters
    pack([renders], tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=4), again)
    assert [(t.label, t.total, sum(t.advances)) for t in again.tasks] == [("pack", 0, 0)]

    exported = Recording()
    result = export_zip(tmp_path / "shards", tmp_path / "data.zip", reporter=exported)
    (task,) = exported.tasks
    assert (task.label, task.total, sum(task.advances), exported.notes) == ("export", result.images, result.images, [])


def test_an_import_reports_each_problem_and_its_models(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    write_raw(root, {"Coll A": ["Thing 1", "Thing 2"]}, views=2, size=16, passes=False)
    (root / "Coll_A" / "Stray").mkdir()  # a model folder metadata.json does not list
    reporter = Recording()
    outcome = import_renders(root, Category("plants"), tmp_path / "renders", reporter=reporter)
    assert len(outcome.problems) == 1 and reporter.notes == [("problem", outcome.problems[0])]
    (task,) = reporter.tasks
    assert (task.label, task.total, sum(task.advances), task.ended) == ("import", 2, 2, True)
