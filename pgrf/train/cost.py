"""What a run's networks cost: parameter counts and forward FLOPs per sample (``pgrf train --dry-run``).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward pass of one sample:
G renders one r×r patch (r: the run's patch resolution; mapping, tri-plane synthesis, and the decoder
at every coarse and fine ray sample), D judges one r×r patch (trunk, hypernetwork, embeddings). The
counter counts the operations in its registry — matrix products (mm, addmm, bmm, baddbmm), convolutions
(resampling filters run as convolutions included) and attention — at 2 FLOPs per multiply-add.
Element-wise work (activations, normalisation, softplus, grid sampling of the tri-planes, ray marching
and compositing) is not counted, so the figures are the multiply-add work of the layers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pgrf.formats.card import CameraModel
from pgrf.model.discriminator import Discriminator
from pgrf.model.generator import Generator
from pgrf.model.patches import full_image_patches
from pgrf.model.poses import sample_poses


def parameter_count(module: nn.Module) -> int:
    """Number of parameters (every element of every parameter tensor)."""
    return sum(p.numel() for p in module.parameters())


def _flops(call: object) -> int:
    with FlopCounterMode(display=False) as counter:
        call()  # type: ignore[operator]
    return counter.get_total_flops()


def forward_gflops(G: Generator, D: Discriminator, camera: CameraModel) -> dict[str, float]:
    """GFLOPs of one sample's forward pass through G and D at their patch resolution (see the module docstring).

    The networks run in eval mode (so the tracked average w is not updated) and are put back in their modes.
    (Not under ``torch.no_grad``: the counter's module tracker needs autograd to follow module inputs.)
    """
    config, device = G.config, next(G.parameters()).device
    modes = [(m, m.training) for m in (*G.modules(), *D.modules())]
    G.eval()
    D.eval()
    try:
        c = torch.eye(config.c_dim, device=device)[:1] if config.c_dim else None
        c2w, intrinsics, angles = (t.to(device) for t in sample_poses(1, camera.radius, camera.fov, np.random.default_rng(0)))
        patch = full_image_patches(1, device)
        z = torch.zeros(1, config.z_dim, device=device)
        g = _flops(lambda: G(z, c, c2w, intrinsics, patch))
        image = torch.zeros(1, 3, config.patch_resolution, config.patch_resolution, device=device)
        d = _flops(lambda: D(image, patch, c, angles if config.camera_cond else None))
    finally:
        for module, training in modes:
            module.training = training
    return {"G": g / 1e9, "D": d / 1e9}
