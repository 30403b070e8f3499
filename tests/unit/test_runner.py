"""The render runner's hold on a category folder: runs that would write the same files share it (SLURM array tasks
on mixed nodes included), a run with other output-shaping settings, or an import, stops with one line. And the
GPUs its workers are started with (faked listings; no Blender starts)."""

from __future__ import annotations

import json
import os
import socket
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pgrf import fileio
from pgrf.config import Category, RenderSettings
from pgrf.errors import PgrfError
from pgrf.formats.catalog import Catalog, ModelSpec
from pgrf.progress import Reporter, Task
from pgrf.render import gpus
from pgrf.render.options import RenderRun
from pgrf.render.runner import Runner, _Slot, plan
from pgrf.render.worker import worker_main

SETTINGS = RenderSettings(views=4, resolution=64, hdri="none")
PLANTS = Category("plants")
ONCE = RenderRun()


def _run(folder: Path, settings: RenderSettings = SETTINGS, category: Category = PLANTS,
         run: RenderRun = ONCE) -> list[Path]:
    """An empty render of ``folder`` (no models, so no Blender); returns the locks it saw while it held the folder."""
    watcher = _LockWatcher(folder)
    runner = Runner(category, folder, settings, reporter=watcher)
    runner.run(plan(Catalog(category.name, str(folder)), folder, settings, run))
    return watcher.seen


