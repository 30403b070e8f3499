"""Patch scale schedules, offsets and real-patch extraction on the generator's pixel grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from pgrf import cameras
from pgrf.model.patches import (
    PatchSampler,
    beta_at,
    extract_patches,
    full_image_patches,
    min_scale_at,
)
from pgrf.model.rays import patch_rays


def test_beta_schedule_endpoints() -> None:
    assert beta_at(0.0, 10000.0) == pytest.approx(0.001)
    assert beta_at(5000.0, 10000.0) == pytest.approx(0.4005)
    assert beta_at(10000.0, 10000.0) == pytest.approx(0.8)
    assert beta_at(1e6, 10000.0) == pytest.approx(0.8)
    assert min_scale_at(0.0, 100.0, 0.25) == 1.0 and min_scale_at(100.0, 100.0, 0.25) == 0.25


@pytest.mark.parametrize("kimg", [1250.0, 2500.0, 5000.0, 10000.0, 20000.0])
def test_beta_scales_follow_beta_distribution(kimg: float) -> None:
    sampler = PatchSampler(256, 64, anneal_kimg=10000.0)
    s = sampler.scales(4000, kimg, torch.Generator().manual_seed(int(kimg))).numpy()
    assert s.min() >= 0.25 and s.max() <= 1.0
    unit = (s - 0.25) / 0.75
    beta = beta_at(kimg, 10000.0)
    assert stats.kstest(unit, stats.beta(1.0, beta).cdf).pvalue > 1e-3
    # and the test can tell a slightly different β apart
    assert stats.kstest(unit, stats.beta(1.0, beta * 1.25).cdf).pvalue < 1e-3


@pytest.mark.parametrize("kimg", [0.0, 100.0])
def test_early_scales_are_almost_all_whole_images(kimg: float) -> None:
    """For β ≈ 0 most of Beta(1, β) lies within float precision of 1 (ties break a KS test), so compare
    the mass near 1 instead: P(X > 1 − ε) = ε^β."""
    sampler = PatchSampler(256, 64, anneal_kimg=10000.0)
    unit = (sampler.scales(20000, kimg, torch.Generator().manual_seed(1)).numpy() - 0.25) / 0.75
    beta = beta_at(kimg, 10000.0)
    for eps in (1e-3, 1e-6, 1e-9):
        expected = eps**beta
        assert abs((unit > 1 - eps).mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / unit.size) + 1e-4


def test_uniform_baseline_range_and_offsets() -> None:
    sampler = PatchSampler(128, 32, schedule="uniform", anneal_kimg=1000.0)
    generator = torch.Generator().manual_seed(0)
    assert torch.allclose(sampler.scales(100, 0.0, generator), torch.ones(100, dtype=torch.float64))
    s = sampler.scales(4000, 500.0, generator).numpy()
    low = min_scale_at(500.0, 1000.0, 0.25)
    assert s.min() >= low and s.max() <= 1.0
    assert stats.kstest(s, stats.uniform(low, 1.0 - low).cdf).pvalue > 1e-3
    patch = sampler.sample(2000, 1000.0, generator=generator)
    assert patch.shape == (2000, 3) and patch.dtype == torch.float32
    assert (patch[:, 0] >= 0.25).all() and (patch[:, 1:] >= 0).all()
    assert (patch[:, 1:] <= 1.0 - patch[:, :1] + 1e-6).all()
    assert patch[:, 1].max() > 0.6  # offsets cover [0, 1 − s]


def test_full_and_aligned_patches_are_exact_crops() -> None:
    image = torch.rand(2, 3, 32, 32)
    assert torch.allclose(extract_patches(image, full_image_patches(2), 32), image, atol=1e-6)
    patch = torch.tensor([[0.25, 3 / 32, 20 / 32], [0.5, 0.5, 0.0]])
    out = extract_patches(image, patch, 8)
    assert torch.allclose(out[0], image[0, :, 20:28, 3:11], atol=1e-6)
    assert torch.allclose(out[1, :, :, :], image[1, :, 0:16:2, 16:32:2] * 0.25 + image[1, :, 1:16:2, 16:32:2] * 0.25
                          + image[1, :, 0:16:2, 17:32:2] * 0.25 + image[1, :, 1:16:2, 17:32:2] * 0.25, atol=1e-6)


def test_real_patch_equals_a_generator_that_returns_the_image() -> None:
    """A 'generator' that colours each ray with the image at the pixel the dataset camera projects it to
    gives exactly the real patch: rays and real patches share one pixel grid."""
    resolution, size = 48, 16
    torch.manual_seed(0)
    image = torch.rand(3, 3, resolution, resolution)
    yaw, pitch = cameras.sample_angles(3, np.random.default_rng(4))
    views = [cameras.View(float(a), float(b), 3.5, math.pi / 4) for a, b in zip(yaw, pitch)]
    c2w = torch.tensor(np.stack([v.c2w for v in views]))
    k = torch.tensor(np.stack([v.intrinsics for v in views]))
    patch = torch.tensor([[0.4, 0.13, 0.51], [1.0, 0.0, 0.0], [1 / 3, 0.6, 0.05]])
    rays = patch_rays(c2w, k, patch, size)
    for b, view in enumerate(views):
        points = (rays.origins[b] + 2.7 * rays.directions[b]).double().numpy()
        pixels, depth = cameras.project(points, view.c2w, view.intrinsics, resolution)
        assert (depth > 0).all()
        grid = torch.from_numpy(pixels / resolution * 2.0 - 1.0).float().reshape(1, size, size, 2)
        rendered = F.grid_sample(image[b:b + 1], grid, mode="bilinear", padding_mode="border", align_corners=False)
        assert torch.allclose(rendered, extract_patches(image[b:b + 1], patch[b:b + 1], size), atol=1e-5)
