"""StyleGAN2 synthesis network (skip architecture) producing the three feature planes."""

from __future__ import annotations

import torch
from torch import nn

from pgrf.model.draws import Draws
from pgrf.model.layers import ModulatedConv2d, register_filter, upsample2x


def channels_at(resolution: int, base: int, maximum: int) -> int:
    """StyleGAN2's channel count for a resolution: min(base / resolution, maximum)."""
    return max(1, min(base // resolution, maximum))


class SynthesisBlock(nn.Module):
    """One resolution: (2× up) conv, conv, and a toRGB-style 1×1 output added to the upsampled skip image."""

    def __init__(self, in_channels: int, out_channels: int, out_image_channels: int, w_dim: int,
                 resolution: int, clamp: float | None = None) -> None:
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = ModulatedConv2d(in_channels, out_channels, w_dim, resolution, up=True, clamp=clamp)
            register_filter(self)
        self.conv1 = ModulatedConv2d(out_channels, out_channels, w_dim, resolution, clamp=clamp)
        self.torgb = ModulatedConv2d(out_channels, out_image_channels, w_dim, resolution, kernel_size=1,
                                     act="linear", demodulate=False, noise=False, clamp=clamp)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str, draws: Draws | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws`` (B, num_conv + 1, w_dim): one w per conv and one for the output layer."""
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode, draws)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, draws)
            x = self.conv1(x, ws[:, 1], noise_mode, draws)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2x(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) → tri-planes (B, 3, C, R_p, R_p), from a learned 4×4 constant; ``clamp``
    bounds every convolution's output (StyleGAN2's conv_clamp, None = off)."""

    def __init__(self, w_dim: int, resolution: int, plane_channels: int, channel_base: int,
                 channel_max: int, clamp: float | None = None) -> None:
        super().__init__()
        self.plane_channels = plane_channels
        resolutions = [2**i for i in range(2, resolution.bit_length())]
        blocks = []
        for res in resolutions:
            in_ch = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            blocks.append(SynthesisBlock(in_ch, channels_at(res, channel_base, channel_max), 3 * plane_channels,
                                         w_dim, res, clamp))
        self.blocks = nn.ModuleList(blocks)
        self.num_ws = sum(b.num_conv for b in blocks) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", draws: Draws | None = None) -> torch.Tensor:
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, index:index + block.num_conv + 1], noise_mode, draws)
            index += block.num_conv
        return img.reshape(img.shape[0], 3, self.plane_channels, *img.shape[2:])
