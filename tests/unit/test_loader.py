"""The shard loader: exactly-once and training modes, on-the-fly mirroring, corrupt members, inputs."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pgrf.config import load_config
from pgrf.data.loader import UNREADABLE_LIMIT, exact_loader, train_loader
from pgrf.data.source import ShardSource
from pgrf.errors import PgrfError
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.runtime import Context
from tests.helpers import CONFIG, REPO, bomb_png


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("renders")
    return [fake_renders(root, "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=5),
            fake_renders(root, "food", {"apple": 0.7, "pear": 0.4}, views=4)]


@pytest.fixture(scope="module")
def shards(renders: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    pack(renders, out, load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5))
    return out


def _keys(batches) -> list[str]:
    return [key for batch in batches for key in batch["key"]]


def test_exactly_once_covers_every_key_once_over_two_ranks_and_two_workers(shards: Path) -> None:
    expected = sorted(pq.read_table(shards / "index.parquet").column("key").to_pylist())
    per_rank = [_keys(exact_loader(shards, 4, context=Context(rank, 2), workers=2)) for rank in range(2)]
    assert all(per_rank) and sorted(per_rank[0] + per_rank[1]) == expected and len(expected) == 36


def test_batches_hold_images_labels_and_cameras(shards: Path) -> None:
    batch = next(iter(exact_loader(shards, 4)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.uint8
    assert batch["c2w"].shape == (4, 4, 4) and batch["intrinsics"].shape == (4, 3, 3) and batch["label"].dtype == torch.int64
    assert torch.allclose(batch["intrinsics"][:, 2], torch.tensor([0.0, 0.0, 1.0]))
    positions = batch["c2w"][:, :3, 3]
    assert torch.allclose(positions.norm(dim=1), torch.full((4,), 3.5))  # the dataset's radius


def test_training_mode_gives_every_rank_the_same_number_of_full_batches(shards: Path) -> None:
    counts = []
    for rank in range(2):  # 8 shards of 5 and one of 4 samples: the ranks' shares differ, batch counts must not
        batches = list(itertools.islice(train_loader(shards, 3, 7, context=Context(rank, 2), workers=2, seed=1), 14))
        counts.append(len(batches))
        assert all(len(b["key"]) == 3 for b in batches)
    assert counts == [14, 14]


def test_training_stream_is_seeded_and_resumes_where_it_stopped(shards: Path) -> None:
    straight = _keys(itertools.islice(train_loader(shards, 2, 6, workers=2, seed=3, mirror=True), 9))
    again = _keys(itertools.islice(train_loader(shards, 2, 6, workers=2, seed=3, mirror=True), 9))
    resumed = _keys(itertools.islice(train_loader(shards, 2, 6, workers=2, seed=3, mirror=True, start_batch=5), 4))
    other = _keys(itertools.islice(train_loader(shards, 2, 6, workers=2, seed=4, mirror=True), 9))
    assert straight == again and resumed == straight[10:] and other != straight
    assert len(set(straight)) > 9  # shuffled across shards, not a fixed cycle


def test_training_workers_start_once_and_serve_every_epoch(shards: Path) -> None:
    before = {child.pid for child in multiprocessing.active_children()}
    pids: set[int] = set()
    keys = []
    for batch in itertools.islice(train_loader(shards, 2, 3, workers=2, seed=3), 12):  # four epochs
        keys.extend(batch["key"])
        pids.update(child.pid for child in multiprocessing.active_children())
    assert len(pids - before) == 2  # the loader's two workers, started once
    later = _keys(itertools.islice(train_loader(shards, 2, 3, workers=2, seed=3, start_batch=6), 6))
    assert keys[12:] == later != keys[:12]  # the third and fourth epochs, as a loader started there streams them


def test_training_batches_are_pinned_for_cuda_only(shards: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict] = []

    def spy(*args, **kwargs) -> DataLoader:
        made.append(kwargs)
        return DataLoader(*args, **{**kwargs, "pin_memory": False})  # no CUDA here: record what was asked

    monkeypatch.setattr("pgrf.data.loader.DataLoader", spy)
    for device in ("cpu", "cuda"):
        next(train_loader(shards, 2, 3, context=Context(device=torch.device(device))))
    assert [kwargs["pin_memory"] for kwargs in made] == [False, True]


def test_on_the_fly_mirroring_equals_packed_mirroring(renders: list[Path], tmp_path: Path) -> None:
    config = load_config(CONFIG)
    pack(renders, tmp_path / "plain", config, PackOptions(resolution=16, samples_per_shard=100, mirror=False))
    pack(renders, tmp_path / "mirrored", config, PackOptions(resolution=16, samples_per_shard=100))
    flipped = {k: v for b in exact_loader(tmp_path / "plain", 50, mirror=True) for k, v in _by_key(b).items()}
    packed = {k: v for b in exact_loader(tmp_path / "mirrored", 50) for k, v in _by_key(b).items()}
    assert sorted(flipped) == sorted(packed) and any(k.endswith("_m") for k in packed)
    for key, (image, c2w, yaw, pitch, mirrored) in packed.items():
        other = flipped[key]
        assert torch.equal(image, other[0]) and mirrored == other[4]
        assert torch.allclose(c2w, other[1], atol=1e-6) and yaw == pytest.approx(other[2], abs=1e-6) and pitch == other[3]


def _by_key(batch: dict) -> dict:
    return {k: (batch["image"][i], batch["c2w"][i], float(batch["yaw"][i]), float(batch["pitch"][i]), bool(batch["mirrored"][i]))
            for i, k in enumerate(batch["key"])}


def test_corrupt_members_are_skipped_and_counted(shards: Path, tmp_path: Path) -> None:
    first, second = sorted(shards.glob("*.tar"))[:2]
    with tarfile.open(first) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for name, data in members:
            data = data[:20] if name == members[0][0] else data  # the first sample's PNG is cut short
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.warns(UserWarning, match=f"skipping corrupt sample {members[0][0].split('.')[0]}"):
        batches = list(exact_loader(bad, 2))
    assert len(_keys(batches)) == 4 and sum(b["skipped"] for b in batches) == 1
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(second.read_bytes()[:5000])
    with pytest.warns(UserWarning, match="skipping"):
        batches = list(exact_loader([truncated, bad], 2))
    assert 4 <= len(_keys(batches)) < 9 and sum(b["skipped"] for b in batches) >= 2


def _rewrite(source: Path, target: Path, cut: set[str]) -> None:
    """Copy a tar with the PNGs of the keys in ``cut`` cut short (every key's PNG when ``cut`` is empty)."""
    with tarfile.open(source) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(target, "w") as tar:
        for name, data in members:
            key, extension = name.split(".", 1)
            data = data[:20] if extension == "png" and (not cut or key in cut) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _pull(stream, batches: int, seconds: float = 120) -> tuple[list, Exception | None]:
    """Up to ``batches`` batches of a stream, or the error it raised; fails if it is still busy after ``seconds``
    (a guard against the hang under test, not a timing)."""
    out: list = []
    error: list[Exception] = []

    def read() -> None:
        try:
            out.extend(itertools.islice(stream, batches))
        except Exception as caught:  # noqa: BLE001 - handed to the test
            error.append(caught)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the training stream hangs"
    return out, error[0] if error else None


@pytest.mark.parametrize("workers", [0, 2])
def test_training_on_a_folder_whose_only_tar_is_truncated_stops_naming_it(renders: list[Path], tmp_path: Path,
                                                                        workers: int) -> None:
    pack(renders, tmp_path / "one", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=100))
    (tar,) = sorted((tmp_path / "one").glob("*.tar"))
    tar.write_bytes(tar.read_bytes()[:700])  # inside the first member: not one whole sample
    batches, error = _pull(train_loader(tmp_path / "one", 2, 10, workers=workers), 1)
    assert not batches and isinstance(error, PgrfError)
    message = str(error)
    assert message.startswith(f"{tar}: nothing readable in {UNREADABLE_LIMIT} tries in a row") and "\n" not in message
    assert "pgrf verify" in message


