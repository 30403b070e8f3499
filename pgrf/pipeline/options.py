"""The options of ``pgrf pack``, ``pgrf stats`` and ``pgrf export`` (their defaults are the CLI's); light to import,
so the CLI starts fast."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pgrf.choices import check_choices
from pgrf.errors import PgrfError
from pgrf.formats.card import Background


@dataclass(frozen=True)
class PackOptions:
    """What ``pgrf pack`` makes of the renders."""

    resolution: int = 256
    mirror: bool = True
    background: Background = "white"
    samples_per_shard: int = 1000
    seed: int = 0
    name: str | None = None
    """Shard name prefix; None: the first input's name (the render folder, the zip)."""
    min_mean_alpha: float | None = None
    """Leave out models below this mean alpha; None: each category's filters (pipeline.filters)."""
    workers: int = 1
    skip_bad: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
        if self.resolution <= 0 or self.samples_per_shard <= 0 or self.workers <= 0:
            raise PgrfError("--resolution, --samples-per-shard and --workers must be positive")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise PgrfError(f"--name {self.name!r} may only use letters, digits, '-' and '_' (it names the shard files)")


@dataclass(frozen=True)
class StatsOptions:
    """What ``pgrf stats`` counts of renders."""

    min_mean_alpha: float | None = None
    """Leave out models below this mean alpha; None: each category's filters (pipeline.filters)."""


@dataclass(frozen=True)
class ExportOptions:
    """What ``pgrf export`` writes as labels."""

    labels: Literal["camera", "class"] = "camera"
    """EG3D's 25-float cameras, or class indices."""

    def __post_init__(self) -> None:
        check_choices(self)
