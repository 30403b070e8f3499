"""Turntable videos of a trained G: a grid of seeds turning 360° in yaw, optionally with depth and alpha.

The tri-planes of every seed are synthesised once and every frame renders them from a new camera
without jitter or noise, so the object is exactly the same in all frames; the camera path is
periodic (frame ``frames`` is frame 0), so the video loops seamlessly. Outputs: ``.gif`` (Pillow),
``.mp4`` (H.264 through imageio-ffmpeg's bundled ffmpeg) or, for a path without a suffix, a folder
of numbered PNG frames.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pgrf.cameras import clamp_pitch
from pgrf.errors import PgrfError
from pgrf.evaluate.samples import DEFAULT_PITCH, DEFAULT_YAW, ring_cameras
from pgrf.evaluate.views import (
    alpha_image,
    depth_image,
    image_grid,
    render_views,
    seed_classes,
    seed_planes,
    to_uint8,
)
from pgrf.fileio import temporary_name
from pgrf.formats.card import DatasetInfo
from pgrf.model.generator import Generator

SPIRAL_AMPLITUDE = math.radians(20.0)
"""How far a spiral's pitch swings above and below the chosen pitch, once per turn."""
CHANNELS = ("rgb", "depth", "alpha")
VIDEO_SUFFIXES = (".gif", ".mp4", "")


def turntable_angles(indices: Iterable[int], frames: int, pitch: float = DEFAULT_PITCH, spiral: bool = False,
                     yaw: float = DEFAULT_YAW) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) of frames ``indices`` of a ``frames``-frame turn starting at ``yaw``; periodic in the index.

    With ``spiral`` the pitch swings sinusoidally by ±``SPIRAL_AMPLITUDE`` over the turn, kept off the poles.
    """
    if frames < 1:
        raise PgrfError(f"--frames must be at least 1, got {frames}")
    phase = 2 * np.pi * (np.asarray(list(indices), dtype=np.int64) % frames) / frames
    pitches = np.full(phase.shape, pitch, dtype=np.float64)
    if spiral:
        pitches = pitches + SPIRAL_AMPLITUDE * np.sin(phase)
    return yaw + phase, clamp_pitch(pitches)


@torch.no_grad()
def turntable(generator: Generator, info: DatasetInfo, seeds: list[int], resolution: int, frames: int = 120,
              pitch: float = DEFAULT_PITCH, spiral: bool = False, psi: float = 1.0, class_id: int | None = None,
              channels: tuple[str, ...] = ("rgb",), indices: Iterable[int] | None = None, columns: int | None = None,
              chunk: int = 8192) -> Iterator[dict[str, np.ndarray]]:
    """Per frame, a grid image (H, W, 3) uint8 for each of ``channels`` (rgb, depth, alpha).

    ``indices`` picks frames (default ``range(frames)``; any integer, taken modulo ``frames``).
    """
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown channels {sorted(unknown)}; choose from {CHANNELS}")
    if not seeds:
        raise PgrfError("no seeds given")
    device = next(generator.parameters()).device
    planes = seed_planes(generator, seeds, seed_classes(seeds, generator.config.c_dim, class_id), psi, device)
    padding = 1 if len(seeds) > 1 else 0
    for index in range(frames) if indices is None else indices:
        yaw, tilt = turntable_angles([index], frames, pitch, spiral)
        c2w, intrinsics = ring_cameras(np.repeat(yaw, len(seeds)), float(tilt[0]), info)
        views = render_views(generator, planes, c2w, intrinsics, resolution, chunk)
        images = {"rgb": views.rgb}
        if "depth" in channels:
            images["depth"] = depth_image(views, info.radius)
        if "alpha" in channels:
            images["alpha"] = alpha_image(views)
        yield {name: image_grid(to_uint8(images[name]).permute(0, 2, 3, 1).cpu().numpy(), columns, padding)
               for name in channels}


def channel_path(path: Path, channel: str) -> Path:
    """Where a channel's video goes: ``turntable.gif`` → ``turntable_depth.gif`` (the rgb video keeps ``path``)."""
    return path if channel == "rgb" else path.with_name(f"{path.stem}_{channel}{path.suffix}")


