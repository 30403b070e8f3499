"""Geometry from a density field: grid sampling -> marching cubes (scikit-image) -> coloured PLY / OBJ.

``density_fn`` and ``color_fn`` are batched callables on world points: ``fn(points (N, 3) float32
tensor) -> (N,)`` densities or ``(N, 3)`` RGB in [0, 1]. The grid covers [-bound, bound]^3 with
``resolution`` samples per axis, both ends included (voxel size 2 * bound / (resolution - 1));
axis i of the volume is world axis i. By default the volume is closed with one layer of empty
space around it, so objects cut by the box still give watertight meshes.

The surface level is a given density or, by default, ``auto_threshold``: the geometric mean of the
median density (empty space, since an object fills less than half of its box) and the maximum (the
densest matter), i.e. the level halfway between the two in log-density. It scales with the field
(k·σ gives k times the level) and needs no per-checkpoint tuning, where the NeRF-GAN papers pick a
number (σ = 10) by hand.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from skimage import measure

from pgrf.errors import PgrfError
from pgrf.fileio import atomic_path

PointFn = Callable[[torch.Tensor], torch.Tensor]


AUTO_FLOOR = 1e-9
"""Densities below this fraction of the maximum count as this fraction (log-density needs positive values)."""
AUTO_MIN_CONTRAST = 10.0
"""``auto_threshold`` needs a maximum at least this many times the median: a field without it has no clear surface."""


@dataclass(frozen=True)
class Mesh:
    """Vertices (V, 3) float32 in world units, faces (F, 3) int64 counter-clockwise seen from outside,
    vertex colours (V, 3) uint8 or None, and the density level it was extracted at (None: not known)."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    level: float | None = None


def grid_points(resolution: int, bound: float = 1.0) -> np.ndarray:
    """The world coordinate of each grid index along one axis."""
    return np.linspace(-bound, bound, resolution, dtype=np.float64)


