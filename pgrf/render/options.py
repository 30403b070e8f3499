"""``pgrf render``'s options besides the render settings of the config: which share of the models this run takes."""

from __future__ import annotations

from dataclasses import dataclass

from pgrf.errors import PgrfError


@dataclass(frozen=True)
class RenderRun:
    """Which models one run renders (the ``[render]`` settings say how)."""

    shard_index: int = 0
    """This run's share of the models (0-based), when ``num_shards`` runs share a library."""
    num_shards: int = 1
    limit: int | None = None
    """Render at most this many models per category in this run."""
    force: bool = False
    """Re-render finished and filtered models."""

    def __post_init__(self) -> None:
        if not 0 <= self.shard_index < self.num_shards:
            raise PgrfError(f"--shard-index must be in [0, --num-shards); got {self.shard_index} of {self.num_shards}")
        if self.limit is not None and self.limit < 0:
            raise PgrfError(f"--limit must be 0 or more; got {self.limit}")
