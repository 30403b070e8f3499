"""Procedural geometry and textures for the sample asset library (numpy + Pillow, deterministic).

Meshes are triangle lists with per-vertex UVs in Blender's Z-up frame, in metres. Textures are small
Pillow images drawn into UV rectangles so one atlas can serve leaves and stems, as in Megascans plants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

UVRect = tuple[float, float, float, float]
"""(u0, v0, u1, v1) of a texture region; v grows upwards as in Blender."""


@dataclass
class Mesh:
    """Triangles with per-vertex UVs."""

    vertices: np.ndarray  # (N, 3) float
    faces: np.ndarray  # (M, 3) int
    uvs: np.ndarray  # (N, 2) float

    @staticmethod
    def merge(meshes: list[Mesh]) -> Mesh:
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]).astype(np.float32),
            np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]).astype(np.int32),
            np.concatenate([m.uvs for m in meshes]).astype(np.float32),
        )


def _grid_faces(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell of a (rows × cols) vertex grid stored row-major."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d = a + 1, a + cols
    return np.concatenate([np.stack([a, b, d + 1], 1), np.stack([a, d + 1, d], 1)])


def _uv_grid(rows: int, cols: int, rect: UVRect) -> np.ndarray:
    u0, v0, u1, v1 = rect
    v, u = np.meshgrid(np.linspace(v0, v1, rows), np.linspace(u0, u1, cols), indexing="ij")
    return np.stack([u.ravel(), v.ravel()], 1)


def _frames(path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the path's tangent at each point (parallel-transport-like)."""
    tangent = np.gradient(path, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    ref = np.where(np.abs(tangent[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    side = np.cross(tangent, ref)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    return side, np.cross(tangent, side)


def tube(path: np.ndarray, radius: np.ndarray | float, rect: UVRect, sides: int = 6) -> Mesh:
    """A tube of (possibly tapering) radius along a polyline."""
    path = np.asarray(path, float)
    radius = np.broadcast_to(np.asarray(radius, float), (len(path),))
    side, up = _frames(path)
    angle = np.linspace(0.0, 2 * np.pi, sides + 1)
    ring = np.cos(angle)[None, :, None] * side[:, None] + np.sin(angle)[None, :, None] * up[:, None]
    vertices = path[:, None] + radius[:, None, None] * ring
    return Mesh(vertices.reshape(-1, 3), _grid_faces(len(path), sides + 1), _uv_grid(len(path), sides + 1, rect))


def strip(path: np.ndarray, width: np.ndarray | float, across: np.ndarray, rect: UVRect) -> Mesh:
    """A flat ribbon along a polyline, ``width`` wide in the direction ``across`` (grass blades, leaf cards)."""
    path = np.asarray(path, float)
    width = np.broadcast_to(np.asarray(width, float), (len(path),))
    across = np.asarray(across, float) / np.linalg.norm(across)
    vertices = np.stack([path - 0.5 * width[:, None] * across, path + 0.5 * width[:, None] * across], 1)
    return Mesh(vertices.reshape(-1, 3), _grid_faces(len(path), 2), _uv_grid(len(path), 2, rect))


def card(base: np.ndarray, direction: np.ndarray, across: np.ndarray, length: float, width: float, rect: UVRect) -> Mesh:
    """A leaf card: a quad from ``base`` along ``direction`` whose texture region holds one leaf."""
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    path = np.stack([base, np.asarray(base) + length * direction])
    return strip(path, width, across, rect)


def lathe(radius: np.ndarray, height: np.ndarray, rect: UVRect, segments: int = 24, center: np.ndarray | None = None) -> Mesh:
    """A surface of revolution around +Z from a profile (radius[i], height[i])."""
    angle = np.linspace(0.0, 2 * np.pi, segments + 1)
    x = np.asarray(radius)[:, None] * np.cos(angle)[None]
    y = np.asarray(radius)[:, None] * np.sin(angle)[None]
    z = np.broadcast_to(np.asarray(height)[:, None], x.shape)
    vertices = np.stack([x, y, z], -1).reshape(-1, 3) + (0 if center is None else np.asarray(center))
    return Mesh(vertices, _grid_faces(len(radius), segments + 1), _uv_grid(len(radius), segments + 1, rect))


def box(size: tuple[float, float, float], rect: UVRect) -> Mesh:
    """An axis-aligned box centred at the origin with every face mapped to ``rect``."""
    half = np.asarray(size) / 2
    meshes = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_axis, v_axis = [a for a in range(3) if a != axis]
            corners = np.zeros((4, 3))
            corners[:, axis] = sign * half[axis]
            corners[:, u_axis] = [-half[u_axis], half[u_axis], -half[u_axis], half[u_axis]]
            corners[:, v_axis] = [-half[v_axis], -half[v_axis], half[v_axis], half[v_axis]]
            meshes.append(Mesh(corners, _grid_faces(2, 2), _uv_grid(2, 2, rect)))
    return Mesh.merge(meshes)


def curve(start: np.ndarray, direction: np.ndarray, length: float, droop: float, points: int = 8) -> np.ndarray:
    """A gently drooping polyline: straight along ``direction`` bent down by ``droop`` at the tip."""
    t = np.linspace(0.0, 1.0, points)[:, None]
    direction = np.asarray(direction, float) / np.linalg.norm(direction)
    return np.asarray(start) + length * t * direction - droop * length * t**2 * np.array([0.0, 0.0, 1.0])


# --- textures ---------------------------------------------------------------------------------

TEXTURE_SIZE = 256


class Atlas:
    """A set of same-sized maps (Albedo, Opacity, …) drawn region by region."""

    def __init__(self, background: tuple[int, int, int], size: int = TEXTURE_SIZE) -> None:
        self.size = size
        self.albedo = Image.new("RGB", (size, size), background)
        self.opacity = Image.new("L", (size, size), 0)
        self.roughness = Image.new("L", (size, size), 170)
        self.translucency = Image.new("RGB", (size, size), (0, 0, 0))

    def box(self, rect: UVRect) -> tuple[int, int, int, int]:
        """Pixel box of a UV rectangle (image rows grow downwards, v upwards)."""
        u0, v0, u1, v1 = rect
        s = self.size
        return int(u0 * s), int((1 - v1) * s), int(u1 * s) - 1, int((1 - v0) * s) - 1

    def fill(self, rect: UVRect, color: tuple[int, int, int], rng: np.random.Generator, roughness: int = 170) -> None:
        """An opaque, speckled region (stems, fruit skin)."""
        x0, y0, x1, y1 = self.box(rect)
        region = np.array(color, float)[None, None] * (0.85 + 0.3 * rng.random((y1 - y0 + 1, x1 - x0 + 1, 1)))
        self.albedo.paste(Image.fromarray(region.clip(0, 255).astype(np.uint8)), (x0, y0))
        ImageDraw.Draw(self.opacity).rectangle((x0, y0, x1, y1), fill=255)
        ImageDraw.Draw(self.roughness).rectangle((x0, y0, x1, y1), fill=roughness)

    def spots(self, rect: UVRect, color: tuple[int, int, int], count: int, radius: int, rng: np.random.Generator) -> None:
        x0, y0, x1, y1 = self.box(rect)
        draw = ImageDraw.Draw(self.albedo)
        for cx, cy in zip(rng.integers(x0, x1, count), rng.integers(y0, y1, count)):
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color)

    def leaf(self, rect: UVRect, color: tuple[int, int, int], shape: str) -> None:
        """A leaf silhouette (cut out by the Opacity map) pointing from the region's bottom to its top."""
        x0, y0, x1, y1 = self.box(rect)
        w, h = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2
        if shape == "blade":
            outline = [(x0 + 0.15 * w, y1), (cx, y0), (x1 - 0.15 * w, y1)]
        elif shape == "narrow":
            outline = [(cx, y1)] + [(cx + s * 0.45 * w * np.sin(np.pi * t) ** 0.8, y1 - t * h)
                                    for s in (1, -1) for t in (np.linspace(0, 1, 12) if s > 0 else np.linspace(1, 0, 12))]
        else:  # broad
            outline = [(cx, y1)] + [(cx + s * 0.48 * w * np.sin(np.pi * t) ** 0.6, y1 - t * h)
                                    for s in (1, -1) for t in (np.linspace(0, 1, 16) if s > 0 else np.linspace(1, 0, 16))]
        ImageDraw.Draw(self.albedo).polygon(outline, fill=color)
        ImageDraw.Draw(self.albedo).line([(cx, y1), (cx, y0 + 0.1 * h)], fill=tuple(int(c * 0.7) for c in color), width=2)
        ImageDraw.Draw(self.opacity).polygon(outline, fill=255)
        ImageDraw.Draw(self.translucency).polygon(outline, fill=tuple(min(255, int(c * 1.3)) for c in color))

    def maps(self, with_opacity: bool, with_translucency: bool, gloss: bool = False) -> dict[str, Image.Image]:
        """The maps to write, keyed by Megascans map name."""
        flat_normal = Image.new("RGB", (self.size, self.size), (128, 128, 255))
        rough = self.roughness.filter(ImageFilter.GaussianBlur(1))
        maps = {"Albedo": self.albedo, "Normal": flat_normal}
        if gloss:
            maps["Gloss"] = Image.eval(rough, lambda v: 255 - v)
        else:
            maps["Roughness"] = rough
        if with_opacity:
            maps["Opacity"] = self.opacity
        if with_translucency:
            maps["Translucency"] = self.translucency
        return maps
