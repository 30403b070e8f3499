"""Names and uris from outside (archive members, glTF uris, texture paths, category names, model ids) turned into
paths: the one place that refuses what would leave its root and shortens what is too long to be a file name.

The rule is about names that come from outside. The root itself is resolved first, so a library root that is a
link stays readable; a name is refused when it is absolute, names a Windows drive, is a ``file:`` uri, has a
``..`` component, or resolves (through links) to somewhere outside the resolved root.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote

from pgrf.errors import PgrfError

NAME_BYTES = 255
"""The longest file name (one path component) common filesystems take, in bytes."""
MODEL_ID_BYTES = 120
"""Longest model id: ids name folders, ``.logs/<id>.log`` and temporary names (``.tmp-<id>@<host>@<pid>``), which
must stay within a file name's 255 bytes."""
HASH_LENGTH = 12
"""Hex digits of the hash that keeps a shortened name unique."""
DRIVE = re.compile(r"^[A-Za-z]:")


class Outside(PgrfError):
    """A name from outside that would lead out of its root."""


def escape(name: str) -> str | None:
    """Why ``name``, read relative to a root, would leave it (lexically), or None."""
    if not name:
        return "it is empty"
    if "\0" in name:
        return "it holds a NUL byte"
    if name.lower().startswith("file:"):
        return "it is a file: uri"
    if DRIVE.match(name):
        return "it names a drive"
    if name.startswith(("/", "\\")):
        return "it is an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "it goes up with .."
    return None


def inside(root: Path, name: str, where: str, fix: str, within: str = "its folder") -> Path:
    """``name`` as a path under ``root``, or an ``Outside`` error ``<where> <name> points outside <within> (why); <fix>``.

    Links are followed: a name whose target resolves out of the (resolved) root is refused too.
    """
    return _confined(root, name, name, where, fix, within)


def uri_inside(root: Path, uri: str, where: str, fix: str, within: str = "its folder") -> Path:
    """A uri reference (percent-encoded, relative to ``root``) as a path under ``root``; see ``inside``."""
    return _confined(root, unquote(uri), uri, where, fix, within)


def _confined(root: Path, name: str, shown: str, where: str, fix: str, within: str) -> Path:
    base = root.resolve()
    reason = escape(name)
    path = base / name.replace("\\", "/")
    if reason is None and not is_under(base, path):
        reason = "a link leads out of it"
    if reason is not None:
        raise Outside(f"{where} {shown!r} points outside {within} ({reason}); {fix}")
    return path


def is_under(root: Path, path: Path) -> bool:
    """Whether ``path``, links followed, lies under ``root`` (resolved first: a root that is a link is fine)."""
    return path.resolve().is_relative_to(root.resolve())


def folder_name(name: str) -> str | None:
    """Why ``name`` cannot be one folder's name inside another (a separator, ``.``/``..``, too long), or None."""
    if name in ("", ".", "..") or re.search(r"[/\\\0]", name) or DRIVE.match(name):
        return "it must be one folder name, without / \\ or .."
    if len(name.encode("utf-8")) > NAME_BYTES:
        return f"it is longer than {NAME_BYTES} bytes"
    return None


def short_name(name: str, limit: int = NAME_BYTES) -> str:
    """``name`` itself when it fits in ``limit`` bytes, else a readable prefix and a hash of the whole name
    (``<prefix>-<12 hex>``), the same on every run."""
    data = name.encode("utf-8")
    if len(data) <= limit:
        return name
    digest = hashlib.sha256(data).hexdigest()[:HASH_LENGTH]
    prefix = data[:limit - HASH_LENGTH - 1].decode("utf-8", errors="ignore")
    return f"{prefix}-{digest}"
