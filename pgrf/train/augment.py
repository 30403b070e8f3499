"""StyleGAN2-ADA augmentation without x-flip, and the adaptive-p controller (docs/training.md, ADA).

The pipeline is StyleGAN2-ADA's "bgc" set minus x-flip (horizontal flips come only from dataset
mirroring, where the camera is mirrored too): 90° rotations, integer translation, isotropic scaling,
arbitrary rotation, anisotropic scaling and fractional translation (geometric), then brightness,
contrast, luma flip, hue rotation and saturation (colour). Parameters follow the ADA paper's
appendix B: each op is applied per sample with probability p (arbitrary rotation twice, each with
1 - sqrt(1 - p), so that some rotation happens with probability p).

Geometric ops are accumulated into one inverse matrix per sample (output pixel -> input pixel, in
pixels, origin at the image centre, x right, y down) and applied with a single resampling: reflect
padding, 2x upsampling, bilinear sampling on the fine grid, filtered 2x downsampling. The
up/down filters are the symmetric biorthogonal 9/7-M pair (4-point interpolating up-filter,
9-tap analysis down-filter) for which ``down(up(x)) == x``; being symmetric and centred on the
pixels, integer translations and 90° rotations of any square size come out exact up to float
rounding. Images are NCHW (3 channels for the colour ops) in [-1, 1], any size, CPU or GPU;
everything is differentiable w.r.t. the images (twice, for R1 through the augmentation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GEOMETRIC_OPS = ("rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = GEOMETRIC_OPS + COLOR_OPS
"""Every op, in the order the pipeline composes them."""

UP_FILTER = (-1 / 16, 0.0, 9 / 16, 1.0, 9 / 16, 0.0, -1 / 16)
DOWN_FILTER = (1 / 64, 0.0, -8 / 64, 16 / 64, 46 / 64, 16 / 64, -8 / 64, 0.0, 1 / 64)
_UP_HALF, _DOWN_HALF = len(UP_FILTER) // 2, len(DOWN_FILTER) // 2
_LUMA = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3.0)


@dataclass(frozen=True)
class AugmentParams:
    """One batch's drawn augmentation, reusable for several batches (reals and fakes alike).

    ``geom``: (N, 3, 3) float64, maps output pixel coordinates to input ones (centre origin, pixels).
    ``color``: (N, 4, 4) float64, applied as ``rgb' = color[:3, :3] @ rgb + color[:3, 3]``.
    """

    geom: Tensor
    color: Tensor

    def to(self, device: torch.device | str) -> AugmentParams:
        return AugmentParams(self.geom.to(device), self.color.to(device))


class AugmentPipe:
    """The ADA pipeline (without x-flip); ``pipe(images, p, generator)`` augments a batch."""

    def __init__(self, ops: Iterable[str] = OPS, *, xint_max: float = 0.125, scale_std: float = 0.2,
                 rotate_max: float = 1.0, aniso_std: float = 0.2, xfrac_std: float = 0.125,
                 brightness_std: float = 0.2, contrast_std: float = 0.5, hue_max: float = 1.0,
                 saturation_std: float = 1.0) -> None:
        self.ops = frozenset(ops)
        unknown = self.ops - set(OPS)
        if unknown:
            raise ValueError(f"unknown augmentation ops {sorted(unknown)}; choose from {list(OPS)}")
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std

    def __call__(self, images: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = images.shape
        return self.apply(images, self.sample(n, h, w, p, generator))

    def sample(self, batch: int, height: int, width: int, p: float,
               generator: torch.Generator | None = None) -> AugmentParams:
        """Draw per-sample transforms; the same generator state gives the same params on any device."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {p}")
        device = generator.device if generator is not None else torch.device("cpu")

        def rand(*shape: int) -> Tensor:
            return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)

        def randn(*shape: int) -> Tensor:
            return torch.randn(shape, generator=generator, device=device, dtype=torch.float64)

        def gate(values: Tensor, identity: float, prob: float = p) -> Tensor:
            keep = rand(batch) < prob
            return torch.where(keep.view(-1, *[1] * (values.ndim - 1)), values, torch.full_like(values, identity))

        ops = self.ops
        g = torch.eye(3, dtype=torch.float64, device=device).repeat(batch, 1, 1)
        if "rotate90" in ops:
            g = g @ _rotate90(gate(torch.floor(rand(batch) * 4), 0.0))
        if "xint" in ops:
            t = gate((rand(batch, 2) * 2 - 1) * self.xint_max, 0.0)
            g = g @ _translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
        if "scale" in ops:
            s = gate(torch.exp2(randn(batch) * self.scale_std), 1.0)
            g = g @ _scale2d(1 / s, 1 / s)
        p_rot = 1 - math.sqrt(1 - p)
        if "rotate" in ops:
            g = g @ _rotate2d(-gate((rand(batch) * 2 - 1) * math.pi * self.rotate_max, 0.0, p_rot))
        if "aniso" in ops:
            s = gate(torch.exp2(randn(batch) * self.aniso_std), 1.0)
            g = g @ _scale2d(1 / s, s)
        if "rotate" in ops:
            g = g @ _rotate2d(-gate((rand(batch) * 2 - 1) * math.pi * self.rotate_max, 0.0, p_rot))
        if "xfrac" in ops:
            t = gate(randn(batch, 2) * self.xfrac_std, 0.0)
            g = g @ _translate2d(-t[:, 0] * width, -t[:, 1] * height)

        c = torch.eye(4, dtype=torch.float64, device=device).repeat(batch, 1, 1)
        luma = _LUMA.to(device)
        axis = torch.outer(luma, luma)
        if "brightness" in ops:
            b = gate(randn(batch) * self.brightness_std, 0.0)
            c = _translate3d(b) @ c
        if "contrast" in ops:
            s = gate(torch.exp2(randn(batch) * self.contrast_std), 1.0)
            c = _scale3d(s) @ c
        if "lumaflip" in ops:
            flip = gate(torch.floor(rand(batch) * 2), 0.0)
            c = (torch.eye(4, dtype=torch.float64, device=device) - 2 * axis * flip.view(-1, 1, 1)) @ c
        if "hue" in ops:
            c = _rotate_about_luma(gate((rand(batch) * 2 - 1) * math.pi * self.hue_max, 0.0)) @ c
        if "saturation" in ops:
            s = gate(torch.exp2(randn(batch) * self.saturation_std), 1.0).view(-1, 1, 1)
            eye = torch.eye(4, dtype=torch.float64, device=device)
            c = (eye + (eye - axis) * (s - 1)) @ c  # written so that s == 1 is exactly the identity
        return AugmentParams(g, c)

    def apply(self, images: Tensor, params: AugmentParams) -> Tensor:
        """Apply drawn params to NCHW images; samples whose transforms are identities are untouched."""
        if images.ndim != 4 or images.shape[0] != params.geom.shape[0]:
            raise ValueError(f"expected NCHW images for {params.geom.shape[0]} params, got {tuple(images.shape)}")
        eye3 = torch.eye(3, dtype=params.geom.dtype, device=params.geom.device)
        eye4 = torch.eye(4, dtype=params.color.dtype, device=params.color.device)
        moved = (params.geom != eye3).any(dim=2).any(dim=1)
        recoloured = (params.color != eye4).any(dim=2).any(dim=1)
        if recoloured.any() and images.shape[1] != 3:
            raise ValueError(f"colour augmentation needs 3-channel images, got {images.shape[1]} channels")
        dtype = images.dtype  # resampling coordinates need at least float32
        out = _on_subset(images.float(), moved, params.geom, _warp)
        return _on_subset(out, recoloured, params.color, _recolour).to(dtype)


