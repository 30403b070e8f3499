"""Camera rays through the pixels of a patch, from the dataset's camera model, bounded by the scene box."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pgrf.cameras import SCENE_BOUND, SCENE_RADIUS
from pgrf.model.patches import patch_coordinates

MIN_NEAR = 1e-3
"""Rays start at least this far in front of the camera."""


@dataclass(frozen=True)
class Rays:
    """A batch of rays: origins (B, 3), unit directions (B, N, 3), near and far distances (B, N).

    A ray that misses the scene box has near = far = the camera's distance + ``SCENE_RADIUS``, past
    everything in the scene (an empty segment: it renders the background, at the depth of that far plane).
    """

    origins: torch.Tensor
    directions: torch.Tensor
    near: torch.Tensor
    far: torch.Tensor

    def chunk(self, start: int, stop: int) -> Rays:
        """Rays ``start:stop`` of every batch element."""
        return Rays(self.origins, self.directions[:, start:stop], self.near[:, start:stop], self.far[:, start:stop])


def unproject(points: torch.Tensor, c2w: torch.Tensor, intrinsics: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch inverse of ``pgrf.cameras.project`` for rays: image points (B, N, 2) in units of the image size
    (pixel coordinates / size) → ray origins (B, 3) and unit world directions (B, N, 3).

    ``c2w`` (B, 4, 4) and ``intrinsics`` (B, 3, 3) as stored.
    """
    k = intrinsics.to(points.dtype)
    x = (points[..., 0] - k[:, None, 0, 2]) / k[:, None, 0, 0]
    y = (points[..., 1] - k[:, None, 1, 2]) / k[:, None, 1, 1]
    directions = torch.stack([x, y, torch.ones_like(x)], dim=-1) @ c2w[:, :3, :3].to(points.dtype).transpose(1, 2)
    return c2w[:, :3, 3].to(points.dtype), directions / directions.norm(dim=-1, keepdim=True)


def box_bounds(origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (B, N) where rays from ``origins`` (B, 3) along unit ``directions`` (B, N, 3) enter and
    leave the scene box [-SCENE_BOUND, SCENE_BOUND]³ (slab method), not before ``MIN_NEAR``; both are the
    origin's distance + ``SCENE_RADIUS`` for rays that miss it."""
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    low = (-SCENE_BOUND - origins[:, None, :]) / safe
    high = (SCENE_BOUND - origins[:, None, :]) / safe
    enter = torch.minimum(low, high).amax(dim=-1).clamp(min=MIN_NEAR)
    leave = torch.maximum(low, high).amin(dim=-1)
    miss = leave <= enter
    beyond = (origins.norm(dim=-1, keepdim=True) + SCENE_RADIUS).expand_as(enter)
    return torch.where(miss, beyond, enter), torch.where(miss, beyond, leave)


def patch_rays(c2w: torch.Tensor, intrinsics: torch.Tensor, patch: torch.Tensor, size: int) -> Rays:
    """Rays through the ``size``² pixel centres of ``patch`` (B, 3), in row-major order (row j, column i).

    ``c2w`` (B, 4, 4) OpenCV camera-to-world and ``intrinsics`` (B, 3, 3) normalised K, as stored in
    cameras.json and the shards. Each ray's near and far are where it enters and leaves the scene box
    [-1, 1]³ (``SCENE_BOUND``), outside which density is zero, so every sample lands where the object can be.
    """
    dtype = torch.float32
    c2w, intrinsics = c2w.to(dtype), intrinsics.to(dtype)
    points = patch_coordinates(patch.to(device=c2w.device, dtype=dtype), size).reshape(patch.shape[0], -1, 2)
    origins, directions = unproject(points, c2w, intrinsics)
    near, far = box_bounds(origins, directions)
    return Rays(origins, directions, near, far)
