"""Writing safely: a disk that will not take a file is one line naming it, and finished work stays intact."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pgrf import fileio
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
