"""Writing files safely: atomic replacement, work-in-progress names, JSON-lines logs, stale-work cleanup, and
the lock that gives an output folder one writer (or several with identical settings) at a time.

Every stage writes through these, so an interrupted or crashed run leaves either the previous file or
the complete new one, never half of one; a full disk (or quota, file-size limit, read-only mount) is a
one-line ``WriteFailed`` naming the file, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgrf.errors import PgrfError

TMP_PREFIX = ".tmp-"
LOCK_PREFIX = ".lock-"
"""A writer's lock file in its output folder: ``.lock-<host>@<pid>``, JSON {command, settings}."""
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
"""OS errors that mean "this disk will not take the file", not a bug."""


class WriteFailed(PgrfError):
    """A file could not be written because of its disk; what was finished before is intact."""


def write_failed(path: Path, error: OSError | str) -> WriteFailed:
    """The one-line error for ``error`` (an OSError or a library's own words) while writing ``path``."""
    reason = os.strerror(error.errno or errno.EIO) if isinstance(error, OSError) else error
    return WriteFailed(f"{path}: cannot be written ({reason}); free some space or choose another output folder, "
                       "then run the same command again (finished work is kept)")


def temporary_name(stem: str) -> str:
    """Name of work in progress: ``.tmp-<stem>@<host>@<pid>``, so stale leftovers can be recognised."""
    return f"{TMP_PREFIX}{stem}@{socket.gethostname()}@{os.getpid()}"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` to write to: renamed to ``path`` when the block succeeds,
    deleted when it fails, so ``path`` is either the previous file or the complete new one."""
    partial = path.with_name(temporary_name(path.name))
    try:
        yield partial
        os.replace(partial, path)
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise write_failed(path, error) from None
        raise
    finally:
        partial.unlink(missing_ok=True)


def append_log(folder: Path, name: str, record: dict[str, Any]) -> None:
    """Append one record to the JSON-lines log ``folder/name`` with a single write (safe with several writers)."""
    line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}) + "\n"
    fd = os.open(folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    except OSError as error:
        if error.errno in WRITE_ERRNOS:
            raise write_failed(folder / name, error) from None
        raise
    finally:
        os.close(fd)


def read_log(folder: Path, name: str) -> list[dict[str, Any]]:
    """Every complete record of the JSON-lines log ``folder/name`` (a line cut short by a crash is ignored)."""
    path = folder / name
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def remove_stale_work(folder: Path) -> int:
    """Delete work-in-progress entries left by dead processes of this host; returns how many."""
    removed = 0
    host = socket.gethostname()
    for path in folder.glob(f"{TMP_PREFIX}*@*@*") if folder.is_dir() else ():
        _, owner, pid = path.name.rsplit("@", 2)
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            removed += 1
    return removed


@contextmanager
def output_lock(folder: Path, command: str, settings: dict[str, Any]) -> Iterator[None]:
    """Hold ``folder`` while the block writes to it with the output-shaping ``settings`` (JSON values).

    Writers with equal settings share the folder (their work is identical); a writer with other settings stops
    with a one-line PgrfError naming the holder. A lock of a dead process on this host is taken over; a holder on
    another host cannot be checked, so the error says how to remove its lock. The lock goes when the block ends
    (also on Ctrl-C or an error), so a later run with new settings may write the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    host, settings = socket.gethostname(), json.loads(json.dumps(settings))
    mine = folder / f"{LOCK_PREFIX}{host}@{os.getpid()}"
    with atomic_path(mine) as partial:  # written first, read second: of two runs starting together one sees the other
        partial.write_text(json.dumps({"command": command, "settings": settings}, sort_keys=True), encoding="utf-8")
    try:
        for path in sorted(folder.glob(f"{LOCK_PREFIX}*@*")):
            owner, _, pid = path.name[len(LOCK_PREFIX):].rpartition("@")
            if path == mine or not pid.isdigit():
                continue
            if owner == host and not _alive(int(pid)):
                path.unlink(missing_ok=True)
                continue
            held = _read_lock(path)
            if held is not None and held.get("settings") != settings:
                raise PgrfError(_conflict(folder, path, owner, pid, held, settings))
        yield
    finally:
        mine.unlink(missing_ok=True)


def _read_lock(path: Path) -> dict[str, Any] | None:
    """A lock file's record; None when it has gone, {} when it does not hold one (its settings count as other)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _conflict(folder: Path, path: Path, owner: str, pid: str, held: dict[str, Any], settings: dict[str, Any]) -> str:
    theirs = held.get("settings") if isinstance(held.get("settings"), dict) else {}
    differ = "; ".join(f"{key} {theirs.get(key)!r} there, {settings.get(key)!r} here"
                       for key in sorted({*theirs, *settings}) if theirs.get(key) != settings.get(key))
    line = (f"{folder}: being written by {held.get('command', 'another pgrf run')!s} (pid {pid} on {owner}) with other "
            f"settings ({differ}); wait until it ends or choose another output folder")
    if owner != socket.gethostname():
        line += f" (it runs on another host, which pgrf cannot check: if it has ended, delete {path})"
    return line


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