def test_training_on_shards_of_corrupt_pngs_stops_naming_them(shards: Path, tmp_path: Path) -> None:
    tars = sorted(shards.glob("*.tar"))[:2]
    broken = [tmp_path / tar.name for tar in tars]
    for source, target in zip(tars, broken):
        _rewrite(source, target, set())
    with pytest.warns(UserWarning, match="skipping corrupt sample"):
        batches, error = _pull(train_loader(broken, 2, 10), 1)
    assert not batches and isinstance(error, PgrfError)
    assert str(error).startswith(f"{broken[0]}, {broken[1]}: ") or str(error).startswith(f"{broken[1]}, {broken[0]}: ")
    assert "corrupt sample" in str(error)


def test_training_skips_and_counts_a_few_bad_members_among_good_ones(shards: Path, tmp_path: Path) -> None:
    tars = sorted(shards.glob("*.tar"))
    mixed = tmp_path / "mixed"
    shutil.copytree(shards, mixed)
    with tarfile.open(tars[0]) as tar:
        corrupt = sorted({name.split(".")[0] for name in tar.getnames()})[:2]
    _rewrite(tars[0], mixed / tars[0].name, set(corrupt))  # two corrupt PNGs in the first shard
    (mixed / tars[1].name).write_bytes(tars[1].read_bytes()[:700])  # the second shard truncated
    batches, error = _pull(train_loader(mixed, 4, 60, workers=2, shuffle_buffer=10), 60)  # (warnings in the workers)
    assert error is None and len(batches) == 60 and all(len(batch["key"]) == 4 for batch in batches)
    seen = {key for batch in batches for key in batch["key"]}
    assert not seen & set(corrupt) and sum(batch["skipped"] for batch in batches) >= 3


