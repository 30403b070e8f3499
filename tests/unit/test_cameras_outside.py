"""The conventions of outside camera formats (docs/inputs.md), converted in pgrf.cameras: numbers, both directions,
wrap-around. The Blender matrices are built as ``to_track_quat('-Z', 'Y')`` does (tests/libraries/epigraf_renders.py;
tests/blender/test_import_renders_blender.py checks them against Blender itself)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgrf import cameras
from pgrf.pipeline.export import camera_label
from tests.libraries.epigraf_renders import get_euler_angles, track_quat_matrix


def _angles(n: int = 200) -> list[tuple[float, float]]:
    yaw, pitch = cameras.sample_angles(n, np.random.default_rng(3))
    edges = [(math.pi / 2 - 1e-9, 1.0), (math.pi / 2, 1.0), (-math.pi, 0.5), (math.pi - 1e-12, 2.0), (-math.pi / 2, 3.0)]
    return [(float(y), float(p)) for y, p in zip(yaw, pitch)] + edges


def test_blender_matrix_of_the_authors_camera_is_our_c2w() -> None:
    for yaw, pitch in _angles():
        ours = cameras.look_at_origin(yaw, pitch, 3.5)
        assert np.allclose(cameras.blender_to_opencv(track_quat_matrix(yaw, pitch, 3.5)), ours, atol=1e-12)


def test_euler_angles_of_the_blender_matrix_are_yaw_plus_quarter_turn_and_pitch() -> None:
    for yaw, pitch in _angles():
        yaw_e, pitch_e, roll_e = get_euler_angles(track_quat_matrix(yaw, pitch, 3.5))
        assert abs(roll_e) < 1e-12
        expected = cameras.blender_euler_angles(yaw, pitch)
        assert math.isclose(math.cos(yaw_e - expected[0]), 1.0, abs_tol=1e-12)  # equal up to a turn (±π are one angle)
        assert math.isclose(pitch_e, expected[1], abs_tol=1e-12) and expected[2] == 0.0
        back_yaw, back_pitch = cameras.from_blender_euler_angles([yaw_e, pitch_e, roll_e])
        assert math.isclose(math.cos(back_yaw - yaw), 1.0, abs_tol=1e-12) and -math.pi <= back_yaw < math.pi
        assert math.isclose(back_pitch, pitch, abs_tol=1e-12)


def test_blender_euler_numbers_and_wrap_around() -> None:
    assert cameras.blender_euler_angles(0.0, math.pi / 2) == pytest.approx([math.pi / 2, math.pi / 2, 0.0])
    assert cameras.blender_euler_angles(3.0, 1.0)[0] == pytest.approx(3.0 + math.pi / 2 - 2 * math.pi)  # wrapped
    assert cameras.blender_euler_angles(math.pi / 2, 1.0)[0] == -math.pi  # π wraps to −π
    assert cameras.from_blender_euler_angles([-3.0, 0.7, 0.0]) == pytest.approx((-3.0 - math.pi / 2 + 2 * math.pi, 0.7))
    assert cameras.from_blender_euler_angles([math.pi / 2, 0.7, 0.0]) == (0.0, 0.7)


def test_pgrf_export_angles_invert() -> None:
    for yaw, pitch in _angles():
        back = cameras.from_epigraf_angles(cameras.epigraf_angles(yaw, pitch))
        assert math.isclose(math.cos(back[0] - yaw), 1.0, abs_tol=1e-12) and back[1] == pitch
    assert cameras.from_epigraf_angles([1.0, 0.5, 0.0]) == (-1.0, 0.5)
    assert cameras.from_epigraf_angles([-math.pi, 0.5, 0.0]) == (-math.pi, 0.5)  # +π wraps to −π


def test_c2w_angles_invert_look_at() -> None:
    for yaw, pitch in _angles():
        back_yaw, back_pitch, radius = cameras.c2w_angles(cameras.look_at_origin(yaw, pitch, 2.7))
        assert math.isclose(math.cos(back_yaw - yaw), 1.0, abs_tol=1e-12) and -math.pi <= back_yaw < math.pi
        assert math.isclose(back_pitch, float(cameras.clamp_pitch(pitch)), abs_tol=1e-9)
        assert math.isclose(radius, 2.7, rel_tol=1e-12)
    c2w = np.eye(4)
    c2w[:3, 3] = [-2.0, 0.0, 0.0]  # atan2 gives +π: wrapped to −π
    assert cameras.c2w_angles(c2w) == (-math.pi, math.pi / 2, 2.0)


def test_fov_of_inverts_normalized_intrinsics() -> None:
    for fov in (0.2, math.pi / 4, 1.2):
        assert math.isclose(cameras.fov_of(cameras.normalized_intrinsics(fov)), fov, rel_tol=1e-12)


def test_eg3d_labels_in_both_worlds() -> None:
    c2w, k = cameras.look_at_origin(0.4, 0.05, 3.5), cameras.normalized_intrinsics(0.3)
    assert cameras.eg3d_label(c2w, k, "zup") == camera_label(c2w, k)  # what pgrf export writes
    top = np.array(cameras.eg3d_label(cameras.look_at_origin(0.0, 1e-4, 2.0), k, "yup"))[:16].reshape(4, 4)
    assert np.allclose(top[:3, 3], [0.0, 2.0, 0.0], atol=1e-3)  # the camera above the object is at +Y in EG3D's world
    side = np.array(cameras.eg3d_label(cameras.look_at_origin(math.pi / 2, math.pi / 2, 2.0), k, "yup"))[:16].reshape(4, 4)
    assert np.allclose(side[:3, 3], [0.0, 0.0, -2.0], atol=1e-12)  # pgrf +Y → EG3D −Z
    assert np.linalg.det(side[:3, :3]) == pytest.approx(1.0)
    for world in cameras.WORLDS:
        back_c2w, back_k = cameras.from_eg3d_label(cameras.eg3d_label(c2w, k, world), world)
        assert np.allclose(back_c2w, c2w, atol=1e-15) and np.array_equal(back_k, k)
    assert not np.allclose(cameras.from_eg3d_label(cameras.eg3d_label(c2w, k, "yup"), "zup")[0], c2w)