def check_video_path(path: Path) -> None:
    """A one-line error unless ``path`` ends in .gif or .mp4 or has no suffix (a folder of PNG frames)."""
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise PgrfError(f"video file must end in .gif or .mp4, or be a folder name for PNG frames; got {path.name}")


class VideoSink:
    """Collects frames into a .gif, an .mp4 or a folder of PNGs; the final name appears only on ``close``."""

    def __init__(self, path: Path, fps: float) -> None:
        check_video_path(path)
        if fps <= 0:
            raise PgrfError(f"--fps must be positive, got {fps}")
        if path.suffix.lower() == ".mp4":
            _require_ffmpeg()
        self.path, self.fps, self.kind = path, fps, path.suffix.lower() or "png"
        self.partial = path.with_name(temporary_name(path.name))
        self.count = 0
        self._gif: list[Image.Image] = []
        self._writer: Any = None
        self._size = (0, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "png":
            self.partial.mkdir()

    def add(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 frame."""
        if self.kind == ".gif":
            self._gif.append(Image.fromarray(frame))
        elif self.kind == ".mp4":
            if self._writer is None:  # H.264 in yuv420p needs even sizes: pad with white
                self._size = (frame.shape[1] + frame.shape[1] % 2, frame.shape[0] + frame.shape[0] % 2)
                self._writer = _open_ffmpeg(self.partial, self._size, self.fps)
            even = np.full((self._size[1], self._size[0], 3), 255, np.uint8)
            even[:frame.shape[0], :frame.shape[1]] = frame
            self._writer.send(even)
        else:
            Image.fromarray(frame).save(self.partial / f"frame_{self.count:05d}.png")
        self.count += 1

    def close(self) -> Path:
        """Finish the output and move it into place (a folder of frames replaces an old one)."""
        if self.count == 0:
            raise PgrfError("no frames to write")
        if self.kind == ".gif":
            first, *rest = self._gif
            first.save(self.partial, format="GIF", save_all=True, append_images=rest, loop=0,
                       duration=max(1, round(1000 / self.fps)))
        elif self._writer is not None:
            self._writer.close()
        if self.kind == "png" and self.path.is_dir():
            shutil.rmtree(self.path)
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Drop a partial output (after an error)."""
        if self._writer is not None:
            self._writer.close()
        if self.partial.is_dir():
            shutil.rmtree(self.partial)
        else:
            self.partial.unlink(missing_ok=True)


def _require_ffmpeg() -> None:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise PgrfError("writing .mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); "
                        "or write a .gif or a folder of PNG frames") from None


def _open_ffmpeg(path: Path, size: tuple[int, int], fps: float) -> Any:
    """imageio-ffmpeg's H.264 writer (yuv420p, plays everywhere), started and ready for frames."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                         pix_fmt_out="yuv420p", quality=8, macro_block_size=2,
                                         output_params=["-f", "mp4"], ffmpeg_log_level="error")
    writer.send(None)
    return writer


def write_videos(path: Path, frames: Iterable[dict[str, np.ndarray]], fps: float = 30.0,
                 on_frame: Callable[[], None] | None = None) -> list[Path]:
    """Write each channel of the frames to its video (``channel_path``); partial outputs are removed on error."""
    sinks: dict[str, VideoSink] = {}
    try:
        for frame in frames:
            for channel, image in frame.items():
                if channel not in sinks:
                    sinks[channel] = VideoSink(channel_path(path, channel), fps)
                sinks[channel].add(image)
            if on_frame:
                on_frame()
        return [sink.close() for sink in sinks.values()]
    except BaseException:
        for sink in sinks.values():
            sink.discard()
        raise