def test_a_pack_folder_opens_with_its_card_class_counts_and_checked_shards(shards: Path, tmp_path: Path) -> None:
    source = ShardSource.open(shards)
    labels = pq.read_table(shards / "index.parquet").column("class").to_pylist()
    assert source.class_counts == [labels.count(0), labels.count(1)] and sum(source.class_counts) == 36
    card = json.loads((shards / "dataset.json").read_text())
    for name, shard_list, message in (("none", [], "dataset.json lists no shards"),
                                      ("gone", card["shards"], "but missing")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "dataset.json").write_text(json.dumps({**card, "shards": shard_list}))
        with pytest.raises(PgrfError, match=message) as error:
            ShardSource.open(folder)
        assert str(folder) in str(error.value) and "\n" not in str(error.value)
    (tmp_path / "gone" / "index.parquet").write_bytes(b"not parquet")
    for tar in shards.glob("*.tar"):
        (tmp_path / "gone" / tar.name).symlink_to(tar)
    with pytest.raises(PgrfError, match=r"gone/index\.parquet: unreadable .*re-run pgrf pack"):
        _ = ShardSource.open(tmp_path / "gone").class_counts


def test_opening_a_pack_folder_needs_no_torch(shards: Path) -> None:
    code = ("import sys; from pgrf.data.source import ShardSource; source = ShardSource.open(sys.argv[1]); "
            "print(len(source.urls), sum(source.class_counts), sorted({'torch', 'webdataset'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code, str(shards)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("[")[0].split() == [str(len(list(shards.glob("*.tar")))), "36"]
    assert result.stdout.strip().endswith("[]")


def test_shards_as_folder_brace_pattern_tar_or_pipe(shards: Path) -> None:
    tars = sorted(str(p) for p in shards.glob("*.tar"))
    name = Path(tars[0]).name.rsplit("-", 1)[0]
    folder = ShardSource.open(shards)
    assert folder.urls == tars and folder.folder == shards and folder.pack_card().name == json.loads(
        (shards / "dataset.json").read_text())["name"]
    pattern = ShardSource.open(f"{shards}/{name}-{{000000..000002}}.tar")
    assert pattern.urls == tars[:3] and pattern.card is None and pattern.class_counts is None
    assert ShardSource.open(tars[1]).urls == [tars[1]]
    assert ShardSource.open([tars[0], shards]).urls == [tars[0], *tars]
    piped = _keys(exact_loader(f"pipe:cat {tars[0]}", 10))
    assert piped == _keys(exact_loader(tars[0], 10)) and len(piped) == 5
    assert ShardSource.open(f"pipe:cat {tars[0]}").identity is None  # remote: not cached
    with pytest.raises(PgrfError, match="no such shard"):
        ShardSource.open(shards / "missing-000000.tar")
    with pytest.raises(PgrfError, match=r"-000001\.tar: not a pgrf pack folder"):
        ShardSource.open(tars[1]).pack_card()
    (shards.parent / "empty").mkdir(exist_ok=True)
    with pytest.raises(PgrfError, match="dataset.json: missing"):
        ShardSource.open(shards.parent / "empty")
    assert np.all(np.diff([int(Path(t).stem.rsplit("-", 1)[1]) for t in tars]) == 1)


HUGE_MEMBER_SCRIPT = """
import itertools, sys, warnings
warnings.simplefilter("ignore")
from pgrf.data.loader import exact_loader, train_loader
trained = list(itertools.islice(train_loader([sys.argv[1]], 2, 3), 3))
exact = list(exact_loader([sys.argv[1]], 2))
print(len(trained), sum(b["skipped"] for b in trained) > 0, sum(len(b["key"]) for b in exact), sum(b["skipped"] for b in exact))
"""


def test_a_member_declaring_2_to_the_60_bytes_is_skipped_not_spun_on(shards: Path, tmp_path: Path) -> None:
    source = sorted(shards.glob("*.tar"))[0]
    with tarfile.open(source) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    huge = tmp_path / "huge.tar"
    with huge.open("wb") as handle:
        for info, data in members:
            handle.write(info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE))
        info = tarfile.TarInfo("zzz.png")
        info.size = 2**60  # a base-256 size field
        handle.write(info.tobuf(tarfile.GNU_FORMAT) + bytes(4096))
    assert huge.stat().st_size < 1 << 20
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        done = subprocess.run([sys.executable, "-c", HUGE_MEMBER_SCRIPT, str(huge)], capture_output=True, text=True,
                              timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the loader spins on a member declaring 2^60 bytes")
    assert done.returncode == 0, done.stderr
    trained, skipped, exact, exact_skipped = done.stdout.split()
    assert (trained, skipped, exact) == ("3", "True", str(len(members) // 3)) and int(exact_skipped) >= 1


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _replace_last_png(tar_path: Path, png: bytes) -> tuple[str, int]:
    """Rewrite a shard with its last sample's PNG replaced; returns that sample's key and the shard's sample count."""
    with tarfile.open(tar_path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    odd = members[-1][0].split(".")[0]
    with tarfile.open(tar_path, "w") as tar:
        for name, data in members:
            data = png if name == f"{odd}.png" else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return odd, len(members) // 3


def test_a_sample_of_another_size_is_skipped_and_counted(shards: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(shards, folder)
    tar_path = sorted(folder.glob("*.tar"))[0]
    odd, count = _replace_last_png(tar_path, _png(8))  # one 8x8 image among 16x16 ones
    with pytest.warns(UserWarning, match=f"skipping corrupt sample {odd}: image is 8x8, the card's resolution is 16x16"):
        batches = list(exact_loader(folder, 2))
    samples = json.loads((shards / "dataset.json").read_text())["counts"]["samples"]
    assert odd not in _keys(batches) and len(_keys(batches)) == samples - 1 and sum(b["skipped"] for b in batches) == 1
    assert all(b["image"].shape[2:] == (16, 16) for b in batches)
    with pytest.warns(UserWarning, match="image is 8x8, the stream's first image is 16x16"):  # no card: the first image's size
        loose = list(exact_loader(tar_path, 2))
    assert odd not in _keys(loose) and len(_keys(loose)) == count - 1


def test_a_card_whose_resolution_disagrees_with_the_images_stops_training_at_the_start(shards: Path, tmp_path: Path) -> None:
    folder = tmp_path / "lying"
    shutil.copytree(shards, folder)
    card = json.loads((folder / "dataset.json").read_text())
    card["resolution"] = 32
    (folder / "dataset.json").write_text(json.dumps(card))
    with pytest.warns(UserWarning, match="image is 16x16, the card's resolution is 32x32"):
        batches, error = _pull(train_loader(folder, 2, 10), 1)
    assert not batches and isinstance(error, PgrfError) and "\n" not in str(error)
    assert f"nothing readable in {UNREADABLE_LIMIT} tries in a row" in str(error)
    assert "image is 16x16, the card's resolution is 32x32" in str(error)


def test_a_png_over_the_pixel_limit_is_skipped_before_it_is_decoded(shards: Path, tmp_path: Path) -> None:
    tar_path = tmp_path / "bomb.tar"
    shutil.copy(sorted(shards.glob("*.tar"))[0], tar_path)
    odd, count = _replace_last_png(tar_path, bomb_png(10_000, 10_000))
    with pytest.warns(UserWarning, match=f"skipping corrupt sample {odd}: {odd}: 10000x10000 pixels, over the limit of 89478485"):
        batches = list(exact_loader(tar_path, 2))
    assert odd not in _keys(batches) and len(_keys(batches)) == count - 1
