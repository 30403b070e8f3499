"""Inference and evaluation: deterministic samples and turntables, depth/alpha, videos, G's mesh, FID on shards, CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch import nn

from pgrf import cli
from pgrf.config import load_config
from pgrf.data.source import ShardSource
from pgrf.errors import PgrfError
from pgrf.evaluate import metrics
from pgrf.evaluate.geometry import field_functions, generator_mesh
from pgrf.evaluate.inception import INCEPTION_ENV, FIDInceptionV3, describe
from pgrf.evaluate.mesh import save_mesh
from pgrf.evaluate.metrics import (
    MISSING_WEIGHTS,
    compute_fid,
    inception_network,
    real_statistics,
)
from pgrf.evaluate.samples import render_samples, seed_cameras
from pgrf.evaluate.video import turntable, turntable_angles, write_videos
from pgrf.evaluate.views import (
    class_labels,
    depth_image,
    image_grid,
    parse_seeds,
    render_views,
    seed_classes,
    seed_planes,
    to_uint8,
)
from pgrf.formats.card import DatasetInfo
from pgrf.formats.checkpoint import CheckpointMeta, Counters
from pgrf.formats.fid_record import FidRecord
from pgrf.formats.schema import to_json
from pgrf.model.checkpoint import load_generator
from pgrf.model.generator import Generator, seeded_latents
from pgrf.model.poses import camera_tensors
from pgrf.model.presets import preset
from pgrf.model.volume import render_rays
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.train.checkpoint import save_checkpoint
from tests.helpers import CONFIG, read_ply, run_pgrf

CLASSES = ["a", "b"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny G (16², two classes) saved as pgrf train saves checkpoints."""
    torch.manual_seed(0)
    config = preset("tiny").with_dataset(16, len(CLASSES))
    generator = Generator(config)
    generator.mapping.w_avg.normal_()  # so truncation has somewhere to go
    path = tmp_path_factory.mktemp("run") / "checkpoints" / "latest.pt"
    meta = CheckpointMeta(options={"mirror": False}, model=dataclasses.asdict(config),
                          dataset=DatasetInfo(16, 3.5, math.pi / 4, CLASSES, mirror=True, shards="shards"), world_size=1,
                          pgrf_version="test", progress=Counters())
    save_checkpoint(path, meta, {"G_ema": generator.state_dict()})
    return path


