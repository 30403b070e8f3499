"""The camera convention of pgrf, in one place (docs/cameras.md).

World frame: Blender's, right-handed, +Z up. A camera sits on a sphere of radius ``radius`` around
the origin and looks at it with zero roll. ``yaw`` (φ) is the azimuth around +Z from +X towards +Y in
[-π, π); ``pitch`` (θ) is the polar angle from +Z in [0, π] (0 = from above, π/2 = horizontal).

Stored matrices:
- ``c2w``: 4×4 camera-to-world in the OpenCV convention (x right, y down, z forward).
- ``intrinsics``: 3×3 normalised K (fx/W, fy/H, cx = cy = 0.5), square images, full-angle ``fov``.

Pixel coordinates are continuous: the image spans [0, W] × [0, H], pixel i covers [i, i + 1] and its
centre is i + 0.5. Under this convention a horizontal flip maps u to W − u.

Mirroring: reflecting the world across the XZ plane (S) and flipping the camera's x axis (F) gives
``c2w' = S · c2w · F``, ``yaw' = −yaw``, ``pitch' = pitch``; the flipped image is then the view of the
mirror-image object from the mirrored camera.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

SCENE_BOUND = 1.0
"""Assets are normalised into [-SCENE_BOUND, SCENE_BOUND]³: box centred at the origin, largest extent 2·SCENE_BOUND."""

SCENE_RADIUS = math.sqrt(3.0) * SCENE_BOUND
"""Half-diagonal of the scene box, the radius of the sphere around it: a camera must be farther away, and
distance ∓ SCENE_RADIUS brackets every point of the box (G's rays are bounded tighter, per ray, by the box
itself: ``pgrf.model.rays``)."""

DEFAULT_RADIUS = 3.5
"""Default distance of the cameras from the origin."""

DEFAULT_FOV = math.pi / 4
"""Default full field of view, in radians."""

POLE_EPS = 1e-4
"""Pitch is clamped to [POLE_EPS, π − POLE_EPS] so the up vector is never parallel to the view."""

MIRROR_WORLD = np.diag([1.0, -1.0, 1.0, 1.0])
"""S: reflection of the world across the XZ plane."""

MIRROR_CAMERA = np.diag([-1.0, 1.0, 1.0, 1.0])
"""F: flip of the camera's x axis (a horizontal image flip)."""

OPENCV_TO_BLENDER = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiply an OpenCV c2w by this to get Blender's camera matrix (camera looks down −Z, +Y up)."""

EPIGRAF_FROM_PGRF = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
"""Rotation from pgrf's world (+Z up) to EpiGRAF's (+Y up): (x, y, z) → (x, z, −y), a proper rotation."""


@dataclass(frozen=True)
class View:
    """One sampled camera: angles and the matrices derived from them."""

    yaw: float
    pitch: float
    radius: float
    fov: float

    @property
    def c2w(self) -> np.ndarray:
        return look_at_origin(self.yaw, self.pitch, self.radius)

    @property
    def intrinsics(self) -> np.ndarray:
        return normalized_intrinsics(self.fov)


def camera_position(yaw: float | np.ndarray, pitch: float | np.ndarray, radius: float) -> np.ndarray:
    """Point(s) on the sphere: r·(sinθ cosφ, sinθ sinφ, cosθ)."""
    yaw, pitch = np.asarray(yaw, float), np.asarray(pitch, float)
    return radius * np.stack(
        [np.sin(pitch) * np.cos(yaw), np.sin(pitch) * np.sin(yaw), np.cos(pitch)], axis=-1
    )


def clamp_pitch(pitch: float | np.ndarray) -> np.ndarray:
    """Pitch(es) kept off the poles: clipped to [POLE_EPS, π − POLE_EPS]."""
    return np.clip(pitch, POLE_EPS, np.pi - POLE_EPS)


