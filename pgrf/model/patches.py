"""Patch parameters, their annealed scale schedules, and real-patch extraction.

A patch is (s, δx, δy): it covers the image region [δx, δx + s] × [δy, δy + s] in units of the image
size (the image spans [0, 1]², see ``pgrf.cameras``), with s ∈ [r/R, 1] and δ ∈ [0, 1 − s]. Its r×r
pixel (row j, column i) is centred at u = δx + s·(i + 0.5)/r, v = δy + s·(j + 0.5)/r. The full image is
the patch (1, 0, 0) at r = R. The generator's rays and real-patch extraction both use
``patch_coordinates``, so they sample the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pgrf.model.draws import Draws

FULL_IMAGE = (1.0, 0.0, 0.0)
"""Patch parameters of the whole image."""


def patch_coordinates(patch: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel centres of ``size``² patches: ``patch`` (B, 3) → points (B, size, size, 2) as (u, v) in [0, 1]."""
    steps = (torch.arange(size, device=patch.device, dtype=patch.dtype) + 0.5) / size
    scale, dx, dy = patch[:, 0, None], patch[:, 1, None], patch[:, 2, None]
    u = (dx + scale * steps).unsqueeze(1).expand(-1, size, -1)
    v = (dy + scale * steps).unsqueeze(2).expand(-1, -1, size)
    return torch.stack([u, v], dim=-1)


def full_image_patches(batch: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 3) parameters of the whole image."""
    return torch.tensor(FULL_IMAGE, device=device, dtype=dtype).expand(batch, 3).contiguous()


def beta_at(kimg: float, anneal_kimg: float, start: float = 0.001, end: float = 0.8) -> float:
    """β(t): linear from ``start`` at 0 kimg to ``end`` at ``anneal_kimg``, constant afterwards."""
    progress = min(max(kimg / anneal_kimg, 0.0), 1.0) if anneal_kimg > 0 else 1.0
    return start + (end - start) * progress


def min_scale_at(kimg: float, anneal_kimg: float, min_scale: float) -> float:
    """s_min(t) of the uniform baseline: linear from 1 to ``min_scale`` (= r/R) over ``anneal_kimg``."""
    progress = min(max(kimg / anneal_kimg, 0.0), 1.0) if anneal_kimg > 0 else 1.0
    return 1.0 + (min_scale - 1.0) * progress


@dataclass(frozen=True)
class PatchSampler:
    """Draws patch parameters for r×r patches of R×R images at training time ``kimg``.

    ``schedule`` 'beta': s = r/R + (1 − r/R)·Beta(1, β(t)). 'uniform': s ~ U[s_min(t), 1].
    Offsets are uniform in [0, 1 − s]. With ``group_size`` g, consecutive runs of g samples share one
    patch, matching the discriminator's minibatch-stddev groups.
    """

    resolution: int
    patch_resolution: int
    schedule: str = "beta"
    anneal_kimg: float = 10000.0
    beta_start: float = 0.001
    beta_end: float = 0.8

    @property
    def min_scale(self) -> float:
        return self.patch_resolution / self.resolution

    def scales(self, n: int, kimg: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """n scales (float64) drawn at ``kimg``."""
        return self._scales(torch.rand(n, generator=generator, dtype=torch.float64), kimg)

    def _scales(self, u: torch.Tensor, kimg: float) -> torch.Tensor:
        """The scales of uniform numbers ``u`` at ``kimg`` (inverse CDF)."""
        if self.schedule == "beta":
            beta = beta_at(kimg, self.anneal_kimg, self.beta_start, self.beta_end)
            # inverse CDF of Beta(1, β): F(x) = 1 − (1 − x)^β; 1 − u is also uniform
            unit = 1.0 - u.pow(1.0 / beta)
            return self.min_scale + (1.0 - self.min_scale) * unit
        low = min_scale_at(kimg, self.anneal_kimg, self.min_scale)
        return low + (1.0 - low) * u

    def sample(self, n: int, kimg: float, group_size: int = 1, generator: torch.Generator | Draws | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, 3) float32 patch parameters (s, δx, δy); groups of ``group_size`` consecutive rows are equal. Drawn
        with a ``torch.Generator`` on the host (then moved to ``device``), or from a training step's ``Draws`` for
        its ``n`` rows on their device (each group takes its first row's numbers)."""
        if isinstance(generator, Draws):
            u = generator.rand(3, dtype=torch.float64)[::group_size]
        else:
            u = torch.rand(math.ceil(n / group_size), 3, generator=generator, dtype=torch.float64)
        scale = self._scales(u[:, 0], kimg)
        patch = torch.cat([scale[:, None], u[:, 1:] * (1.0 - scale)[:, None]], dim=1).float()
        return patch.repeat_interleave(group_size, dim=0)[:n].to(device)


def extract_patches(images: torch.Tensor, patch: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinearly sample ``size``² patches from ``images`` (B, C, H, W) on the generator's pixel grid."""
    grid = patch_coordinates(patch.to(images.dtype), size) * 2.0 - 1.0
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
