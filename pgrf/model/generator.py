"""The generator: mapping → tri-planes → volume-rendered RGB patches (or full images)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pgrf.model.draws import Draws
from pgrf.model.mapping import MappingNetwork
from pgrf.model.patches import full_image_patches
from pgrf.model.presets import ModelConfig
from pgrf.model.rays import Rays, patch_rays
from pgrf.model.synthesis import SynthesisNetwork
from pgrf.model.triplane import TriPlaneDecoder, sample_triplanes
from pgrf.model.volume import Rendered, render_rays


def seeded_latents(seeds: list[int], z_dim: int) -> torch.Tensor:
    """One z (float32) per seed, the same on every machine: (len(seeds), z_dim)."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


def density_noise_at(kimg: float, config: ModelConfig) -> float:
    """The training-time density noise std at ``kimg``: ``density_noise`` fading linearly to 0."""
    if config.density_noise_kimg <= 0:
        return 0.0
    return config.density_noise * max(0.0, 1.0 - kimg / config.density_noise_kimg)


class Generator(nn.Module):
    """G(z, c, c2w, K, patch) → RGB patches (B, 3, r, r) in [-1, 1] (beyond it where the linear colour
    of the ``paper`` decoder overshoots) over ``background`` (a level in [0, 1]: the
    dataset's, 1 = white, 0 = black; not a weight, so it comes from the dataset, not the state dict).

    ``z`` (B, z_dim) ~ N(0, I); ``c`` (B, c_dim) one-hot labels or None; ``c2w`` (B, 4, 4) OpenCV
    camera-to-world and ``intrinsics`` (B, 3, 3) normalised K, exactly as in cameras.json and the
    shards; ``patch`` (B, 3) = (s, δx, δy) as in ``pgrf.model.patches``. In training mode ray samples
    are jittered and synthesis noise is random; in eval mode both are fixed, so output depends on z only.
    """

    def __init__(self, config: ModelConfig, background: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.background = background
        self.patch_resolution = config.patch_resolution
        self.synthesis = SynthesisNetwork(config.w_dim, config.plane_resolution, config.plane_channels,
                                          config.g_channel_base, config.g_channel_max, config.g_conv_clamp)
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.synthesis.num_ws,
                                      config.mapping_layers, config.mapping_lr_mult, config.w_avg_beta)
        self.decoder = TriPlaneDecoder(config.plane_channels, config.decoder_hidden, config.rgb_activation)

    def planes(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
               noise_mode: str | None = None, draws: Draws | None = None) -> torch.Tensor:
        """Tri-planes (B, 3, C, R_p, R_p) for latents z (truncated toward the average w by ``psi``); random
        synthesis noise comes from ``draws`` (or torch's global generator)."""
        ws = self.mapping(z, c, psi=psi)
        return self.synthesis(ws, noise_mode or ("random" if self.training else "const"), draws)

    def render(self, planes: torch.Tensor, rays: Rays, jitter: bool, density_noise_std: float = 0.0,
               draws: Draws | None = None) -> Rendered:
        """Volume-render ``rays`` through tri-planes (colours in [0, 1] units)."""
        def field(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.decoder(sample_triplanes(planes, points))

        return render_rays(field, rays, self.config.coarse_steps, self.config.fine_steps, jitter=jitter,
                           density_noise_std=density_noise_std, background=self.background, draws=draws)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, c2w: torch.Tensor, intrinsics: torch.Tensor,
                patch: torch.Tensor, psi: float = 1.0, density_noise_std: float = 0.0,
                draws: Draws | None = None) -> torch.Tensor:
        """RGB patches (B, 3, r, r), [-1, 1] units; ``density_noise_std``: see ``density_noise_at``. Training's
        random numbers (synthesis noise, ray jitter, density noise) come from ``draws`` when given (a round of
        ``pgrf.model.draws``), else from torch's global generator."""
        planes = self.planes(z, c, psi, draws=draws)
        size = self.patch_resolution
        out = self.render(planes, patch_rays(c2w, intrinsics, patch, size), jitter=self.training,
                          density_noise_std=density_noise_std, draws=draws)
        return _to_image(out.rgb, size)

    @torch.no_grad()
    def render_image(self, z: torch.Tensor, c: torch.Tensor | None, c2w: torch.Tensor, intrinsics: torch.Tensor,
                     resolution: int, psi: float = 1.0, chunk: int = 8192) -> torch.Tensor:
        """Full images (B, 3, res, res) in [-1, 1], rendered ``chunk`` rays at a time.

        Deterministic whatever the module's mode: no ray jitter, no density noise, constant synthesis
        noise, and the average w is not updated, so a fixed seed (z) always gives the same image.
        """
        ws = self.mapping(z, c, psi=psi, update_w_avg=False)
        planes = self.synthesis(ws, "const")
        rays = patch_rays(c2w, intrinsics, full_image_patches(z.shape[0], planes.device), resolution)
        count = rays.directions.shape[1]
        colours = [self.render(planes, rays.chunk(i, i + chunk), jitter=False).rgb for i in range(0, count, chunk)]
        return _to_image(torch.cat(colours, dim=1), resolution)


def _to_image(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """Row-major ray colours (B, size², 3) in [0, 1] → images (B, 3, size, size) in [-1, 1]."""
    return (rgb * 2.0 - 1.0).transpose(1, 2).reshape(rgb.shape[0], 3, size, size)
