"""GAN losses and the small pieces of StyleGAN2 optimisation the loop needs (docs/training.md).

- Non-saturating logistic loss: G minimises softplus(−D(G(z))); D minimises softplus(D(fake)) + softplus(−D(real)).
- R1 = ‖∇ₓ D(x)‖² on real patches, weighted γ/2, applied lazily every ``interval`` D steps and multiplied
  by the interval (StyleGAN2 §B). It rides on the ordinary D step rather than an extra optimiser step, so
  Adam's lr and betas are not compensated (StyleGAN2's 16/17 factors are for its separate regulariser step).
- Blur of D's inputs with the reference's Gaussian kernel, its σ fading linearly to 0; EMA of G with ramp-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss, mean over the batch."""
    return F.softplus(-fake_logits).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic D loss, mean over the batch."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_logits: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of D's real logits w.r.t. its (grad-requiring) inputs."""
    (gradient,) = torch.autograd.grad(real_logits.sum(), reals, create_graph=True)
    return gradient.square().flatten(1).sum(dim=1)


def blur_sigma_at(kimg: float, sigma: float, fade_kimg: float) -> float:
    """σ of the D-input blur at ``kimg``: ``sigma`` fading linearly to 0 at ``fade_kimg``."""
    if fade_kimg <= 0:
        return 0.0
    return sigma * max(0.0, 1.0 - kimg / fade_kimg)


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable blur of NCHW images with the reference's kernel (identity for σ ≤ 0), reflect-padded.

    As EpiGRAF's and StyleGAN3's training loss: taps x ∈ [−⌊3σ⌋, ⌊3σ⌋] weighted 2^(−(x/σ)²), normalised,
    i.e. a Gaussian of std σ/√(2 ln 2) ≈ 0.85σ. The reference pads with zeros; pgrf reflects, so a white
    background does not darken towards the patch border (reals and fakes alike, the loss is unchanged in kind).
    """
    if sigma <= 0:
        return images
    radius = min(math.floor(3 * sigma), images.shape[-1] - 1)
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    kernel = torch.exp2(-(taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(images.dtype)
    channels = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def ema_beta(batch: int, images_seen: int, half_life_kimg: float, rampup: float | None) -> float:
    """Decay of the G EMA for one step: half-life ``half_life_kimg`` capped at ``rampup`` × images seen."""
    half_life = half_life_kimg * 1000
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema ← model + β (ema − model) for parameters, as ema + (1 − β)(model − ema) in one fused call over all of
    them; buffers (e.g. w_avg) are copied."""
    targets, sources = list(ema.parameters()), [p.detach() for p in model.parameters()]
    if targets:
        torch._foreach_lerp_(targets, sources, 1.0 - beta)
    buffers, copies = list(ema.buffers()), list(model.buffers())
    if buffers:
        torch._foreach_copy_(buffers, copies)


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam (ε 1e-8), fused where torch has the kernel (CUDA, the CPU): one kernel for all parameters, and its step
    counts kept beside them, so a step never reads one back (the foreach and single-tensor forms call ``item`` per
    parameter); foreach elsewhere (``meta``). Its state dict loads into either kind: after a load (a run resumed on
    another device, or a checkpoint of an unfused optimiser) it keeps its own kernel and moves the step counts where
    that kernel wants them (float32 on the parameters' device for fused, the CPU otherwise)."""
    fused = device.type in ("cuda", "cpu")
    optimiser = torch.optim.Adam(params, lr=lr, betas=betas, eps=1e-8, fused=fused, foreach=not fused)

    def keep_kernel(loaded: torch.optim.Optimizer) -> None:
        for group in loaded.param_groups:
            group["fused"], group["foreach"] = fused, not fused
            for param in group["params"]:
                state = loaded.state.get(param, {})
                if "step" in state:
                    state["step"] = state["step"].to(device=param.device if fused else "cpu", dtype=torch.float32)

    optimiser.register_load_state_dict_post_hook(keep_kernel)
    return optimiser
