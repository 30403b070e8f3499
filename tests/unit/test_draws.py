"""A training step's random numbers: drawn for the whole batch from (step seed, call), sliced per round."""

from __future__ import annotations

import math

import torch

from pgrf.model.draws import Draws, step_seed
from pgrf.model.patches import PatchSampler
from pgrf.model.poses import camera_tensors, draw_poses
from pgrf.train.augment import AugmentPipe


def test_a_rounds_draws_are_the_rows_of_the_whole_batchs() -> None:
    whole = Draws(11, 8, "cpu")
    expected = [whole.rand(3), whole.randn(2, 2), whole.rand(dtype=torch.float64)]
    for start in (0, 4):
        part = Draws(11, 8, "cpu").rows(start, start + 4)
        got = [part.rand(3), part.randn(2, 2), part.rand(dtype=torch.float64)]
        for mine, theirs in zip(got, expected):
            assert torch.equal(mine, theirs[start:start + 4])
    assert part.count == 4 and expected[2].dtype == torch.float64
    assert not torch.equal(expected[0], Draws(12, 8, "cpu").rand(3))  # another seed, other numbers
    first, second = Draws(11, 8, "cpu"), Draws(11, 8, "cpu")
    second.rand(3)
    assert not torch.equal(first.rand(3), second.rand(3))  # the k-th call has its own numbers


def test_step_seeds_differ_by_rank_step_and_stream_and_repeat() -> None:
    seeds = {step_seed(0, rank, step, stream) for rank in (0, 1) for step in (0, 1) for stream in ("G", "D")}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)
    assert step_seed(3, 1, 7, "G") == step_seed(3, 1, 7, "G")


def test_patches_and_augmentation_drawn_in_rounds_match_the_whole_batch() -> None:
    sampler = PatchSampler(64, 16)
    whole = sampler.sample(8, 500.0, group_size=4, generator=Draws(5, 8, "cpu"))
    assert torch.equal(whole[:4], whole[:1].expand(4, 3)) and not torch.equal(whole[0], whole[4])
    assert (whole[:, 0] >= 0.25).all() and (whole[:, 1:] <= 1 - whole[:, :1] + 1e-7).all()
    pipe, images = AugmentPipe(), torch.rand(8, 3, 16, 16) * 2 - 1
    one_pass = pipe(images, torch.tensor(0.7, dtype=torch.float64), Draws(9, 8, "cpu"))
    rounds = torch.cat([pipe(images[i:i + 4], torch.tensor(0.7, dtype=torch.float64), Draws(9, 8, "cpu").rows(i, i + 4))
                        for i in (0, 4)])
    assert torch.equal(one_pass, rounds) and not torch.equal(one_pass, images)


def test_device_poses_follow_the_dataset_camera_convention() -> None:
    c2w, intrinsics, angles = draw_poses(Draws(2, 64, "cpu"), 3.5, math.pi / 4)
    ref_c2w, ref_intrinsics = camera_tensors(angles[:, 0].double().numpy(), angles[:, 1].double().numpy(), 3.5, math.pi / 4)
    torch.testing.assert_close(c2w, ref_c2w, atol=2e-6, rtol=0)
    assert torch.equal(intrinsics, ref_intrinsics)
    assert (angles[:, 0].abs() <= math.pi).all() and ((angles[:, 1] > 0) & (angles[:, 1] < math.pi)).all()
    assert torch.allclose(c2w[:, :3, 3].norm(dim=1), torch.tensor(3.5))
