"""The evaluation seam of training (pgrf.evaluate.report): the fixed training grid and the FID record."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pgrf import cameras
from pgrf.evaluate import report
from pgrf.evaluate.samples import DEFAULT_PITCH, DEFAULT_YAW, ring_cameras, seed_cameras
from pgrf.evaluate.views import to_uint8
from pgrf.formats.card import DatasetInfo
from pgrf.formats.fid_record import DetectorInfo, FidRecord
from pgrf.formats.schema import to_json
from pgrf.model.generator import Generator, seeded_latents
from pgrf.model.presets import preset

INFO = DatasetInfo(16, 3.5, math.pi / 4, ["a", "b", "c"])


@pytest.fixture(scope="module")
def generator() -> Generator:
    torch.manual_seed(0)
    return Generator(preset("tiny").with_dataset(16, len(INFO.class_names))).eval()


def test_grid_cameras_are_a_ring_of_sixteen_yaws_at_sixty_degrees_from_the_top() -> None:
    c2w, intrinsics = report.grid_cameras(INFO)
    assert report.GRID_SEEDS == tuple(range(16)) and c2w.shape == (16, 4, 4)
    position = c2w[:, :3, 3].double().numpy()
    assert np.allclose(np.linalg.norm(position, axis=1), INFO.radius, atol=1e-5)
    assert np.allclose(position[:, 2], INFO.radius * math.cos(math.pi / 3), atol=1e-5)
    yaw = np.arctan2(position[:, 1], position[:, 0])
    assert np.allclose(np.cos(yaw - np.linspace(-np.pi, np.pi, 16, endpoint=False)), 1.0)
    expected = torch.from_numpy(np.stack([cameras.look_at_origin(y, math.pi / 3, INFO.radius)
                                          for y in np.linspace(-np.pi, np.pi, 16, endpoint=False)])).float()
    assert torch.equal(c2w, expected)
    assert torch.equal(intrinsics, torch.from_numpy(cameras.normalized_intrinsics(INFO.fov)).float().expand(16, 3, 3))


def test_sample_cameras_and_grid_cameras_come_from_one_ring_helper() -> None:
    fixed = seed_cameras([3, 1, 4], INFO)
    ring = ring_cameras(np.full(3, DEFAULT_YAW), DEFAULT_PITCH, INFO)
    assert all(torch.equal(a, b) for a, b in zip(fixed, ring))
    assert all(torch.equal(a, b) for a, b in
               zip(report.grid_cameras(INFO), ring_cameras(np.linspace(-np.pi, np.pi, 16, endpoint=False), math.pi / 3, INFO)))


def test_snapshot_grid_is_the_fixed_grid_of_render_image(generator: Generator, tmp_path: Path) -> None:
    path = report.snapshot_grid(generator, INFO, tmp_path / "samples" / "grid.png")
    assert path == tmp_path / "samples" / "grid.png"
    grid = np.asarray(Image.open(path))
    assert grid.shape == (4 * 16, 4 * 16, 3)
    c2w, intrinsics = report.grid_cameras(INFO)
    for tile in (0, 5, 15):  # tile i: seed i, class i mod 3, the i-th camera of the ring
        c = torch.nn.functional.one_hot(torch.tensor([tile % 3]), 3).float()
        image = generator.render_image(seeded_latents([tile], generator.config.z_dim), c, c2w[tile:tile + 1],
                                       intrinsics[tile:tile + 1], 16)
        expected = to_uint8(image)[0].permute(1, 2, 0).numpy().astype(int)
        row, column = divmod(tile, 4)
        assert np.abs(grid[16 * row:16 * row + 16, 16 * column:16 * column + 16] - expected).max() <= 1
    again = report.snapshot_grid(generator, INFO, tmp_path / "again.png")
    assert again.read_bytes() == path.read_bytes()


def test_snapshot_fid_returns_the_stats_record(generator: Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    computed = FidRecord(fid=12.5, protocol="fid4_custom", detector=DetectorInfo("module", "ab"), num_fake=4, num_real=8,
                         real_mirrored=True, real_stats=None, real_stats_cached=False, seconds=2.0)

    def fake_fid(*args: Any, **kwargs: Any) -> FidRecord:
        calls.append((args, kwargs))
        return computed

    monkeypatch.setattr(report, "compute_fid", fake_fid)
    record = report.snapshot_fid(generator, INFO, "shards", "inception.pth", 4, 1.25, torch.device("cpu"), 7, mirror=True)
    assert record == replace(computed, kimg=1.25)
    assert to_json(record) == {"kimg": 1.25, "fid": 12.5, "protocol": "fid4_custom",  # the stats.jsonl line, kimg first
                               "detector": {"kind": "module", "sha256": "ab"}, "num_fake": 4, "num_real": 8,
                               "real_mirrored": True, "real_stats": None, "real_stats_cached": False, "seconds": 2.0}
    assert list(to_json(record))[:2] == ["kimg", "fid"]
    assert calls == [((generator, INFO, "shards", "inception.pth", 4),
                      {"device": torch.device("cpu"), "seed": 7, "mirror": True})]
