"""``pgrf pack``'s options (their defaults are the CLI's); light to import, so the CLI starts fast."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgrf.errors import PgrfError
from pgrf.formats.card import BACKGROUNDS


@dataclass(frozen=True)
class PackOptions:
    """What ``pgrf pack`` makes of the renders."""

    resolution: int = 256
    mirror: bool = True
    background: str = "white"
    samples_per_shard: int = 1000
    seed: int = 0
    name: str = "dataset"
    min_mean_alpha: float | None = None  # None: each category's value from the config
    workers: int = 1
    skip_bad: bool = False

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise PgrfError(f"--background must be one of {', '.join(BACKGROUNDS)}; got {self.background!r}")
        if self.resolution <= 0 or self.samples_per_shard <= 0 or self.workers <= 0:
            raise PgrfError("--resolution, --samples-per-shard and --workers must be positive")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise PgrfError(f"--name {self.name!r} may only use letters, digits, '-' and '_' (it names the shard files)")
