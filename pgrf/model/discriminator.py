"""The patch discriminator: a StyleGAN2 ResNet D whose convolutions are modulated by a hypernetwork of the
patch parameters, with projection conditioning on the patch, the class and (optionally) the camera.

It follows the reference implementation (universome/epigraf, ``networks_discriminator.py``): the patch
encoding, the two latent-free mapping networks, which convolutions σ scales and the projection head are
the same, so the ``paper`` preset has the reference's layer widths and parameter count (see
tests/unit/test_presets.py). Where pgrf differs on purpose: minibatch-stddev groups are consecutive
samples, which share one patch (the reference groups strided samples, mixing patches), and the
reference's unused fromRGB layers of every block after the first are not built.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from pgrf.model.draws import Draws
from pgrf.model.layers import Conv2d, FullyConnected
from pgrf.model.mapping import ConditionMapping
from pgrf.model.presets import ModelConfig
from pgrf.model.synthesis import channels_at

SQRT_HALF = math.sqrt(0.5)
NUM_FP16_RES = 4
"""D's blocks at this many highest resolutions (of the full-resolution D) may run in half precision, as the
reference's (universome/epigraf: num_fp16_res = 4, conv_clamp = 256)."""


def half_resolution(resolution: int) -> int:
    """The lowest block resolution that runs in half precision for images of ``resolution``², StyleGAN2-ADA's
    ``max(2 ** (log2 R + 1 - num_fp16_res), 8)``: R/8 for R = 256 (blocks 256 … 32), 8 (every block) for R ≤ 64."""
    return max(resolution >> (NUM_FP16_RES - 1), 8)


