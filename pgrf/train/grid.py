"""Image grids of generated samples, written as PNG."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pgrf.render.records import temporary_name


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW images in [-1, 1] → NHWC uint8."""
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).numpy()


def grid_array(images: torch.Tensor, columns: int | None = None) -> np.ndarray:
    """NCHW images in [-1, 1] tiled row-major into one HWC uint8 image (``columns`` default: ~square)."""
    tiles = to_uint8(images)
    count, height, width, channels = tiles.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.full((rows * height, columns * width, channels), 255, np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        canvas[row * height:(row + 1) * height, column * width:(column + 1) * width] = tile
    return canvas


def save_grid(images: torch.Tensor, path: Path, columns: int | None = None) -> Path:
    """Write the grid of ``images`` to ``path`` (PNG, atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(temporary_name(path.name))
    Image.fromarray(grid_array(images, columns)).save(partial, format="PNG")
    os.replace(partial, path)
    return path