def wrap_yaw(yaw: float) -> float:
    """The same azimuth in [-π, π); a yaw already in range is returned unchanged (bit for bit)."""
    if -math.pi <= yaw < math.pi:
        return yaw
    wrapped = (yaw + math.pi) % (2 * math.pi) - math.pi
    return wrapped if wrapped < math.pi else -math.pi


def look_at_origin(yaw: float, pitch: float, radius: float) -> np.ndarray:
    """OpenCV camera-to-world matrix of a camera at (yaw, pitch, radius) looking at the origin, zero roll."""
    pitch = float(clamp_pitch(pitch))
    position = camera_position(yaw, pitch, radius)
    forward = -position / np.linalg.norm(position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, position
    return c2w


def normalized_intrinsics(fov: float) -> np.ndarray:
    """3×3 K for unit image size: fx = fy = 0.5 / tan(fov / 2), cx = cy = 0.5."""
    focal = 0.5 / np.tan(fov / 2.0)
    return np.array([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]])


def view_seed(asset_id: str, model_id: str, seed: int) -> int:
    """A stable 64-bit seed for one model's cameras, independent of run order or machine."""
    digest = hashlib.sha256(f"{asset_id}\x00{model_id}\x00{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def sample_angles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (yaw, pitch) pairs uniform on the sphere: φ ~ U[-π, π), cosθ ~ U[-1, 1], θ clamped off the poles."""
    yaw = rng.uniform(-np.pi, np.pi, size=n)
    pitch = np.arccos(rng.uniform(-1.0, 1.0, size=n))
    return yaw, clamp_pitch(pitch)


def sample_views(asset_id: str, model_id: str, seed: int, n: int, radius: float, fov: float) -> list[View]:
    """The n deterministic views of one model (same ids and seed → same cameras)."""
    rng = np.random.default_rng(view_seed(asset_id, model_id, seed))
    yaw, pitch = sample_angles(n, rng)
    return [View(float(y), float(p), radius, fov) for y, p in zip(yaw, pitch)]


def mirror_c2w(c2w: np.ndarray) -> np.ndarray:
    """c2w of the mirrored sample: S · c2w · F."""
    return MIRROR_WORLD @ np.asarray(c2w, float) @ MIRROR_CAMERA


def mirror_angles(yaw: float, pitch: float) -> tuple[float, float]:
    """Angles of the mirrored sample: (−yaw, pitch), −yaw wrapped into [-π, π)."""
    return wrap_yaw(-yaw), pitch


def epigraf_angles(yaw: float, pitch: float) -> list[float]:
    """EpiGRAF's ``[yaw, pitch, roll]`` for a pgrf view: ``[−yaw, pitch, 0]``, −yaw wrapped into [-π, π).

    EpiGRAF's world is +Y up with the camera at r·(sinθ cosφ, cosθ, sinθ sinφ); under the rotation
    ``EPIGRAF_FROM_PGRF`` our camera at (yaw, pitch) is its camera at (−yaw, pitch), same roll-free
    orientation. Its x-flip rule (negate yaw) then matches our mirrored samples (yaw' = −yaw).
    """
    return [wrap_yaw(-float(yaw)), float(pitch), 0.0]


def project(points: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (N, 3) to continuous pixel coordinates (N, 2) and camera depth (N,)."""
    w2c = np.linalg.inv(np.asarray(c2w, float))
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    depth = cam[:, 2]
    uv = cam[:, :2] / depth[:, None]
    k = np.asarray(intrinsics, float)
    pixels = np.stack([k[0, 0] * uv[:, 0] + k[0, 2], k[1, 1] * uv[:, 1] + k[1, 2]], axis=-1) * size
    return pixels, depth


def opencv_to_blender(c2w: np.ndarray) -> np.ndarray:
    """Blender camera matrix_world for an OpenCV c2w."""
    return np.asarray(c2w, float) @ OPENCV_TO_BLENDER


def blender_to_opencv(matrix_world: np.ndarray) -> np.ndarray:
    """OpenCV c2w for a Blender camera matrix_world (the conversion is its own inverse)."""
    return np.asarray(matrix_world, float) @ OPENCV_TO_BLENDER


def c2w_angles(c2w: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, radius) of a camera from its position: yaw in [-π, π), pitch in [0, π] (the inverse of
    ``camera_position``; the orientation is not looked at)."""
    x, y, z = (float(v) for v in np.asarray(c2w, float)[:3, 3])
    radius = math.sqrt(x * x + y * y + z * z)
    return wrap_yaw(math.atan2(y, x)), math.acos(min(1.0, max(-1.0, z / radius))), radius


def fov_of(intrinsics: np.ndarray) -> float:
    """Full field of view of a normalised K (inverse of ``normalized_intrinsics``)."""
    return 2.0 * math.atan(0.5 / float(np.asarray(intrinsics, float)[0, 0]))


BLENDER_EULER_YAW_OFFSET = math.pi / 2
"""EpiGRAF's processed M-Plants/M-Food zips store Euler angles of the Blender camera matrix T
(megascans-rendering ``utils.get_euler_angles``: yaw_e = atan2(T[1,0], T[0,0]), pitch_e = atan2(T[2,1], T[2,2])).
T's x axis (the image's right) of a camera at (φ, θ) aimed by ``to_track_quat('-Z', 'Y')`` is (−sin φ, cos φ, 0)
and its z axis points away from the origin, so yaw_e = φ + π/2 and pitch_e = θ."""


def blender_euler_angles(yaw: float, pitch: float) -> list[float]:
    """``[yaw_e, pitch_e, roll_e]`` the authors' zips hold for a pgrf view: ``[yaw + π/2 wrapped, pitch, 0]``."""
    return [wrap_yaw(float(yaw) + BLENDER_EULER_YAW_OFFSET), float(pitch), 0.0]


def from_blender_euler_angles(angles: list[float]) -> tuple[float, float]:
    """pgrf (yaw, pitch) of the authors' Euler ``[yaw_e, pitch_e, roll_e]``: ``(yaw_e − π/2 wrapped, pitch_e)``."""
    return wrap_yaw(float(angles[0]) - BLENDER_EULER_YAW_OFFSET), float(angles[1])


def from_epigraf_angles(angles: list[float]) -> tuple[float, float]:
    """pgrf (yaw, pitch) of ``epigraf_angles``' ``[yaw, pitch, roll]`` (what ``pgrf export`` writes): ``(−yaw wrapped, pitch)``."""
    return wrap_yaw(-float(angles[0])), float(angles[1])


World = Literal["zup", "yup"]
"""The world of outside camera labels: pgrf's +Z up, or EG3D's +Y up."""
WORLDS: dict[World, np.ndarray] = {"zup": np.eye(4), "yup": EPIGRAF_FROM_PGRF}
"""World frames a camera label can be written in, as the rotation from pgrf's world into them: ``zup`` is pgrf's own
(+Z up, what ``pgrf export`` writes), ``yup`` the +Y-up frame of EG3D/EpiGRAF ((x, y, z) → (x, z, −y))."""


def eg3d_label(c2w: np.ndarray, intrinsics: np.ndarray, world: str = "zup") -> list[float]:
    """EG3D's 25-float label of a pgrf camera in ``world``: OpenCV c2w (16, row-major) then normalised K (9, row-major)."""
    moved = WORLDS[world] @ np.asarray(c2w, float)
    return [float(x) for x in moved.reshape(16)] + [float(x) for x in np.asarray(intrinsics, float).reshape(9)]


def from_eg3d_label(label: list[float], world: str = "zup") -> tuple[np.ndarray, np.ndarray]:
    """pgrf (c2w, K) of an EG3D label written in ``world`` (the inverse of ``eg3d_label``)."""
    values = np.asarray(label, float)
    return WORLDS[world].T @ values[:16].reshape(4, 4), values[16:25].reshape(3, 3)