class AdaptiveP:
    """ADA's p controller: p moves toward E[sign(D(real))] == target, by sign only.

    ``observe`` D's real logits every D step (no host sync); ``update`` at the adjustment steps: once
    ``interval`` real images were observed, p += sign(r_t - target) * images / (speed_kimg * 1000),
    clamped to [0, 1] (so p can go 0 -> 1 in ``speed_kimg`` kimg). Under DDP pass ``reduce`` (an
    all-reduce sum of a 2-vector): r_t, the image count and the ``interval`` test are then over all
    ranks, so with ``interval`` = 4 × the global batch p moves every 4 steps whatever the world size
    (StyleGAN2-ADA's ``ada_interval``). Every rank must call ``update`` at the same steps.
    """

    def __init__(self, target: float = 0.6, interval: int = 256, speed_kimg: float = 500.0, p: float = 0.0) -> None:
        if interval < 1 or speed_kimg <= 0 or not 0.0 <= p <= 1.0:
            raise ValueError("AdaptiveP needs interval >= 1, speed_kimg > 0 and p in [0, 1]")
        self.target, self.interval, self.speed_kimg, self.p = target, interval, speed_kimg, p
        self._sign_sum: Tensor | float = 0.0
        self._count = 0

    def observe(self, real_logits: Tensor) -> None:
        """Accumulate the signs of D's outputs on real images (one value per image)."""
        self._sign_sum = self._sign_sum + torch.sign(real_logits.detach()).sum(dtype=torch.float64)
        self._count += real_logits.numel()

    def update(self, reduce: Callable[[Tensor], Tensor] | None = None) -> float:
        """Adjust p if a full interval has been observed (over all ranks with ``reduce``); returns the current p."""
        sign_sum = torch.as_tensor(self._sign_sum, dtype=torch.float64).reshape(())
        stats = torch.stack([sign_sum, torch.tensor(float(self._count), dtype=torch.float64, device=sign_sum.device)])
        if reduce is not None:
            stats = reduce(stats)
        sign_sum, count = stats.tolist()
        if count < self.interval or count == 0:
            return self.p
        r_t = sign_sum / count
        step = math.copysign(1.0, r_t - self.target) if r_t != self.target else 0.0
        self.p = min(max(self.p + step * count / (self.speed_kimg * 1000), 0.0), 1.0)
        self._sign_sum, self._count = 0.0, 0
        return self.p

    def state_dict(self) -> dict[str, float | int]:
        return {"p": self.p, "target": self.target, "interval": self.interval, "speed_kimg": self.speed_kimg,
                "sign_sum": float(self._sign_sum), "count": self._count}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.p, self.target = float(state["p"]), float(state["target"])
        self.interval, self.speed_kimg = int(state["interval"]), float(state["speed_kimg"])
        self._sign_sum, self._count = float(state["sign_sum"]), int(state["count"])


