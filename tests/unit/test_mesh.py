"""Mesh extraction: a sphere density gives a closed mesh of the right radius; files read back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pgrf.errors import PgrfError
from pgrf.evaluate.mesh import Mesh, auto_threshold, density_grid, extract_mesh, grid_points, save_mesh
from tests.helpers import read_ply

RADIUS, RESOLUTION = 0.6, 40
VOXEL = 2 / (RESOLUTION - 1)


def sphere(radius: float = RADIUS):
    """Density 10 at the surface, rising inward (softplus-like scale), as a batched callable."""
    return lambda points: 10 + 20 * (radius - points.norm(dim=-1))


def colour(points: torch.Tensor) -> torch.Tensor:
    return (points + 1) / 2


def edge_counts(faces: np.ndarray) -> np.ndarray:
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    return np.unique(edges, axis=0, return_counts=True)[1]


def signed_volume(mesh: Mesh) -> float:
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6)


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return extract_mesh(sphere(), threshold=10.0, resolution=RESOLUTION, color_fn=colour, chunk=5000)


def test_sphere_is_closed_with_the_right_radius_and_outward_faces(mesh: Mesh) -> None:
    assert (edge_counts(mesh.faces) == 2).all()  # watertight: every edge shared by exactly two faces
    assert len(mesh.vertices) - len(edge_counts(mesh.faces)) + len(mesh.faces) == 2  # genus 0
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radius - RADIUS).max() < VOXEL
    assert signed_volume(mesh) == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)


def test_vertex_colours_come_from_the_colour_function(mesh: Mesh) -> None:
    assert mesh.colors is not None and mesh.colors.dtype == np.uint8
    expected = np.round((mesh.vertices + 1) / 2 * 255)
    assert np.abs(mesh.colors.astype(np.float64) - expected).max() <= 1


def test_grid_is_indexed_x_y_z_and_chunking_does_not_matter() -> None:
    calls: list[int] = []

    def density(points: torch.Tensor) -> torch.Tensor:
        calls.append(len(points))
        return points[:, 0] + 10 * points[:, 1] + 100 * points[:, 2]

    small = density_grid(density, resolution=5, chunk=7)
    assert max(calls) <= 7 and sum(calls) == 125
    np.testing.assert_array_equal(small, density_grid(density, resolution=5, chunk=1000))
    axis = grid_points(5).astype(np.float32)
    assert small[3, 1, 4] == pytest.approx(axis[3] + 10 * axis[1] + 100 * axis[4])


def test_objects_cut_by_the_box_still_close() -> None:
    cut = extract_mesh(sphere(radius=1.3), threshold=10.0, resolution=24)
    assert (edge_counts(cut.faces) == 2).all()
    assert np.abs(cut.vertices).max() <= 1 + 2 / 23 + 1e-6


def test_threshold_never_crossed_is_a_clear_error() -> None:
    with pytest.raises(PgrfError, match="never crosses the threshold 100"):
        extract_mesh(sphere(), threshold=100.0, resolution=8)


def read_obj(path: Path) -> Mesh:
    verts = [[float(x) for x in line.split()[1:]] for line in path.read_text().splitlines() if line.startswith("v ")]
    faces = [[int(i) - 1 for i in line.split()[1:]] for line in path.read_text().splitlines() if line.startswith("f ")]
    array = np.array(verts)
    return Mesh(array[:, :3].astype(np.float32), np.array(faces), np.round(array[:, 3:] * 255).astype(np.uint8))


@pytest.mark.parametrize("name, binary", [("sphere.ply", True), ("ascii.ply", False), ("sphere.obj", True)])
def test_files_are_written_and_read_back(mesh: Mesh, tmp_path: Path, name: str, binary: bool) -> None:
    path = save_mesh(mesh, tmp_path / name, binary=binary)
    back = read_obj(path) if name.endswith(".obj") else read_ply(path)
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.colors, mesh.colors)
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_plain_mesh_without_colours_and_bad_suffix(tmp_path: Path) -> None:
    plain = Mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))
    assert read_ply(save_mesh(plain, tmp_path / "tri.ply")).colors is None
    assert "v 1 0 0\n" in save_mesh(plain, tmp_path / "tri.obj").read_text()
    with pytest.raises(PgrfError, match=r"\.ply or \.obj"):
        save_mesh(plain, tmp_path / "tri.stl")


def _ball(density: float, background: float, radius: float = 0.5, seed: int = 0):
    """A solid ball of constant ``density`` in a background of log-normal noise (σ = 0.5) around ``background``."""
    noise = np.random.default_rng(seed)

    def field(points: torch.Tensor) -> torch.Tensor:
        inside = points.norm(dim=-1) < radius
        scatter = torch.from_numpy(np.exp(noise.normal(0.0, 0.5, len(points)))).float()
        return torch.where(inside, torch.full_like(scatter, density), background * scatter)

    return field


def test_auto_threshold_lies_between_empty_space_and_the_object_and_meshes_its_surface() -> None:
    resolution = 48
    voxel = 2 / (resolution - 1)
    grid = density_grid(_ball(50.0, 0.01), resolution)
    level = auto_threshold(grid)
    assert math.sqrt(0.01 * 50.0) / 2 < level < math.sqrt(0.01 * grid.max()) * 2  # √(median · max)
    assert 0.01 * math.exp(3 * 0.5) < level < 50.0  # above the background's 3σ noise, below the object
    assert auto_threshold(grid * 7.0) == pytest.approx(7.0 * level)  # scales with the field
    mesh = extract_mesh(_ball(50.0, 0.01), resolution=resolution)  # threshold=None: auto
    assert mesh.level == pytest.approx(level, rel=1e-6)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < voxel  # every vertex within one voxel of the true surface
    assert (edge_counts(mesh.faces) == 2).all()


def test_auto_threshold_refuses_a_field_without_an_object() -> None:
    with pytest.raises(PgrfError, match="no clear object to mesh .*give --threshold"):
        auto_threshold(np.full((8, 8, 8), 3.0, dtype=np.float32))
    with pytest.raises(PgrfError, match="no clear object"):
        auto_threshold(np.zeros((8, 8, 8), dtype=np.float32))


def test_mesh_threshold_flag_is_auto_or_a_number() -> None:
    from pgrf.evaluate.options import MeshOptions, density_level

    assert density_level("auto") is None and density_level("AUTO") is None and density_level("12.5") == 12.5
    assert MeshOptions(threshold="3").level == 3.0
    for bad in ("thick", "nan", "inf"):
        with pytest.raises(PgrfError, match="--threshold must be auto or a density level"):
            MeshOptions(threshold=bad)  # the options stop before any work
