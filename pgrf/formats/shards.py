"""The shard folder's layout (DESIGN.md §3): file names, sample keys and members, and reading the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgrf.errors import PgrfError

CARD_FILE = "dataset.json"
INDEX_FILE = "index.parquet"
CARD_SCHEMA = 1
MEMBERS = ("png", "json", "cls")
"""Every sample's members, in the order they are written."""

SAMPLE_FIELDS = ("model_id", "asset_id", "category", "class", "class_name", "view", "yaw", "pitch", "radius", "fov",
                 "c2w", "intrinsics", "mirrored", "resolution")
"""Keys of every sample's json member."""

MIRROR_SUFFIX = "_m"


def sample_key(model_id: str, view: int, mirrored: bool) -> str:
    """``<model_id>_v<view:04d>`` plus ``_m`` for a mirrored copy (no dots: WebDataset splits keys at dots)."""
    return f"{model_id}_v{view:04d}{MIRROR_SUFFIX if mirrored else ''}"


def original_key(key: str) -> str:
    """The key of the view a mirrored sample was made from."""
    return key.removesuffix(MIRROR_SUFFIX)


def read_card(shards_dir: Path) -> dict[str, Any]:
    """The dataset card of a shard folder, or a one-line error saying what is wrong."""
    path = shards_dir / CARD_FILE
    if not shards_dir.is_dir():
        raise PgrfError(f"{shards_dir}: no such shard folder; give the --out folder of pgrf pack")
    if not path.is_file():
        raise PgrfError(f"{path}: missing; {shards_dir} is not a finished pgrf pack output (re-run pgrf pack)")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PgrfError(f"{path}: not valid JSON ({error}); re-run pgrf pack") from None
    if not isinstance(card, dict) or card.get("schema") != CARD_SCHEMA or not isinstance(card.get("shards"), list):
        raise PgrfError(f"{path}: not a pgrf dataset card of schema {CARD_SCHEMA}; re-run pgrf pack")
    return card
