"""Volume rendering with hierarchical sampling: stratified coarse samples, then importance samples.

A field maps points (B, M, 3) to colour in [0, 1] units (B, M, 3) and raw density (B, M). Density is
σ = softplus(raw + ε·std), ε ~ N(0, 1), and zero outside [-1, 1]³ (the normalised asset's box); rays
are sampled only between their entry into and exit from that box (``Rays.near``/``far``, per ray).
Coarse and importance samples are composited together over a background colour (white by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pgrf.model.draws import Draws
from pgrf.model.rays import Rays

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Rendered:
    """Per ray (B, N): composited colour (…, 3), opacity Σw, expected depth, sample distances and weights (…, S)."""

    rgb: torch.Tensor
    opacity: torch.Tensor
    depth: torch.Tensor
    t: torch.Tensor
    weights: torch.Tensor

    @property
    def transmittance(self) -> torch.Tensor:
        """Light that passes every sample: 1 − Σw."""
        return 1.0 - self.opacity


def stratified_samples(near: torch.Tensor, far: torch.Tensor, shape: tuple[int, int], steps: int,
                       jitter: bool, draws: Draws | None = None) -> torch.Tensor:
    """(B, N, steps) distances, one per equal bin of [near, far]: random in the bin (from ``draws``, or torch's global
    generator), or its centre."""
    batch, rays = shape
    edges = torch.linspace(0.0, 1.0, steps + 1, device=near.device, dtype=near.dtype)
    if jitter:
        u = (draws.rand(rays, steps, dtype=near.dtype) if draws is not None
             else torch.rand(batch, rays, steps, device=near.device, dtype=near.dtype))
    else:
        u = torch.full((batch, rays, steps), 0.5, device=near.device, dtype=near.dtype)
    unit = edges[:-1] + (edges[1:] - edges[:-1]) * u
    return near[:, :, None] + (far - near)[:, :, None] * unit


def importance_samples(edges: torch.Tensor, weights: torch.Tensor, steps: int, jitter: bool,
                       draws: Draws | None = None) -> torch.Tensor:
    """Inverse-CDF samples (B, N, steps) of the piecewise-constant pdf ∝ ``weights`` (B, N, S) over ``edges`` (…, S + 1).

    Without ``jitter`` the quantiles are the fixed (k + 0.5) / steps, so rendering is deterministic.
    """
    pdf = weights + 1e-5
    pdf = pdf / pdf.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), pdf.cumsum(dim=-1)], dim=-1).clamp(max=1.0)
    shape = (*weights.shape[:-1], steps)
    if jitter:
        u = (draws.rand(*shape[1:], dtype=weights.dtype) if draws is not None
             else torch.rand(shape, device=weights.device, dtype=weights.dtype))
    else:
        u = ((torch.arange(steps, device=weights.device, dtype=weights.dtype) + 0.5) / steps).expand(shape)
    index = torch.searchsorted(cdf.contiguous(), u.contiguous(), right=True).clamp(1, weights.shape[-1])
    cdf_low, cdf_high = cdf.gather(-1, index - 1), cdf.gather(-1, index)
    edge_low, edge_high = edges.gather(-1, index - 1), edges.gather(-1, index)
    fraction = ((u - cdf_low) / (cdf_high - cdf_low).clamp(min=1e-8)).clamp(0.0, 1.0)
    return edge_low + fraction * (edge_high - edge_low)


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far: torch.Tensor,
              background: float) -> Rendered:
    """Alpha-composite sorted samples: interval i is [t_i, t_{i+1}] (the last ends at ``far``)."""
    deltas = torch.cat([t[..., 1:], far[:, :, None].expand_as(t[..., :1])], dim=-1) - t
    tau = sigma * deltas.clamp(min=0.0)
    accumulated = tau.cumsum(dim=-1)
    weights = (1.0 - torch.exp(-tau)) * torch.exp(tau - accumulated)
    opacity = weights.sum(dim=-1)
    color = (weights[..., None] * rgb).sum(dim=-2) + (1.0 - opacity)[..., None] * background
    depth = (weights * t).sum(dim=-1) + (1.0 - opacity) * far
    return Rendered(color, opacity, depth, t, weights)


def _evaluate(field: Field, rays: Rays, t: torch.Tensor, noise_std: float,
              draws: Draws | None) -> tuple[torch.Tensor, torch.Tensor]:
    points = rays.origins[:, None, None, :] + rays.directions[:, :, None, :] * t[..., None]
    rgb, raw = field(points.reshape(points.shape[0], -1, 3))
    if noise_std > 0:
        noise = (draws.randn(*raw.shape[1:], dtype=raw.dtype) if draws is not None
                 else torch.randn(raw.shape, device=raw.device, dtype=raw.dtype))
        raw = raw + noise * noise_std
    inside = (points.abs() <= 1.0).all(dim=-1).reshape(raw.shape)
    sigma = F.softplus(raw) * inside
    return rgb.reshape(*t.shape, 3), sigma.reshape(t.shape)


def render_rays(field: Field, rays: Rays, coarse_steps: int, fine_steps: int, jitter: bool = False,
                density_noise_std: float = 0.0, background: float = 1.0,
                draws: Draws | None = None) -> Rendered:
    """Render ``rays`` through ``field``: stratified coarse samples, importance samples from their
    (detached) weights, all composited together. Deterministic when ``jitter`` is off and the
    density noise std is 0; otherwise the random numbers come from ``draws`` (or torch's global generator)."""
    batch, count = rays.directions.shape[:2]
    near, far = rays.near.expand(batch, count), rays.far.expand(batch, count)
    t = stratified_samples(near, far, (batch, count), coarse_steps, jitter, draws)
    rgb, sigma = _evaluate(field, rays, t, density_noise_std, draws)
    if fine_steps > 0:
        edges = near[..., None] + (far - near)[..., None] * torch.linspace(
            0.0, 1.0, coarse_steps + 1, device=t.device, dtype=t.dtype)
        coarse = composite(rgb.detach(), sigma.detach(), t, far, background)
        t_fine = importance_samples(edges, coarse.weights, fine_steps, jitter, draws).detach()
        rgb_fine, sigma_fine = _evaluate(field, rays, t_fine, density_noise_std, draws)
        t, order = torch.cat([t, t_fine], dim=-1).sort(dim=-1)
        rgb = torch.cat([rgb, rgb_fine], dim=-2).gather(-2, order[..., None].expand(-1, -1, -1, 3))
        sigma = torch.cat([sigma, sigma_fine], dim=-1).gather(-1, order)
    return composite(rgb, sigma, t, far, background)
