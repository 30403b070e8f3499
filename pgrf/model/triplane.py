"""Tri-plane feature sampling and the tiny MLP that decodes features into colour and density."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pgrf.model.layers import FullyConnected
from pgrf.model.presets import RGB_ACTIVATIONS

_PLANE_AXES = [0, 1, 0, 2, 1, 2]
"""The (first, second) world axes of the XY, XZ and YZ planes."""


def sample_triplanes(planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mean of bilinearly sampled plane features at ``points``.

    ``planes`` (B, 3, C, H, W) are the XY, XZ and YZ planes, each spanning [-1, 1]² with texel centres
    as in ``grid_sample(align_corners=False)``; plane axes are (first, second) = (width, height).
    ``points`` (B, N, 3) world coordinates → features (B, N, C). Outside [-1, 1] features fade to zero.
    """
    batch, _, channels, height, width = planes.shape
    grid = points[..., _PLANE_AXES].to(planes.dtype).unflatten(-1, (3, 2)).transpose(1, 2)
    grid = grid.reshape(batch * 3, 1, -1, 2)
    features = F.grid_sample(planes.reshape(batch * 3, channels, height, width), grid, mode="bilinear",
                             padding_mode="zeros", align_corners=False)
    return features.reshape(batch, 3, channels, -1).mean(dim=1).transpose(1, 2)


class TriPlaneDecoder(nn.Module):
    """Features (…, C) → colour in [0, 1] units (…, 3) and raw density (…). No view direction input.

    ``rgb`` 'linear' (the reference): the raw output is the colour in [-1, 1] units, so the colour is
    (raw + 1) / 2, unbounded; 'sigmoid': sigmoid(raw), inside [0, 1].
    """

    def __init__(self, in_features: int, hidden: int = 64, rgb: str = "linear") -> None:
        super().__init__()
        if rgb not in RGB_ACTIVATIONS:
            raise ValueError(f"unknown colour activation {rgb!r}")
        self.rgb = rgb
        self.net = nn.Sequential(FullyConnected(in_features, hidden, act="lrelu"), FullyConnected(hidden, 4))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(features)
        raw = out[..., :3]
        return (torch.sigmoid(raw) if self.rgb == "sigmoid" else (raw + 1.0) * 0.5), out[..., 3]

