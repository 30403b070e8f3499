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
from pathlib import Path

from pgrf import fileio
from pgrf.errors import PgrfError
from pgrf.limits import check_archive

CACHE_ENV = "PGRF_CACHE"


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
    target = cache_root() / "archives" / f"{archive.stem}-{file_key(archive)}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fileio.remove_stale_work(target.parent)
    work = target.with_name(fileio.temporary_name(target.name))
    try:
        with zipfile.ZipFile(archive) as handle:
            for name in handle.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise PgrfError(f"{archive}: member {name!r} points outside the archive; re-download it")
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
