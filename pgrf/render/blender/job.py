"""The unit of work sent to a render worker (picklable, no bpy)."""

from __future__ import annotations

from dataclasses import dataclass

from pgrf.config import RenderSettings
from pgrf.formats.catalog import ModelSpec


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker needs to render one model."""

    spec: ModelSpec
    settings: RenderSettings
    category_dir: str
    min_mean_alpha: float
    threads: int = 0
    force: bool = False
