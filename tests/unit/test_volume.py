"""Volume rendering against analytic densities and patch/full-image consistency (the cameras of `pgrf render`:
tests/blender/test_rays_blender.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from pgrf import cameras
from pgrf.model.generator import Generator, seeded_latents
from pgrf.model.patches import extract_patches
from pgrf.model.presets import preset
from tests.helpers import SOLID, render_full, spheres_field


def view_matrices(yaw: float, pitch: float, radius: float = 3.5, fov: float = math.pi / 4) -> tuple[torch.Tensor, torch.Tensor]:
    view = cameras.View(yaw, pitch, radius, fov)
    return torch.tensor(view.c2w)[None].float(), torch.tensor(view.intrinsics)[None].float()


def test_sphere_silhouette_matches_the_pinhole_prediction() -> None:
    resolution, rho, distance = 64, 0.8, 3.5
    field = spheres_field(torch.zeros(1, 3), torch.tensor([rho]))
    for yaw, pitch in [(0.3, 1.2), (-2.5, 0.4)]:
        c2w, k = view_matrices(yaw, pitch, distance)
        out = render_full(field, c2w, k, resolution)
        opacity = out.opacity.reshape(resolution, resolution)
        measured = math.sqrt(float(opacity.sum()) / math.pi)
        predicted = float(k[0, 0, 0]) * resolution * math.tan(math.asin(rho / distance))
        assert abs(measured - predicted) < 1.0
        rows, cols = torch.nonzero(opacity > 0.5, as_tuple=True)
        assert abs(float(rows.float().mean()) + 0.5 - resolution / 2) < 0.25  # centred on the optical axis
        assert abs(float(cols.float().mean()) + 0.5 - resolution / 2) < 0.25
        centre = out.depth.reshape(resolution, resolution)[resolution // 2, resolution // 2]
        assert abs(float(centre) - (distance - rho)) < 0.01  # importance samples find the surface


def test_weights_and_transmittance_sum_to_one_and_background_is_white() -> None:
    c2w, k = view_matrices(0.7, 1.9)
    field = spheres_field(torch.tensor([[0.3, -0.2, 0.1]]), torch.tensor([0.6]))
    out = render_full(field, c2w, k, 16)
    assert torch.allclose(out.weights.sum(-1) + out.transmittance, torch.ones(1), atol=1e-6)
    hit, miss = out.opacity > 0.99, out.opacity < 1e-6
    assert hit.any() and miss.any()
    assert torch.allclose(out.rgb[miss], torch.ones(3))  # white where nothing is hit
    assert torch.allclose(out.rgb[hit], torch.tensor([1.0, 0.0, 0.0]), atol=1e-2)

    def empty(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(*points.shape[:-1], 3), torch.full(points.shape[:-1], -30.0)

    assert torch.allclose(render_full(empty, c2w, k, 8).rgb, torch.ones(1), atol=1e-9)

    def everywhere(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(*points.shape[:-1], 3), torch.full(points.shape[:-1], SOLID)

    # density outside [-1, 1]³ is zero: rays that miss the box stay white even in a dense field
    corner = render_full(everywhere, *view_matrices(0.0, math.pi / 2, 3.5, fov=1.5), 32)
    assert corner.opacity.reshape(32, 32)[0, 0] == 0 and corner.opacity.reshape(32, 32)[16, 16] > 0.99


def test_rendered_patch_equals_resampled_full_image() -> None:
    torch.manual_seed(0)
    config = preset("tiny")
    generator = Generator(config).eval()
    yaw, pitch = cameras.sample_angles(3, np.random.default_rng(1))
    views = [cameras.View(float(a), float(b), 3.5, math.pi / 4) for a, b in zip(yaw, pitch)]
    c2w = torch.tensor(np.stack([v.c2w for v in views])).float()
    k = torch.tensor(np.stack([v.intrinsics for v in views])).float()
    z = seeded_latents([0, 1, 2], config.z_dim)
    resolution, size = config.resolution, config.patch_resolution  # 16, 8
    full = generator.render_image(z, None, c2w, k, resolution)
    patch = torch.tensor([[0.5, 3 / 16, 5 / 16], [0.5, 8 / 16, 0.0], [0.5, 0.5, 0.5]])  # pixel-aligned
    with torch.no_grad():
        rendered = generator(z, None, c2w, k, patch)
    resampled = extract_patches(full, patch, size)
    assert torch.allclose(rendered, resampled, atol=1e-4)
    assert torch.allclose(rendered[0], full[0, :, 5:13, 3:11], atol=1e-4)
    assert rendered.std() > 0.01  # not a flat image that would match anything
