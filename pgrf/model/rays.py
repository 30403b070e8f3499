"""Camera rays through the pixels of a patch, from the dataset's camera model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pgrf.cameras import SCENE_RADIUS, unproject
from pgrf.model.patches import patch_coordinates


@dataclass(frozen=True)
class Rays:
    """A batch of rays: origins (B, 3), unit directions (B, N, 3), near and far distances (B, 1)."""

    origins: torch.Tensor
    directions: torch.Tensor
    near: torch.Tensor
    far: torch.Tensor

    def chunk(self, start: int, stop: int) -> Rays:
        """Rays ``start:stop`` of every batch element."""
        return Rays(self.origins, self.directions[:, start:stop], self.near, self.far)


def patch_rays(c2w: torch.Tensor, intrinsics: torch.Tensor, patch: torch.Tensor, size: int) -> Rays:
    """Rays through the ``size``² pixel centres of ``patch`` (B, 3), in row-major order (row j, column i).

    ``c2w`` (B, 4, 4) OpenCV camera-to-world and ``intrinsics`` (B, 3, 3) normalised K, as stored in
    cameras.json and the shards. Near and far are the camera's distance to the origin ∓ ``SCENE_RADIUS``
    (the scene box's half-diagonal), so every ray segment covers the box.
    """
    dtype = torch.float32
    c2w, intrinsics = c2w.to(dtype), intrinsics.to(dtype)
    points = patch_coordinates(patch.to(device=c2w.device, dtype=dtype), size).reshape(patch.shape[0], -1, 2)
    origins, directions = unproject(points, c2w, intrinsics)
    distance = origins.norm(dim=-1, keepdim=True)
    return Rays(origins, directions, (distance - SCENE_RADIUS).clamp(min=1e-3), distance + SCENE_RADIUS)