def _on_subset(images: Tensor, mask: Tensor, matrices: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """``fn`` on the masked samples only, the rest passed through as they are."""
    index = mask.nonzero().flatten()
    if index.numel() == 0:
        return images
    if index.numel() == images.shape[0]:
        return fn(images, matrices)
    on_device = index.to(images.device)
    return images.index_copy(0, on_device, fn(images.index_select(0, on_device), matrices[index]))


def _warp(images: Tensor, g_inv: Tensor) -> Tensor:
    """Resample each image through its inverse matrix: reflect pad, up 2x, bilinear, down 2x."""
    h, w = images.shape[2:]
    # The outermost output fine samples lie 1.5 px beyond the image (down-filter support); the input
    # needs 1 px more for complete up-filter taps and the bilinear neighbour. Like StyleGAN2-ADA, the
    # padding is capped at the image size; the rare farther reach reflects about the padded border.
    margin = _DOWN_HALF / 2 - 0.5
    corners = torch.tensor([[sx * (w / 2 + margin), sy * (h / 2 + margin), 1.0] for sx in (-1, 1) for sy in (-1, 1)],
                           dtype=torch.float64)
    reach = (g_inv.cpu().double() @ corners.T)[:, :2].abs()
    overhang = max(float((reach[:, 0] - w / 2).max()), float((reach[:, 1] - h / 2).max()), 0.0)
    pad = min(math.ceil(overhang) + 2, min(h, w) - 1)
    fine = _upsample(F.pad(images, (pad, pad, pad, pad), mode="reflect"))

    # Output fine samples q cover each output pixel's down-filter taps; map them to input fine indices.
    def out_coords(size: int) -> Tensor:
        return (torch.arange(2 * size + 2 * _DOWN_HALF - 1, dtype=torch.float64) - _DOWN_HALF) / 2 + 0.5 - size / 2

    v, u = torch.meshgrid(out_coords(h), out_coords(w), indexing="ij")
    points = torch.stack([u, v, torch.ones_like(u)], dim=-1).to(images.device)
    source = torch.einsum("nij,hwj->nhwi", g_inv.to(device=images.device, dtype=torch.float64), points)
    fine_x = 2 * (source[..., 0] + w / 2 - 0.5 + pad)
    fine_y = 2 * (source[..., 1] + h / 2 - 0.5 + pad)
    grid = torch.stack([2 * fine_x / (fine.shape[3] - 1) - 1, 2 * fine_y / (fine.shape[2] - 1) - 1], dim=-1)
    sampled = F.grid_sample(fine, grid.to(images.dtype), mode="bilinear", padding_mode="reflection",
                            align_corners=True)
    return _downsample(sampled)


def _separable(images: Tensor, taps: tuple[float, ...], up: bool) -> Tensor:
    n, c, h, w = images.shape
    kernel = torch.tensor(taps, dtype=images.dtype, device=images.device)
    x = images.reshape(n * c, 1, h, w)
    for shape, stride, padding in (((1, 1, -1, 1), (2, 1), (_UP_HALF, 0)), ((1, 1, 1, -1), (1, 2), (0, _UP_HALF))):
        weight = kernel.view(shape)
        x = F.conv_transpose2d(x, weight, stride=stride, padding=padding) if up else F.conv2d(x, weight, stride=stride)
    return x.reshape(n, c, *x.shape[2:])


def _upsample(images: Tensor) -> Tensor:
    """(H, W) -> (2H - 1, 2W - 1); fine sample 2i is input pixel i, odd ones are interpolated."""
    return _separable(images, UP_FILTER, up=True)


def _downsample(images: Tensor) -> Tensor:
    """(2H + 7, 2W + 7) -> (H, W); output pixel k is centred on fine sample 2k + 4."""
    return _separable(images, DOWN_FILTER, up=False)


def _recolour(images: Tensor, color: Tensor) -> Tensor:
    color = color.to(device=images.device, dtype=images.dtype)
    return torch.einsum("nij,njhw->nihw", color[:, :3, :3], images) + color[:, :3, 3, None, None]


def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    return torch.stack([torch.stack([torch.as_tensor(e, dtype=like.dtype, device=like.device).expand_as(like)
                                     for e in row], dim=-1) for row in rows], dim=-2)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrix([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]], theta)


