"""Deterministic WebDataset shards: plain tar, fixed metadata, written under a temporary name."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from pgrf.render.records import temporary_name

FIXED_MTIME = 0
"""Every member's mtime, so the same inputs give byte-identical shards."""


def write_shard(path: Path, members: Iterable[tuple[str, bytes]]) -> str:
    """Write ``(name, data)`` members to ``path`` atomically; returns the file's sha256."""
    partial = path.with_name(temporary_name(path.name))
    try:
        with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    digest = sha256(partial)
    os.replace(partial, path)
    return digest


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
