"""What ``pgrf train`` evaluates at its intervals: the training grid and FID, one entry point for the loop.

As StyleGAN2-ADA's loop calls ``metric_main``, the loop calls ``snapshot_grid`` for its sample grid and
``snapshot_fid`` for the record it logs; the grid's seeds and cameras are defined here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pgrf.data.source import Shards
from pgrf.evaluate.metrics import compute_fid
from pgrf.evaluate.samples import ring_cameras, save_png
from pgrf.evaluate.views import class_labels, image_grid, to_uint8
from pgrf.formats.card import DatasetInfo
from pgrf.formats.fid_record import FidRecord
from pgrf.model.generator import Generator, seeded_latents

GRID_SEEDS = tuple(range(16))
"""The training grid's latents: one tile per seed, row-major; tile i has class i mod c_dim."""
GRID_PITCH = math.pi / 3
"""The training grid's cameras look at the object from 60° off the top (pitch is the polar angle from +Z)."""


def grid_cameras(info: DatasetInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """``c2w`` and ``intrinsics`` of the training grid: one yaw per seed, evenly around the object from −π."""
    return ring_cameras(np.linspace(-np.pi, np.pi, len(GRID_SEEDS), endpoint=False), GRID_PITCH, info)


@torch.no_grad()
def snapshot_grid(generator: Generator, info: DatasetInfo, path: Path) -> Path:
    """Write the training grid of ``generator`` (G_ema) at its full resolution to ``path`` (PNG); returns it.

    Fixed latents, classes and cameras (``GRID_SEEDS``, ``grid_cameras``), rendered deterministically with
    ``Generator.render_image``, so grids of one run are comparable across snapshots.
    """
    config = generator.config
    device = next(generator.parameters()).device
    z = seeded_latents(list(GRID_SEEDS), config.z_dim).to(device)
    labels = class_labels(config.c_dim, [i % max(config.c_dim, 1) for i in range(len(GRID_SEEDS))])
    c2w, intrinsics = (t.to(device) for t in grid_cameras(info))
    images = to_uint8(generator.render_image(z, None if labels is None else labels.to(device), c2w, intrinsics,
                                             config.resolution))
    return save_png(image_grid(images.permute(0, 2, 3, 1).cpu().numpy()), path)


def snapshot_fid(generator: Generator, info: DatasetInfo, shards: Shards, inception: nn.Module | str | Path,
                 num: int, kimg: float, device: torch.device, seed: int, mirror: bool = False) -> FidRecord:
    """The stats record of an FID of ``num`` images of ``generator`` against the shards (and their mirrored copies
    with ``mirror``, as a run with ``--mirror`` sees them): ``compute_fid``'s record at ``kimg``. Under torchrun
    every rank calls it; they share the work."""
    return replace(compute_fid(generator, info, shards, inception, num, device=device, seed=seed, mirror=mirror), kimg=kimg)
