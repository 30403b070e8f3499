"""The cards of a shard folder for ``pgrf review``: random samples, each beside its mirrored ``_m`` twin, with the
dataset card's counts.

Samples are drawn (seeded) from the unique views of ``index.parquet``; their PNGs are read from the shards
that hold them. A pair thumbnail's name carries the sha256 of its shards (from ``dataset.json``), so a
re-run after a re-pack makes new ones and a re-run on the same shards makes none.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetCard, read_card
from pgrf.formats.exclude import read_exclude
from pgrf.formats.shards import INDEX_COLUMNS, INDEX_FILE, sample_key
from pgrf.pipeline.parallel import run_parallel
from pgrf.progress import Reporter
from pgrf.review.page import THUMBS_DIR, Card, Cards, ReviewOptions
from pgrf.review.thumbs import KEPT, PairJob, make_pairs, thumb_name

STATUS = "packed"


def _read_index(shards_dir: Path) -> dict[str, list]:
    path = shards_dir / INDEX_FILE
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise PgrfError(f"{path}: not a readable parquet file ({type(error).__name__}); re-run pgrf pack") from None
    missing = [name for name in INDEX_COLUMNS if name not in table.column_names]
    if missing:
        raise PgrfError(f"{path}: missing columns {', '.join(missing)}; re-run pgrf pack")
    return table.select(list(INDEX_COLUMNS)).to_pydict()


def shard_cards(shards_dir: Path, out: Path, options: ReviewOptions, reporter: Reporter) -> Cards:
    """``options.samples`` random samples of the shard folder as cards, each with a (sample, twin) thumbnail."""
    card = read_card(shards_dir)
    index = _read_index(shards_dir)
    row = {key: i for i, key in enumerate(index["key"])}
    originals = [i for i, mirrored in enumerate(index["mirrored"]) if not mirrored]
    if not originals:
        raise PgrfError(f"{shards_dir / INDEX_FILE}: no samples; re-run pgrf pack")
    drawn = np.random.default_rng(options.seed).choice(len(originals), min(options.samples, len(originals)), replace=False)
    sha = {entry.file: entry.sha256 for entry in card.shards}
    groups: dict[tuple[str, ...], list[tuple[Path, str, str | None]]] = {}
    cards = []
    for i in sorted(originals[d] for d in drawn):
        key, model_id = index["key"][i], index["model_id"][i]
        twin = sample_key(model_id, index["view"][i], True)
        twin = twin if twin in row else None
        shards = tuple(sorted({index["shard"][i], *([index["shard"][row[twin]]] if twin else [])}))
        name = f"{THUMBS_DIR}/{card.name}/{thumb_name(key, options.size, *(sha.get(s, s) for s in shards))}"
        groups.setdefault(shards, []).append((out / name, key, twin))
        class_index = index["class"][i]
        class_name = card.class_names[class_index] if 0 <= class_index < len(card.class_names) else str(class_index)
        cards.append(Card(model_id, index["category"][i], class_name, STATUS, asset=index["asset_id"][i],
                          mean_alpha=index["mean_alpha"][i], thumb=name, key=key, twin=twin,
                          yaw=round(math.degrees(index["yaw"][i]), 2), pitch=round(math.degrees(index["pitch"][i]), 2)))
    cached = sum(1 for pairs in groups.values() for target, _, _ in pairs if target.is_file())
    jobs = [PairJob(tuple(shards_dir / s for s in shards), tuple(pairs), options.size) for shards, pairs in groups.items()
            if any(not target.is_file() for target, _, _ in pairs)]
    errors: dict[str, str] = {}
    for _, result in run_parallel(jobs, make_pairs, options.workers, "thumbnails", reporter, KEPT,
                                 lambda job: len(job.pairs)):
        errors.update({target.relative_to(out).as_posix(): error for target, error in result.items() if error})
    cards = [_without_thumb(c, errors[c.thumb]) if c.thumb in errors else c for c in cards]
    used = card.filters.thresholds.get("exclude") or {}
    excludes = {category: read_exclude(path) for category, path in used.items() if Path(path).is_file()}
    return Cards(cards, _summary(card, len(cards), options), len(cards) - cached - len(errors), cached, excludes)


def _without_thumb(card: Card, error: str) -> Card:
    return replace(card, thumb=None, why=f"no thumbnail: {error}")


def _summary(card: DatasetCard, shown: int, options: ReviewOptions) -> list[list[str]]:
    counts, removed = card.counts, card.filters.removed_models
    filtered = ", ".join(f"{name} {count}" for name, count in removed.items()) or "none"
    return [["dataset", card.name], ["samples", f"{counts.samples} ({counts.unique_views} unique views)"],
            ["models", str(counts.models)], ["classes", f"{counts.classes}: {', '.join(card.class_names)}"],
            ["resolution", f"{card.resolution}² over {card.background}"], ["mirrored copies", "yes" if card.mirror else "no"],
            ["models removed by filters", filtered], ["unreadable PNGs skipped", str(card.skipped_bad.samples)],
            ["shards", str(len(card.shards))], ["packed", card.created],
            *([f"exclude file ({category})", path] for category, path in (card.filters.thresholds.get("exclude") or {}).items()),
            ["shown", f"{shown} random unique views (seed {options.seed}), each beside its mirrored twin"]]
