"""The dataset card ``dataset.json`` of a shard folder (docs/formats.md), and the slice of it a trained
generator keeps (``DatasetInfo``, stored in checkpoints)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pgrf.fileio import atomic_path
from pgrf.formats.schema import FormatError, Invalid, from_json, to_json

CARD_FILE = "dataset.json"
CARD_SCHEMA = 1
CAMERA_CONVENTION = "opencv_c2w+normalized_K (pgrf/cameras.py)"
Background = Literal["white", "black"]
BACKGROUNDS: dict[Background, int] = {"white": 255, "black": 0}
"""The card's ``background`` values and the 8-bit grey each composites over."""


def background_level(name: str) -> float:
    """A background as a colour level in [0, 1] (the volume renderer's range)."""
    return BACKGROUNDS[name] / 255


@dataclass(frozen=True)
class CameraModel:
    """The cameras every sample was rendered with: sphere radius, full field of view, matrix convention."""

    radius: float
    fov: float
    convention: str = CAMERA_CONVENTION


@dataclass(frozen=True)
class Counts:
    samples: int
    unique_views: int
    models: int
    classes: int


@dataclass(frozen=True)
class Filters:
    """Each filter's threshold and how many models it removed. Keys: ``min_mean_alpha`` (threshold per category),
    ``min_dim_product``, ``exclude`` (the exclude file per category; removed: models named there, rendered or not)."""

    thresholds: dict[str, Any]
    removed_models: dict[str, int]


@dataclass(frozen=True)
class SkippedBad:
    """Samples left out because their PNG could not be read (``pgrf pack --skip-bad``)."""

    samples: int
    files: list[str]


@dataclass(frozen=True)
class ShardEntry:
    file: str
    samples: int
    sha256: str


@dataclass(frozen=True)
class DatasetCard:
    """``dataset.json``: what the shards hold and how they were made."""

    schema: int
    name: str
    resolution: int
    background: str
    camera: CameraModel
    counts: Counts
    class_names: list[str]
    mirror: bool
    seed: int
    filters: Filters
    skipped_bad: SkippedBad
    inputs: list[str]
    shards: list[ShardEntry]
    pgrf_version: str
    created: str

    def __post_init__(self) -> None:
        if self.schema != CARD_SCHEMA:
            raise Invalid(f"schema {self.schema} is not {CARD_SCHEMA}")

    def info(self, class_names: list[str], shards: str) -> DatasetInfo:
        """What a generator trained on these shards keeps (``class_names``: the classes it is conditioned on)."""
        return DatasetInfo(self.resolution, self.camera.radius, self.camera.fov, class_names, self.mirror, shards,
                           self.background)


def write_card(shards_dir: Path, card: DatasetCard) -> None:
    """Write ``dataset.json`` atomically."""
    with atomic_path(shards_dir / CARD_FILE) as partial:
        partial.write_text(json.dumps(to_json(card), indent=2), encoding="utf-8")


def read_card(shards_dir: Path) -> DatasetCard:
    """The dataset card of a shard folder, or a one-line error saying what is wrong."""
    path = shards_dir / CARD_FILE
    if not shards_dir.is_dir():
        raise FormatError(f"{shards_dir}: no such shard folder; give the --out folder of pgrf pack")
    if not path.is_file():
        raise FormatError(f"{path}: missing; {shards_dir} is not a finished pgrf pack output (re-run pgrf pack)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"{path}: not valid JSON ({error}); re-run pgrf pack") from None
    if not isinstance(data, dict) or data.get("schema") != CARD_SCHEMA:
        raise FormatError(f"{path}: not a pgrf dataset card of schema {CARD_SCHEMA}; re-run pgrf pack")
    return from_json(DatasetCard, data, str(path), "re-run pgrf pack")


@dataclass(frozen=True)
class DatasetInfo:
    """What a trained G knows of its data: image size, camera model, the classes it is conditioned on
    (empty when unconditional), whether the data were mirrored, and where the shards were."""

    resolution: int
    radius: float
    fov: float
    class_names: list[str]
    mirror: bool = False
    shards: str = ""
    background: str = "white"
    """The colour the reals were composited over (checkpoints before this field: white); G composites over it too."""

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise Invalid(f"field 'background' must be one of {', '.join(BACKGROUNDS)}; got {self.background!r}")
