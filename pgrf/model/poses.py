"""Cameras of generated images: poses drawn like the dataset's (uniform on the sphere), as tensors.

``sample_poses`` draws with numpy on the host (evaluation: the same poses on every machine); ``draw_poses`` draws a
training step's on the device, from its ``Draws``, with the same law and the same camera convention."""

from __future__ import annotations

import math

import numpy as np
import torch

from pgrf.cameras import POLE_EPS, look_at_origin, normalized_intrinsics, sample_angles
from pgrf.model.draws import Draws


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


def draw_poses(draws: Draws, radius: float, fov: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``sample_poses`` on the device of ``draws`` (one pose per row): ``c2w``, ``intrinsics``, ``angles``."""
    yaw = draws.rand(dtype=torch.float64) * (2 * math.pi) - math.pi
    pitch = torch.arccos(draws.rand(dtype=torch.float64) * 2 - 1).clamp(POLE_EPS, math.pi - POLE_EPS)
    return (look_at_tensors(yaw, pitch, radius).float(), _intrinsics(fov, len(yaw), yaw.device),
            torch.stack([yaw, pitch], dim=1).float())


def look_at_tensors(yaw: torch.Tensor, pitch: torch.Tensor, radius: float) -> torch.Tensor:
    """``cameras.look_at_origin`` of each (yaw, pitch) (N,), in their dtype and on their device: (N, 4, 4)."""
    position = radius * torch.stack([pitch.sin() * yaw.cos(), pitch.sin() * yaw.sin(), pitch.cos()], dim=-1)
    forward = -position / position.norm(dim=-1, keepdim=True)
    up = torch.zeros_like(forward)
    up[:, 2] = 1.0
    right = torch.linalg.cross(forward, up)
    right = right / right.norm(dim=-1, keepdim=True)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4, dtype=yaw.dtype, device=yaw.device).repeat(len(yaw), 1, 1)
    c2w[:, :3, :4] = torch.stack([right, down, forward, position], dim=-1)
    return c2w


def _intrinsics(fov: float, n: int, device: torch.device) -> torch.Tensor:
    focal = 0.5 / math.tan(fov / 2.0)
    k = torch.zeros(n, 3, 3, device=device)
    k[:, 0, 0], k[:, 1, 1], k[:, :2, 2], k[:, 2, 2] = focal, focal, 0.5, 1.0
    return k
