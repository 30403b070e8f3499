"""Render RGBA → training RGB: premultiplied box reduction composited over a white or black background.

Resizing straight-alpha RGBA directly would pull the (meaningless) colour of transparent pixels into
the silhouette and leave dark or coloured halos; weighting every colour by its alpha (premultiplying)
first does not. Downscaling uses a box (area) filter: antialiased and free of the ringing that Lanczos
leaves at silhouettes.

When the render size is a whole multiple of the output size (1024² → 256², the usual case) a numba
kernel does all of it in one pass: each output pixel is ``(Σ colour·alpha + (255·f² − Σ alpha) ·
background) / (255·f²)`` over its f×f box, in integers and rounded once (Pillow's premultiply-then-
reduce rounds twice). Boxes without any alpha are skipped after a cheap OR over the box's rows, and
~90 % of a typical render's boxes are empty. On the sample plants this takes ~1.3-1.5 ms per 1024² render
against ~3.5 ms for the same steps in Pillow (finding alpha boxes, premultiplying, reducing), which
was most of what pack spent besides decoding (bench/pack.py). Each factor compiles once (~2 s) into
numba's on-disk cache; later processes load it. Other sizes take Pillow's premultiplied
box (downscale) or bicubic (upscale) resize.
"""

from __future__ import annotations

import numba
import numpy as np
from PIL import Image

from pgrf.formats.card import BACKGROUNDS


def composite(rgba: np.ndarray, resolution: int, background: str) -> Image.Image:
    """uint8 RGBA (H, W, 4) → an RGB image of resolution² over a white or black background.

    The image's mode is RGBX (RGB padded to 4 bytes a pixel, so it is made and flipped a word at a
    time); ``images.encode_png`` and ``.convert("RGB")`` take it as it is."""
    height, width = rgba.shape[:2]
    rgba = np.ascontiguousarray(rgba)
    if width == height and width % resolution == 0:
        words = rgba.view(np.uint32).reshape(height, width)  # R | G << 8 | B << 16 | A << 24 (little-endian, as every bpy platform)
        pixels = _box_over(words, tuple(range(width // resolution)), BACKGROUNDS[background])
        return Image.frombuffer("RGBX", (resolution, resolution), pixels, "raw", "RGBX", 0, 1)
    resample = Image.Resampling.BOX if resolution < width else Image.Resampling.BICUBIC
    premultiplied = Image.fromarray(rgba, "RGBA").convert("RGBa").resize((resolution, resolution), resample)
    colour = np.asarray(premultiplied).astype(np.int16)
    if BACKGROUNDS[background]:
        colour[..., :3] += 255 - colour[..., 3:]
    colour[..., 3] = 255
    return Image.fromarray(np.clip(colour, 0, 255).astype(np.uint8), "RGBX")  # bicubic may overshoot


@numba.njit(cache=True, nogil=True)
def _box_over(pixels: np.ndarray, steps: tuple[int, ...], background: int) -> np.ndarray:
    """(H, W) straight-alpha RGBA words → (H/f, W/f) RGBX words, f = len(steps): each f×f box's
    premultiplied mean over the grey level ``background``, rounded to nearest.

    ``steps`` is ``tuple(range(f))``: a tuple's length is part of its numba type, so every factor gets
    its own compiled (and cached) kernel with unrolled box loops and a constant divisor, ~1.5x faster
    than a factor only known at run time."""
    factor = len(steps)
    height, width = pixels.shape
    out = np.empty((height // factor, width // factor), np.uint32)
    out[:] = background * 0x010101
    area = 255 * factor * factor
    cover = np.empty(width, np.uint32)  # OR over the box rows: an alpha byte > 0 marks a non-empty column
    for oy in range(height // factor):
        top = oy * factor
        for x in range(width):
            column = np.uint32(0)
            for dy in steps:
                column |= pixels[top + dy, x]
            cover[x] = column
        x = 0
        while x < width:
            if cover[x] < 0x01000000:
                x += 1
                continue
            left = x - x % factor
            alpha = red = green = blue = 0
            for dy in steps:
                for dx in steps:
                    p = np.int64(pixels[top + dy, left + dx])
                    a = p >> 24
                    alpha += a
                    red += (p & 0xFF) * a
                    green += (p >> 8 & 0xFF) * a
                    blue += (p >> 16 & 0xFF) * a
            under = (area - alpha) * background + area // 2
            out[oy, left // factor] = (red + under) // area | (green + under) // area << 8 | (blue + under) // area << 16
            x = left + factor
    return out
