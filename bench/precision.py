"""D's precision: logits, R1 and gradients of reduced-precision D against fp32, on the CPU.

Run from the repository root: ``.venv/bin/python bench/precision.py [--preset small] [--batch 16] [--seed 0]
[--json FILE]``.

A freshly initialised D of the preset judges ``batch`` real-like patches (smooth random images, patch
parameters from the Beta schedule at T/2). For each format it computes the logits, R1 (‖∇ₓD(x)‖² per
sample) and the gradient of D's parameters of the real side's loss at an R1 step, softplus(−D(x)) + 0.4 · R1
(γ/2 × 16 at γ = 0.05), and compares them with fp32's: max and mean absolute difference and the relative
difference ‖a − b‖ / ‖b‖ (the gradients flattened into one vector). Formats: ``bf16`` (D under bf16 autocast,
the CPU's autocast standing in for CUDA's; ``--precision bf16``) and ``fp16 blocks`` / ``bf16 blocks``
(``Discriminator.forward(half=…)``: the highest-resolution blocks in that dtype, the rest in fp32;
``--precision reference`` on CUDA uses fp16). CPU kernels accumulate differently from cuDNN's, so the
numbers show the size of the rounding, not a GPU's exact figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from pgrf.model.discriminator import Discriminator
from pgrf.model.patches import PatchSampler
from pgrf.model.presets import preset
from pgrf.train.losses import r1_penalty

Outputs = dict[str, torch.Tensor]


def judge(D: Discriminator, img: torch.Tensor, patch: torch.Tensor,
          region: Callable[[], contextlib.AbstractContextManager[object]], half: torch.dtype | None) -> Outputs:
    """Logits, R1 and the flattened parameter gradient of softplus(−D) + 0.4 · R1 in one format."""
    D.zero_grad(set_to_none=True)
    x = img.clone().requires_grad_(True)
    with region():
        logits = D(x, patch, half=half).float()
    r1 = r1_penalty(logits, x)
    (F.softplus(-logits).mean() + 0.4 * r1.mean()).backward()
    grads = torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])
    return {"logits": logits.detach().flatten(), "R1": r1.detach(), "gradients": grads}


def differences(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Max and mean |a − b| and ‖a − b‖ / ‖b‖."""
    d = (a - b).abs()
    return {"max_abs": d.max().item(), "mean_abs": d.mean().item(),
            "relative": (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    config = preset(args.preset)
    D = Discriminator(config).train()
    r = config.patch_resolution
    img = F.avg_pool2d(torch.randn(args.batch, 3, r + 6, r + 6), 7, stride=1).mul(2.5).clamp(-1, 1)
    sampler = PatchSampler(config.resolution, config.patch_resolution, config.patch_schedule, config.anneal_kimg,
                           config.beta_start, config.beta_end)
    patch = sampler.sample(args.batch, config.anneal_kimg / 2, group_size=config.mbstd_group,
                           generator=torch.Generator().manual_seed(args.seed))
    none = contextlib.nullcontext
    base = judge(D, img, patch, none, None)
    formats = {"bf16": (lambda: torch.autocast("cpu", dtype=torch.bfloat16), None),
               "fp16 blocks": (none, torch.float16), "bf16 blocks": (none, torch.bfloat16)}
    low = [b.low_precision for b in D.blocks].count(True)
    report: dict[str, object] = {"preset": args.preset, "batch": args.batch, "seed": args.seed,
                                 "half_blocks": f"{low} of {len(D.blocks)}",
                                 "fp32_scale": {k: v.abs().mean().item() for k, v in base.items()}}
    print(f"{args.preset}: batch {args.batch}, {low} of {len(D.blocks)} D blocks in half precision; "
          + ", ".join(f"mean |{k}| {v:.3g}" for k, v in report["fp32_scale"].items()))
    for name, (region, half) in formats.items():
        out = judge(D, img, patch, region, half)
        report[name] = {k: differences(out[k], base[k]) for k in base}
        for k, d in report[name].items():
            print(f"  {name:12s} {k:10s} max {d['max_abs']:.3g}  mean {d['mean_abs']:.3g}  relative {d['relative']:.3g}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
