"""StyleGAN2 building blocks: equalised learning rate, bias + activation, modulated convolution, noise.

Every layer stores its weights at unit scale and multiplies by ``lr_mult / sqrt(fan_in)`` at run time
(equalised learning rate). Modulated convolutions apply one kernel per sample as a single grouped
convolution (``fused``, StyleGAN2's evaluation form) or, in training, scale the activations around one plain
convolution with the shared weight (StyleGAN2-ADA's faster training form); the batch is never looped over in
Python. Layers that resample hold the [1,3,3,1] filter as a non-persistent buffer (``resample_filter``): it
moves with the module to its device and dtype and is not part of state dicts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pgrf.model.draws import Draws

LRELU_GAIN = math.sqrt(2.0)
"""Gain after a leaky ReLU so activations keep unit variance."""



def bias_act(x: torch.Tensor, bias: torch.Tensor | None, act: str, gain: float = 1.0,
             clamp: float | None = None) -> torch.Tensor:
    """Add ``bias`` along dim 1, apply ``act`` ('linear' or 'lrelu' with slope 0.2 and gain √2), scale and clamp."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *[1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2) * LRELU_GAIN
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def fir_filter() -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass filter of 2× resampling as a 4×4 kernel of sum 1."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(f, f)
    return k / k.sum()


def register_filter(module: nn.Module) -> None:
    """Give ``module`` the filter as its non-persistent ``resample_filter`` buffer."""
    module.register_buffer("resample_filter", fir_filter(), persistent=False)


def _depthwise(f: torch.Tensor, channels: int, like: torch.Tensor, gain: float) -> torch.Tensor:
    return (f.to(like.dtype) * gain).expand(channels, 1, 4, 4)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling to (2H, 2W): zero insertion then the filter ``f`` (``fir_filter()`` on x's device; bilinear
    weights, gain 4, zero padding), StyleGAN2's ``upsample2d`` of the skip images."""
    c = x.shape[1]
    return F.conv_transpose2d(x, _depthwise(f, c, x, 4.0), stride=2, padding=1, groups=c)


def blur(x: torch.Tensor, f: torch.Tensor, padding: int, gain: float = 1.0) -> torch.Tensor:
    """The filter ``f`` (``fir_filter()`` on x's device; gain 1 unless given) with ``padding`` zeros on each
    side, no resampling."""
    c = x.shape[1]
    return F.conv2d(x, _depthwise(f, c, x, gain), padding=padding, groups=c)


class FullyConnected(nn.Module):
    """Linear layer with equalised learning rate, bias and activation."""

    def __init__(self, in_features: int, out_features: int, act: str = "linear", lr_mult: float = 1.0,
                 bias_init: float = 0.0) -> None:
        super().__init__()
        self.act = act
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.bias_gain = lr_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain
        return bias_act(F.linear(x, w, b), None, self.act)


