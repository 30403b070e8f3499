"""Model configurations: the paper's sizes and small ones for CPU runs and tests (docs/training.md)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal, get_args

from pgrf.errors import PgrfError

PatchSchedule = Literal["beta", "uniform"]
"""Patch-scale schedules: Beta(1, β(t)) scales (the paper's) or the annealed-uniform baseline."""
PATCH_SCHEDULES: tuple[PatchSchedule, ...] = get_args(PatchSchedule)

RgbActivation = Literal["linear", "sigmoid"]
"""How the tri-plane decoder's raw output becomes colour: as is (the reference) or through a sigmoid."""
RGB_ACTIVATIONS: tuple[RgbActivation, ...] = get_args(RgbActivation)

Preset = Literal["paper", "small", "tiny"]
"""The named model sizes (``PRESETS``)."""


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of G, D and the patch sampler. ``resolution`` and ``c_dim`` come from the dataset."""

    resolution: int = 256
    """Dataset image size R (square)."""
    patch_resolution: int = 64
    """Patch size r: G renders and D judges r×r patches."""
    c_dim: int = 0
    """Number of classes (0 = unconditional)."""

    # generator
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 2
    mapping_lr_mult: float = 0.01
    w_avg_beta: float = 0.998
    plane_resolution: int = 512
    """Tri-plane resolution R_p."""
    plane_channels: int = 32
    g_channel_base: int = 32768
    g_channel_max: int = 512
    g_conv_clamp: float | None = 256.0
    """Clamp of the synthesis convolutions' outputs (±, None = off), StyleGAN2's default."""
    decoder_hidden: int = 64
    rgb_activation: RgbActivation = "linear"
    """'linear': the decoder's raw colour is the colour in [-1, 1] units (the reference; composited images
    can leave [-1, 1]); 'sigmoid': squashed into the range."""
    coarse_steps: int = 48
    fine_steps: int = 48
    density_noise: float = 1.0
    density_noise_kimg: float = 5000.0
    """The std of the training-time noise on raw density fades linearly from ``density_noise`` to 0 at this kimg."""

    # discriminator
    d_channel_base: int = 16384
    """The reference's Megascans D: channel base 32768 × capacity 0.5 (64/128/256 channels at 64² for R = 256)."""
    d_channel_max: int = 512
    mbstd_group: int = 4
    hyper: bool = True
    """Hypernetwork modulation of D's convolutions (False = the standard-D ablation)."""
    hyper_dim: int = 512
    """Size of the patch representation p (the hypernetwork mapping's width). D's mapping networks use
    ``mapping_layers`` and ``mapping_lr_mult`` like G's (the reference's defaults are the same for both)."""
    patch_bins: int = 1000
    """Patch-parameter encoding: each of (s, δx, δy) is scaled by this, then gets ⌈log2 bins⌉ sin/cos
    Fourier frequencies and a learned embedding of its bin (the reference: 1000)."""
    patch_embed_dim: int = 256
    """Size of the learned per-bin embedding of each patch parameter (the reference: 256; 828 dims in all)."""
    camera_cond: bool = False
    """Condition D on Fourier-encoded yaw and pitch (with dropout 0.5 in training)."""
    camera_freqs: int = 4
    d_conv_clamp: float | None = 256.0

    # patch sampling
    patch_schedule: PatchSchedule = "beta"
    """'beta' (Beta(1, β(t)) scales) or 'uniform' (the annealed-uniform baseline)."""
    beta_start: float = 0.001
    beta_end: float = 0.8
    anneal_kimg: float = 10000.0
    """T: kimg over which β (or the uniform baseline's s_min) is annealed."""

    def __post_init__(self) -> None:
        for name in ("resolution", "patch_resolution", "plane_resolution"):
            value = getattr(self, name)
            if value < 4 or value & (value - 1):
                raise PgrfError(f"model config: {name} must be a power of two >= 4, got {value}")
        if self.patch_resolution > self.resolution:
            raise PgrfError(f"model config: patch_resolution {self.patch_resolution} exceeds resolution {self.resolution}")
        if self.patch_schedule not in PATCH_SCHEDULES:
            raise PgrfError(f"model config: patch_schedule must be 'beta' or 'uniform', got {self.patch_schedule!r}")
        if self.coarse_steps < 2 or self.fine_steps < 0:
            raise PgrfError("model config: need coarse_steps >= 2 and fine_steps >= 0")
        if self.mbstd_group < 1 or self.c_dim < 0:
            raise PgrfError("model config: mbstd_group must be >= 1 and c_dim >= 0")
        if self.rgb_activation not in RGB_ACTIVATIONS:
            raise PgrfError(f"model config: rgb_activation must be 'linear' or 'sigmoid', got {self.rgb_activation!r}")
        if self.patch_bins < 2 or self.patch_embed_dim < 0:
            raise PgrfError("model config: need patch_bins >= 2 and patch_embed_dim >= 0")

    def with_dataset(self, resolution: int, c_dim: int) -> ModelConfig:
        """This config for a dataset of ``resolution``² images with ``c_dim`` classes."""
        return replace(self, resolution=resolution, c_dim=c_dim,
                       patch_resolution=min(self.patch_resolution, resolution))

    def override(self, **values: object) -> ModelConfig:
        """A copy with some fields changed; an unknown field is a PgrfError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PgrfError(f"model config: unknown field(s) {', '.join(unknown)}")
        return replace(self, **values)


PRESETS: dict[Preset, ModelConfig] = {
    "paper": ModelConfig(),
    "small": ModelConfig(
        resolution=64, patch_resolution=32, z_dim=128, w_dim=128, plane_resolution=64, plane_channels=16,
        g_channel_base=4096, g_channel_max=128, coarse_steps=24, fine_steps=24,
        d_channel_base=2048, d_channel_max=128, hyper_dim=128, anneal_kimg=500.0,
    ),
    "tiny": ModelConfig(
        resolution=16, patch_resolution=8, z_dim=16, w_dim=16, plane_resolution=16, plane_channels=4,
        g_channel_base=128, g_channel_max=16, decoder_hidden=16, coarse_steps=8, fine_steps=8,
        d_channel_base=64, d_channel_max=16, mbstd_group=2, hyper_dim=16, patch_bins=16, patch_embed_dim=4,
        anneal_kimg=10.0,
    ),
}
"""``paper``: EpiGRAF's Megascans networks (the reference's widths and parameter counts at 256² with 64²
patches, pinned in tests/unit/test_presets.py). ``small``: CPU-trainable runs. ``tiny``: unit tests."""


def preset(name: str) -> ModelConfig:
    """The named preset, or a PgrfError listing the known ones."""
    if name not in PRESETS:
        raise PgrfError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
