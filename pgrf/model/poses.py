"""Cameras of generated images: poses drawn like the dataset's (uniform on the sphere), as tensors."""

from __future__ import annotations

import numpy as np
import torch

from pgrf.cameras import look_at_origin, normalized_intrinsics, sample_angles


def camera_tensors(yaw: np.ndarray, pitch: np.ndarray, radius: float, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``c2w`` (N, 4, 4) and ``intrinsics`` (N, 3, 3) of the views (yaw, pitch), as in the shards."""
    c2w = np.stack([look_at_origin(float(y), float(p), radius) for y, p in zip(yaw, pitch)])
    intrinsics = np.repeat(normalized_intrinsics(fov)[None], len(c2w), axis=0)
    return torch.from_numpy(c2w).float(), torch.from_numpy(intrinsics).float()


def sample_poses(n: int, radius: float, fov: float, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n poses uniform on the sphere (the dataset's distribution): ``c2w``, ``intrinsics``, ``angles`` (N, 2) yaw/pitch."""
    yaw, pitch = sample_angles(n, rng)
    c2w, intrinsics = camera_tensors(yaw, pitch, radius, fov)
    return c2w, intrinsics, torch.from_numpy(np.stack([yaw, pitch], axis=1)).float()
