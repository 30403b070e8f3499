"""The two optional halves of pgrf and the extra that installs each: a command whose half is missing stops with
one line naming it, before anything is imported from that half."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pgrf.errors import PgrfError

Extra = Literal["render", "train"]

MODULES: dict[Extra, tuple[str, ...]] = {
    "render": ("bpy", "meshopt"),
    "train": ("torch", "webdataset", "skimage", "imageio_ffmpeg"),
}
"""The top-level modules each extra of pyproject.toml installs (checked by a test against its dependencies)."""


def missing(extra: Extra) -> list[str]:
    """The modules of ``extra`` that this Python cannot import (found without importing them)."""
    return [name for name in MODULES[extra] if importlib.util.find_spec(name) is None]


def require(extra: Extra, what: str) -> None:
    """A one-line error when ``extra`` is not installed: ``what`` (e.g. ``pgrf render``) and the pip command."""
    absent = missing(extra)
    if absent:
        raise PgrfError(f'{what} needs the {extra} half of pgrf ({", ".join(absent)} not installed): pip install "pgrf[{extra}]"')