class _LockWatcher(Reporter):
    """Notes the locks in ``folder`` when the render task starts."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, list[Path]()

    @contextmanager
    def task(self, label: str, total: int | None = None, **_: Any) -> Iterator[Task]:
        self.seen.extend(sorted(self.folder.glob(f"{fileio.LOCK_PREFIX}*")))
        yield Task()


def _held_by_parent(folder: Path, record: dict[str, Any]) -> Path:
    """``record`` as the lock of a live process of this host (the test's parent)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{fileio.LOCK_PREFIX}{socket.gethostname()}@{os.getppid()}"
    path.write_text(json.dumps(record))
    return path


def _record_of_a_run(folder: Path, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> dict[str, Any]:
    """The lock record a run with ``settings`` writes."""
    records: list[dict[str, Any]] = []
    real = fileio.output_lock

    def spy(target: Path, command: str, shaping: dict[str, Any]):  # type: ignore[no-untyped-def]
        records.append({"command": command, "settings": json.loads(json.dumps(shaping))})
        return real(target, command, shaping)

    monkeypatch.setattr(fileio, "output_lock", spy)
    _run(folder, replace(SETTINGS, **settings))
    monkeypatch.setattr(fileio, "output_lock", real)
    return records[0]


def test_runs_differing_in_workers_device_timeout_or_shard_share_the_folder(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "renders" / "plants"
    other = _held_by_parent(folder, _record_of_a_run(tmp_path / "first", monkeypatch))
    seen = _run(folder, replace(SETTINGS, workers=3, device="cpu", timeout=60.0, recycle_after=2),
                run=RenderRun(shard_index=1, num_shards=4))
    assert other in seen and len(seen) == 2  # it held the folder beside the other run
    assert sorted(folder.glob(f"{fileio.LOCK_PREFIX}*")) == [other]  # and let go of it at the end
    assert (folder / "filters.json").is_file()


@pytest.mark.parametrize(("change", "differs"), [
    ({"resolution": 128}, "resolution 64 there, 128 here"),
    ({"seed": 7}, "seed 0 there, 7 here"),
    ({"samples": 8}, "samples 32 there, 8 here"),
])
def test_a_render_with_other_output_settings_stops_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  change: dict[str, Any], differs: str) -> None:
    folder = tmp_path / "plants"
    _held_by_parent(folder, _record_of_a_run(tmp_path / "first", monkeypatch))
    with pytest.raises(PgrfError) as caught:
        _run(folder, replace(SETTINGS, **change))
    line = str(caught.value)
    assert "\n" not in line and f"being written by pgrf render (pid {os.getppid()}" in line and differs in line
    assert not (folder / "filters.json").exists(), "the refused run wrote into the folder"


def test_other_category_filters_count_as_other_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "plants"
    _held_by_parent(folder, _record_of_a_run(tmp_path / "first", monkeypatch))
    with pytest.raises(PgrfError, match=r"filters .*'min_mean_alpha': 0\.0.*there.*'min_mean_alpha': 0\.5.*here"):
        _run(folder, category=Category("plants", min_mean_alpha=0.5))


def test_an_import_into_the_folder_stops_a_render(tmp_path: Path) -> None:
    folder = tmp_path / "plants"
    _held_by_parent(folder, {"command": "pgrf import epigraf-renders", "settings": {"root": "/data/raw", "copy": False}})
    with pytest.raises(PgrfError, match=r"being written by pgrf import epigraf-renders .*root '/data/raw' there, None here"):
        _run(folder)


class _Connection:
    """One end of a fake pipe: what the runner sends is kept."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: Any) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


class _Process:
    """A worker process that never starts: its target and arguments are kept."""

    def __init__(self, target: Any, args: tuple[Any, ...], daemon: bool) -> None:
        self.target, self.args, self.started, self.alive = target, args, False, True

    def start(self) -> None:
        self.started = True

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None = None) -> None:
        self.alive = False

    def kill(self) -> None:
        self.alive = False


class _Context:
    """multiprocessing's spawn context, with the processes it was asked to start kept."""

    def __init__(self) -> None:
        self.processes: list[_Process] = []

    def Pipe(self) -> tuple[_Connection, _Connection]:
        return _Connection(), _Connection()

    def Process(self, target: Any, args: tuple[Any, ...], daemon: bool) -> _Process:
        self.processes.append(_Process(target, args, daemon))
        return self.processes[-1]


def _model(index: int) -> ModelSpec:
    return ModelSpec(f"m{index}", f"a{index}", "asset", "plants", "plant", "folders", (f"/library/m{index}.glb",))


def _started(settings: RenderSettings, models: int = 8) -> tuple[Runner, _Context, list[_Slot]]:
    """A runner that started its workers for ``models`` models (none renders)."""
    runner = Runner(PLANTS, Path("unused"), settings)
    runner.context = context = _Context()
    runner.pending = deque(_model(i) for i in range(models))
    slots: list[_Slot] = []
    runner._fill(slots)
    assert all(p.target is worker_main and p.started for p in context.processes)
    return runner, context, slots


def _visible(context: _Context) -> list[str | None]:
    return [p.args[1].get(gpus.VISIBLE) for p in context.processes]


def test_each_worker_is_started_on_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gpus.VISIBLE, raising=False)
    monkeypatch.delenv(gpus.ORDER, raising=False)
    monkeypatch.setattr(gpus, "nvidia_smi_listing", lambda: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)\n"
                                                            "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-b)\n")
    _, context, _ = _started(replace(SETTINGS, device="optix", workers=4))
    assert _visible(context) == ["0", "1", "0", "1"]
    assert {p.args[1][gpus.ORDER] for p in context.processes} == {gpus.PCI_ORDER}


def test_a_replaced_worker_keeps_the_gpus_of_the_one_it_replaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gpus.VISIBLE, "4,6,7")
    runner, context, slots = _started(replace(SETTINGS, device="auto", workers=3, recycle_after=1))
    assert _visible(context) == ["4", "6", "7"]
    middle = slots[1]
    middle.spec, middle.rendered = None, 1  # its model is done: it is due to be replaced
    runner._fill(slots)
    assert not middle.process.is_alive() and middle not in slots
    assert _visible(context) == ["4", "6", "7", "6"]
    assert sorted(s.lane for s in slots) == [0, 1, 2]


def test_cpu_workers_inherit_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gpus.VISIBLE, "0,1")
    _, context, _ = _started(replace(SETTINGS, device="cpu", workers=2))
    assert [p.args[1] for p in context.processes] == [{}, {}]
