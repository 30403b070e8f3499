"""ADA augmentation: exact known results per op, identity at p = 0, gradients, determinism, adaptive p."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pgrf.train.augment import (
    COLOR_OPS,
    OPS,
    AdaptiveP,
    AugmentParams,
    AugmentPipe,
    _rotate_about_luma,
)


def images(n: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def geometric(matrices: list[list[list[float]]]) -> AugmentParams:
    n = len(matrices)
    return AugmentParams(torch.tensor(matrices, dtype=torch.float64), torch.eye(4, dtype=torch.float64).repeat(n, 1, 1))


@pytest.mark.parametrize("size", [16, 33])
def test_p_zero_is_exactly_the_identity(size: int) -> None:
    x = images(size=size)
    assert torch.equal(AugmentPipe()(x, 0.0, gen()), x)


@pytest.mark.parametrize("size", [8, 17, 64])
def test_any_square_size_keeps_its_shape_and_stays_finite(size: int) -> None:
    y = AugmentPipe()(images(n=6, size=size), 1.0, gen())
    assert y.shape == (6, 3, size, size) and torch.isfinite(y).all()


def test_integer_translation_shifts_pixels_with_reflect_padding() -> None:
    x = images(n=8, size=16)
    params = AugmentPipe(["xint"]).sample(8, 16, 16, 1.0, gen())
    y = AugmentPipe().apply(x, params)
    shifts = -params.geom[:, :2, 2]
    assert (shifts.abs() <= 2).all() and (shifts != 0).any() and torch.equal(shifts, shifts.round())
    pad = F.pad(x, (2, 2, 2, 2), mode="reflect")
    for i, (tx, ty) in enumerate(shifts.long().tolist()):
        expected = pad[i, :, 2 - ty:18 - ty, 2 - tx:18 - tx]  # out(u, v) = in(u - tx, v - ty)
        torch.testing.assert_close(y[i], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [16, 15])
def test_rotate90_matches_torch_rot90(size: int) -> None:
    x = images(n=4, size=size)
    quarter = [[[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, -1, 0], [1, 0, 0], [0, 0, 1]],
               [[-1, 0, 0], [0, -1, 0], [0, 0, 1]], [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]]
    y = AugmentPipe().apply(x, geometric(quarter))
    for k in range(4):
        torch.testing.assert_close(y[k], torch.rot90(x[k], k, dims=(1, 2)), atol=1e-5, rtol=0)
    drawn = AugmentPipe(["rotate90"])(x, 1.0, gen())
    for i in range(4):
        assert min((drawn[i] - torch.rot90(x[i], k, dims=(1, 2))).abs().max() for k in range(4)) < 1e-5


def test_arbitrary_rotation_turns_about_the_centre() -> None:
    n, theta = 48, 0.3
    v, u = torch.meshgrid(torch.arange(n) + 0.5 - n / 2, torch.arange(n) + 0.5 - n / 2, indexing="ij")

    def wave(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.cos(2 * math.pi * (2 * u + v) / n)

    c, s = math.cos(theta), math.sin(theta)
    params = geometric([[[c, -s, 0], [s, c, 0], [0, 0, 1]]])  # output (u, v) samples input R(theta)(u, v)
    y = AugmentPipe().apply(wave(u, v).expand(1, 3, n, n), params)
    expected = wave(c * u - s * v, s * u + c * v)
    assert (y[0, 0, 8:-8, 8:-8] - expected[8:-8, 8:-8]).abs().max() < 0.01


def test_geometric_ops_keep_a_constant_image_constant() -> None:
    y = AugmentPipe(["scale", "rotate", "aniso", "xfrac"])(torch.full((8, 3, 16, 16), 0.25), 1.0, gen())
    torch.testing.assert_close(y, torch.full_like(y, 0.25), atol=1e-5, rtol=0)


def only(op: str, x: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, AugmentParams]:
    params = AugmentPipe([op]).sample(x.shape[0], x.shape[2], x.shape[3], 1.0, gen(seed))
    return AugmentPipe().apply(x, params), params


def luma(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True)


def test_brightness_adds_one_constant_per_image() -> None:
    x = images()
    y, params = only("brightness", x)
    offset = (y - x).flatten(1)
    torch.testing.assert_close(offset, offset[:, :1].expand_as(offset), atol=1e-6, rtol=0)
    torch.testing.assert_close(offset[:, 0], params.color[:, 0, 3].float())
    assert (offset[:, 0] != 0).all()


def test_contrast_scales_about_zero() -> None:
    x = images()
    y, params = only("contrast", x)
    factor = params.color[:, 0, 0].float().view(-1, 1, 1, 1)
    torch.testing.assert_close(y, x * factor)
    assert (factor != 1).all()


def test_luma_flip_negates_grey_keeps_colour_and_is_an_involution() -> None:
    x = images(n=16)
    y, params = only("lumaflip", x)
    flipped = (params.color[:, 0, 0] != 1)
    assert flipped.any() and (~flipped).any()
    torch.testing.assert_close(luma(y)[flipped], -luma(x)[flipped], atol=1e-6, rtol=0)
    torch.testing.assert_close(y - luma(y), x - luma(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(AugmentPipe().apply(y, params), x, atol=1e-6, rtol=0)


def test_hue_rotation_keeps_luma_and_chroma_length() -> None:
    x = images()
    y, _ = only("hue", x)
    assert not torch.allclose(y, x)
    torch.testing.assert_close(luma(y), luma(x), atol=1e-6, rtol=0)
    torch.testing.assert_close((y - luma(y)).norm(dim=1), (x - luma(x)).norm(dim=1), atol=1e-5, rtol=0)


def test_hue_rotation_by_zero_is_exactly_the_identity() -> None:
    x = images()
    assert torch.equal(AugmentPipe(["hue"], hue_max=0.0)(x, 1.0, gen()), x)


def test_hue_rotation_by_a_third_turn_cycles_the_channels() -> None:
    x = images(n=1)
    turn = _rotate_about_luma(torch.tensor([2 * math.pi / 3], dtype=torch.float64))
    y = AugmentPipe().apply(x, AugmentParams(torch.eye(3, dtype=torch.float64)[None], turn))
    torch.testing.assert_close(y, x[:, [2, 0, 1]], atol=1e-6, rtol=0)  # R -> G -> B -> R


def test_saturation_scales_chroma_and_keeps_luma() -> None:
    x = images()
    y, params = only("saturation", x)
    eye, axis = torch.eye(3, dtype=torch.float64), torch.full((3, 3), 1 / 3, dtype=torch.float64)
    s = ((params.color[:, :3, :3] - axis) / (eye - axis))[:, 0, 0].float().view(-1, 1, 1, 1)
    torch.testing.assert_close(luma(y), luma(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(y - luma(y), (x - luma(x)) * s, atol=1e-5, rtol=1e-5)


def test_each_op_is_applied_with_probability_p() -> None:
    for op in OPS:
        params = AugmentPipe([op]).sample(4000, 16, 16, 0.3, gen())
        eye = torch.eye(4 if op in COLOR_OPS else 3, dtype=torch.float64)
        matrices = params.color if op in COLOR_OPS else params.geom
        applied = (matrices != eye).any(dim=2).any(dim=1).double().mean().item()
        expected = 0.3 * (0.75 if op == "rotate90" else 0.5 if op == "lumaflip" else 1.0)
        assert abs(applied - expected) < 0.03, op


def test_gradients_flow_to_the_input_twice() -> None:
    x = images(n=4).requires_grad_(True)
    y = AugmentPipe()(x, 1.0, gen())
    (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()  # R1 through the augmentation needs the double backward
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_same_seed_same_augmentation_for_reals_and_fakes() -> None:
    pipe, reals = AugmentPipe(), images(n=6)
    fakes = reals.clone().requires_grad_(True)
    a, b = pipe(reals, 0.7, gen(5)), pipe(fakes, 0.7, gen(5))
    assert torch.equal(a, b.detach())
    assert not torch.equal(a, pipe(reals, 0.7, gen(6)))
    params = pipe.sample(6, 16, 16, 0.7, gen(5))
    other = images(n=6, seed=3)
    # Shared params: one linear map per sample, so augmenting a sum is the sum of the augmented.
    bias = pipe.apply(torch.zeros_like(reals), params)
    torch.testing.assert_close(pipe.apply(reals + other, params) + bias,
                               pipe.apply(reals, params) + pipe.apply(other, params), atol=1e-5, rtol=0)


def test_untouched_samples_pass_exactly_when_others_are_augmented() -> None:
    x = images(n=32)
    params = AugmentPipe().sample(32, 16, 16, 0.2, gen())
    y = AugmentPipe().apply(x, params)
    untouched = (params.geom == torch.eye(3, dtype=torch.float64)).all(2).all(1) & \
                (params.color == torch.eye(4, dtype=torch.float64)).all(2).all(1)
    assert untouched.any() and (~untouched).any()
    assert torch.equal(y[untouched], x[untouched])


def test_adaptive_p_rises_above_target_and_falls_below() -> None:
    ada = AdaptiveP(target=0.6, interval=64, speed_kimg=500)
    for _ in range(3):
        ada.observe(torch.full((32, 1), 2.0))
        ada.update()
    assert ada.p == pytest.approx(64 / 500_000)  # one full interval of 64 images so far
    ada.observe(torch.tensor([1.0] * 16 + [-1.0] * 16))  # r_t = 0.0 < 0.6
    ada.update()
    assert ada.p == pytest.approx(0.0)
    ada.observe(torch.full((64,), -1.0))
    ada.update()
    assert ada.p == 0.0  # clamped at 0


def test_adaptive_p_state_round_trip_mid_interval() -> None:
    ada = AdaptiveP(interval=100, speed_kimg=1, p=0.5)
    ada.observe(torch.ones(60))
    ada.update()
    restored = AdaptiveP()
    restored.load_state_dict(ada.state_dict())
    for controller in (ada, restored):
        controller.observe(torch.ones(40))
        controller.update()
    assert restored.p == ada.p == pytest.approx(0.6)
    assert restored.state_dict() == ada.state_dict()


def test_adaptive_p_reduces_across_ranks() -> None:
    ada = AdaptiveP(interval=10, speed_kimg=1)
    ada.observe(torch.ones(10))
    ada.update(reduce=lambda stats: stats * 2)
    assert ada.p == pytest.approx(0.02)  # two ranks' images


def test_adaptive_p_interval_counts_the_images_of_every_rank() -> None:
    """The loop's cadence with a global batch of 64 on 2 ranks: p moves every ADA_INTERVAL_STEPS steps by the
    4 × 64 images seen over both ranks, as on one rank (not every 8 steps because one rank saw only 32 a step)."""
    from pgrf.train.loop import ADA_INTERVAL_STEPS

    batch, world = 64, 2
    one_rank = AdaptiveP(target=0.6, interval=ADA_INTERVAL_STEPS * batch, speed_kimg=500)
    two_ranks = AdaptiveP(target=0.6, interval=ADA_INTERVAL_STEPS * batch, speed_kimg=500)
    history = []
    for step in range(1, 2 * ADA_INTERVAL_STEPS + 1):
        one_rank.observe(torch.ones(batch))
        two_ranks.observe(torch.ones(batch // world))  # this rank's half; the other rank saw the same
        if step % ADA_INTERVAL_STEPS == 0:
            one_rank.update()
            two_ranks.update(reduce=lambda stats: stats * world)
            history.append((one_rank.p, two_ranks.p))
    step = ADA_INTERVAL_STEPS * batch / 500_000  # 256 images at 500 kimg per unit of p
    assert history == [(pytest.approx(step), pytest.approx(step)), (pytest.approx(2 * step), pytest.approx(2 * step))]


def test_low_precision_images_are_resampled_in_float32() -> None:
    x = images().bfloat16()
    params = AugmentPipe().sample(4, 16, 16, 1.0, gen())
    y = AugmentPipe().apply(x, params)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, AugmentPipe().apply(x.float(), params).bfloat16())
