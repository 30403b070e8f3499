"""Deterministic rendering of a trained G for inference: seeds, classes, planes, views, grids.

Every output is a function of its seeds alone: the tri-planes of a seed are synthesised once with
constant noise (no ray jitter, no density noise, the average w untouched), then any number of
cameras are rendered from the same planes. ``render_views`` gives exactly the pixels of
``Generator.render_image`` and also the opacity and depth that images alone do not carry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pgrf.cameras import SCENE_RADIUS
from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetInfo
from pgrf.model.generator import Generator, seeded_latents
from pgrf.model.patches import full_image_patches
from pgrf.model.rays import patch_rays


def parse_seeds(text: str) -> list[int]:
    """Seeds from ``0-15``, ``1,5,7`` or a mix (``0-3,10``), in the order given; a one-line error otherwise."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-"))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise PgrfError(f"bad seeds {text!r}: use a range like 0-15, a list like 1,5,7, or both") from None
    if any(s >= 2**32 for s in seeds):
        raise PgrfError(f"seeds must be in [0, 2^32), got {text!r}")
    return seeds


def class_index(value: str | None, class_names: list[str]) -> int | None:
    """The class given by index or name (``--class``), or None; a one-line error for an unknown class."""
    if value is None:
        return None
    if not class_names:
        raise PgrfError("--class: this checkpoint's dataset has no classes")
    if value in class_names:
        return class_names.index(value)
    if value.isdigit() and int(value) < len(class_names):
        return int(value)
    raise PgrfError(f"unknown class {value!r}; choose an index below {len(class_names)} or one of: "
                    + ", ".join(class_names))


def class_labels(c_dim: int, classes: list[int]) -> torch.Tensor | None:
    """One-hot labels (N, c_dim) for G, or None for an unconditional G."""
    if c_dim == 0:
        return None
    if any(not 0 <= k < c_dim for k in classes):
        raise PgrfError(f"class index out of range for a generator with {c_dim} classes")
    return torch.nn.functional.one_hot(torch.tensor(classes, dtype=torch.int64), c_dim).float()


def seed_classes(seeds: list[int], c_dim: int, fixed: int | None = None) -> list[int]:
    """Each seed's class: ``fixed`` when given, else drawn uniformly from the seed (0s when unconditional)."""
    if c_dim == 0:
        return [0] * len(seeds)
    if fixed is not None:
        return [fixed] * len(seeds)
    return [int(np.random.default_rng([seed, 1]).integers(c_dim)) for seed in seeds]


@torch.no_grad()
def synthesize_planes(generator: Generator, z: torch.Tensor, c: torch.Tensor | None, psi: float = 1.0) -> torch.Tensor:
    """Tri-planes as ``render_image`` makes them: constant noise, average w not updated."""
    ws = generator.mapping(z, c, psi=psi, update_w_avg=False)
    return generator.synthesis(ws, "const")


def seed_planes(generator: Generator, seeds: list[int], classes: list[int], psi: float,
                device: torch.device | str) -> torch.Tensor:
    """Tri-planes of the seeds' latents (``seeded_latents``) with their classes."""
    z = seeded_latents(seeds, generator.config.z_dim).to(device)
    c = class_labels(generator.config.c_dim, classes)
    return synthesize_planes(generator, z, None if c is None else c.to(device), psi)


@dataclass(frozen=True)
class Views:
    """Rendered views: ``rgb`` (B, 3, R, R) in [-1, 1] over white, ``alpha`` (B, 1, R, R) opacity in [0, 1],
    ``depth`` (B, 1, R, R) expected distance along the ray of the opaque part (``far`` where empty)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


@torch.no_grad()
def render_views(generator: Generator, planes: torch.Tensor, c2w: torch.Tensor, intrinsics: torch.Tensor,
                 resolution: int, chunk: int = 8192) -> Views:
    """Render camera b from planes b, ``chunk`` rays per image at a time, without jitter or noise."""
    if resolution < 1 or chunk < 1:
        raise PgrfError(f"resolution and chunk must be positive, got {resolution} and {chunk}")
    batch = planes.shape[0]
    device = planes.device
    rays = patch_rays(c2w.to(device), intrinsics.to(device), full_image_patches(batch, device), resolution)
    rgb, alpha, depth = [], [], []
    for start in range(0, rays.directions.shape[1], chunk):
        part = rays.chunk(start, start + chunk)
        out = generator.render(planes, part, jitter=False)
        rgb.append(out.rgb)
        alpha.append(out.opacity)
        surface = (out.weights * out.t).sum(dim=-1) / out.opacity.clamp(min=1e-6)
        depth.append(torch.where(out.opacity > 1e-6, surface, part.far))

    def image(parts: list[torch.Tensor]) -> torch.Tensor:
        values = torch.cat(parts, dim=1)
        values = values if values.ndim == 3 else values[..., None]
        return values.transpose(1, 2).reshape(batch, values.shape[-1], resolution, resolution)

    return Views(image(rgb) * 2.0 - 1.0, image(alpha), image(depth))


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] → uint8 [0, 255] with StyleGAN's rounding (x·127.5 + 128, clamped)."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def depth_image(views: Views, radius: float) -> torch.Tensor:
    """Depth as a grey image in [-1, 1] for display: near the camera bright, far dark, empty space black."""
    near, far = radius - SCENE_RADIUS, radius + SCENE_RADIUS
    closeness = ((far - views.depth) / (far - near)).clamp(0, 1) * views.alpha
    return (closeness * 2 - 1).expand(-1, 3, -1, -1)


def alpha_image(views: Views) -> torch.Tensor:
    """Opacity as a grey image in [-1, 1] (white = opaque)."""
    return (views.alpha * 2 - 1).expand(-1, 3, -1, -1)


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 0, fill: int = 255) -> np.ndarray:
    """(N, H, W, C) uint8 → one (rows·H, columns·W, C) image, row-major, with ``padding`` px between tiles.

    ``columns`` defaults to ⌈√N⌉; empty cells and padding are ``fill``.
    """
    count, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * height + (rows - 1) * padding, columns * width + (columns - 1) * padding, channels),
                   fill, np.uint8)
    for index, tile in enumerate(images):
        top, left = (index // columns) * (height + padding), (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = tile
    return grid


def dataset_resolution(info: DatasetInfo, resolution: int | None) -> int:
    """The requested render size, or the dataset's."""
    size = info.resolution if resolution is None else resolution
    if not 1 <= size <= 4096:
        raise PgrfError(f"--resolution must be in [1, 4096], got {size}")
    return size
