"""Writing safely: a disk that will not take a file is one line naming it, and finished work stays intact."""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pgrf import fileio
from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetInfo
from pgrf.formats.checkpoint import CheckpointMeta, Counters
from pgrf.pipeline.synthetic import fake_renders
from pgrf.train.checkpoint import save_checkpoint
from tests.helpers import CONFIG, REPO, run_pgrf


def _limited(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))  # writes past it fail with EFBIG (Python ignores SIGXFSZ)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_pack_into_a_disk_that_refuses_the_file_is_one_line_and_resumable(tmp_path: Path, workers: str) -> None:
    renders = fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=4, resolution=64)
    out = tmp_path / "shards"
    args = [sys.executable, "-m", "pgrf", "pack", str(renders), "--out", str(out), "--resolution", "32",
            "--samples-per-shard", "4", "--workers", workers, "--config", str(CONFIG)]
    full = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=lambda: _limited(6000))
    assert full.returncode == 2
    lines = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "plants-0000" in lines[0] and "cannot be written (File too large)" in lines[0]
    assert "Traceback" not in full.stderr and not list(out.glob(".tmp-*"))
    again = run_pgrf("pack", str(renders), "--out", str(out), "--resolution", "32", "--samples-per-shard", "4")
    assert again.returncode == 0, again.stderr
    assert run_pgrf("verify", str(out)).returncode == 0


def test_a_full_disk_while_logging_is_a_write_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "write", full)
    with pytest.raises(fileio.WriteFailed, match=r"events\.jsonl: cannot be written \(No space left on device\)"):
        fileio.append_log(tmp_path, "events.jsonl", {"event": "x"})


def test_other_os_errors_are_not_dressed_up_as_a_full_disk(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), fileio.atomic_path(tmp_path / "x.txt") as partial:
        (partial.parent / "missing" / "y").write_text("no")


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "latest.pt"
    meta = CheckpointMeta(options={}, model={}, dataset=DatasetInfo(16, 3.5, 0.8, []), world_size=1, pgrf_version="test",
                          progress=Counters())
    save_checkpoint(path, meta, {"step": 1})
    before = path.read_bytes()

    def short_write(obj: object, target: object) -> None:
        Path(target).write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 640 vs 534")

    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(fileio.WriteFailed, match=r"latest\.pt: cannot be written \(\[enforce fail"):
        save_checkpoint(path, meta, {"step": 2})
    assert path.read_bytes() == before and not list(tmp_path.glob(".tmp-*"))


def _lock_of(folder: Path, host: str, pid: int, settings: dict) -> Path:
    path = folder / f"{fileio.LOCK_PREFIX}{host}@{pid}"
    path.write_text(json.dumps({"command": "pgrf pack", "settings": settings}))
    return path


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_an_output_lock_is_shared_by_equal_settings_and_released_on_error(tmp_path: Path) -> None:
    other = _lock_of(tmp_path, socket.gethostname(), os.getppid(), {"resolution": 64})
    with pytest.raises(KeyboardInterrupt), fileio.output_lock(tmp_path, "pgrf pack", {"resolution": 64}):
        assert len(list(tmp_path.glob(f"{fileio.LOCK_PREFIX}*"))) == 2
        raise KeyboardInterrupt
    assert list(tmp_path.glob(f"{fileio.LOCK_PREFIX}*")) == [other]


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    stale = _lock_of(tmp_path, socket.gethostname(), _dead_pid(), {"resolution": 64})
    with fileio.output_lock(tmp_path, "pgrf pack", {"resolution": 128}):
        assert not stale.exists()


def test_a_holder_on_another_host_is_named_with_how_to_remove_its_lock(tmp_path: Path) -> None:
    held = _lock_of(tmp_path, "elsewhere.example", 4242, {"resolution": 64})
    with pytest.raises(PgrfError) as caught, fileio.output_lock(tmp_path, "pgrf import zip", {"resolution": 128}):
        pass
    line = str(caught.value)
    assert "\n" not in line and "pid 4242 on elsewhere.example" in line and "resolution 64 there, 128 here" in line
    assert f"delete {held}" in line
    assert list(tmp_path.glob(f"{fileio.LOCK_PREFIX}*")) == [held]
