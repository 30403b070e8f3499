"""``pgrf review``: a static gallery of a renders folder or a shard folder, to look at before training and to pick the
models to exclude.

``review(PATH, OUT)`` writes ``OUT/index.html`` (self-contained: style, script and data inlined) and
``OUT/thumbs/``. PATH is a ``renders/<category>`` folder, a ``renders/`` root (every category under it)
or a shard folder (``dataset.json`` + ``index.parquet``). Every card has an exclude toggle; the page
writes the chosen ids in the exact format of ``pgrf.formats.exclude.write_exclude``, one file per
category, ready for assets.toml's ``exclude`` key and a re-run of ``pgrf pack``. Thumbnails are made
in parallel and kept between runs (review_thumbs); each run is logged to ``OUT/review-log.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pgrf import fileio
from pgrf.config import Config
from pgrf.errors import PgrfError
from pgrf.formats import manifest
from pgrf.formats.card import CARD_FILE
from pgrf.formats.shards import INDEX_FILE
from pgrf.progress import QUIET, Reporter
from pgrf.review.page import THUMBS_DIR, Page, ReviewOptions, kept_entries, write_page
from pgrf.review.renders import render_cards
from pgrf.review.shards import shard_cards
from pgrf.review.thumbs import THUMB_SUFFIX

LOG_FILE = "review-log.jsonl"


@dataclass(frozen=True)
class ReviewResult:
    """What a run wrote: the page, its kind and cards, thumbnails made, found from earlier runs, and removed as stale."""

    page: Path
    kind: str
    cards: int
    made: int
    cached: int
    removed: int
    seconds: float


def review(path: Path, out: Path, config: Config | None, options: ReviewOptions, reporter: Reporter = QUIET) -> ReviewResult:
    """Write the gallery of ``path`` to ``out``; renders are judged by the filters ``pipeline.filters`` decides
    (``config`` None: no config file). The task ``thumbnails`` goes to ``reporter``."""
    start = time.perf_counter()
    path = Path(path)
    if not path.is_dir():
        raise PgrfError(f"{path}: no such folder; give a renders/<category> folder, a renders/ root or a shard folder")
    out.mkdir(parents=True, exist_ok=True)
    for folder in [out, *(p for p in (out / THUMBS_DIR).glob("*") if p.is_dir())]:
        fileio.remove_stale_work(folder)
    if (path / CARD_FILE).is_file() or (path / INDEX_FILE).is_file():
        kind, built = "shards", shard_cards(path, out, options, reporter)
    else:
        categories = manifest.categories(path)
        if not categories:
            raise PgrfError(f"{path}: neither a shard folder (dataset.json + index.parquet) nor a renders folder (model folders "
                            "with cameras.json, or a render-log.jsonl); give what pgrf pack or pgrf render wrote")
        kind, built = "renders", render_cards(categories, out, config, options, reporter)
    removed = _remove_stale_thumbs(out, {card.thumb for card in built.cards if card.thumb})
    tiles = (2 if any(card.twin for card in built.cards) else 1) if kind == "shards" else options.views
    page = Page(kind, f"pgrf review: {path.resolve().name}", str(path), time.strftime("%Y-%m-%d %H:%M"), tiles, options.size,
                built.summary, built.cards, kept_entries(built.excludes, built.cards))
    written = write_page(out, page)
    result = ReviewResult(written, kind, len(built.cards), built.made, built.cached, removed, time.perf_counter() - start)
    fileio.append_log(out, LOG_FILE, {"source": str(path), "kind": kind, "cards": result.cards, "made": result.made,
                                      "cached": result.cached, "removed": removed, "seconds": round(result.seconds, 3)})
    return result


def _remove_stale_thumbs(out: Path, used: set[str]) -> int:
    """Delete thumbnails of earlier runs that the new page does not show (re-rendered models, other samples)."""
    removed = 0
    for thumb in (out / THUMBS_DIR).rglob(f"*{THUMB_SUFFIX}"):
        if thumb.relative_to(out).as_posix() not in used:
            thumb.unlink()
            removed += 1
    return removed
