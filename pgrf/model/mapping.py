"""The mapping network z (+ class) → w, with the tracked average w for truncation."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from pgrf.model.layers import FullyConnected, normalize_2nd_moment


class MappingNetwork(nn.Module):
    """z ~ N(0, I) (B, z_dim) and one-hot class c (B, c_dim) → w (B, num_ws, w_dim), broadcast over layers.

    z and the linear class embedding are each normalised by their second moment and concatenated, then
    pass ``num_layers`` leaky-ReLU layers with learning-rate multiplier ``lr_mult``. In training mode
    the running average of w is updated (``w_avg_beta``); ``psi`` < 1 truncates toward it.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_mult: float = 0.01, w_avg_beta: float = 0.998) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.w_avg_beta = z_dim, c_dim, w_dim, num_ws, w_avg_beta
        self.embed = FullyConnected(c_dim, w_dim) if c_dim > 0 else None
        in_dim = z_dim + (w_dim if c_dim > 0 else 0)
        dims = [in_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[FullyConnected(a, b, act="lrelu", lr_mult=lr_mult)
                                      for a, b in pairwise(dims)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                update_w_avg: bool | None = None) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        if self.embed is not None:
            if c is None:
                raise ValueError("a class-conditional mapping network needs labels c")
            x = torch.cat([x, normalize_2nd_moment(self.embed(c.to(z.dtype)))], dim=1)
        w = self.layers(x)
        if self.training if update_w_avg is None else update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if psi != 1.0:
            w = self.w_avg.lerp(w, psi)
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)
