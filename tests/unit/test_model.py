"""The trainer's networks on CPU with the tiny preset: shapes, dtypes, gradients, conditioning."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pgrf import cameras
from pgrf.errors import PgrfError
from pgrf.model.discriminator import Discriminator, half_resolution, minibatch_stddev
from pgrf.model.generator import Generator, density_noise_at, seeded_latents
from pgrf.model.layers import (
    Conv2d,
    ModulatedConv2d,
    fir_filter,
    modulated_conv2d,
    upsample2x,
)
from pgrf.model.mapping import MappingNetwork
from pgrf.model.patches import PatchSampler
from pgrf.model.presets import PRESETS, ModelConfig, preset
from pgrf.model.synthesis import SynthesisNetwork
from pgrf.model.triplane import TriPlaneDecoder, sample_triplanes
from tests.helpers import run_pgrf

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


KERNEL = torch.tensor([[1.0, 2.0, 0.0], [2.0, 5.0, 2.0], [0.0, 2.0, 1.0]])
"""A 3×3 kernel equal to its 180° rotation, so correlation and convolution agree."""


def test_resampling_convolutions_are_stylegan2s() -> None:
    """Expected values: StyleGAN2-ADA's ``conv2d_resample`` (its pure-PyTorch path, filter [1,3,3,1]) on the
    same inputs, computed once by hand. Down: pad once by 2, blur, 3×3 conv with stride 2 (1×1: pad 1,
    blur, subsample). Up: zero insertion, one padding for blur and conv together, so border pixels differ
    from upsampling to 2H first and zero-padding again for the conv (the old operator gave 8.6875 at [0, 0])."""
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    down3 = Conv2d(1, 1, 3, bias=False, down=True)
    down3.weight.data = KERNEL[None, None] * 3.0  # × sqrt(fan-in): the layer's weight gain is 1/3
    expected3 = [[63.1094, 94.4375, 92.0312], [199.1250, 262.5000, 234.0000], [260.7031, 338.6875, 298.3750]]
    assert torch.allclose(down3(x)[0, 0], torch.tensor(expected3), atol=1e-3)
    down1 = Conv2d(1, 1, 1, bias=False, down=True)
    down1.weight.data.fill_(1.0)
    expected1 = [[3.8281, 5.9375, 6.5625], [13.7500, 17.5000, 16.8750], [20.2344, 24.6875, 22.9688]]
    assert torch.allclose(down1(x)[0, 0], torch.tensor(expected1), atol=1e-3)

    up = ModulatedConv2d(1, 1, 2, resolution=4, up=True, act="linear", noise=False)
    up.weight.data = KERNEL[None, None].clone()
    up.affine.weight.data.zero_()  # styles = bias = 1, so demodulation divides by |KERNEL| = √43
    expected_up = torch.tensor([[9.5000, 15.0000, 18.2500, 14.5625], [17.6875, 26.6875, 31.1875, 24.8125],
                                [24.5625, 36.3125, 41.1250, 32.6250], [20.7500, 31.1250, 35.3125, 28.6250]])
    out = up(torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None], torch.randn(1, 2))
    assert torch.allclose(out[0, 0], expected_up / math.sqrt(43.0), atol=1e-4)

    skip = upsample2x(torch.ones(2, 3, 8, 8), fir_filter())  # the skip images' upsampling keeps the size and constants
    assert skip.shape == (2, 3, 16, 16) and torch.allclose(skip[..., 1:-1, 1:-1], torch.ones(1))


def test_up_convolution_is_the_convolution_of_the_upsampled_image() -> None:
    """The up-convolution runs as a transposed convolution then the filter; it must equal its definition
    (zero insertion, [1,3,3,1] filter with gain 4, unpadded 3×3 correlation over the filter's full support)
    for an asymmetric kernel and a different style per sample."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(2, 3, 5, 5), torch.randn(4, 3, 3, 3), torch.randn(2, 3)
    out = modulated_conv2d(x, weight, styles, up=True, f=fir_filter())
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = (torch.outer(f, f) * (4.0 / 64.0)).expand(3, 1, 4, 4)
    upsampled = F.conv_transpose2d(x, fir, stride=2, groups=3)  # (2H + 2)²: no padding cut off
    assert out.shape == (2, 4, 10, 10)
    for b in range(2):
        w = weight * styles[b][None, :, None, None]
        w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()
        assert torch.allclose(out[b], F.conv2d(upsampled[b:b + 1], w)[0], atol=1e-5)


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_plain_and_grouped_modulated_convolutions_agree(up: bool, demodulate: bool) -> None:
    """Training's form (styles on the activations, one plain convolution, demodulation on the outputs) is the
    grouped per-sample kernel's operator: same outputs and gradients to fp32 round-off."""
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 5, 6, 6), torch.randn(7, 5, 3, 3) / 3, torch.randn(3, 5) + 1
    results = []
    for fused in (True, False):
        inputs = [t.clone().requires_grad_(True) for t in (x, weight, styles)]
        out = modulated_conv2d(*inputs, demodulate=demodulate, padding=1, up=up, f=fir_filter(), fused=fused)
        out.mul(torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results.append([out.detach(), *(t.grad for t in inputs)])
    assert results[0][0].shape == ((3, 7, 12, 12) if up else (3, 7, 6, 6))
    for grouped, plain in zip(*results):
        assert torch.allclose(plain, grouped, rtol=1e-5, atol=1e-5 * grouped.abs().max().item())


def test_modulated_conv_layers_run_plain_convolutions_in_training() -> None:
    """As StyleGAN2-ADA (fused_modconv = not training): one convolution with the shared (O, I, k, k) weight in
    training, one grouped convolution with B kernels in eval; ``fused`` overrides; the outputs agree."""
    torch.manual_seed(0)
    layer = ModulatedConv2d(4, 6, 8, resolution=8)
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 8)
    calls: list[tuple[tuple[int, ...], int]] = []

    class Convs(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            kwargs = kwargs or {}
            if func is F.conv2d:
                calls.append((tuple(args[1].shape), kwargs.get("groups", 1)))
            return func(*args, **kwargs)

    outputs = {}
    for mode, fused in (("train", None), ("eval", None), ("train-fused", True)):
        layer.train(mode.startswith("train"))
        calls.clear()
        with Convs():
            outputs[mode] = layer(x, w, "none", fused=fused)
        expected = (6, 4, 3, 3) if mode == "train" else (12, 4, 3, 3)
        assert calls == [(expected, 1 if mode == "train" else 2)]
    assert torch.allclose(outputs["train"], outputs["eval"], atol=1e-5)
    assert torch.equal(outputs["eval"], outputs["train-fused"])


def test_resampling_filters_are_device_buffers_outside_state_dicts() -> None:
    """The [1,3,3,1] filter of every resampling layer is a non-persistent buffer: it moves with the module (a
    forward on the meta device touches no CPU tensor, so no host→device copy) and is not in state dicts, so
    checkpoints of networks without it load strictly."""
    torch.manual_seed(0)
    G, D = Generator(TINY).synthesis, Discriminator(TINY)
    for module in (G, D):
        assert any(name.endswith("resample_filter") for name, _ in module.named_buffers())
        assert not any("resample_filter" in key for key in module.state_dict())
    fresh = Generator(TINY).synthesis.eval()
    fresh.load_state_dict(G.state_dict(), strict=True)
    ws = torch.randn(1, G.num_ws, TINY.w_dim)
    assert torch.equal(fresh(ws, "const"), G.eval()(ws, "const"))
    D.load_state_dict(Discriminator(TINY).state_dict(), strict=True)

    seen: list[str] = []

    class CpuTensors(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            flat = [*args, *(kwargs or {}).values()]
            if any(isinstance(t, torch.Tensor) and t.device.type == "cpu" for t in flat):
                seen.append(getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    G, D = G.to("meta"), D.to("meta")
    ws = torch.zeros(2, G.num_ws, TINY.w_dim, device="meta")
    img, patch = torch.zeros(2, 3, 8, 8, device="meta"), torch.zeros(2, 3, device="meta")
    c, camera = torch.zeros(2, 3, device="meta"), torch.zeros(2, 2, device="meta")
    for training in (True, False):
        G.train(training)
        D.train(training)
        with CpuTensors():
            planes, logits = G(ws, "none"), D(img, patch, c, camera)
        assert planes.device.type == logits.device.type == "meta"
    assert not seen, f"CPU tensors used on the meta device: {sorted(set(seen))}"


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
    samples = sample_triplanes(planes, torch.rand(1, 10, 3) * 2 - 1)
    rgb, density = decoder(samples)
    raw = decoder.net(samples)
    assert rgb.shape == (1, 10, 3) and density.shape == (1, 10) and torch.equal(density, raw[..., 3])
    assert torch.allclose(rgb * 2 - 1, raw[..., :3], atol=1e-6)  # linear colour: the raw output in [-1, 1] units
    (rgb.sum() + density.sum()).backward()
    assert_all_grads(decoder)
    assert planes.grad.abs().sum() > 0
    decoder.rgb = "sigmoid"
    assert torch.allclose(decoder(samples)[0], torch.sigmoid(raw[..., :3]))


def test_generator_patches_shapes_range_and_gradients() -> None:
    torch.manual_seed(0)
    generator = Generator(TINY)
    c2w, k, _ = dataset_cameras(BATCH)
    patch = PatchSampler(TINY.resolution, TINY.patch_resolution).sample(BATCH, kimg=5.0)
    out = generator(torch.randn(BATCH, TINY.z_dim), labels(BATCH, 3), c2w, k, patch, density_noise_std=1.0)
    assert out.shape == (BATCH, 3, TINY.patch_resolution, TINY.patch_resolution) and out.dtype == torch.float32
    out.mean().backward()
    assert_all_grads(generator)
    squashed = Generator(TINY.override(rgb_activation="sigmoid"))
    squashed.load_state_dict(generator.state_dict())
    out = squashed(torch.randn(BATCH, TINY.z_dim), labels(BATCH, 3), c2w, k, patch)
    assert out.min() >= -1.0 and out.max() <= 1.0


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


def test_half_precision_runs_ds_highest_resolution_blocks_clamped_and_the_rest_in_fp32() -> None:
    """``half``: blocks at resolutions ≥ max(R/8, 8) (the reference's num_fp16_res = 4) compute in fp16, the
    others and the head in fp32; the ±256 clamp binds in fp16; logits and parameter gradients are fp32 and
    the logits agree with fp32's to fp16 accuracy."""
    assert [half_resolution(r) for r in (16, 64, 128, 256, 512)] == [8, 8, 16, 32, 64]
    torch.manual_seed(0)
    config = TINY.override(resolution=256, patch_resolution=16)
    D = Discriminator(config)
    assert [b.low_precision for b in D.blocks] == [True] * 4 + [False] * 2  # 256, 128, 64, 32 | 16, 8
    img, patch = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 3)
    c, camera = labels(4, 3), dataset_cameras(4)[2]
    D.eval()
    dtypes: list[tuple[torch.dtype, torch.dtype]] = []
    hooks = [m.register_forward_hook(lambda _m, args, out: dtypes.append((args[0].dtype, out.dtype)))
             for m in [*D.blocks, D.conv]]
    full = D(img, patch, c, camera)
    assert dtypes == [(torch.float32, torch.float32)] * 7
    dtypes.clear()
    half = D(img, patch, c, camera, half=torch.float16)
    assert dtypes == [(torch.float16, torch.float16)] * 4 + [(torch.float32, torch.float32)] * 3
    for hook in hooks:
        hook.remove()
    assert half.dtype == torch.float32 and not torch.equal(half, full)
    assert torch.allclose(half, full, rtol=1e-2, atol=1e-2 * full.abs().max().item())
    half.square().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in D.parameters() if p.grad is not None)
    assert_all_grads(D.blocks[0])

    D.blocks[0].conv0.bias.data.fill_(1000.0)  # lrelu gives 1000·√2, over the clamp
    clamped = []
    D.blocks[0].conv0.register_forward_hook(lambda _m, _args, out: clamped.append(out))
    D(img, patch, c, camera, half=torch.float16)
    assert clamped[0].dtype == torch.float16 and torch.all(clamped[0] == 256.0)


def test_hypernetwork_modulations_depend_on_the_patch() -> None:
    torch.manual_seed(0)
    disc = Discriminator(TINY)
    patch = torch.tensor([[0.5, 0.1, 0.2], [1.0, 0.0, 0.0]])
    encoding = disc.patch_encoder(patch)
    assert encoding.shape == (2, 3 * (2 * 4 + 4))  # tiny: 16 bins → 4 Fourier frequencies, 4-d bin embedding
    sigmas = disc.modulations(encoding)
    assert [sigma.shape[1] for sigma in sigmas] == [block.conv1.weight.shape[1] for block in disc.blocks]
    for sigma in sigmas:
        assert sigma.min() > 0 and sigma.max() < 2
        assert not torch.allclose(sigma[0], sigma[1], atol=1e-4)


def test_patch_encoder_is_fourier_features_and_a_bin_embedding() -> None:
    disc = Discriminator(PRESETS["paper"].override(resolution=64))
    encoder = disc.patch_encoder
    patch = torch.tensor([[0.25, 0.5004, 0.1]])
    out = encoder(patch).reshape(3, 276)  # per parameter: 10 sines, 10 cosines, a 256-d embedding
    frequencies = math.pi * 2.0 ** torch.arange(10) / 1024  # applied to x·1000
    assert torch.allclose(out[1, :10], torch.sin(500.4 * frequencies), atol=1e-4)
    assert torch.allclose(out[1, 10:20], torch.cos(500.4 * frequencies), atol=1e-4)
    assert torch.equal(out[0, 20:], encoder.embedding.weight[250]) and torch.equal(out[1, 20:], encoder.embedding.weight[500])
    assert encoder.embedding.weight.shape == (1001, 256)


def test_sigma_scales_the_input_channels_of_each_blocks_second_conv() -> None:
    """With the affine maps' weights zeroed, σ_ℓ = 1 + tanh(bias_ℓ) is a fixed per-channel vector; the hyper D's
    trunk must then equal the standard D's whose conv1 weights are scaled by σ_ℓ along their input axis
    (and nothing else changed: fromRGB, conv0, skip and the epilogue conv are not modulated)."""
    torch.manual_seed(0)
    hyper = Discriminator(TINY.override(c_dim=0)).eval()
    plain = Discriminator(TINY.override(c_dim=0, hyper=False)).eval()
    for affine in hyper.hyper_affines:
        affine.weight.data.zero_()
        affine.bias.data.normal_()
    plain.load_state_dict({name: value for name, value in hyper.state_dict().items()
                           if not name.startswith(("head.", "patch_encoder.", "hypernetwork.", "hyper_affines."))},
                          strict=False)
    for block, affine in zip(plain.blocks, hyper.hyper_affines):
        block.conv1.weight.data *= 1.0 + torch.tanh(affine.bias.data)[None, :, None, None]
    img, patch = torch.randn(4, 3, 8, 8), PatchSampler(16, 8).sample(4, 5.0, group_size=2)
    modulated = hyper.features(img, hyper.patch_encoder(patch))
    assert torch.allclose(modulated, plain.features(img, None), atol=1e-5)
    assert not torch.allclose(modulated, hyper.features(img, None), atol=1e-3)


def test_standard_discriminator_never_sees_the_patch() -> None:
    """``hyper`` off is the paper's standard D: neither the hypernetwork nor the projection gets (s, δx, δy)."""
    torch.manual_seed(0)
    img, c = torch.randn(4, 3, 8, 8), labels(4, 3)
    patches = [torch.tensor([[0.5, 0.5, 0.0]] * 4), torch.tensor([[1.0, 0.0, 0.0]] * 4), torch.rand(4, 3) * 0.5 + 0.5]
    for config in (TINY.override(camera_cond=False), TINY.override(c_dim=0, camera_cond=False)):
        standard = Discriminator(config.override(hyper=False)).eval()
        logits = [standard(img, patch, c if config.c_dim else None) for patch in patches]
        assert all(torch.equal(logits[0], other) for other in logits[1:])
        assert standard.patch_encoder is None and standard.hypernetwork is None and standard.hyper_affines is None
        hyper = Discriminator(config).eval()
        logits = [hyper(img, patch, c if config.c_dim else None) for patch in patches]
        assert all((logits[0] - other).abs().max() > 1e-3 for other in logits[1:])
    unconditional = Discriminator(TINY.override(c_dim=0, camera_cond=False, hyper=False))
    assert unconditional.head is None and unconditional.out.weight.shape[0] == 1


def test_camera_conditioning_uses_the_angles_with_dropout_in_training() -> None:
    torch.manual_seed(0)
    disc = Discriminator(TINY.override(c_dim=0, hyper=False)).eval()
    img, patch = torch.randn(2, 3, 8, 8), torch.tensor([[1.0, 0.0, 0.0]] * 2)
    angles = torch.tensor([[0.3, 1.0], [0.3, 1.0]])
    assert not torch.allclose(disc(img, patch, None, angles), disc(img, patch, None, angles + 1.0), atol=1e-4)
    disc.train()
    assert not torch.equal(disc(img, patch, None, angles), disc(img, patch, None, angles))
    with pytest.raises(ValueError, match="camera"):
        disc(img, patch)


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
    with pytest.raises(PgrfError, match="rgb_activation"):
        paper.override(rgb_activation="tanh")
    with pytest.raises(PgrfError, match="patch_bins"):
        paper.override(patch_bins=1)


def test_checkpoints_of_older_networks_are_refused_in_one_line(tmp_path) -> None:
    from pgrf.formats.checkpoint import OLDEST_FORMAT
    from pgrf.model.checkpoint import load_checkpoint

    path = tmp_path / "old.pt"
    torch.save({"format": OLDEST_FORMAT - 1, "G_ema": {}}, path)
    with pytest.raises(PgrfError, match=r"old\.pt: written by an older pgrf \(checkpoint format 1, this one reads 2 to 3\).*retrain"):
        load_checkpoint(path)
    torch.save({"format": 4, "G_ema": {}}, path)
    with pytest.raises(PgrfError, match=r"old\.pt: not a pgrf checkpoint of format 2 to 3"):
        load_checkpoint(path)


def test_checkpoint_metadata_round_trips_and_bad_metadata_is_one_line(tmp_path) -> None:
    from pgrf.formats.card import DatasetInfo
    from pgrf.formats.checkpoint import CheckpointMeta, Counters, join_checkpoint
    from pgrf.formats.schema import to_json
    from pgrf.model.checkpoint import load_checkpoint

    dataset = DatasetInfo(16, 3.5, 0.8, ["a", "b"], background="black")
    meta = CheckpointMeta(options={"batch": 4, "name": None}, model=asdict(preset("tiny")), dataset=dataset, world_size=2,
                          pgrf_version="9.9", progress=Counters(images=8, step=2, last_tick=8))
    document = join_checkpoint(meta, {"G_ema": {}})
    assert list(document) == ["format", "meta", "G_ema"] and document["format"] == 3
    assert document["meta"]["progress"] == {"images": 8, "step": 2, "last_tick": 8, "last_snapshot": 0, "last_sample": 0,
                                            "last_fid": 0}
    assert meta.run_config() == {"options": {"batch": 4, "name": None}, "model": asdict(preset("tiny")),
                                 "dataset": to_json(dataset), "world_size": 2, "pgrf_version": "9.9"}
    path = tmp_path / "c.pt"
    torch.save(document, path)
    loaded = load_checkpoint(path)
    assert loaded.meta == meta and loaded.state == {"G_ema": {}} and loaded.model_config == preset("tiny")
    for change, message in (({"world_size": 0}, "field 'world_size' must be at least 1"),
                            ({"dataset": {"radius": 3.5}}, "field 'dataset.resolution' is missing"),
                            ({"progress": {"step": "2"}}, "field 'progress.step' must be int")):
        torch.save({**document, "meta": {**document["meta"], **change}}, path)
        with pytest.raises(PgrfError, match=r"c\.pt: .*" + message) as error:
            load_checkpoint(path)
        assert "\n" not in str(error.value)
    torch.save({**document, "meta": {**document["meta"], "model": {**asdict(preset("tiny")), "colour": 1}}}, path)
    with pytest.raises(PgrfError, match=r"c\.pt: model config: unknown field\(s\) colour"):
        _ = load_checkpoint(path).model_config


class _RunsCode:
    """Pickles as a call of ``os.system``: unpickling it runs a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (self.command,)


def test_a_checkpoint_whose_pickle_runs_code_is_refused_without_running_it(tmp_path) -> None:
    from pgrf.model.checkpoint import load_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "shared.pt"
    torch.save({"format": 3, "meta": {}, "G_ema": _RunsCode(f"touch '{marker}'")}, path)
    with pytest.raises(PgrfError, match=r"shared\.pt: holds objects other than tensors.*pgrf train") as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value) and not marker.exists()
    result = run_pgrf("sample", str(path), "--out", str(tmp_path / "grid.png"))
    assert result.returncode == 2 and "shared.pt: holds objects other than tensors" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and not marker.exists()
