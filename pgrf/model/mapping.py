"""Mapping networks: G's z (+ class) → w with the tracked average w for truncation, and the latent-free
variant that maps conditioning vectors (D's hypernetwork and projection head)."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from pgrf.model.layers import FullyConnected, normalize_2nd_moment


def mapping_layers(dims: list[int], lr_mult: float) -> nn.Sequential:
    """Leaky-ReLU fully connected layers ``dims[0] → dims[1] → …`` at learning-rate multiplier ``lr_mult``."""
    return nn.Sequential(*[FullyConnected(a, b, act="lrelu", lr_mult=lr_mult) for a, b in pairwise(dims)])


class ConditionMapping(nn.Module):
    """A mapping network without a latent: x (B, in_dim) → a linear embedding (B, out_dim) normalised to unit
    second moment, then ``num_layers`` leaky-ReLU layers of ``out_dim`` at ``lr_mult`` (StyleGAN2's
    mapping network with z_dim = 0, as the reference's discriminator uses it)."""

    def __init__(self, in_dim: int, out_dim: int, num_layers: int = 2, lr_mult: float = 0.01) -> None:
        super().__init__()
        self.embed = FullyConnected(in_dim, out_dim)
        self.layers = mapping_layers([out_dim] * (num_layers + 1), lr_mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(normalize_2nd_moment(self.embed(x.float())))


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
        self.layers = mapping_layers(dims, lr_mult)
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