@torch.no_grad()
def density_grid(density_fn: PointFn, resolution: int = 256, bound: float = 1.0, chunk: int = 1 << 18,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Density on the (R, R, R) grid, indexed [x, y, z], evaluated ``chunk`` points at a time."""
    if resolution < 2 or chunk < 1:
        raise ValueError("density_grid needs resolution >= 2 and chunk >= 1")
    axis = torch.as_tensor(grid_points(resolution, bound), dtype=torch.float32, device=device)
    total = resolution**3
    out = np.empty(total, dtype=np.float32)
    for start in range(0, total, chunk):
        index = torch.arange(start, min(start + chunk, total), device=device)
        points = torch.stack([axis[index // resolution**2], axis[index // resolution % resolution],
                              axis[index % resolution]], dim=-1)
        values = density_fn(points).reshape(-1)
        if values.numel() != len(index):
            raise ValueError(f"density_fn returned {values.numel()} values for {len(index)} points")
        out[start:start + len(index)] = values.float().cpu().numpy()
    return out.reshape(resolution, resolution, resolution)


@torch.no_grad()
def vertex_colors(color_fn: PointFn, vertices: np.ndarray, chunk: int = 1 << 18,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """RGB in [0, 1] from ``color_fn`` at each vertex -> (V, 3) uint8."""
    parts = [color_fn(torch.as_tensor(vertices[i:i + chunk], dtype=torch.float32, device=device)).reshape(-1, 3)
             .float().clamp(0, 1).cpu().numpy() for i in range(0, len(vertices), chunk)]
    rgb = np.concatenate(parts) if parts else np.zeros((0, 3), np.float32)
    return np.round(rgb * 255).astype(np.uint8)


def auto_threshold(grid: np.ndarray) -> float:
    """The surface level of a density grid: √(median · max), the log-density midpoint of empty space and matter.

    Raises a PgrfError when the maximum is under ``AUTO_MIN_CONTRAST`` × the median (no clear object).
    """
    if not np.isfinite(grid).all():
        raise PgrfError("the density grid has non-finite values (NaN or inf): the model or checkpoint is broken")
    top = float(grid.max())
    floor = top * AUTO_FLOOR
    middle = max(float(np.median(grid)), floor)
    if top <= 0 or top < AUTO_MIN_CONTRAST * middle:
        raise PgrfError(f"the density has no clear object to mesh (median {middle:.3g}, maximum {top:.3g}); "
                        "give --threshold a density level")
    return math.sqrt(middle * top)


def marching_cubes(grid: np.ndarray, threshold: float, bound: float = 1.0, close: bool = True) -> Mesh:
    """The ``threshold`` level set of a density grid (high inside) as a mesh in world coordinates."""
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"expected a cubic (R, R, R) grid, got {grid.shape}")
    if not np.isfinite(grid).all():
        raise PgrfError("the density grid has non-finite values (NaN or inf): the model or checkpoint is broken")
    resolution = grid.shape[0]
    inside = grid > threshold
    if not inside.any() or (inside.all() and not close):
        raise PgrfError(f"the density never crosses the threshold {threshold} on the grid "
                        f"(range {grid.min():.3g} to {grid.max():.3g}); choose another threshold")
    voxel = 2 * bound / (resolution - 1)
    origin = -bound
    if close:
        grid = np.pad(grid, 1, mode="constant", constant_values=min(float(grid.min()), threshold) - 1)
        origin -= voxel
    vertices, faces, _, _ = measure.marching_cubes(grid, level=threshold, spacing=(voxel,) * 3,
                                                   gradient_direction="ascent", allow_degenerate=False)
    return Mesh((vertices + origin).astype(np.float32), faces.astype(np.int64), level=float(threshold))


def extract_mesh(density_fn: PointFn, threshold: float | None = None, resolution: int = 256, bound: float = 1.0,
                 color_fn: PointFn | None = None, chunk: int = 1 << 18, device: torch.device | str = "cpu",
                 close: bool = True) -> Mesh:
    """Density on a grid -> marching cubes at ``threshold`` (None: ``auto_threshold``) -> optional vertex
    colours from ``color_fn``."""
    grid = density_grid(density_fn, resolution, bound, chunk, device)
    mesh = marching_cubes(grid, auto_threshold(grid) if threshold is None else threshold, bound, close)
    if color_fn is None:
        return mesh
    return replace(mesh, colors=vertex_colors(color_fn, mesh.vertices, chunk, device))


def save_mesh(mesh: Mesh, path: str | os.PathLike[str], binary: bool = True) -> Path:
    """Write ``.ply`` (binary little-endian or ASCII) or ``.obj`` (``v x y z r g b``), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".ply", ".obj"):
        raise PgrfError(f"mesh file must end in .ply or .obj, got {path.name}")
    with atomic_path(path) as partial, partial.open("wb") as handle:
        if suffix == ".obj":
            _write_obj(mesh, handle)
        else:
            _write_ply(mesh, handle, binary)
    return path


def _write_ply(mesh: Mesh, handle: BinaryIO, binary: bool) -> None:
    colours = mesh.colors is not None
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment written by pgrf",
              f"element vertex {len(mesh.vertices)}", "property float x", "property float y", "property float z"]
    if colours:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"element face {len(mesh.faces)}", "property list uchar int vertex_indices", "end_header"]
    handle.write(("\n".join(header) + "\n").encode("ascii"))
    if not binary:
        columns = [mesh.vertices] + ([mesh.colors] if mesh.colors is not None else [])
        np.savetxt(handle, np.hstack(columns, dtype=np.float64), fmt=["%.7g"] * 3 + ["%d"] * 3 * colours)
        np.savetxt(handle, mesh.faces, fmt="3 %d %d %d")
        return
    vertex_type = [("xyz", "<f4", (3,))] + ([("rgb", "u1", (3,))] if colours else [])
    vertices = np.empty(len(mesh.vertices), dtype=vertex_type)
    vertices["xyz"] = mesh.vertices
    if mesh.colors is not None:
        vertices["rgb"] = mesh.colors
    faces = np.empty(len(mesh.faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"], faces["v"] = 3, mesh.faces
    handle.write(vertices.tobytes() + faces.tobytes())


def _write_obj(mesh: Mesh, handle: BinaryIO) -> None:
    handle.write(b"# written by pgrf\n")
    if mesh.colors is None:
        np.savetxt(handle, mesh.vertices, fmt="v %.7g %.7g %.7g")
    else:  # the common vertex-colour extension: v x y z r g b, colours in [0, 1]
        np.savetxt(handle, np.hstack([mesh.vertices, mesh.colors / 255], dtype=np.float64),
                   fmt="v %.7g %.7g %.7g %.6g %.6g %.6g")
    np.savetxt(handle, mesh.faces + 1, fmt="f %d %d %d")
