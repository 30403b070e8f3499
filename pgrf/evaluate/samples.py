"""Sample grids of a trained G: one tile per seed, from a fixed camera or a random camera per seed."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pgrf.errors import PgrfError
from pgrf.evaluate.views import (
    image_grid,
    render_views,
    seed_classes,
    seed_planes,
    to_uint8,
)
from pgrf.fileio import atomic_path
from pgrf.formats.card import DatasetInfo
from pgrf.model.generator import Generator
from pgrf.model.poses import camera_tensors, sample_poses

DEFAULT_YAW = math.radians(30.0)
DEFAULT_PITCH = math.radians(70.0)
"""The fixed camera of sample grids: yaw 30°, 20° above the horizon (pitch is the polar angle from +Z)."""


def ring_cameras(yaws: np.ndarray, pitch: float, info: DatasetInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """``c2w`` and ``intrinsics`` of cameras at ``yaws`` around the object, all at ``pitch``, with the data's radius and fov."""
    yaws = np.asarray(yaws, dtype=np.float64)
    return camera_tensors(yaws, np.full(len(yaws), pitch), info.radius, info.fov)


def seed_cameras(seeds: list[int], info: DatasetInfo, yaw: float = DEFAULT_YAW, pitch: float = DEFAULT_PITCH,
                 random_poses: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``c2w`` and ``intrinsics`` per seed: the fixed (yaw, pitch), or one pose drawn like the data's from each seed."""
    if not random_poses:
        return ring_cameras(np.full(len(seeds), yaw), pitch, info)
    poses = [sample_poses(1, info.radius, info.fov, np.random.default_rng([seed, 2]))[:2] for seed in seeds]
    return torch.cat([p[0] for p in poses]), torch.cat([p[1] for p in poses])


@torch.no_grad()
def render_samples(generator: Generator, info: DatasetInfo, seeds: list[int], resolution: int, psi: float = 1.0,
                   class_id: int | None = None, yaw: float = DEFAULT_YAW, pitch: float = DEFAULT_PITCH,
                   random_poses: bool = False, batch: int = 8, chunk: int = 8192) -> np.ndarray:
    """(N, R, R, 3) uint8 images of the seeds, rendered ``batch`` seeds at a time on G's device."""
    if not seeds:
        raise PgrfError("no seeds given")
    device = next(generator.parameters()).device
    classes = seed_classes(seeds, generator.config.c_dim, class_id)
    c2w, intrinsics = seed_cameras(seeds, info, yaw, pitch, random_poses)
    tiles = []
    for start in range(0, len(seeds), batch):
        part = slice(start, start + batch)
        planes = seed_planes(generator, seeds[part], classes[part], psi, device)
        views = render_views(generator, planes, c2w[part], intrinsics[part], resolution, chunk)
        tiles.append(to_uint8(views.rgb).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(tiles)


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise PgrfError(f"image file must end in .png, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        Image.fromarray(image).save(partial, format="PNG")
    return path


def sample_grid(generator: Generator, info: DatasetInfo, seeds: list[int], resolution: int, psi: float = 1.0,
                class_id: int | None = None, yaw: float = DEFAULT_YAW, pitch: float = DEFAULT_PITCH,
                random_poses: bool = False, columns: int | None = None, batch: int = 8, chunk: int = 8192) -> np.ndarray:
    """One (H, W, 3) uint8 grid of the seeds' samples, row-major in seed order, 1 px white between tiles."""
    tiles = render_samples(generator, info, seeds, resolution, psi, class_id, yaw, pitch, random_poses, batch, chunk)
    return image_grid(tiles, columns, padding=1 if len(seeds) > 1 else 0)
