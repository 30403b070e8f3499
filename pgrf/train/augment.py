"""StyleGAN2-ADA augmentation without x-flip, and the adaptive-p controller (docs/training.md, ADA).

The pipeline is StyleGAN2-ADA's "bgc" set minus x-flip (horizontal flips come only from dataset
mirroring, where the camera is mirrored too): 90° rotations, integer translation, isotropic scaling,
arbitrary rotation, anisotropic scaling and fractional translation (geometric), then brightness,
contrast, luma flip, hue rotation and saturation (colour). Parameters follow the ADA paper's
appendix B: each op is applied per sample with probability p (arbitrary rotation twice, each with
1 - sqrt(1 - p), so that some rotation happens with probability p).

Geometric ops are accumulated into one inverse matrix per sample (output pixel -> input pixel, in
pixels, origin at the image centre, x right, y down) and applied with a single resampling: reflect
padding (by the image size less one, the most StyleGAN2-ADA pads), 2x upsampling, bilinear sampling on
the fine grid, filtered 2x downsampling. The
up/down filters are the symmetric biorthogonal 9/7-M pair (4-point interpolating up-filter,
9-tap analysis down-filter) for which ``down(up(x)) == x``; being symmetric and centred on the
pixels, integer translations and 90° rotations of any square size come out exact up to float
rounding. Images are NCHW (3 channels for the colour ops) in [-1, 1], any size, CPU or GPU;
everything is differentiable w.r.t. the images (twice, for R1 through the augmentation).

Nothing waits for the device: p may be a tensor on it, every sample is transformed and the untouched ones
are taken back from the input (``torch.where``), the padding does not depend on the drawn transforms, and the
random numbers come from a training step's ``Draws`` (or a ``torch.Generator``) on the images' device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pgrf.model.draws import Draws

GEOMETRIC_OPS = ("rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
OPS = GEOMETRIC_OPS + COLOR_OPS
"""Every op, in the order the pipeline composes them."""

UP_FILTER = (-1 / 16, 0.0, 9 / 16, 1.0, 9 / 16, 0.0, -1 / 16)
DOWN_FILTER = (1 / 64, 0.0, -8 / 64, 16 / 64, 46 / 64, 16 / 64, -8 / 64, 0.0, 1 / 64)
_UP_HALF, _DOWN_HALF = len(UP_FILTER) // 2, len(DOWN_FILTER) // 2


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
    """The ADA pipeline (without x-flip); ``pipe(images, p, source)`` augments a batch, its random numbers drawn from
    ``source`` (a training step's ``Draws``, a ``torch.Generator``, or None: torch's global generator)."""

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

    def __call__(self, images: Tensor, p: float | Tensor, source: Draws | torch.Generator | None = None) -> Tensor:
        n, _, h, w = images.shape
        return self.apply(images, self.sample(n, h, w, p, source))

    def sample(self, batch: int, height: int, width: int, p: float | Tensor,
               source: Draws | torch.Generator | None = None) -> AugmentParams:
        """Draw per-sample transforms with probability ``p`` (a float in [0, 1], or a 0-dim tensor, unchecked), on the
        device of ``source``; the same generator state (or step seed) gives the same params on any device."""
        if not isinstance(p, Tensor) and not 0.0 <= p <= 1.0:
            raise ValueError(f"augmentation probability p must be in [0, 1], got {p}")
        if isinstance(source, Draws) and source.count != batch:
            raise ValueError(f"draws for {source.count} samples, not {batch}")
        device = source.device if source is not None else torch.device("cpu")

        def rand(*shape: int) -> Tensor:
            if isinstance(source, Draws):
                return source.rand(*shape[1:], dtype=torch.float64)
            return torch.rand(shape, generator=source, device=device, dtype=torch.float64)

        def randn(*shape: int) -> Tensor:
            if isinstance(source, Draws):
                return source.randn(*shape[1:], dtype=torch.float64)
            return torch.randn(shape, generator=source, device=device, dtype=torch.float64)

        def gate(values: Tensor, identity: float, prob: float | Tensor = p) -> Tensor:
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
        p_rot = 1 - (1 - p) ** 0.5
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
        luma = torch.full((4,), 1 / math.sqrt(3.0), dtype=torch.float64, device=device)
        luma[3] = 0.0
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
        """Apply drawn params to NCHW images; samples whose transforms are identities are untouched (bit for bit).
        The colour ops need 3-channel images whenever the pipe has any (whatever was drawn: nothing is read back)."""
        if images.ndim != 4 or images.shape[0] != params.geom.shape[0]:
            raise ValueError(f"expected NCHW images for {params.geom.shape[0]} params, got {tuple(images.shape)}")
        if self.ops & set(COLOR_OPS) and images.shape[1] != 3:
            raise ValueError(f"colour augmentation needs 3-channel images, got {images.shape[1]} channels")
        dtype = images.dtype  # resampling coordinates need at least float32
        out = images.float()
        if self.ops & set(GEOMETRIC_OPS):
            eye3 = torch.eye(3, dtype=params.geom.dtype, device=params.geom.device)
            moved = (params.geom != eye3).any(dim=2).any(dim=1).to(out.device)
            out = torch.where(moved[:, None, None, None], _warp(out, params.geom), out)
        if self.ops & set(COLOR_OPS):
            out = _recolour(out, params.color)  # an identity matrix gives its input exactly
        return out.to(dtype)


class AdaptiveP:
    """ADA's p controller: p moves toward E[sign(D(real))] == target, by sign only.

    ``observe`` D's real logits every D step; ``update`` at the adjustment steps: once
    ``interval`` real images were observed, p += sign(r_t - target) * images / (speed_kimg * 1000),
    clamped to [0, 1] (so p can go 0 -> 1 in ``speed_kimg`` kimg). Under DDP pass ``reduce`` (an
    all-reduce sum of a 2-vector): r_t, the image count and the ``interval`` test are then over all
    ranks, so with ``interval`` = 4 × the global batch p moves every 4 steps whatever the world size
    (StyleGAN2-ADA's ``ada_interval``). Every rank must call ``update`` at the same steps.

    Neither waits for the device: the sums, the interval test and p itself (``p_tensor``) stay where the logits
    are; the property ``p`` reads p back (for ticks and checkpoints).
    """

    def __init__(self, target: float = 0.6, interval: int = 256, speed_kimg: float = 500.0, p: float = 0.0) -> None:
        if interval < 1 or speed_kimg <= 0 or not 0.0 <= p <= 1.0:
            raise ValueError("AdaptiveP needs interval >= 1, speed_kimg > 0 and p in [0, 1]")
        self.target, self.interval, self.speed_kimg = target, interval, speed_kimg
        self.p_tensor = torch.tensor(p, dtype=torch.float64)
        self._stats = torch.zeros(2, dtype=torch.float64)
        """Signs summed and images counted since the last adjustment (of this rank)."""

    @property
    def p(self) -> float:
        """The current p (reads it back from the device)."""
        return float(self.p_tensor)

    def observe(self, real_logits: Tensor) -> None:
        """Accumulate the signs of D's outputs on real images (one value per image)."""
        logits = real_logits.detach()
        self._stats = self._stats.to(logits.device) + torch.stack([
            torch.sign(logits).sum(dtype=torch.float64),
            torch.tensor(float(logits.numel()), dtype=torch.float64, device=logits.device)])

    def update(self, reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        """Adjust p if a full interval has been observed (over all ranks with ``reduce``, an all-reduce sum)."""
        stats = reduce(self._stats) if reduce is not None else self._stats
        sign_sum, count = stats[0], stats[1]
        ready = (count >= self.interval) & (count > 0)
        step = torch.sign(sign_sum / count.clamp(min=1) - self.target) * count / (self.speed_kimg * 1000)
        p = self.p_tensor.to(stats.device)
        self.p_tensor = torch.where(ready, (p + step).clamp(0.0, 1.0), p)
        self._stats = torch.where(ready, torch.zeros_like(self._stats), self._stats)

    def state_dict(self) -> dict[str, float | int]:
        sign_sum, count = self._stats.tolist()
        return {"p": self.p, "target": self.target, "interval": self.interval, "speed_kimg": self.speed_kimg,
                "sign_sum": sign_sum, "count": int(count)}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.target, self.interval, self.speed_kimg = float(state["target"]), int(state["interval"]), float(state["speed_kimg"])
        self.p_tensor = torch.tensor(float(state["p"]), dtype=torch.float64)
        self._stats = torch.tensor([float(state["sign_sum"]), float(state["count"])], dtype=torch.float64)


def _warp(images: Tensor, g_inv: Tensor) -> Tensor:
    """Resample each image through its inverse matrix: reflect pad, up 2x, bilinear, down 2x."""
    h, w = images.shape[2:]
    # The outermost output fine samples lie 1.5 px beyond the image (down-filter support); the input
    # needs 1 px more for complete up-filter taps and the bilinear neighbour. Like StyleGAN2-ADA, the
    # padding is capped at the image size; the rare farther reach reflects about the padded border. The cap is
    # always taken (the reach is not read back from the device): a sample that reaches less is the same either way.
    pad = min(h, w) - 1
    fine = _upsample(F.pad(images, (pad, pad, pad, pad), mode="reflect"))

    # Output fine samples q cover each output pixel's down-filter taps; map them to input fine indices.
    def out_coords(size: int) -> Tensor:
        steps = torch.arange(2 * size + 2 * _DOWN_HALF - 1, dtype=torch.float64, device=images.device)
        return (steps - _DOWN_HALF) / 2 + 0.5 - size / 2

    v, u = torch.meshgrid(out_coords(h), out_coords(w), indexing="ij")
    points = torch.stack([u, v, torch.ones_like(u)], dim=-1)
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
    """(N, rows, columns) matrices of per-sample tensor entries and constants (filled on ``like``'s device)."""
    return torch.stack([torch.stack([e.expand_as(like) if isinstance(e, Tensor) else torch.full_like(like, e)
                                     for e in row], dim=-1) for row in rows], dim=-2)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrix([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]], theta)


def _rotate90(k: Tensor) -> Tensor:
    """Rotation by k quarter turns with exact 0/±1 entries (the cosine and sine rounded)."""
    angle = (k.long() % 4).double() * (math.pi / 2)
    cos, sin = torch.cos(angle).round(), torch.sin(angle).round()
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
