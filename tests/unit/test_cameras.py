"""The camera convention (docs/cameras.md) in numpy; the checks against Blender are in tests/blender/test_cameras_blender.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pgrf import cameras


def _angles(n: int = 200, seed: int = 1) -> list[tuple[float, float]]:
    yaw, pitch = cameras.sample_angles(n, np.random.default_rng(seed))
    return list(zip(yaw, pitch)) + [(0.3, cameras.POLE_EPS), (-2.0, np.pi - cameras.POLE_EPS)]


@pytest.mark.parametrize("yaw,pitch", _angles(50))
def test_c2w_is_a_zero_roll_look_at(yaw: float, pitch: float) -> None:
    c2w = cameras.look_at_origin(yaw, pitch, 3.5)
    rotation, position = c2w[:3, :3], c2w[:3, 3]
    assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-9)
    assert np.isclose(np.linalg.det(rotation), 1.0)
    assert np.isclose(np.linalg.norm(position), 3.5)
    assert np.allclose(rotation[:, 2], -position / 3.5)  # z (forward) looks at the origin
    assert abs(rotation[2, 0]) < 1e-9  # x (right) is horizontal: zero roll
    assert rotation[2, 1] <= 1e-9  # y points down (or sideways at the poles), never up


def test_angle_convention_examples() -> None:
    assert np.allclose(cameras.camera_position(0.0, np.pi / 2, 2.0), [2.0, 0.0, 0.0])
    assert np.allclose(cameras.camera_position(np.pi / 2, np.pi / 2, 2.0), [0.0, 2.0, 0.0])
    assert np.allclose(cameras.camera_position(1.0, 0.0, 2.0), [0.0, 0.0, 2.0])
    # a horizontal camera on +X looking at the origin has +Y on its right and world -Z as image down
    c2w = cameras.look_at_origin(0.0, np.pi / 2, 3.5)
    assert np.allclose(c2w[:3, 0], [0, 1, 0]) and np.allclose(c2w[:3, 1], [0, 0, -1])


def test_intrinsics_project_the_fov_to_the_image_edges() -> None:
    fov = np.pi / 4
    k = cameras.normalized_intrinsics(fov)
    c2w = cameras.look_at_origin(0.0, np.pi / 2, 3.5)
    edge = np.array([[0.0, 3.5 * np.tan(fov / 2), 0.0], [0.0, 0.0, 0.0]])  # right edge, centre
    pixels, depth = cameras.project(edge, c2w, k, 100)
    assert np.allclose(pixels, [[100.0, 50.0], [50.0, 50.0]])
    assert np.allclose(depth, 3.5)


def test_views_are_uniform_on_the_sphere() -> None:
    yaw, pitch = cameras.sample_angles(20000, np.random.default_rng(3))
    assert stats.kstest(yaw, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01
    assert stats.kstest(np.cos(pitch), stats.uniform(-1, 2).cdf).pvalue > 0.01
    assert yaw.min() >= -np.pi and yaw.max() < np.pi
    assert pitch.min() >= cameras.POLE_EPS and pitch.max() <= np.pi - cameras.POLE_EPS


def test_a_biased_sampler_fails_the_uniformity_check() -> None:
    pitch = np.random.default_rng(0).uniform(0, np.pi, 20000)  # uniform in angle, not on the sphere
    assert stats.kstest(np.cos(pitch), stats.uniform(-1, 2).cdf).pvalue < 1e-6


def test_views_are_deterministic_per_model_and_seed() -> None:
    first = cameras.sample_views("asset", "asset_var1", 0, 128, 3.5, np.pi / 4)
    again = cameras.sample_views("asset", "asset_var1", 0, 128, 3.5, np.pi / 4)
    other_seed = cameras.sample_views("asset", "asset_var1", 1, 128, 3.5, np.pi / 4)
    other_model = cameras.sample_views("asset", "asset_var2", 0, 128, 3.5, np.pi / 4)
    assert first == again
    assert all(a.yaw != b.yaw for a, b in zip(first, other_seed))
    assert all(a.yaw != b.yaw for a, b in zip(first, other_model))


@pytest.mark.parametrize("yaw,pitch", _angles(40, seed=2))
def test_mirrored_camera_projects_the_reflected_point_to_the_flipped_pixel(yaw: float, pitch: float) -> None:
    rng = np.random.default_rng(int(abs(yaw) * 1000))
    points = rng.uniform(-1, 1, (50, 3))
    k, size = cameras.normalized_intrinsics(np.pi / 4), 256
    c2w = cameras.look_at_origin(yaw, pitch, 3.5)
    pixels, depth = cameras.project(points, c2w, k, size)
    reflected = points * np.array([1.0, -1.0, 1.0])
    mirrored_pixels, mirrored_depth = cameras.project(reflected, cameras.mirror_c2w(c2w), k, size)
    assert np.allclose(mirrored_pixels[:, 0], size - pixels[:, 0])
    assert np.allclose(mirrored_pixels[:, 1], pixels[:, 1])
    assert np.allclose(mirrored_depth, depth)


@pytest.mark.parametrize("yaw,pitch", _angles(40, seed=3))
def test_mirrored_camera_is_the_look_at_camera_at_mirrored_angles(yaw: float, pitch: float) -> None:
    mirrored_yaw, mirrored_pitch = cameras.mirror_angles(yaw, pitch)
    assert -np.pi <= mirrored_yaw < np.pi
    expected = cameras.look_at_origin(mirrored_yaw, mirrored_pitch, 3.5)
    assert np.allclose(cameras.mirror_c2w(cameras.look_at_origin(yaw, pitch, 3.5)), expected, atol=1e-9)


@pytest.mark.parametrize("yaw,expected", [
    (np.pi, -np.pi), (-np.pi, -np.pi), (3 * np.pi, -np.pi), (-3 * np.pi, -np.pi),
    (3.5 * np.pi, -0.5 * np.pi), (-3.5 * np.pi, 0.5 * np.pi), (7.0, 7.0 - 2 * np.pi), (-10.0, -10.0 + 4 * np.pi),
])
def test_wrap_yaw_maps_into_minus_pi_to_pi(yaw: float, expected: float) -> None:
    wrapped = cameras.wrap_yaw(yaw)
    assert -np.pi <= wrapped < np.pi
    assert np.isclose(wrapped, expected, atol=1e-12)


def test_wrap_yaw_keeps_every_in_range_yaw_bit_for_bit() -> None:
    yaws = np.random.default_rng(4).uniform(-np.pi, np.pi, 1000).tolist() + [-np.pi, np.nextafter(np.pi, 0.0), 0.0]
    assert all(cameras.wrap_yaw(y) == y for y in yaws)
    beyond = np.random.default_rng(5).uniform(-20.0, 20.0, 1000)
    wrapped = np.array([cameras.wrap_yaw(y) for y in beyond])
    assert np.all((wrapped >= -np.pi) & (wrapped < np.pi))
    assert np.allclose(np.cos(wrapped), np.cos(beyond)) and np.allclose(np.sin(wrapped), np.sin(beyond))


@pytest.mark.parametrize("yaw", [-np.pi, np.pi, 0.3, -2.0, 4.0, -7.0, 10.0])
def test_mirror_and_epigraf_angles_wrap_with_wrap_yaw(yaw: float) -> None:
    assert cameras.mirror_angles(yaw, 1.1) == (cameras.wrap_yaw(-yaw), 1.1)
    assert cameras.epigraf_angles(yaw, 1.1) == [cameras.wrap_yaw(-yaw), 1.1, 0.0]


def test_pitch_clamp_is_shared_by_cameras_and_turntables() -> None:
    from pgrf.evaluate.video import turntable_angles

    assert np.array_equal(cameras.clamp_pitch(np.array([-1.0, 0.0, 1.0, np.pi, 4.0])),
                          [cameras.POLE_EPS, cameras.POLE_EPS, 1.0, np.pi - cameras.POLE_EPS, np.pi - cameras.POLE_EPS])
    _, pitch = turntable_angles(range(8), 8, pitch=0.0, spiral=True)
    assert pitch.min() == cameras.POLE_EPS
    assert np.array_equal(cameras.look_at_origin(0.4, 0.0, 3.5), cameras.look_at_origin(0.4, cameras.POLE_EPS, 3.5))


def test_scene_constants_agree() -> None:
    from pgrf.config import RenderSettings

    corners = cameras.SCENE_BOUND * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    assert np.allclose(np.linalg.norm(corners, axis=1), cameras.SCENE_RADIUS)
    assert np.isclose(cameras.SCENE_RADIUS, np.sqrt(3) * cameras.SCENE_BOUND)
    assert RenderSettings().radius == cameras.DEFAULT_RADIUS > cameras.SCENE_RADIUS
    assert RenderSettings().fov == cameras.DEFAULT_FOV == np.pi / 4


def test_blender_conversion_is_an_involution() -> None:
    c2w = cameras.look_at_origin(0.7, 1.1, 3.5)
    assert np.allclose(cameras.blender_to_opencv(cameras.opencv_to_blender(c2w)), c2w)
    assert np.allclose(cameras.opencv_to_blender(c2w)[:3, 2], -c2w[:3, 2])  # Blender cameras look down -Z
