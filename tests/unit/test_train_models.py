"""The trainer's networks on CPU with the tiny preset: shapes, dtypes, gradients, conditioning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pgrf import cameras
from pgrf.errors import PgrfError
from pgrf.model.discriminator import Discriminator, minibatch_stddev
from pgrf.model.generator import Generator, density_noise_at, seeded_latents
from pgrf.model.layers import (
    ModulatedConv2d,
    downsample2x,
    modulated_conv2d,
    upsample2x,
)
from pgrf.model.mapping import MappingNetwork
from pgrf.model.patches import PatchSampler
from pgrf.model.presets import PRESETS, ModelConfig, preset
from pgrf.model.synthesis import SynthesisNetwork
from pgrf.model.triplane import TriPlaneDecoder, sample_triplanes

TINY = preset("tiny").override(c_dim=3, camera_cond=True)
BATCH = 4


def dataset_cameras(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """c2w, K and (yaw, pitch) of n random dataset views, as the shards store them."""
    yaw, pitch = cameras.sample_angles(n, np.random.default_rng(seed))
    views = [cameras.View(float(a), float(b), 3.5, math.pi / 4) for a, b in zip(yaw, pitch)]
    c2w = torch.tensor(np.stack([v.c2w for v in views]), dtype=torch.float32)
    k = torch.tensor(np.stack([v.intrinsics for v in views]), dtype=torch.float32)
    return c2w, k, torch.tensor(np.stack([yaw, pitch], 1), dtype=torch.float32)


def labels(n: int, c_dim: int) -> torch.Tensor:
    return F.one_hot(torch.arange(n) % c_dim, c_dim).float()


def assert_all_grads(module: torch.nn.Module) -> None:
    missing = [name for name, p in module.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing}"
    zero = [name for name, p in module.named_parameters() if not p.grad.abs().sum() > 0]
    assert not zero, f"zero gradient for {zero}"


def test_modulated_conv_equals_per_sample_convolution() -> None:
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 5, 8, 8), torch.randn(7, 5, 3, 3), torch.randn(3, 5)
    out = modulated_conv2d(x, weight, styles, padding=1)
    for b in range(3):
        w = weight * styles[b][None, :, None, None]
        w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(out[b], F.conv2d(x[b:b + 1], w, padding=1)[0], atol=1e-5)


def test_resampling_keeps_constants_and_shapes() -> None:
    x = torch.ones(2, 3, 8, 8)
    up, down = upsample2x(x), downsample2x(x)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    assert torch.allclose(up[..., 1:-1, 1:-1], torch.ones(1)) and torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1))


def test_modulated_conv_layer_noise_modes() -> None:
    layer = ModulatedConv2d(4, 6, 8, resolution=16, up=True)
    layer.noise_strength.data.fill_(1.0)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    assert layer(x, w, "random").shape == (2, 6, 16, 16)
    assert torch.equal(layer(x, w, "const"), layer(x, w, "const"))
    assert not torch.equal(layer(x, w, "random"), layer(x, w, "random"))
    with pytest.raises(ValueError):
        layer(x, w, "bogus")


def test_mapping_shapes_average_and_truncation() -> None:
    mapping = MappingNetwork(z_dim=8, c_dim=3, w_dim=16, num_ws=5, w_avg_beta=0.5)
    z = torch.randn(BATCH, 8)
    ws = mapping(z, labels(BATCH, 3))
    assert ws.shape == (BATCH, 5, 16) and ws.dtype == torch.float32
    assert torch.equal(ws[:, 0], ws[:, 4])
    assert mapping.w_avg.abs().sum() > 0  # updated in training mode
    mapping.eval()
    before = mapping.w_avg.clone()
    truncated = mapping(z, labels(BATCH, 3), psi=0.0)
    assert torch.equal(mapping.w_avg, before)
    assert torch.allclose(truncated, before.expand_as(truncated))
    with pytest.raises(ValueError):
        mapping(z)


def test_synthesis_outputs_three_planes() -> None:
    synthesis = SynthesisNetwork(w_dim=16, resolution=16, plane_channels=4, channel_base=128, channel_max=16)
    assert synthesis.num_ws == 1 + 2 * 2 + 1  # 4² has one conv, 8² and 16² two each, plus the last output layer
    planes = synthesis(torch.randn(2, synthesis.num_ws, 16))
    assert planes.shape == (2, 3, 4, 16, 16)
    planes.square().mean().backward()
    assert_all_grads(synthesis)


def test_triplane_sampling_reads_the_xy_xz_and_yz_planes() -> None:
    planes = torch.randn(1, 3, 2, 4, 4, requires_grad=True)  # texel centres at ±0.25, ±0.75
    features = sample_triplanes(planes, torch.tensor([[[-0.75, 0.25, 0.75]]]))
    expected = (planes[0, 0, :, 2, 0] + planes[0, 1, :, 3, 0] + planes[0, 2, :, 3, 2]) / 3  # [row, column]
    assert features.shape == (1, 1, 2) and torch.allclose(features[0, 0], expected)
    decoder = TriPlaneDecoder(2, 8)
    rgb, density = decoder(sample_triplanes(planes, torch.rand(1, 10, 3) * 2 - 1))
    assert rgb.shape == (1, 10, 3) and density.shape == (1, 10) and 0 <= rgb.min() and rgb.max() <= 1
    (rgb.sum() + density.sum()).backward()
    assert_all_grads(decoder)
    assert planes.grad.abs().sum() > 0


def test_generator_patches_shapes_range_and_gradients() -> None:
    torch.manual_seed(0)
    generator = Generator(TINY)
    c2w, k, _ = dataset_cameras(BATCH)
    patch = PatchSampler(TINY.resolution, TINY.patch_resolution).sample(BATCH, kimg=5.0)
    out = generator(torch.randn(BATCH, TINY.z_dim), labels(BATCH, 3), c2w, k, patch, density_noise_std=1.0)
    assert out.shape == (BATCH, 3, TINY.patch_resolution, TINY.patch_resolution) and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    out.mean().backward()
    assert_all_grads(generator)


def test_generator_is_random_in_training_and_deterministic_in_eval() -> None:
    torch.manual_seed(0)
    generator = Generator(TINY)
    for layer in generator.modules():
        if getattr(layer, "noise_strength", None) is not None:
            layer.noise_strength.data.fill_(0.5)
    c2w, k, _ = dataset_cameras(2)
    z, c = seeded_latents([1, 2], TINY.z_dim), labels(2, 3)
    patch = torch.tensor([[0.7, 0.1, 0.2]] * 2)
    assert not torch.equal(generator(z, c, c2w, k, patch), generator(z, c, c2w, k, patch))
    generator.eval()
    assert torch.equal(generator(z, c, c2w, k, patch), generator(z, c, c2w, k, patch))
    generator.train()
    image = generator.render_image(z, c, c2w, k, 16, chunk=50)
    assert image.shape == (2, 3, 16, 16)
    assert torch.allclose(image, generator.render_image(z, c, c2w, k, 16, chunk=4096), atol=1e-6)
    assert torch.equal(seeded_latents([1, 2], 8), seeded_latents([1, 2], 8))


def test_discriminator_shapes_gradients_and_r1_double_backward() -> None:
    torch.manual_seed(0)
    disc = Discriminator(TINY)
    _, _, angles = dataset_cameras(BATCH)
    patch = PatchSampler(TINY.resolution, TINY.patch_resolution).sample(BATCH, 5.0, group_size=TINY.mbstd_group)
    img = torch.randn(BATCH, 3, TINY.patch_resolution, TINY.patch_resolution, requires_grad=True)
    logits = disc(img, patch, labels(BATCH, 3), angles)
    assert logits.shape == (BATCH, 1) and logits.dtype == torch.float32
    (grad,) = torch.autograd.grad(logits.sum(), img, create_graph=True)
    (logits.sum() + grad.square().sum()).backward()
    assert_all_grads(disc)
    with pytest.raises(ValueError):
        disc(img[:, :, :4, :4], patch, labels(BATCH, 3), angles)


def test_discriminator_depth_matches_a_full_resolution_d() -> None:
    config = preset("tiny").override(resolution=64, patch_resolution=16)
    disc = Discriminator(config)
    downs = [block.conv1.down for block in disc.blocks]
    assert downs == [False, False, True, True]  # log2(64/16) blocks stay at 16², then 16 → 8 → 4
    assert disc(torch.randn(2, 3, 16, 16), torch.tensor([[0.25, 0.0, 0.5]] * 2)).shape == (2, 1)


def test_hypernetwork_modulations_depend_on_the_patch() -> None:
    torch.manual_seed(0)
    disc = Discriminator(TINY)
    p = disc.hypernetwork(torch.tensor([[0.5, 0.1, 0.2], [1.0, 0.0, 0.0]]))
    sigmas = disc.modulations(p)
    assert len(sigmas) == 2 * len(disc.blocks) + 1
    for sigma in sigmas:
        assert sigma.min() > 0 and sigma.max() < 2
        assert not torch.allclose(sigma[0], sigma[1], atol=1e-4)


def test_standard_discriminator_sees_the_patch_only_through_projection() -> None:
    torch.manual_seed(0)
    disc = Discriminator(TINY.override(hyper=False, camera_cond=False))
    disc.eval()
    assert disc.hyper_affines is None
    img = torch.randn(2, 3, 8, 8).repeat(2, 1, 1, 1)  # rows 0, 1 and rows 2, 3 are the same images
    c = labels(2, 3).repeat(2, 1)
    patch = torch.tensor([[0.5, 0.5, 0.0]] * 2 + [[1.0, 0.0, 0.0]] * 2)
    p = disc.hypernetwork(patch)
    features = disc.features(img, p)
    assert torch.allclose(features[:2], features[2:], atol=1e-6)
    logits = disc(img, patch, c)
    projection = (features * disc.patch_embed(p)).sum(1, keepdim=True) / math.sqrt(features.shape[1])
    assert torch.allclose(logits[:2] - logits[2:], projection[:2] - projection[2:], atol=1e-5)
    assert not torch.allclose(logits[:2], logits[2:], atol=1e-4)
    hyper = Discriminator(TINY.override(camera_cond=False))
    hyper.eval()
    p = hyper.hypernetwork(patch)
    features = hyper.features(img, p)
    assert not torch.allclose(features[:2], features[2:], atol=1e-4)


def test_minibatch_stddev_groups_are_consecutive_and_share_patches() -> None:
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, 4)
    assert out.shape == (8, 4, 4, 4)
    changed = x.clone()
    changed[5] += 10.0
    out2 = minibatch_stddev(changed, 4)
    assert torch.equal(out[:4, -1], out2[:4, -1]) and not torch.equal(out[4:, -1], out2[4:, -1])
    with pytest.raises(ValueError):
        minibatch_stddev(torch.randn(6, 3, 4, 4), 4)
    patch = PatchSampler(64, 16).sample(8, kimg=3000.0, group_size=4)
    assert torch.equal(patch[:4], patch[:1].expand(4, 3)) and torch.equal(patch[4:], patch[4:5].expand(4, 3))
    assert not torch.equal(patch[0], patch[4])


def test_presets_and_config_errors() -> None:
    paper = PRESETS["paper"]
    assert (paper.z_dim, paper.w_dim, paper.plane_resolution, paper.plane_channels) == (512, 512, 512, 32)
    assert (paper.patch_resolution, paper.coarse_steps, paper.fine_steps) == (64, 48, 48)
    assert paper.with_dataset(128, 5).resolution == 128 and paper.with_dataset(32, 0).patch_resolution == 32
    assert Generator(preset("tiny")).synthesis.num_ws == 6
    assert density_noise_at(0.0, paper) == 1.0 and density_noise_at(2500.0, paper) == 0.5
    assert density_noise_at(5000.0, paper) == 0.0 and density_noise_at(9000.0, paper) == 0.0
    with pytest.raises(PgrfError, match="unknown model preset"):
        preset("huge")
    with pytest.raises(PgrfError, match="power of two"):
        ModelConfig(resolution=100)
    with pytest.raises(PgrfError, match="unknown field"):
        paper.override(colour=1)
    with pytest.raises(PgrfError, match="patch_schedule"):
        paper.override(patch_schedule="gauss")
