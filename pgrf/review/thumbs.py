"""Thumbnails for ``pgrf review``: contact strips of a model's views and (sample, mirrored twin) pairs from shards.

Thumbnails are WebP with alpha (a 4 × 128² strip of a real render is a few kB), made in worker processes,
each written atomically under a name that carries a digest of its source, so a re-run finds the ones
it made before and makes only the new ones; an interrupted run keeps what it finished.
"""

from __future__ import annotations

import hashlib
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pgrf.fileio import atomic_path
from pgrf.formats.images import BadImage, decode_png, read_rgba
from pgrf.formats.renders import RenderedView
from pgrf.pipeline.shards import iter_samples

THUMB_SUFFIX = ".webp"
THUMB_QUALITY = 80
THUMB_METHOD = 2
"""libwebp's effort (0-6): 2 encodes a strip ~2x faster than the default 4 for ~15 % more bytes."""
THUMB_VERSION = 1
"""Part of every thumbnail's digest: bump it when the way thumbnails look changes."""
SIDE_PITCH = (math.pi / 4, 3 * math.pi / 4)
"""Strip views are taken from this pitch band (from the side) when the model has views there."""

KEPT = "finished thumbnails are kept"
"""What a run that stops keeps (for the message of a dead worker)."""


def thumb_name(stem: str, *source: Any) -> str:
    """``<stem>-<digest>.webp``: the digest covers ``source`` and the thumbnail version, so a changed source gets a new name
    (and a browser never shows a stale cached image)."""
    digest = hashlib.sha256(repr((THUMB_VERSION, *source)).encode()).hexdigest()[:10]
    return f"{stem}-{digest}{THUMB_SUFFIX}"


def pick_views(views: list[RenderedView], count: int) -> list[RenderedView]:
    """``count`` views going round the model: from the side band when there are enough, each the closest in yaw to
    one of ``count`` evenly spaced azimuths, ordered by yaw."""
    side = [v for v in views if SIDE_PITCH[0] <= v.pitch <= SIDE_PITCH[1]]
    pool = side if len(side) >= count else list(views)
    chosen: dict[int, RenderedView] = {}
    for k in range(min(count, len(pool))):
        target = -math.pi + (k + 0.5) * 2 * math.pi / count
        best = min((v for v in pool if v.index not in chosen), key=lambda v: abs(math.remainder(v.yaw - target, 2 * math.pi)))
        chosen[best.index] = best
    return sorted(chosen.values(), key=lambda v: v.yaw)


def shrink(rgba: np.ndarray, size: int) -> Image.Image:
    """uint8 RGBA or RGB (H, W, C) → a size² RGBA image. Pillow's reduce and resize average RGBA premultiplied by
    alpha, so transparent pixels' colour never bleeds into the silhouette (no halos)."""
    image = Image.fromarray(rgba, "RGBA" if rgba.shape[2] == 4 else "RGB").convert("RGBA")
    if image.width == image.height and image.width % size == 0:
        return image.reduce(image.width // size)  # a box mean over whole blocks, ~2x faster than resize
    resample = Image.Resampling.BOX if size <= min(image.size) else Image.Resampling.BICUBIC
    return image.resize((size, size), resample)


def write_strip(target: Path, tiles: list[Image.Image]) -> None:
    """Tiles side by side, saved atomically as WebP with alpha."""
    size = tiles[0].height
    strip = Image.new("RGBA", (size * len(tiles), size), (0, 0, 0, 0))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (i * size, 0))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as partial:
        strip.save(partial, "WEBP", quality=THUMB_QUALITY, alpha_quality=THUMB_QUALITY, method=THUMB_METHOD)


def strip_thumbnail(images: list[Path], target: Path, size: int) -> str:
    """Make a model's contact strip of ``images`` at ``target`` unless it exists; returns the error ("" when fine)."""
    if not target.is_file():
        try:
            write_strip(target, [shrink(read_rgba(image), size) for image in images])
        except BadImage as error:
            return str(error)
    return ""


@dataclass(frozen=True)
class PairJob:
    """Shard samples and their mirrored twins, read from the shards that hold them: {target: (key, twin key or None)}."""

    shards: tuple[Path, ...]
    pairs: tuple[tuple[Path, str, str | None], ...]
    size: int

    def run(self) -> dict[Path, str]:
        """Make the pair strips that do not exist yet; returns {target: error} ("" when fine)."""
        todo = [(target, key, twin) for target, key, twin in self.pairs if not target.is_file()]
        wanted = {k for _, key, twin in todo for k in (key, twin) if k}
        images: dict[str, bytes] = {}
        errors: dict[Path, str] = {}
        for shard in self.shards if wanted else ():
            try:
                for key, members in iter_samples(shard):
                    if key in wanted and "png" in members:
                        images[key] = members["png"]
            except (tarfile.TarError, OSError, EOFError) as error:
                errors.update({target: f"{shard.name}: not a readable tar ({error}); run pgrf verify" for target, _, _ in todo})
        for target, key, twin in todo:
            if target in errors:
                continue
            try:
                tiles = [shrink(decode_png(images[k], "RGB", f"{k}.png"), self.size) for k in (key, twin) if k]
                write_strip(target, tiles)
            except KeyError as missing:
                errors[target] = f"sample {missing.args[0]} not found in {', '.join(s.name for s in self.shards)}; run pgrf verify"
            except BadImage as error:
                errors[target] = str(error)
        return {target: errors.get(target, "") for target, _, _ in self.pairs}


def make_pairs(job: PairJob) -> dict[Path, str]:
    """``job.run()`` as a module-level function (what a worker process is handed)."""
    return job.run()
