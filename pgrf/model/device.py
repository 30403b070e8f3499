"""Device names for everything that runs a network: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``check_device_name`` needs no torch, so options and flags can be checked before torch is imported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pgrf.errors import PgrfError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto | cpu | cuda[:N]"


def check_device_name(name: str) -> None:
    """A one-line error unless ``name`` is auto, cpu, cuda or cuda:N (whether a GPU is there is not checked)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise PgrfError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a one-line error otherwise."""
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PgrfError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise PgrfError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPUs are visible (cuda:0 …)")
    return device


def allow_tf32(enabled: bool) -> None:
    """Whether CUDA matmuls and cuDNN convolutions may use TF32. PyTorch lets cuDNN use it by default; pgrf turns it
    off unless asked (G in full precision, the FID Inception exact), as StyleGAN2-ADA's code does."""
    import torch  # here: the CLI imports this module without torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
