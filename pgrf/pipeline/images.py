"""Render PNG → training image: decode, resize with premultiplied alpha, composite over a background.

Resizing straight-alpha RGBA directly would pull the (meaningless) colour of transparent pixels into
the silhouette and leave dark or coloured halos; premultiplying first makes every filter tap weigh
colour by coverage. Downscaling uses a box (area) filter: antialiased and free of the ringing that
Lanczos leaves at silhouettes.

PNGs are decoded with libspng (pyspng), about 1.7× faster than Pillow's decoder on our images; the
same decoder serves the shard loader (pgrf.datasets.loader).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyspng
from PIL import Image

from pgrf.errors import PgrfError

BACKGROUNDS = {"white": 1.0, "black": 0.0}
PNG_COMPRESS_LEVEL = 3
"""zlib level of the shard PNGs: encodes ~1.5x faster than level 6 for files ~5 % larger; libspng decodes
both equally fast (measured on 256² renders)."""


class BadImage(PgrfError):
    """A PNG that cannot be decoded (corrupt or truncated)."""


def decode_png(data: bytes, mode: str, name: str) -> np.ndarray:
    """PNG bytes → uint8 array in ``mode`` ("RGB" or "RGBA"); ``name`` is used in the error."""
    try:
        return pyspng.load(data, format=mode)
    except RuntimeError as error:
        raise BadImage(f"{name}: not a readable PNG ({error}); re-create the file") from None


def read_rgba(path: Path) -> np.ndarray:
    """The PNG at ``path`` as uint8 RGBA (H, W, 4)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadImage(f"{path}: cannot be read ({error.strerror}); re-render the model") from None
    try:
        return decode_png(data, "RGBA", str(path))
    except BadImage:
        raise BadImage(f"{path}: corrupt or truncated PNG; re-render the model (pgrf render --force) or pack with --skip-bad") from None


def composite(rgba: np.ndarray, resolution: int, background: str) -> np.ndarray:
    """uint8 RGBA (H, W, 4) → uint8 RGB (resolution², 3) over a white or black background."""
    premultiplied = Image.fromarray(rgba, "RGBA").convert("RGBa")
    width = premultiplied.width
    if width > resolution and width % resolution == 0 and premultiplied.height == width:
        premultiplied = premultiplied.reduce(width // resolution)  # the box filter, ~2x faster for integer factors
    elif premultiplied.size != (resolution, resolution):
        resample = Image.Resampling.BOX if resolution < width else Image.Resampling.BICUBIC
        premultiplied = premultiplied.resize((resolution, resolution), resample)
    pixels = np.asarray(premultiplied, dtype=np.float32) * np.float32(1 / 255)
    colour, alpha = pixels[..., :3], pixels[..., 3:]
    rgb = colour + (1.0 - alpha) * np.float32(BACKGROUNDS[background])
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """Deterministic PNG bytes of an RGB array (no timestamps or text chunks)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
