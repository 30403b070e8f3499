"""The page of ``pgrf review``: its options, the cards it shows, and ``index.html`` itself.

The page is one self-contained file: the style and scripts of ``static/`` inlined, and the cards
embedded as JSON in a ``<script type="application/json">`` element, so it opens from disk (``file://``)
in any browser without a server or network. Light to import (the CLI reads the defaults here).
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from pgrf.errors import PgrfError
from pgrf.fileio import atomic_path
from pgrf.formats.exclude import ExcludeList
from pgrf.formats.schema import key, to_json

PAGE_FILE = "index.html"
THUMBS_DIR = "thumbs"
DATA_ID = "pgrf-data"
STATIC = "static"
DATA_PATTERN = re.compile(rf'<script type="application/json" id="{DATA_ID}">(.*?)</script>', re.S)


@dataclass(frozen=True)
class ReviewOptions:
    """What ``pgrf review`` shows and how it makes the thumbnails."""

    views: int = 4
    """Views in each model's contact strip."""
    size: int = 128
    """Thumbnail tile size (square, pixels)."""
    samples: int = 200
    """Shards: random samples shown (each with its mirrored twin)."""
    seed: int = 0
    """Shards: which samples are drawn."""
    workers: int = max(1, min(8, os.cpu_count() or 1))
    min_mean_alpha: float | None = None
    """Renders: the sparse threshold; None: each category's filters (pipeline.filters)."""

    def __post_init__(self) -> None:
        if min(self.views, self.size, self.samples, self.workers) <= 0:
            raise PgrfError("--views, --size, --samples and --workers must be positive")


@dataclass(frozen=True)
class Card:
    """One card of the page: a model of a renders folder, or a sample (with its mirrored twin) of a shard folder."""

    OMIT_NONE: ClassVar[bool] = True

    id: str
    """The model id (what the exclude toggle adds to the list)."""
    category: str
    """The category whose exclude file the id belongs in."""
    class_name: str = key("class")
    status: str
    why: str = ""
    """Why the model is not (or would not be) in a pack, or what went wrong; empty when all is well."""
    selected: bool = False
    """Starts in the exclude list (the model is excluded now)."""
    asset: str | None = None
    name: str | None = None
    mean_alpha: float | None = None
    dims_product: float | None = None
    thumb: str | None = None
    """The thumbnail, relative to index.html; None: none could be made (``why`` says so) or the model was never rendered."""
    key: str | None = None
    """Shards: the sample's key; its mirrored twin's is ``twin``."""
    twin: str | None = None
    yaw: float | None = None
    """Shards: degrees (the sample's; the twin's is its negative)."""
    pitch: float | None = None


@dataclass
class Cards:
    """One page's cards, its summary rows, how many thumbnails were made in this run or found from an earlier one,
    and the exclude files per category (renders: the current ones; shards: those the pack used, still on disk)."""

    cards: list[Card]
    summary: list[list[str]]
    made: int
    cached: int
    excludes: dict[str, ExcludeList]


@dataclass(frozen=True)
class Page:
    """Everything ``index.html`` shows."""

    kind: str
    """``renders`` or ``shards``."""
    title: str
    source: str
    created: str
    tiles: int
    """Tiles in each thumbnail strip."""
    size: int
    summary: list[list[str]] = field(default_factory=list)
    """(label, value) rows shown above the cards."""
    cards: list[Card] = field(default_factory=list)
    kept: dict[str, list[str]] = field(default_factory=dict)
    """Per category, the entries of its current exclude file that name none of the cards: every download keeps them."""


def kept_entries(excludes: dict[str, ExcludeList], cards: list[Card]) -> dict[str, list[str]]:
    """The entries of each category's exclude file that match none of that category's cards (ids of models not shown,
    globs for models to come), which the page cannot show as ticks and so writes back as they are."""
    kept = {}
    for category, rejected in excludes.items():
        shown = [(card.id, card.asset or "") for card in cards if card.category == category]
        entries = [entry for entry in rejected.patterns
                   if not any(ExcludeList(rejected.path, (entry,)).matches(*names) for names in shown)]
        if entries:
            kept[category] = entries
    return kept


def _asset(name: str) -> str:
    return (resources.files("pgrf.review") / STATIC / name).read_text(encoding="utf-8")


def page_html(page: Page) -> str:
    """The self-contained ``index.html`` of ``page``."""
    data = json.dumps(to_json(page), separators=(",", ":"), ensure_ascii=False)
    data = data.replace("<", "\\u003c")  # no '</script>' (or '<!--') can end the element early; JSON reads it back as '<'
    template = _asset("index.html")
    parts = {"title": html.escape(page.title), "style": _asset("review.css"), "data": data,
             "script": _asset("exclude.js") + "\n" + _asset("review.js")}
    return re.sub(r"<!--pgrf:(\w+)-->", lambda m: parts[m.group(1)], template)


def write_page(out: Path, page: Page) -> Path:
    """Write ``out/index.html`` atomically; returns its path."""
    path = out / PAGE_FILE
    with atomic_path(path) as partial:
        partial.write_text(page_html(page), encoding="utf-8")
    return path


def read_page(path: Path) -> dict[str, Any]:
    """The data embedded in a page written by ``write_page`` (for tests and scripts)."""
    found = DATA_PATTERN.search(Path(path).read_text(encoding="utf-8"))
    if not found:
        raise PgrfError(f"{path}: no pgrf review data in it; give an index.html written by pgrf review")
    return json.loads(found.group(1))
