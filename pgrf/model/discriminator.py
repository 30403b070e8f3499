"""The patch discriminator: a StyleGAN2 ResNet D whose convolutions are modulated by a hypernetwork
of the patch parameters, with projection conditioning on the patch, the class and (optionally) the camera.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from pgrf.model.layers import Conv2d, FullyConnected, normalize_2nd_moment
from pgrf.model.presets import ModelConfig
from pgrf.model.synthesis import channels_at

SQRT_HALF = math.sqrt(0.5)


def fourier_features(x: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """(B, K) values → (B, K·(1 + 2F)): each value followed by its sines and cosines at ``frequencies`` (F,)."""
    angles = x[:, :, None] * frequencies.to(x.dtype)
    return torch.cat([x, angles.sin().flatten(1), angles.cos().flatten(1)], dim=1)


def mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    """Two leaky-ReLU fully connected layers, like the mapping network."""
    return nn.Sequential(FullyConnected(in_dim, out_dim, act="lrelu"), FullyConnected(out_dim, out_dim, act="lrelu"))


class PatchHypernetwork(nn.Module):
    """H: (s, δx, δy) (B, 3) → p (B, dim), with Fourier features at frequencies π·2^k, k < ``freqs``."""

    def __init__(self, dim: int, freqs: int) -> None:
        super().__init__()
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(freqs, dtype=torch.float32))
        self.net = mlp(3 * (1 + 2 * freqs), dim)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.net(fourier_features(patch.float(), self.frequencies))


class CameraEmbedding(nn.Module):
    """(yaw, pitch) (B, 2) → (B, dim): integer-frequency Fourier features, an MLP, dropout 0.5 in training."""

    def __init__(self, dim: int, freqs: int) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.arange(1, freqs + 1, dtype=torch.float32))
        self.net = mlp(2 * (1 + 2 * freqs), dim)

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        return F.dropout(self.net(fourier_features(angles.float(), self.frequencies)), 0.5, self.training)


class DiscriminatorBlock(nn.Module):
    """ResNet block: conv 3×3, conv 3×3 (↓2 when ``down``), plus a 1×1 skip; both branches scaled by √½."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, down: bool,
                 from_rgb: bool, clamp: float | None) -> None:
        super().__init__()
        self.fromrgb = Conv2d(3, in_channels, 1, act="lrelu", clamp=clamp) if from_rgb else None
        self.conv0 = Conv2d(in_channels, tmp_channels, 3, act="lrelu", clamp=clamp)
        self.conv1 = Conv2d(tmp_channels, out_channels, 3, act="lrelu", down=down, clamp=clamp)
        self.skip = Conv2d(in_channels, out_channels, 1, bias=False, down=down)
        self.modulated = (self.conv0, self.conv1)

    def forward(self, x: torch.Tensor, scales: list[torch.Tensor | None]) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv0(x, scale=scales[0])
        x = self.conv1(x, gain=SQRT_HALF, scale=scales[1])
        return y + x


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Append the mean feature stddev within groups of **consecutive** samples as one extra channel.

    Samples [k·g, (k+1)·g) form group k, so a batch whose patch parameters repeat in consecutive runs of
    g (``PatchSampler.sample(group_size=g)``) never mixes statistics of different patch scales or
    locations. The batch size must be a multiple of the group size (or smaller than it).
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"batch {n} is not a multiple of the minibatch-stddev group size {g}")
    y = x.float().reshape(n // g, g, c, h, w)
    std = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, std.to(x.dtype).repeat_interleave(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class Discriminator(nn.Module):
    """D(img, patch, c, camera) → logits (B, 1) for r×r patches of R×R images.

    ``img`` (B, 3, r, r) in [-1, 1]; ``patch`` (B, 3) = (s, δx, δy); ``c`` (B, c_dim) one-hot labels when
    ``c_dim`` > 0; ``camera`` (B, 2) = (yaw, pitch) when ``camera_cond``. Blocks follow a full-resolution
    StyleGAN2 D for R: the first log2(R/r) blocks keep the r×r size (no downsampling), then blocks halve
    it down to 4×4, then minibatch stddev, conv, FC, FC.

    Hypernetwork modulation (``hyper``): p = H(s, δx, δy) and, for every 3×3 conv ℓ, σ_ℓ = 1 + tanh(W_ℓ p + b_ℓ)
    scales the conv's **output** channels (before bias and activation), as in the paper's eq. (2).
    The final features are projected (Miyato & Koyama) onto the sum of a linear embedding of p, the
    class embedding and the camera embedding, so with ``hyper`` off the patch parameters enter the
    output only through that projection term.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_resolution = config.patch_resolution
        channels = partial(channels_at, base=config.d_channel_base, maximum=config.d_channel_max)
        blocks = []
        res = config.resolution
        while res >= 8:
            blocks.append(DiscriminatorBlock(channels(res), channels(res), channels(res // 2),
                                             down=res <= config.patch_resolution, from_rgb=not blocks,
                                             clamp=config.d_conv_clamp))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        top = channels(4)
        self.mbstd_group = config.mbstd_group
        self.conv = Conv2d(top + 1, top, 3, act="lrelu", clamp=config.d_conv_clamp)
        self.fc = FullyConnected(top * 16, top, act="lrelu")
        dim = config.hyper_dim
        self.out = FullyConnected(top, dim)
        self.hypernetwork = PatchHypernetwork(dim, config.fourier_freqs)
        self.patch_embed = FullyConnected(dim, dim)
        self.class_embed = nn.Sequential(FullyConnected(config.c_dim, dim), mlp(dim, dim)) if config.c_dim else None
        self.camera_embed = CameraEmbedding(dim, config.camera_freqs) if config.camera_cond else None
        convs = [conv for block in self.blocks for conv in block.modulated] + [self.conv]
        self.hyper_affines = nn.ModuleList(
            [FullyConnected(dim, conv.weight.shape[0]) for conv in convs]) if config.hyper else None

    def modulations(self, p: torch.Tensor) -> list[torch.Tensor]:
        """σ_ℓ ∈ (0, 2)^{c_out} (B, c_out) for every modulated conv, from the patch representation p."""
        return [1.0 + torch.tanh(affine(p)) for affine in self.hyper_affines]

    def features(self, img: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The trunk's output (B, hyper_dim) before projection; p modulates it only when ``hyper`` is on."""
        count = 2 * len(self.blocks) + 1
        scales: list[torch.Tensor | None] = self.modulations(p) if self.hyper_affines is not None else [None] * count
        x = img
        for index, block in enumerate(self.blocks):
            x = block(x, scales[2 * index:2 * index + 2])
        x = self.conv(minibatch_stddev(x, self.mbstd_group), scale=scales[-1])
        return self.out(self.fc(x.flatten(1).float()))

    def forward(self, img: torch.Tensor, patch: torch.Tensor, c: torch.Tensor | None = None,
                camera: torch.Tensor | None = None) -> torch.Tensor:
        if img.shape[-1] != self.patch_resolution or img.shape[-2] != self.patch_resolution:
            raise ValueError(f"D expects {self.patch_resolution}² patches, got {tuple(img.shape[-2:])}")
        p = self.hypernetwork(patch)
        h = self.features(img, p)
        embedding = self.patch_embed(p)
        if self.class_embed is not None:
            if c is None:
                raise ValueError("a class-conditional discriminator needs labels c")
            embedding = embedding + normalize_2nd_moment(self.class_embed(c.float()))
        if self.camera_embed is not None:
            if camera is None:
                raise ValueError("a camera-conditioned discriminator needs (yaw, pitch)")
            embedding = embedding + self.camera_embed(camera)
        return (h * embedding).sum(dim=1, keepdim=True) / math.sqrt(h.shape[1])