def _rotate90(k: Tensor) -> Tensor:
    """Rotation by k quarter turns with exact 0/±1 entries (cos/sin tables, not trigonometry)."""
    k = k.long() % 4
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], dtype=torch.float64, device=k.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], dtype=torch.float64, device=k.device)[k]
    return _matrix([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]], cos)


def _translate3d(t: Tensor) -> Tensor:
    return _matrix([[1.0, 0.0, 0.0, t], [0.0, 1.0, 0.0, t], [0.0, 0.0, 1.0, t], [0.0, 0.0, 0.0, 1.0]], t)


def _scale3d(s: Tensor) -> Tensor:
    return _matrix([[s, 0.0, 0.0, 0.0], [0.0, s, 0.0, 0.0], [0.0, 0.0, s, 0.0], [0.0, 0.0, 0.0, 1.0]], s)


def _rotate_about_luma(theta: Tensor) -> Tensor:
    """Rodrigues rotation about the grey axis (1, 1, 1)/sqrt(3): a hue rotation."""
    x = y = z = 1 / math.sqrt(3.0)
    cos, sin = torch.cos(theta), torch.sin(theta)
    one = 1 - cos
    return _matrix([
        [x * x * one + cos, x * y * one - z * sin, x * z * one + y * sin, 0.0],
        [y * x * one + z * sin, y * y * one + cos, y * z * one - x * sin, 0.0],
        [z * x * one - y * sin, z * y * one + x * sin, z * z * one + cos, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ], theta)