class Conv2d(nn.Module):
    """Plain convolution with equalised learning rate, optional 2× downsampling, bias and activation.

    Downsampling is StyleGAN2's: zero-pad by k//2 + 1, blur with the [1,3,3,1] filter, then the k×k
    convolution with stride 2 (for 1×1 this is blur-and-subsample, then the 1×1 convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, act: str = "linear",
                 bias: bool = True, down: bool = False, clamp: float | None = None) -> None:
        super().__init__()
        self.act, self.down, self.clamp = act, down, clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        if down:
            register_filter(self)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down:
            x = F.conv2d(blur(x, self.resample_filter, self.padding + 1), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        clamp = self.clamp * gain if self.clamp is not None else None
        return bias_act(x, bias, self.act, gain=gain, clamp=clamp)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     padding: int = 0, up: bool = False, f: torch.Tensor | None = None,
                     fused: bool = True) -> torch.Tensor:
    """StyleGAN2 modulated convolution of the whole batch, without a Python loop over samples.

    ``x`` (B, I, H, W), ``weight`` (O, I, k, k) (already gain-scaled), ``styles`` (B, I). ``fused``: one grouped
    convolution with a modulated (and demodulated) kernel per sample; otherwise the activations are scaled by
    the styles, convolved with the shared ``weight`` and scaled by the demodulation coefficients (the same
    operator, StyleGAN2-ADA's faster training form). ``up`` gives StyleGAN2's up-convolution (B, O, 2H, 2W):
    zero insertion, the filter ``f`` (``fir_filter()``, gain 4) and the k×k convolution with one padding for
    both (``padding`` is then unused). It runs as a stride-2 transposed convolution on the H×W input followed
    by the filter, as StyleGAN2's ``conv2d_resample`` does: the same operator as convolving the upsampled
    image, with a quarter of its multiply-adds.
    """
    batch, in_ch, height, width = x.shape
    out_ch, _, kh, kw = weight.shape
    if up and f is None:
        raise ValueError("an up-convolution needs the resampling filter f")
    w = weight.unsqueeze(0)  # (1 or B, O, I, k, k)
    modulated = w * styles.reshape(batch, 1, in_ch, 1, 1) if fused or demodulate else None
    dcoefs = (modulated.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt() if demodulate else None  # (B, O)
    groups = batch if fused else 1
    if fused:
        w = modulated * dcoefs.reshape(batch, out_ch, 1, 1, 1) if demodulate else modulated
        x = x.reshape(1, batch * in_ch, height, width)
    else:
        x = x * styles.reshape(batch, in_ch, 1, 1)
    if up:
        # correlating the zero-inserted image with w = transposed convolution with w rotated by 180°
        w = w.transpose(1, 2).reshape(groups * in_ch, out_ch, kh, kw).flip([2, 3])
        y = blur(F.conv_transpose2d(x, w, stride=2, groups=groups), f, padding=(kh - 1) // 2, gain=4.0)
    else:
        y = F.conv2d(x, w.reshape(groups * out_ch, in_ch, kh, kw), padding=padding, groups=groups)
    y = y.reshape(batch, out_ch, *y.shape[2:])
    if not fused and demodulate:
        y = y * dcoefs.reshape(batch, out_ch, 1, 1)
    return y


class ModulatedConv2d(nn.Module):
    """Style-modulated, demodulated 3×3 (or 1×1) convolution with optional 2× upsampling (3×3 only),
    per-pixel noise, bias, activation and an output clamp (±``clamp``, None = off). It runs the plain-convolution
    form in training and the fused (grouped) form otherwise, as StyleGAN2-ADA (``fused`` overrides)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: bool = False, act: str = "lrelu", demodulate: bool = True, noise: bool = True,
                 clamp: float | None = None) -> None:
        super().__init__()
        if up and kernel_size != 3:
            raise ValueError("upsampling convolutions are 3×3")
        self.up, self.act, self.demodulate, self.resolution, self.clamp = up, act, demodulate, resolution, clamp
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.noise_strength = nn.Parameter(torch.zeros([])) if noise else None
        if noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
        if up:
            register_filter(self)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                draws: Draws | None = None, fused: bool | None = None) -> torch.Tensor:
        """``noise_mode``: 'random' (fresh noise, from ``draws`` or torch's global generator), 'const' (the stored
        noise image) or 'none'; ``fused``: the grouped form (default: when not training)."""
        styles = self.affine(w)
        if not self.demodulate:  # toRGB: the gain goes on the styles, as in StyleGAN2
            styles = styles * self.weight_gain
            weight = self.weight
        else:
            weight = self.weight * self.weight_gain
        x = modulated_conv2d(x, weight, styles, demodulate=self.demodulate, padding=self.padding, up=self.up,
                             f=self.resample_filter if self.up else None,
                             fused=not self.training if fused is None else fused)
        if self.noise_strength is not None and noise_mode != "none":
            if noise_mode == "random":
                noise = (draws.randn(1, self.resolution, self.resolution, dtype=x.dtype) if draws is not None else
                         torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype))
            elif noise_mode == "const":
                noise = self.noise_const
            else:
                raise ValueError(f"unknown noise mode {noise_mode!r}")
            x = x + noise * self.noise_strength
        return bias_act(x, self.bias, self.act, clamp=self.clamp)
