"""Everything ``pgrf train`` can be told, with the defaults of docs/training.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pgrf.choices import check_choices
from pgrf.devices import check_device_name
from pgrf.errors import PgrfError
from pgrf.model.presets import PatchSchedule, Preset

Precision = Literal["reference", "fp32", "bf16", "tf32"]
"""Number formats in training (``pgrf.train.precision``): the reference's (D's highest-resolution blocks in fp16 on
CUDA), all fp32, D under bf16 autocast on CUDA, or fp32 with TF32."""

EMA_KIMG_PER_IMAGE = 10 / 32
"""G_ema's default half-life per image of the batch (StyleGAN2's rule, which EpiGRAF keeps: 20 kimg at batch 64)."""


@dataclass(frozen=True)
class TrainOptions:
    """A training run's options (``pgrf train`` flags); the model sizes come from ``preset``."""

    shards: str
    out: str = "runs"
    name: str | None = None
    """Run folder name under ``out`` (default: the dataset's name and the preset)."""
    kimg: float = 15000.0
    batch: int = 64
    """Images per step over all ranks (each rank gets batch / world size)."""
    batch_gpu: int | None = None
    """Samples each process puts through G and D at once: its batch is accumulated over rounds of this many (the
    same gradients, to round-off, as one pass). None: the whole per-process batch on the CPU; on CUDA the most that
    fits the card's free memory (``pgrf.train.memory``). A run setting: a resumed run may change it."""
    preset: Preset = "paper"
    patch_res: int | None = None
    """Patch resolution r; None: the preset's. Like ``schedule``, ``hyper`` and ``camera_cond`` it overrides a ModelConfig field,
    whose default is the one that applies when it is not given."""
    gamma: float = 0.05
    schedule: PatchSchedule | None = None
    hyper: bool | None = None
    camera_cond: bool | None = None
    """D conditioned on Fourier-encoded yaw and pitch (the method's FFHQ/Cats setting); None: the preset's (off)."""
    mirror: bool = False
    """Mirror reals on the fly (with the mirrored camera), for shards packed with --no-mirror."""
    conditional: bool = True
    """Class-conditional G and D when the dataset has more than one class."""
    reuse_fakes: bool = False
    """D judges the G step's fakes (detached: same z, poses and patches, rendered before G's update) instead of
    fresh ones rendered by the updated G from new z, poses and patches (the reference); saves a third of the rendering."""
    shared_patches: bool = False
    """Cut each real patch at the (s, δ) of the fake D judges beside it instead of drawing it independently (the reference)."""
    fake_poses: Literal["sphere", "data"] = "sphere"
    """'sphere': fake cameras uniform on the sphere (the dataset's distribution); 'data': the reals' cameras."""
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    shuffle_buffer: int = 1000
    lr: float = 0.002
    precision: Precision = "reference"
    """G fp32 and TF32 off always but for 'tf32'; D: 'reference' its highest-resolution blocks in fp16 on CUDA (fp32 on
    the CPU), 'fp32', 'bf16' autocast on CUDA, 'tf32' fp32 with TF32 (``pgrf.train.precision``)."""
    r1_interval: int = 16
    ema_kimg: float | None = None
    """Half-life of G_ema in kimg; None: ``batch`` × 10/32 (the reference's rule, 20 kimg at batch 64)."""
    ema_rampup: float | None = 0.05
    blur_sigma: float = 10.0
    blur_kimg: float = 200.0
    augment: bool = True
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    tick_kimg: float = 4.0
    snapshot_kimg: float = 200.0
    sample_kimg: float = 200.0
    fid_kimg: float = 0.0
    """FID@fid_num every this many kimg (0: off); needs ``inception``."""
    fid_num: int = 2048
    inception: str | None = None
    resume: str | None = None
    """'latest' (this run's last checkpoint) or a checkpoint path."""

    def __post_init__(self) -> None:
        if self.kimg <= 0 or self.batch <= 0 or (self.batch_gpu is not None and self.batch_gpu <= 0):
            raise PgrfError("--kimg, --batch and --batch-gpu must be positive")
        check_choices(self)
        check_device_name(self.device)
        if self.gamma < 0 or self.r1_interval < 1 or self.tick_kimg <= 0:
            raise PgrfError("--gamma must be >= 0, the R1 interval >= 1 and tick_kimg > 0")
        if self.ema_kimg is not None and self.ema_kimg < 0:
            raise PgrfError(f"--ema-kimg must be >= 0; got {self.ema_kimg}")

    @property
    def ema_half_life_kimg(self) -> float:
        """G_ema's half-life in kimg: ``ema_kimg``, or ``batch`` × ``EMA_KIMG_PER_IMAGE`` when it is None."""
        return self.ema_kimg if self.ema_kimg is not None else self.batch * EMA_KIMG_PER_IMAGE