@pytest.fixture(scope="module")
def loaded(checkpoint: Path) -> tuple[Generator, DatasetInfo]:
    return load_generator(checkpoint)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("renders")
    renders = [fake_renders(root, "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=2)]
    out = tmp_path_factory.mktemp("shards")
    pack(renders, out, load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5))
    return out


class _SmallFeatures(nn.Module):
    """A fast stand-in for the FID Inception (4-d features), so the tests need no 2048² matrix square roots."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(images.float() / 127.5 - 1)).mean(dim=(2, 3))


def test_seeds_parse_as_ranges_and_lists() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,7") == [1, 5, 7]
    assert parse_seeds("0-1, 9") == [0, 1, 9]
    for bad in ("3-1", "a", "", "1-2-3", "-1"):
        with pytest.raises(PgrfError, match="bad seeds"):
            parse_seeds(bad)


def test_same_seed_gives_the_same_image_as_render_image(loaded: tuple[Generator, DatasetInfo]) -> None:
    generator, info = loaded
    seeds = [0, 1, 2]
    first = render_samples(generator, info, seeds, 16, batch=2)
    again = render_samples(generator, info, seeds, 16, batch=3, chunk=37)  # batching and chunking do not matter
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], first[1])
    c = class_labels(2, seed_classes(seeds, 2))
    c2w, intrinsics = seed_cameras(seeds, info)
    reference = generator.render_image(seeded_latents(seeds, generator.config.z_dim), c, c2w, intrinsics, 16)
    np.testing.assert_array_equal(first, to_uint8(reference).permute(0, 2, 3, 1).numpy())
    random_poses = render_samples(generator, info, seeds, 16, random_poses=True)
    np.testing.assert_array_equal(random_poses, render_samples(generator, info, seeds, 16, random_poses=True))
    assert not np.array_equal(random_poses, first)


def test_full_truncation_gives_the_average_sample(loaded: tuple[Generator, DatasetInfo]) -> None:
    generator, info = loaded
    images = render_samples(generator, info, [3, 4, 5], 16, psi=0.0, class_id=1)
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])
    assert not np.array_equal(images[0], render_samples(generator, info, [3], 16, class_id=1)[0])


def test_turntable_frames_are_stable_and_the_turn_closes(loaded: tuple[Generator, DatasetInfo]) -> None:
    generator, info = loaded
    frames = 8
    rendered = list(turntable(generator, info, [0, 1], 16, frames, indices=[0, 3, 3, frames]))
    assert rendered[0]["rgb"].shape == (16, 33, 3)
    np.testing.assert_array_equal(rendered[1]["rgb"], rendered[2]["rgb"])  # the same pose twice
    np.testing.assert_array_equal(rendered[0]["rgb"], rendered[3]["rgb"])  # frame N is frame 0
    assert not np.array_equal(rendered[0]["rgb"], rendered[1]["rgb"])
    yaw, pitch = turntable_angles(range(frames + 1), frames, spiral=True)
    assert yaw[0] == yaw[-1] and pitch[0] == pitch[-1] and np.ptp(pitch) > 0.5
    np.testing.assert_allclose(np.diff(yaw[:-1]), 2 * math.pi / frames)
    planes = seed_planes(generator, [0], seed_classes([0], 2), 1.0, "cpu")  # a full turn of the camera itself
    start, turned = (camera_tensors(np.array([y]), np.array([pitch[0]]), info.radius, info.fov) for y in (yaw[0], yaw[0] + 2 * math.pi))
    torch.testing.assert_close(render_views(generator, planes, *turned, 16).rgb,
                               render_views(generator, planes, *start, 16).rgb, atol=1e-4, rtol=0)


class _SphereGenerator:
    """Stands in for G: a dense sphere of radius 0.5 at the origin, rendered by the real volume renderer."""

    def render(self, planes: torch.Tensor, rays, jitter: bool):
        def field(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            raw = torch.where(points.norm(dim=-1) < 0.5, 50.0, -50.0)
            return torch.full((*points.shape[:-1], 3), 0.25), raw

        return render_rays(field, rays, 64, 64, jitter=jitter)


def test_depth_and_alpha_of_a_sphere() -> None:
    c2w, intrinsics = camera_tensors(np.array([0.3]), np.array([1.2]), 3.5, math.pi / 4)
    views = render_views(_SphereGenerator(), torch.zeros(1, 1), c2w, intrinsics, 9)  # type: ignore[arg-type]
    centre, corner = (0, 0, 4, 4), (0, 0, 0, 0)
    assert views.alpha[centre] > 0.99 and views.alpha[corner] < 1e-6
    assert abs(views.depth[centre] - 3.0) < 2 * math.sqrt(3) / 64  # within a coarse sample spacing
    assert views.depth[corner] == pytest.approx(3.5 + math.sqrt(3))
    assert views.rgb[(0, 0, 4, 4)] == pytest.approx(2 * 0.25 - 1, abs=0.02)
    shown = depth_image(views, 3.5)
    assert shown[corner] == -1 and shown[centre] > 0


def test_videos_gif_mp4_and_png_frames(tmp_path: Path) -> None:
    frames = [{"rgb": np.full((7, 9, 3), 30 * i, np.uint8), "alpha": np.full((7, 9, 3), 255 - 30 * i, np.uint8)}
              for i in range(5)]
    written = write_videos(tmp_path / "spin.gif", iter(frames), fps=10)
    assert [p.name for p in written] == ["spin.gif", "spin_alpha.gif"]
    with Image.open(written[0]) as gif:
        assert gif.n_frames == 5 and gif.size == (9, 7) and gif.info["duration"] == 100
    folder = write_videos(tmp_path / "frames", iter(frames[:2]))[0]
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.png", "frame_00001.png"]
    assert np.array_equal(np.asarray(Image.open(folder / "frame_00001.png")), frames[1]["rgb"])
    mp4 = write_videos(tmp_path / "spin.mp4", iter(frames), fps=10)[0]
    decoded = list(_mp4_frames(mp4))
    assert len(decoded) == 5 and decoded[0].shape == (8, 10, 3)  # padded to even sizes for H.264
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "frames_alpha", "spin.gif", "spin.mp4",
                                                           "spin_alpha.gif", "spin_alpha.mp4"]


def _mp4_frames(path: Path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def test_grid_layout() -> None:
    tiles = np.stack([np.full((2, 3, 3), i, np.uint8) for i in range(5)])
    grid = image_grid(tiles, padding=1, fill=200)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 3)
    assert grid[0, 4, 0] == 1 and grid[3, 0, 0] == 3 and grid[2, 0, 0] == 200 and grid[3, 10, 0] == 200


def test_generator_mesh_reads_back_with_decoder_colours(loaded: tuple[Generator, DatasetInfo], tmp_path: Path) -> None:
    generator, _ = loaded
    planes = seed_planes(generator, [7], seed_classes([7], 2), 1.0, "cpu")
    density, colour = field_functions(generator, planes)
    assert density(torch.tensor([[1.5, 0.0, 0.0]])).item() == 0  # nothing outside the asset box
    threshold = float(density(torch.rand(2000, 3) * 2 - 1).median())
    mesh = generator_mesh(generator, 7, resolution=20, threshold=threshold)
    assert len(mesh.faces) > 0 and mesh.colors is not None and np.abs(mesh.vertices).max() <= 1 + 2 / 19
    back = read_ply(save_mesh(mesh, tmp_path / "g.ply"))
    np.testing.assert_array_equal(back.faces, mesh.faces)
    expected = np.round(colour(torch.from_numpy(np.ascontiguousarray(back.vertices))).clamp(0, 1).numpy() * 255)
    np.testing.assert_array_equal(back.colors, expected.astype(np.uint8))
    again = generator_mesh(generator, 7, resolution=20, threshold=threshold)
    np.testing.assert_array_equal(again.vertices, mesh.vertices)


def test_fid_is_finite_and_caches_real_statistics(loaded: tuple[Generator, DatasetInfo], shards: Path) -> None:
    generator, info = loaded
    first = compute_fid(generator, info, shards, _SmallFeatures(), num=5, batch=2, with_kid=True)
    assert math.isfinite(first.fid) and first.fid > 0
    assert first.kid is not None and first.kid_std is not None and math.isfinite(first.kid) and first.kid_std >= 0
    assert first.num_fake == 5 and first.num_real == 8 and not first.real_stats_cached and first.kimg is None
    assert first.protocol == "fid5_custom" and first.detector == describe(_SmallFeatures()) and not first.real_mirrored
    assert first.real_stats is not None and Path(first.real_stats).parent == shards and Path(first.real_stats).is_file()
    again = compute_fid(generator, info, shards, _SmallFeatures(), num=5, batch=3)
    assert again.real_stats_cached and again.real_stats == first.real_stats and again.kid is None
    assert list(to_json(again)) == ["fid", "protocol", "detector", "num_fake", "num_real", "real_mirrored", "real_stats",
                                    "real_stats_cached", "seconds"]  # kimg and KID left out, as before the contract
    assert FidRecord.parse(to_json(first), "x") == first
    assert again.fid == pytest.approx(first.fid, rel=1e-5)  # the same generated images, batched differently
    other = compute_fid(generator, info, shards, _SmallFeatures(), num=5, seed=1)
    assert other.real_stats_cached and other.fid != pytest.approx(first.fid, rel=1e-5)
    different = _SmallFeatures()
    different.conv.bias.data += 1  # other feature weights never reuse the cached statistics
    assert not compute_fid(generator, info, shards, different, num=2).real_stats_cached


class _LeftRight(nn.Module):
    """Features that change sign under a horizontal flip: each channel's brightness weighted by x ∈ [-1, 1]."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.linspace(-1.0, 1.0, images.shape[-1])
        return (images.float().mean(dim=2) * x).mean(dim=2)


def test_fid_real_statistics_with_mirror_include_the_mirrored_copies(tmp_path: Path) -> None:
    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=2)]
    pack(renders, tmp_path / "plain", load_config(CONFIG), PackOptions(resolution=16, mirror=False))
    pack(renders, tmp_path / "packed", load_config(CONFIG), PackOptions(resolution=16, mirror=True))
    plain, plain_file, _ = real_statistics(tmp_path / "plain", _LeftRight(), "cpu")
    flipped, flipped_file, cached = real_statistics(tmp_path / "plain", _LeftRight(), "cpu", mirror=True)
    packed, _, _ = real_statistics(tmp_path / "packed", _LeftRight(), "cpu")
    assert plain.count == 4 and flipped.count == packed.count == 8 and not cached
    np.testing.assert_allclose(flipped.mean, packed.mean, rtol=1e-6)  # as if packed with --mirror
    np.testing.assert_allclose(flipped.cov, packed.cov, rtol=1e-6, atol=1e-12)
    assert np.abs(plain.mean).min() > 1 and np.abs(flipped.mean).max() < 1e-4  # the objects sit left; mirrored, they cancel
    assert flipped_file != plain_file and flipped_file.is_file() and plain_file.is_file()  # separate cache entries
    again, again_file, cached = real_statistics(tmp_path / "plain", _LeftRight(), "cpu", mirror=True)
    assert cached and again_file == flipped_file and again.count == 8


