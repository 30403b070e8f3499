"""The shard folder's samples (docs/formats.md): keys, members, each sample's json, index rows and the
pack journal, as typed contracts (pgrf.formats.schema). The dataset card is in ``pgrf.formats.card``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pgrf import fileio
from pgrf.cameras import mirror_angles, mirror_c2w
from pgrf.formats.schema import FormatError, check_matrix, from_json, key, to_json

INDEX_FILE = "index.parquet"
JOURNAL_FILE = ".pack-journal.jsonl"
MEMBERS = ("png", "json", "cls")
"""Every sample's members, in the order they are written."""

MIRROR_SUFFIX = "_m"


def sample_key(model_id: str, view: int, mirrored: bool) -> str:
    """``<model_id>_v<view:04d>`` plus ``_m`` for a mirrored copy (no dots: WebDataset splits keys at dots)."""
    return f"{model_id}_v{view:04d}{MIRROR_SUFFIX if mirrored else ''}"


def original_key(key: str) -> str:
    """The key of the view a mirrored sample was made from."""
    return key.removesuffix(MIRROR_SUFFIX)


@dataclass(frozen=True)
class SampleMeta:
    """A sample's ``<key>.json`` member: where it comes from, its class and its camera (docs/cameras.md)."""

    model_id: str
    asset_id: str
    category: str
    class_index: int = key("class")
    class_name: str
    view: int
    yaw: float
    pitch: float
    radius: float
    fov: float
    c2w: list[list[float]]
    intrinsics: list[list[float]]
    mirrored: bool
    resolution: int

    def __post_init__(self) -> None:
        check_matrix(self.c2w, 4, "c2w")
        check_matrix(self.intrinsics, 3, "intrinsics")

    @property
    def key(self) -> str:
        return sample_key(self.model_id, self.view, self.mirrored)

    def mirrored_copy(self) -> SampleMeta:
        """The sample of the horizontally flipped image: ``S · c2w · F``, −yaw, same pitch (an involution)."""
        yaw, pitch = mirror_angles(self.yaw, self.pitch)
        return replace(self, yaw=yaw, pitch=pitch, c2w=mirror_c2w(self.c2w).tolist(), mirrored=not self.mirrored)

    def member(self) -> bytes:
        """The json member's bytes (keys sorted)."""
        return json.dumps(to_json(self), sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes, where: str) -> SampleMeta:
        """A json member, validated; a bad one is a one-line FormatError naming ``where`` and the field."""
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            document = None
        if document is None:
            raise FormatError(f"{where}: json member missing or not valid JSON; run pgrf verify, then re-run pgrf pack")
        return from_json(cls, document, where, "run pgrf verify, then re-run pgrf pack")


INDEX_COLUMNS = ("key", "shard", "position", "model_id", "asset_id", "category", "class", "view", "yaw", "pitch",
                 "mirrored", "mean_alpha")
"""The columns of ``index.parquet``, in order."""


def index_row(meta: SampleMeta, shard: str, position: int, mean_alpha: float) -> dict[str, Any]:
    """One row of ``index.parquet``."""
    values = (meta.key, shard, position, meta.model_id, meta.asset_id, meta.category, meta.class_index, meta.view,
              meta.yaw, meta.pitch, meta.mirrored, mean_alpha)
    return dict(zip(INDEX_COLUMNS, values))


def read_class_counts(shards_dir: Path) -> list[int] | None:
    """Samples of each class index (the ``class`` column of ``index.parquet``; index i: class i), None without
    the file; an unreadable one is a one-line FormatError."""
    path = shards_dir / INDEX_FILE
    if not path.is_file():
        return None
    try:
        labels = pq.read_table(path, columns=["class"]).column("class").to_numpy()
    except (OSError, pa.ArrowException) as error:
        raise FormatError(f"{path}: unreadable ({str(error).splitlines()[0]}); re-run pgrf pack") from None
    return np.bincount(labels[labels >= 0].astype(np.int64)).tolist()


@dataclass
class ShardRecord:
    """A finished shard, as journaled in ``.pack-journal.jsonl``: its plan digest, sha256, keys and skipped files."""

    file: str
    digest: str
    sha256: str = ""
    keys: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)

    @staticmethod
    def read_journal(out: Path) -> dict[str, ShardRecord]:
        """The journaled shards of a pack folder, by file name (the latest entry of each)."""
        path = out / JOURNAL_FILE
        entries = (from_json(ShardRecord, data, str(path), f"delete {path} and re-run pgrf pack")
                   for data in fileio.read_log(out, JOURNAL_FILE))
        return {entry.file: entry for entry in entries}

    def journal(self, out: Path) -> None:
        """Append this shard to the pack folder's journal."""
        fileio.append_log(out, JOURNAL_FILE, {"event": "shard", **to_json(self)})
