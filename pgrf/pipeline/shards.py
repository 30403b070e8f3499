"""Deterministic WebDataset shards: plain tar, fixed metadata, written under a temporary name."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pgrf.render.records import atomic_path

FIXED_MTIME = 0
"""Every member's mtime, so the same inputs give byte-identical shards."""


def write_shard(path: Path, members: Iterable[tuple[str, bytes]]) -> str:
    """Write ``(name, data)`` members to ``path`` atomically; returns the file's sha256 (hashed as written)."""
    with atomic_path(path) as partial, partial.open("wb") as handle:
        hashing = _HashingWriter(handle)
        with tarfile.open(fileobj=hashing, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        return hashing.hasher.hexdigest()


class _HashingWriter:
    """The write side of a file that also feeds every byte to a sha256."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.hasher = handle, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return self.handle.write(data)

    def tell(self) -> int:
        return self.handle.tell()


def iter_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream a shard's samples in file order: (key, {extension: bytes}), grouping consecutive members
    by the name up to the first dot. tarfile's errors (truncated or corrupt tar) reach the caller."""
    key, members = None, {}
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name_key, _, extension = member.name.partition(".")
            if key is not None and name_key != key:
                yield key, members
                members = {}
            key = name_key
            members[extension] = tar.extractfile(member).read()
    if key is not None:
        yield key, members


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
