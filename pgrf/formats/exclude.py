"""Exclude files: hand-rejected models of a category (assets.toml ``exclude = "FILE"``).

One entry a line: a model id, an asset id or a glob pattern over either (``*``, ``?``, ``[…]``);
``#`` starts a comment; blank lines are ignored. Matching is case-insensitive. ``write_exclude``
writes the same format (a header naming the category and date, one id a line) for ``pgrf review``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from pgrf.errors import PgrfError
from pgrf.fileio import atomic_path


@dataclass(frozen=True)
class ExcludeList:
    """The entries of one exclude file."""

    path: str
    patterns: tuple[str, ...]

    def matches(self, model_id: str, asset_id: str) -> bool:
        """True when the model id or its asset id equals or matches an entry."""
        names = (model_id.lower(), asset_id.lower())
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns for name in names)

    @property
    def digest(self) -> str:
        """sha256 of the entries (sorted, one a line): equal for files that exclude the same models."""
        return hashlib.sha256("".join(f"{p}\n" for p in sorted(set(self.patterns))).encode()).hexdigest()


def read_exclude(path: str | Path) -> ExcludeList:
    """Parse an exclude file; an unreadable file is a PgrfError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PgrfError(f"{path}: exclude file cannot be read ({error}); give a UTF-8 text file of model ids") from None
    patterns = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            patterns.append(entry.lower())
    return ExcludeList(str(path), tuple(patterns))


def write_exclude(path: Path, category: str, ids: list[str]) -> None:
    """Write ``ids`` (one a line, sorted, unique) under a header naming the category and the date."""
    header = f"# pgrf exclude list for category '{category}', written {time.strftime('%Y-%m-%d')}\n"
    header += "# one model id, asset id or glob pattern a line; '#' starts a comment\n"
    with atomic_path(path) as partial:
        partial.write_text(header + "".join(f"{entry}\n" for entry in sorted(set(ids))), encoding="utf-8")
