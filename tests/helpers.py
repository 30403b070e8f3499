"""Helpers shared by the test modules: paths, render flags, running the CLI and Blender checks, reading meshes,
analytic fields for volume rendering. Test modules import from here, never from each other or from a conftest."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

from pgrf.evaluate.mesh import Mesh
from pgrf.formats.images import PNG_SIGNATURE
from pgrf.model.patches import full_image_patches
from pgrf.model.rays import patch_rays
from pgrf.model.volume import Field, Rendered, render_rays

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pgrf" / "defaults" / "assets.toml"
TINY = ["--views", "3", "--resolution", "32", "--samples", "4", "--no-denoise"]
"""Render flags for the unit suite: real Cycles renders, small enough for CI."""


def run_pgrf(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m pgrf ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "pgrf", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def blender_check(name: str, out: Path) -> Path:
    """Run one check of tests/blender/blender_checks.py in its own Blender process."""
    result = subprocess.run([sys.executable, str(REPO / "tests" / "blender" / "blender_checks.py"), name, str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def silhouette(triangles: np.ndarray, size: int) -> np.ndarray:
    """Rasterise projected triangles (T, 3, 2) at pixel centres (continuous pixel coordinates)."""
    centres = np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), -1).reshape(-1, 2)
    inside = np.zeros(len(centres), bool)
    for a, b, c in triangles:
        d = [(q[0] - p[0]) * (centres[:, 1] - p[1]) - (q[1] - p[1]) * (centres[:, 0] - p[0]) for p, q in ((a, b), (b, c), (c, a))]
        inside |= (np.all(np.stack(d) >= 0, 0)) | (np.all(np.stack(d) <= 0, 0))
    return inside.reshape(size, size)


def read_ply(path: Path) -> Mesh:
    data = path.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    lines = header.decode().splitlines()
    count = {line.split()[1]: int(line.split()[2]) for line in lines if line.startswith("element")}
    coloured = "property uchar red" in lines
    if "format ascii 1.0" in lines:
        rows = [line.split() for line in body.decode().splitlines()]
        verts = np.array(rows[:count["vertex"]], dtype=np.float64)
        faces = np.array(rows[count["vertex"]:], dtype=np.int64)
        assert (faces[:, 0] == 3).all()
        return Mesh(verts[:, :3].astype(np.float32), faces[:, 1:],
                    verts[:, 3:].astype(np.uint8) if coloured else None)
    vertex = np.dtype([("xyz", "<f4", (3,))] + ([("rgb", "u1", (3,))] if coloured else []))
    verts = np.frombuffer(body, dtype=vertex, count=count["vertex"])
    faces = np.frombuffer(body, dtype=[("n", "u1"), ("v", "<i4", (3,))], offset=vertex.itemsize * count["vertex"])
    assert len(faces) == count["face"] and (faces["n"] == 3).all()
    return Mesh(verts["xyz"], faces["v"].astype(np.int64), verts["rgb"] if coloured else None)


SOLID = 1e3
"""Raw density inside the analytic solids: opaque within a small fraction of a sample interval."""


def spheres_field(centres: torch.Tensor, radii: torch.Tensor) -> Field:
    """A field of solid spheres (red inside, density zero outside)."""
    def field(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inside = ((points[:, :, None, :] - centres).norm(dim=-1) < radii).any(dim=-1)
        rgb = torch.zeros(*points.shape[:-1], 3)
        rgb[..., 0] = 1.0
        return rgb, torch.where(inside, SOLID, -SOLID)
    return field


def render_full(field: Field, c2w: torch.Tensor, k: torch.Tensor, resolution: int, fine: int = 16) -> Rendered:
    rays = patch_rays(c2w, k, full_image_patches(c2w.shape[0]), resolution)
    return render_rays(field, rays, coarse_steps=48, fine_steps=fine)


def bomb_png(width: int, height: int) -> bytes:
    """A valid 8-bit greyscale PNG of zeros, ``width`` × ``height``, deflated in pieces (a few hundred kB)."""
    compressor, row, idat = zlib.compressobj(9), bytes(width + 1), []
    rows = b"".join([row] * 256)
    for start in range(0, height, 256):
        idat.append(compressor.compress(rows if start + 256 <= height else row * (height - start)))
    idat.append(compressor.flush())
    data = b"".join(idat)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))

    return (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


HOST_SYNCS = frozenset({"item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "nonzero"})
"""Tensor operations that make the host wait for the device (on a GPU); ``to`` a CPU device from another counts too."""


class HostSyncs(torch.overrides.TorchFunctionMode):
    """Records the operations that would wait for the device (``HOST_SYNCS``), by name, while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        to_host = (name == "to" and isinstance(args[0], torch.Tensor) and args[0].device.type != "cpu"
                   and any(str(a).startswith("cpu") for a in (*args[1:], kwargs.get("device", ""))))
        if name in HOST_SYNCS or to_host:
            self.seen.append(name)
        return func(*args, **kwargs)
