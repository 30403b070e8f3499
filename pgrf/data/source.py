"""The shards a command was given, opened once: their URLs, the dataset card, class counts, cache identity.

Shards may be a pack folder (its ``dataset.json`` lists them), a brace pattern
(``shards/plants-{000000..000009}.tar``), a single tar, URLs WebDataset opens (``pipe:``, ``http://``), or a
list of those. Opening reads the card once and checks that every local shard exists; the class counts
(``index.parquet``) and the identity of the FID real-statistics cache are read on first use, once. No torch
here: the loader (pgrf.data.loader) streams the URLs, FID (pgrf.evaluate.metrics) uses the rest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgrf.errors import PgrfError
from pgrf.formats.card import CARD_FILE, DatasetCard, read_card
from pgrf.formats.shards import read_class_counts
from pgrf.pipeline.shards import sha256


@dataclass(frozen=True, eq=False)
class ShardSource:
    """Opened shards: ``name`` (as given, for messages), their ``urls``, and for a pack folder its ``folder`` and
    ``card``."""

    name: str
    urls: list[str]
    folder: Path | None = None
    card: DatasetCard | None = None

    @classmethod
    def open(cls, shards: str | Path | Sequence[str | Path]) -> ShardSource:
        """Open a pack folder, brace pattern, tar or URL (or a list of them); a missing shard or folder, or a card
        that is missing, invalid or lists no shards, is a one-line PgrfError."""
        if isinstance(shards, (list, tuple)):
            parts = [cls.open(item) for item in shards]
            return cls(", ".join(part.name for part in parts), [url for part in parts for url in part.urls])
        text = str(shards)
        if _remote(text):
            return cls(text, _expand(text))
        path = Path(text)
        if path.is_dir():
            return cls._pack_folder(path)
        urls = _expand(text)
        missing = [url for url in urls if not Path(url).is_file()]
        if missing:
            raise PgrfError(f"{missing[0]}: no such shard; give a pgrf pack folder, a tar, a brace pattern or a URL")
        return cls(text, urls)

    @classmethod
    def _pack_folder(cls, folder: Path) -> ShardSource:
        card = read_card(folder)
        urls = [str(folder / entry.file) for entry in card.shards]
        if not urls:
            raise PgrfError(f"{folder}: {CARD_FILE} lists no shards; re-run pgrf pack")
        missing = [url for url in urls if not Path(url).is_file()]
        if missing:
            raise PgrfError(f"{missing[0]}: listed in {folder / CARD_FILE} but missing; re-run pgrf pack or pgrf verify")
        return cls(str(folder), urls, folder, card)

    def pack_card(self) -> DatasetCard:
        """The dataset card; shards that are not a pack folder are a one-line PgrfError."""
        if self.card is None:
            raise PgrfError(f"{self.name}: not a pgrf pack folder; give the --out folder of pgrf pack")
        return self.card

    @functools.cached_property
    def class_counts(self) -> list[int] | None:
        """Samples of each class index, from a pack folder's ``index.parquet``; None without one."""
        return read_class_counts(self.folder) if self.folder is not None else None

    @functools.cached_property
    def identity(self) -> tuple[str, Path] | None:
        """(key of the shards' content, folder for the FID statistics cache): the card's shard hashes, or the
        hashes of loose tar files; None for remote shards (not cached)."""
        if self.card is not None and self.folder is not None:
            return json.dumps([[s.file, s.sha256] for s in self.card.shards]), self.folder
        if not self.urls or any(_remote(url) for url in self.urls):
            return None
        files = [Path(url) for url in self.urls]
        return json.dumps([[f.name, sha256(f)] for f in files]), files[0].parent


Shards = ShardSource | str | Path | Sequence[str | Path]
"""What the loader and FID take: an opened source, or what ``ShardSource.open`` opens."""


def as_source(shards: Shards) -> ShardSource:
    """``shards`` itself when already opened, else ``ShardSource.open(shards)``."""
    return shards if isinstance(shards, ShardSource) else ShardSource.open(shards)


def _remote(text: str) -> bool:
    return text.startswith("pipe:") or "://" in text


def _expand(text: str) -> list[str]:
    """WebDataset's expansion of a brace pattern or URL list (imported here: a pack folder needs neither it nor torch)."""
    from webdataset.shardlists import expand_urls

    return expand_urls(text)
