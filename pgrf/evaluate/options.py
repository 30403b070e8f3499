"""What ``pgrf fid``, ``sample``, ``video`` and ``mesh`` can be told (their flags), checked without torch."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pgrf.choices import check_choices
from pgrf.devices import check_device_name
from pgrf.errors import PgrfError

Protocol = Literal["fid50k_full", "fid2k"]
PROTOCOLS: dict[Protocol, int] = {"fid50k_full": 50000, "fid2k": 2048}
"""Generated images of each FID protocol (StyleGAN2-ADA's names); both use every real image."""


@dataclass(frozen=True)
class FidOptions:
    """How ``pgrf fid`` measures a generator."""

    protocol: Protocol = "fid50k_full"
    num: int | None = None
    """Generated images instead of the protocol's (a custom protocol)."""
    kid: bool = False
    truncation: float = 1.0
    seed: int = 0
    batch: int = 16
    workers: int = 0
    mirror: bool | None = None
    """Add each real image's mirrored copy; None: as the run did (``pgrf train --mirror``)."""
    device: str = "auto"

    def __post_init__(self) -> None:
        check_choices(self)
        check_device_name(self.device)

    @property
    def generated(self) -> int:
        """Generated images: ``num``, else the protocol's."""
        return self.num if self.num is not None else PROTOCOLS[self.protocol]


@dataclass(frozen=True)
class PictureOptions:
    """What every picture of a generator is drawn with."""

    truncation: float = 1.0
    """ψ toward the average w (1: none)."""
    class_: str | None = None
    """A class index or name; None: drawn per seed."""
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device_name(self.device)


@dataclass(frozen=True)
class GridOptions(PictureOptions):
    """A grid of seeds, one tile each."""

    seeds: str = "0-15"
    """A range ``0-15``, a list ``1,5,7``, or both."""
    resolution: int | None = None
    """Render size; None: the dataset's."""
    pitch: float = 70.0
    """Degrees, polar angle from +Z (90: level)."""
    columns: int | None = None


@dataclass(frozen=True)
class SampleOptions(GridOptions):
    """A grid of samples from one camera, or a random one per seed."""

    yaw: float = 30.0
    """Degrees, azimuth from +X toward +Y."""
    random_poses: bool = False
    batch: int = 8


@dataclass(frozen=True)
class VideoOptions(GridOptions):
    """A turntable of a grid of seeds."""

    seeds: str = "0-3"
    frames: int = 120
    fps: float = 30.0
    spiral: bool = False
    depth: bool = False
    alpha: bool = False


@dataclass(frozen=True)
class MeshOptions(PictureOptions):
    """A mesh of one seed's density."""

    seed: int = 0
    resolution: int = 256
    """Density samples per axis over [-1, 1]."""
    threshold: str = "auto"
    """The surface's density level σ, or auto (``level``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.resolution < 2:
            raise PgrfError(f"--resolution must be at least 2, got {self.resolution}")
        density_level(self.threshold)  # a bad threshold stops before any work

    @property
    def level(self) -> float | None:
        """``threshold`` as a number; None for auto."""
        return density_level(self.threshold)


def density_level(text: str) -> float | None:
    """``--threshold``: None for auto, else a finite number."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise PgrfError(f"--threshold must be auto or a density level (a number); got {text!r}")
    return value
