"""``--precision``: the number formats of G and D in training (docs/training.md, section 7).

- ``reference`` (StyleGAN2-ADA's and EpiGRAF's): G in fp32, TF32 off; on CUDA D's blocks at its
  ``NUM_FP16_RES`` highest resolutions run in fp16 (their convolutions clamped to ±256, as in every
  precision), the rest of D in fp32. On the CPU everything is fp32 (the reference also forces fp32 off CUDA).
- ``fp32``: everything in fp32, TF32 off.
- ``bf16``: D under bf16 autocast on CUDA (pgrf's behaviour before this option), fp32 on the CPU; TF32 off.
- ``tf32``: everything in fp32 with TF32 allowed in CUDA matmuls and convolutions.
"""

from __future__ import annotations

import contextlib

import torch

from pgrf.train.options import Precision


def allows_tf32(precision: Precision) -> bool:
    """Whether CUDA matmuls and convolutions may use TF32 (``runtime.allow_tf32``)."""
    return precision == "tf32"


def d_half(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The dtype of D's highest-resolution blocks (``Discriminator.forward(half=…)``): fp16 for ``reference`` on
    CUDA; None (D in fp32, or as ``d_autocast`` chooses) otherwise."""
    return torch.float16 if precision == "reference" and device.type == "cuda" else None


def d_autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """The autocast region D's forward runs in: bf16 on CUDA for ``bf16``, none otherwise."""
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
