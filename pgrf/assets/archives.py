"""Zipped assets (Bridge ``<id>.zip``, Fab downloads) read without touching the library: each zip is
extracted once into a cache folder keyed by its path, size and modification time.

The cache is ``$PGRF_CACHE`` or ``~/.cache/pgrf`` (``$XDG_CACHE_HOME/pgrf``); a zip that changes gets a
fresh folder, and a half-finished extraction (crash, Ctrl-C) is never taken for a finished one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from pgrf import fileio, paths
from pgrf.errors import PgrfError
from pgrf.limits import check_archive

CACHE_ENV = "PGRF_CACHE"
NAME_LIMIT = 200
"""Longest cache folder name: room is left for the temporary name (``.tmp-<name>@<host>@<pid>``) beside it."""


def cache_root() -> Path:
    """Where extracted archives live."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pgrf"


def file_key(path: Path, length: int = 16) -> str:
    """A cache key of a file as it is now: its resolved path, size and modification time."""
    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:length]


def extracted(archive: Path) -> Path:
    """The folder holding ``archive``'s files, extracting it into the cache on first use.

    A zip that cannot be read, that holds paths outside its own folder, or whose declared sizes are over the
    limits (``pgrf.limits.check_archive``, checked before anything is written) is a PgrfError naming it.
    """
    target = cache_root() / "archives" / paths.short_name(f"{archive.stem}-{file_key(archive)}", NAME_LIMIT)
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fileio.remove_stale_work(target.parent)
    work = target.with_name(fileio.temporary_name(target.name))
    try:
        with zipfile.ZipFile(archive) as handle:
            for name in handle.namelist():
                paths.inside(work, name, f"{archive}: member", "re-download it", "the archive")
            clash = file_and_folder(handle.namelist())
            if clash:
                raise PgrfError(f"{archive}: member {clash[1]!r} lies inside {clash[0]!r}, which the zip also holds as "
                                "a file; re-download it")
            check_archive(handle.infolist(), str(archive))
            handle.extractall(work)
        os.replace(work, target)
    except (zipfile.BadZipFile, EOFError) as error:
        raise PgrfError(f"{archive}: not a readable zip ({error}); re-download it") from None
    except OSError as error:
        if error.errno in fileio.WRITE_ERRNOS:
            raise fileio.write_failed(target, error) from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def file_and_folder(names: list[str]) -> tuple[str, str] | None:
    """(a file member, a member that needs it to be a folder) of a zip's member names, or None; a zip holding
    both cannot be extracted."""
    files = {name for name in names if not name.endswith("/")}
    for name in names:
        path = PurePosixPath(name)
        folders = [*([path] if name.endswith("/") else []), *path.parents]
        clash = next((str(folder) for folder in folders if str(folder) in files), None)
        if clash:
            return clash, name
    return None