def test_fid_cache_key_follows_the_shard_hashes(shards: Path) -> None:
    key, folder = ShardSource.open(shards).identity
    assert folder == shards and all(s["sha256"] in key for s in json.loads((shards / "dataset.json").read_text())["shards"])
    tars = sorted(shards.glob("*.tar"))
    loose_key, loose_folder = ShardSource.open(str(tars[0])).identity
    assert loose_folder == shards and tars[0].name in loose_key


def test_fakes_take_the_class_frequencies_of_the_index(shards: Path, tmp_path: Path) -> None:
    folder = tmp_path / "skewed"
    folder.mkdir()
    (folder / "dataset.json").write_bytes((shards / "dataset.json").read_bytes())
    for tar in shards.glob("*.tar"):
        (folder / tar.name).symlink_to(tar)
    pq.write_table(pa.table({"class": [0, 0, 0, 1, -1, 5]}), folder / "index.parquet")
    source = ShardSource.open(folder)
    assert source.class_counts == [3, 1, 0, 0, 0, 1]
    np.testing.assert_allclose(metrics.class_probabilities(source, 2), [0.75, 0.25])
    np.testing.assert_allclose(metrics.class_probabilities(source, 3), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(metrics.class_probabilities(source, 8), np.array([3, 1, 0, 0, 0, 1, 0, 0]) / 5)
    assert metrics.class_probabilities(source, 0) is None
    loose = ShardSource.open(sorted(str(p) for p in shards.glob("*.tar")))
    np.testing.assert_allclose(metrics.class_probabilities(loose, 4), np.full(4, 0.25))  # no index: uniform


def test_fid_loads_the_inception_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(FIDInceptionV3().state_dict(), tmp_path / "pt_inception.pth")
    assert isinstance(inception_network(tmp_path / "pt_inception.pth", "cpu"), FIDInceptionV3)


def test_fid_without_weights_is_one_line_error(loaded: tuple[Generator, DatasetInfo], shards: Path,
                                               checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(INCEPTION_ENV, raising=False)
    with pytest.raises(PgrfError) as error:
        compute_fid(*loaded, shards, None, num=2)
    assert str(error.value) == MISSING_WEIGHTS
    monkeypatch.setattr(sys, "argv", ["pgrf", "fid", str(checkpoint), "--shards", str(shards)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {MISSING_WEIGHTS}"
    missing = shards / "pt_inception.pth"
    monkeypatch.setattr(sys, "argv", ["pgrf", "fid", str(checkpoint), "--shards", str(shards), "--inception", str(missing)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    error_line = capsys.readouterr().err
    assert exit_.value.code == 2 and error_line.count("\n") == 1
    assert error_line.startswith("error: Inception weights not found") and str(missing) in error_line


def test_cli_fid_in_process(checkpoint: Path, shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """The whole command in this process, with the small feature network in place of the Inception
    (a real 2048-d FID needs matrix square roots that take a minute on a small CPU)."""
    monkeypatch.setattr(metrics, "inception_network", lambda inception, device: _SmallFeatures())
    monkeypatch.setattr(sys, "argv", ["pgrf", "fid", str(checkpoint), "--shards", str(shards), "--num", "3", "--kid",
                                      "--json", str(tmp_path / "fid.json"), "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code in (0, None)
    assert capsys.readouterr().out.startswith("FID ")
    saved = json.loads((tmp_path / "fid.json").read_text())
    assert list(saved)[:5] == ["checkpoint", "shards", "psi", "seed", "fid"] and saved["checkpoint"] == str(checkpoint)
    record = FidRecord.parse(saved, "fid.json")
    assert math.isfinite(record.fid) and record.kid is not None and math.isfinite(record.kid) and record.num_fake == 3
    assert record.num_real == 8 and not record.real_mirrored  # the run did not train with --mirror
    monkeypatch.setattr(sys, "argv", ["pgrf", "fid", str(checkpoint), "--shards", str(shards), "--num", "2", "--mirror",
                                      "--json", str(tmp_path / "mirrored.json"), "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code in (0, None) and "(mirrored copies added)" in capsys.readouterr().out
    assert json.loads((tmp_path / "mirrored.json").read_text())["num_real"] == 16


def test_cli_sample(checkpoint: Path, tmp_path: Path) -> None:
    result = run_pgrf("sample", str(checkpoint.parent), "--out", str(tmp_path / "grid.png"), "--seeds", "0-4",
                      "--truncation", "0.7", "--class", "b", "--resolution", "12", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "grid.png").size == (3 * 12 + 2, 2 * 12 + 1)


def test_cli_video(checkpoint: Path, tmp_path: Path) -> None:
    result = run_pgrf("video", str(checkpoint), "--out", str(tmp_path / "turn.gif"), "--seeds", "1,2", "--frames", "3",
                      "--spiral", "--depth", "--alpha", "--pitch", "60", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("turn.gif", "turn_depth.gif", "turn_alpha.gif"):
        with Image.open(tmp_path / name) as gif:
            assert gif.size == (33, 16) and gif.n_frames >= 1


def test_cli_mesh(checkpoint: Path, loaded: tuple[Generator, DatasetInfo], tmp_path: Path) -> None:
    generator, _ = loaded
    density, _ = field_functions(generator, seed_planes(generator, [2], seed_classes([2], 2), 1.0, "cpu"))
    threshold = float(density(torch.rand(2000, 3) * 2 - 1).median())
    result = run_pgrf("mesh", str(checkpoint), "--seed", "2", "--out", str(tmp_path / "m.obj"), "--resolution", "16",
                      "--threshold", str(threshold), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "m.obj").read_text().splitlines()
    assert any(line.startswith("f ") for line in lines) and len(lines[1].split()) == 7  # v x y z r g b