class ScalarEncoder(nn.Module):
    """K scalars in [0, 1] (B, K) → (B, K·(2F + ``embed_dim``)), encoded one by one as the reference does.

    Each x is scaled to x·``bins``; its features are sin and cos at the F = ⌈log2 bins⌉ frequencies
    π·2^k / 2^F (k < F), followed by a learned ``embed_dim`` embedding of the bin round(x·bins)
    (``bins`` + 1 rows). For (s, δx, δy) with 1000 bins and 256-d embeddings: 3 × (20 + 256) = 828.
    """

    def __init__(self, count: int, bins: int, embed_dim: int) -> None:
        super().__init__()
        octaves = math.ceil(math.log2(bins))
        self.count, self.bins = count, bins
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(octaves, dtype=torch.float32) / 2**octaves)
        self.embedding = nn.Embedding(bins + 1, embed_dim)
        self.dim = count * (2 * octaves + embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() * self.bins
        angles = x[:, :, None] * self.frequencies
        index = x.round().long().clamp(0, self.bins)
        return torch.cat([angles.sin(), angles.cos(), self.embedding(index)], dim=2).flatten(1)


def camera_features(angles: torch.Tensor, freqs: int, training: bool, draws: Draws | None = None) -> torch.Tensor:
    """(yaw, pitch) (B, 2) → (B, 2·(1 + 2·freqs)): the angles with their sines and cosines at integer
    frequencies 1 … ``freqs`` (periodic in 2π), with dropout 0.5 in training (its mask from ``draws`` when given)."""
    angles = angles.float()
    scaled = angles[:, :, None] * torch.arange(1, freqs + 1, device=angles.device, dtype=angles.dtype)
    features = torch.cat([angles, scaled.sin().flatten(1), scaled.cos().flatten(1)], dim=1)
    if training and draws is not None:
        return features * (draws.rand(features.shape[1]) >= 0.5).to(features.dtype) * 2.0
    return F.dropout(features, 0.5, training)


class DiscriminatorBlock(nn.Module):
    """ResNet block: conv 3×3, conv 3×3 (↓2 when ``down``), plus a 1×1 skip; both branches scaled by √½.

    ``sigma`` (B, tmp_channels), when given, scales the input channels of ``conv1`` (the reference's
    hypernetwork modulation; the same as scaling conv1's weights along their input axis). The block computes
    in its input's dtype (weights, biases, σ and the filter are cast to it); ``low_precision`` marks the blocks
    that ``Discriminator.forward(half=…)`` runs in half precision.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, down: bool,
                 from_rgb: bool, clamp: float | None, low_precision: bool = False) -> None:
        super().__init__()
        self.low_precision = low_precision
        self.fromrgb = Conv2d(3, in_channels, 1, act="lrelu", clamp=clamp) if from_rgb else None
        self.conv0 = Conv2d(in_channels, tmp_channels, 3, act="lrelu", clamp=clamp)
        self.conv1 = Conv2d(tmp_channels, out_channels, 3, act="lrelu", down=down, clamp=clamp)
        self.skip = Conv2d(in_channels, out_channels, 1, bias=False, down=down)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        y = self.skip(x, gain=SQRT_HALF)
        x = self.conv0(x)
        if sigma is not None:
            x = x * sigma.to(x.dtype)[:, :, None, None]
        x = self.conv1(x, gain=SQRT_HALF)
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

    With ``hyper`` on, (s, δx, δy) is encoded (``ScalarEncoder``, 828-d in the paper preset), a mapping
    network (``hypernetwork``: linear embedding, normalised, 2 layers at lr × 0.01) gives p (B, hyper_dim),
    and every block's conv1 has an affine map A_ℓ (bias 0) whose σ_ℓ = 1 + tanh(A_ℓ p) ∈ (0, 2) scales
    that conv's input channels. The final features are projected (Miyato & Koyama) onto a second mapping
    network's embedding of [class one-hot, patch encoding, camera features] (those present), of the
    width of the 4×4 features. With ``hyper`` off this is the standard D: the patch does not enter at
    all, and without labels or camera the output layer gives the logit directly.

    ``forward(half=dtype)`` runs the blocks at the ``NUM_FP16_RES`` highest resolutions (``half_resolution``)
    in that dtype (the reference: float16 on CUDA) and everything else in float32, as StyleGAN2-ADA: each
    block casts its input, the head gets float32. Without it D computes in its inputs' dtype (float32, or
    what an autocast region chooses).
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
                                             clamp=config.d_conv_clamp,
                                             low_precision=res >= half_resolution(config.resolution)))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        top = channels(4)
        self.mbstd_group = config.mbstd_group
        self.conv = Conv2d(top + 1, top, 3, act="lrelu", clamp=config.d_conv_clamp)
        self.fc = FullyConnected(top * 16, top, act="lrelu")
        mapping = partial(ConditionMapping, num_layers=config.mapping_layers, lr_mult=config.mapping_lr_mult)
        self.patch_encoder = ScalarEncoder(3, config.patch_bins, config.patch_embed_dim) if config.hyper else None
        self.hypernetwork = mapping(self.patch_encoder.dim, config.hyper_dim) if config.hyper else None
        self.hyper_affines = nn.ModuleList(
            [FullyConnected(config.hyper_dim, block.conv1.weight.shape[1]) for block in self.blocks]
        ) if config.hyper else None
        camera_dim = camera_features(torch.zeros(1, 2), config.camera_freqs, False).shape[1]
        cond_dim = (config.c_dim + (self.patch_encoder.dim if config.hyper else 0)
                    + (camera_dim if config.camera_cond else 0))
        self.head = mapping(cond_dim, top) if cond_dim else None
        self.out = FullyConnected(top, top if cond_dim else 1)

    def modulations(self, encoding: torch.Tensor) -> list[torch.Tensor]:
        """σ_ℓ = 1 + tanh(A_ℓ p) ∈ (0, 2) (B, conv1 input channels), one per block, from the patch encoding."""
        p = self.hypernetwork(encoding)
        return [1.0 + torch.tanh(affine(p)) for affine in self.hyper_affines]

    def features(self, img: torch.Tensor, encoding: torch.Tensor | None,
                 half: torch.dtype | None = None) -> torch.Tensor:
        """The trunk's output (B, out features) before projection; ``encoding`` (the patch's, or None
        without ``hyper``) modulates it; ``half``: the dtype of the highest-resolution blocks (``forward``)."""
        sigmas = self.modulations(encoding) if encoding is not None else [None] * len(self.blocks)
        x = img
        for block, sigma in zip(self.blocks, sigmas):
            if half is not None:
                x = x.to(half if block.low_precision else torch.float32)
            x = block(x, sigma)
        if half is not None:
            x = x.float()
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        return self.out(self.fc(x.flatten(1).float()))

    def condition(self, encoding: torch.Tensor | None, c: torch.Tensor | None,
                  camera: torch.Tensor | None, draws: Draws | None = None) -> torch.Tensor | None:
        """The projection head's embedding (B, 4×4 channels), or None when D is unconditional."""
        if self.head is None:
            return None
        parts = [] if encoding is None else [encoding]
        if self.config.c_dim:
            if c is None:
                raise ValueError("a class-conditional discriminator needs labels c")
            parts.insert(0, c.float())
        if self.config.camera_cond:
            if camera is None:
                raise ValueError("a camera-conditioned discriminator needs (yaw, pitch)")
            parts.append(camera_features(camera, self.config.camera_freqs, self.training, draws))
        return self.head(torch.cat(parts, dim=1))

    def forward(self, img: torch.Tensor, patch: torch.Tensor, c: torch.Tensor | None = None,
                camera: torch.Tensor | None = None, draws: Draws | None = None,
                half: torch.dtype | None = None) -> torch.Tensor:
        """Logits (B, 1); ``draws``: where the camera features' dropout mask comes from in training; ``half``: the
        dtype of the highest-resolution blocks (see ``features``)."""
        if img.shape[-1] != self.patch_resolution or img.shape[-2] != self.patch_resolution:
            raise ValueError(f"D expects {self.patch_resolution}² patches, got {tuple(img.shape[-2:])}")
        encoding = self.patch_encoder(patch) if self.patch_encoder is not None else None
        h = self.features(img, encoding, half)
        embedding = self.condition(encoding, c, camera, draws)
        if embedding is None:
            return h
        return (h * embedding).sum(dim=1, keepdim=True) / math.sqrt(h.shape[1])
