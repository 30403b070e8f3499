"""Meshes of a trained G: its density σ on a grid over [-1, 1]³ → marching cubes → vertex colours from the decoder.

σ is the renderer's: softplus of the decoder's raw density at the tri-plane features, zero outside
the normalised asset's box (``pgrf.model.volume``). Vertices are in the dataset's world frame
(docs/cameras.md: +Z up, the asset inside [-1, 1]³).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pgrf.evaluate.mesh import Mesh, PointFn, extract_mesh
from pgrf.evaluate.views import seed_classes, seed_planes
from pgrf.model.generator import Generator
from pgrf.model.triplane import sample_triplanes


def field_functions(generator: Generator, planes: torch.Tensor) -> tuple[PointFn, PointFn]:
    """``density(points (N, 3)) -> (N,)`` σ and ``color(points) -> (N, 3)`` RGB in [0, 1] of one seed's planes (1, …)."""
    def decode(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return generator.decoder(sample_triplanes(planes, points[None].to(planes.device)))

    def density(points: torch.Tensor) -> torch.Tensor:
        inside = (points.abs() <= 1.0).all(dim=-1).to(planes.device)
        return F.softplus(decode(points)[1][0]) * inside

    def color(points: torch.Tensor) -> torch.Tensor:
        return decode(points)[0][0]

    return density, color


@torch.no_grad()
def generator_mesh(generator: Generator, seed: int, resolution: int = 256, threshold: float | None = None,
                   psi: float = 1.0, class_id: int | None = None, chunk: int = 1 << 18) -> Mesh:
    """The σ = ``threshold`` surface (None: ``mesh.auto_threshold`` of the grid) of seed ``seed``'s object with
    vertex colours, from ``resolution``³ samples."""
    device = next(generator.parameters()).device
    classes = seed_classes([seed], generator.config.c_dim, class_id)
    planes = seed_planes(generator, [seed], classes, psi, device)
    density, color = field_functions(generator, planes)
    return extract_mesh(density, threshold, resolution, bound=1.0, color_fn=color, chunk=chunk, device=device)
