"""`pgrf pack`: premultiplied resizing, deterministic shards, mirrored cameras, index and card."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyspng
import pytest
import webdataset as wds
from PIL import Image

from pgrf import cameras
from pgrf.config import load_config
from pgrf.errors import PgrfError
from pgrf.formats import renders as records
from pgrf.formats.images import encode_png, read_rgba
from pgrf.formats.schema import to_json
from pgrf.pipeline.composite import composite
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from tests.helpers import CONFIG, run_pgrf


def _halo_png(path: Path) -> None:
    """A red square on fully transparent pixels whose (invisible) colour is green."""
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[13:45, 13:45] = (255, 0, 0, 255)  # edges fall inside 4x4 boxes, so the downscale blends them
    Image.fromarray(rgba, "RGBA").save(path)


@pytest.mark.parametrize("resolution", [16, 28])  # an integer factor (alpha-box path) and a general resize
def test_resize_uses_premultiplied_alpha_so_edges_get_no_halo(tmp_path: Path, resolution: int) -> None:
    _halo_png(tmp_path / "red.png")
    white = np.asarray(composite(read_rgba(tmp_path / "red.png"), resolution, "white").convert("RGB"), int)
    black = np.asarray(composite(read_rgba(tmp_path / "red.png"), resolution, "black").convert("RGB"), int)
    partial = (white[..., 1] > 0) & (white[..., 1] < 255)
    assert partial.any()  # some pixels are blends of object and background
    assert np.array_equal(white[..., 1], white[..., 2])  # over white: pure red-to-white blends, no green
    assert black[..., 1].max() == 0 and black[..., 2].max() == 0  # over black: no green, no blue
    straight = np.asarray(Image.open(tmp_path / "red.png"), float).reshape(16, 4, 16, 4, 4).mean(axis=(1, 3))
    naive_white = straight[..., :3] * straight[..., 3:] / 255 + (255 - straight[..., 3:])
    assert np.abs(naive_white[..., 1] - naive_white[..., 2]).max() > 10  # averaging straight alpha would tint


def _reference_composite(rgba: np.ndarray, resolution: int, background: int) -> np.ndarray:
    """Every box of the whole frame: its premultiplied mean over the background, rounded half up, in integers."""
    factor = rgba.shape[0] // resolution
    values = rgba.astype(np.int64).reshape(resolution, factor, resolution, factor, 4)
    alpha = values[..., 3:]
    area = 255 * factor * factor
    total = (values[..., :3] * alpha).sum(axis=(1, 3)) + (area - alpha.sum(axis=(1, 3))) * background
    return ((total + area // 2) // area).astype(np.uint8)


def _pillow_composite(rgba: np.ndarray, resolution: int, background: int) -> np.ndarray:
    """The same with Pillow's premultiply and reduce (each rounds), composited in floating point."""
    premultiplied = np.asarray(Image.fromarray(rgba, "RGBA").convert("RGBa").reduce(rgba.shape[0] // resolution), float) / 255
    return np.rint((premultiplied[..., :3] + (1 - premultiplied[..., 3:]) * background / 255) * 255)


PLACEMENTS = {"off-centre, box not 4-aligned": (slice(61, 174), slice(7, 90)),
              "touching the bottom right": (slice(149, 192), slice(137, 192)),
              "touching the bottom left": (slice(178, 192), slice(0, 31)), "the whole frame": (slice(0, 192), slice(0, 192))}


@pytest.mark.parametrize("resolution", [192, 48, 24])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_composite_skipping_empty_boxes_equals_the_whole_frame(resolution: int, placement: str) -> None:
    rng = np.random.default_rng(resolution)
    rgba = rng.integers(0, 256, (192, 192, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    rows, columns = PLACEMENTS[placement]
    rgba[rows, columns, 3] = rng.integers(1, 256, rgba[rows, columns, 3].shape)
    rgba[5, 3, 3] = 9  # and one stray pixel near a corner
    for background, value in (("white", 255), ("black", 0)):
        ours = np.asarray(composite(rgba, resolution, background).convert("RGB"))
        assert np.array_equal(ours, _reference_composite(rgba, resolution, value))
        assert np.abs(ours - _pillow_composite(rgba, resolution, value)).max() <= 1  # Pillow rounds twice


def test_composite_of_a_transparent_frame_is_the_background() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    assert (np.asarray(composite(rgba, 16, "white").convert("RGB")) == 255).all()
    assert (np.asarray(composite(rgba, 16, "black").convert("RGB")) == 0).all()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (33, 50), (256, 256)])
def test_encoded_pngs_decode_to_the_same_pixels(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    rgb[: shape[0] // 2] = rgb[: shape[0] // 2, :1]  # flat runs as well as noise
    data = encode_png(Image.fromarray(rgb, "RGB"))
    assert np.array_equal(pyspng.load(data, format="RGB"), rgb)
    with Image.open(io.BytesIO(data)) as image:  # Pillow checks every chunk's CRC
        image.load()
        assert image.mode == "RGB" and np.array_equal(np.asarray(image), rgb)
    assert encode_png(Image.fromarray(rgb, "RGB")) == data


@pytest.fixture()
def renders(tmp_path: Path) -> list[Path]:
    plants = fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6, "sparse_var1": 0.01})
    food = fake_renders(tmp_path / "renders", "food", {"apple": 0.7})
    return [plants, food]


def _members(shard: Path) -> dict[str, bytes]:
    with tarfile.open(shard) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_pack_writes_design_layout(renders: list[Path], tmp_path: Path) -> None:
    card = pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5, name="mixed"))
    assert to_json(card.counts) == {"samples": 18, "unique_views": 9, "models": 3, "classes": 2}
    assert card.filters.removed_models == {"min_mean_alpha": 1, "min_dim_product": 2, "exclude": 0}  # plants' 0.03 threshold
    assert [s.samples for s in card.shards] == [5, 5, 5, 3]
    index = pq.read_table(tmp_path / "shards" / "index.parquet").to_pylist()
    assert len({r["key"] for r in index}) == 18 and all("." not in r["key"] for r in index)
    for shard in card.shards:
        members = _members(tmp_path / "shards" / shard.file)
        rows = sorted((r for r in index if r["shard"] == shard.file), key=lambda r: r["position"])
        assert list(members) == [f"{r['key']}.{ext}" for r in rows for ext in ("png", "json", "cls")]
        for row in rows:
            meta = json.loads(members[f"{row['key']}.json"])
            assert meta["class"] == row["class"] == int(members[f"{row['key']}.cls"])
            assert Image.open(io.BytesIO(members[f"{row['key']}.png"])).size == (16, 16)
    categories = {r["category"] for r in index[:6]}
    assert len(categories) == 2  # shuffled globally: the first shard mixes categories


def test_mirrored_samples_flip_the_image_and_mirror_the_camera(renders: list[Path], tmp_path: Path) -> None:
    card = pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=32, samples_per_shard=100))
    members = _members(tmp_path / "shards" / card.shards[0].file)
    mirrored = [name[:-len("_m.json")] for name in members if name.endswith("_m.json")]
    assert len(mirrored) == 9
    for key in mirrored:
        original, flipped = json.loads(members[f"{key}.json"]), json.loads(members[f"{key}_m.json"])
        assert np.allclose(flipped["c2w"], cameras.MIRROR_WORLD @ np.array(original["c2w"]) @ cameras.MIRROR_CAMERA)
        assert flipped["yaw"] == pytest.approx(-original["yaw"]) and flipped["pitch"] == original["pitch"] and flipped["mirrored"]
        image = np.asarray(Image.open(io.BytesIO(members[f"{key}.png"])))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(members[f"{key}_m.png"]))), image[:, ::-1])
        assert not np.array_equal(image, image[:, ::-1])


def test_same_inputs_and_seed_give_identical_shards(renders: list[Path], tmp_path: Path) -> None:
    config = load_config(CONFIG)
    first = pack(renders, tmp_path / "one", config, PackOptions(resolution=16, samples_per_shard=7))
    again = pack(renders, tmp_path / "two", config, PackOptions(resolution=16, samples_per_shard=7))
    other = pack(renders, tmp_path / "three", config, PackOptions(resolution=16, samples_per_shard=7, seed=1))
    assert [s.sha256 for s in first.shards] == [s.sha256 for s in again.shards]
    assert [s.sha256 for s in first.shards] != [s.sha256 for s in other.shards]
    for shard in first.shards:
        assert (tmp_path / "one" / shard.file).read_bytes() == (tmp_path / "two" / shard.file).read_bytes()


PINNED_SHARDS = ["056ee9b9772423b8fd7264bec00d33a936e614131e31986aa4cdf9ec4a3b77da",
                 "dd0d2a769a09a0c8ccfe22ebbc9bad7d46af2ccce1328691b3de37735de32395",
                 "fe65d03a21c81551fecac5de763e355cf05fadf88e0633bff66ebbb15dc199f3"]
PINNED_INDEX = "f151580105c630974a27aaee1687043cba2391aeba9f2632d66aab4e1a3e97fb"


@pytest.mark.pinned
def test_a_small_pack_is_byte_identical_to_the_pinned_one(tmp_path: Path) -> None:
    """Shard and index bytes measured before the re-layering (pgrf 0.1.0): a refactor must not change them."""
    plants = fake_renders(tmp_path / "r", "plants", {"a_var1": 0.5, "b_var1": 0.3, "c_var2": 0.02}, views=3, resolution=32)
    card = pack([plants], tmp_path / "s", load_config(CONFIG),
                PackOptions(resolution=16, samples_per_shard=5, seed=3, name="pin", min_mean_alpha=0.05))
    assert [s.sha256 for s in card.shards] == PINNED_SHARDS
    assert hashlib.sha256((tmp_path / "s" / "index.parquet").read_bytes()).hexdigest() == PINNED_INDEX


def test_webdataset_reads_the_shards(renders: list[Path], tmp_path: Path) -> None:
    card = pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=4, mirror=False))
    urls = [str(tmp_path / "shards" / s.file) for s in card.shards]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("rgb8").to_tuple("__key__", "png", "json", "cls"))
    assert len(samples) == 9 and {s[2]["model_id"] for s in samples} == {"a_var1", "b_var1", "apple"}
    assert all(s[1].shape == (16, 16, 3) for s in samples)


def test_pack_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PgrfError, match="no such render folder"):
        pack([tmp_path / "missing"], tmp_path / "out", load_config(CONFIG), PackOptions())
    result = run_pgrf("pack", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no such render folder" in result.stderr and "Traceback" not in result.stderr


def test_bad_pack_options_are_one_line_errors(renders: list[Path], tmp_path: Path) -> None:
    result = run_pgrf("pack", str(renders[0]), "--out", str(tmp_path / "out"), "--background", "grey")
    assert result.returncode == 2 and "--background must be one of white, black; got 'grey'" in result.stderr
    with pytest.raises(PgrfError, match="must be positive"):
        PackOptions(samples_per_shard=0)


def _shard_files(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.glob("*.tar"))}


def test_output_does_not_depend_on_worker_count(renders: list[Path], tmp_path: Path) -> None:
    config = load_config(CONFIG)
    one = pack(renders, tmp_path / "one", config, PackOptions(resolution=16, samples_per_shard=4, workers=1))
    two = pack(renders, tmp_path / "two", config, PackOptions(resolution=16, samples_per_shard=4, workers=2))
    assert len(one.shards) == 5 and one.shards == two.shards
    assert {n: b for n, (_, b) in _shard_files(tmp_path / "one").items()} == {n: b for n, (_, b) in _shard_files(tmp_path / "two").items()}
    assert pq.read_table(tmp_path / "one" / "index.parquet").equals(pq.read_table(tmp_path / "two" / "index.parquet"))


def test_each_view_is_decoded_once_for_itself_and_its_mirrored_copy(renders: list[Path], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from pgrf.pipeline import encode

    decoded: list[Path] = []
    monkeypatch.setattr(encode, "read_rgba", lambda path, *limit: decoded.append(path) or read_rgba(path, *limit))
    card = pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=4))
    assert card.counts.samples == 18
    assert 9 <= len(decoded) <= 9 + len(card.shards) - 1  # a pair cut by a shard boundary is decoded in both shards


def test_rerun_after_interruption_keeps_finished_shards(renders: list[Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pgrf.pipeline.pack as pack_module

    config, options, out = load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=4), tmp_path / "shards"
    real_encode, calls, interrupt = pack_module.encode_shard, [], [True]

    def interrupted(*args, **kwargs):
        calls.append(args[1].file)
        if len(calls) == 3 and interrupt and interrupt.pop():
            raise KeyboardInterrupt
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(pack_module, "encode_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pack(renders, out, config, options)
    before = _shard_files(out)
    assert len(before) == 2 and not (out / "dataset.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]  # no partial shard left behind
    calls.clear()
    card = pack(renders, out, config, options)
    assert len(calls) == 3 and not set(calls) & set(before)  # only the missing shards were written
    after = _shard_files(out)
    assert all(after[name] == before[name] for name in before)  # untouched: same mtime, same bytes
    fresh = pack(renders, tmp_path / "fresh", config, options)
    assert card.shards == fresh.shards


def test_corrupt_png_stops_the_run_or_is_skipped(renders: list[Path], tmp_path: Path) -> None:
    config = load_config(CONFIG)
    broken = renders[0] / "a_var1" / records.view_file(1)
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(PgrfError, match=f"{broken}: corrupt or truncated PNG.*--skip-bad"):
        pack(renders, tmp_path / "strict", config, PackOptions(resolution=16, samples_per_shard=4))
    result = run_pgrf("pack", *map(str, renders), "--out", str(tmp_path / "cli"), "--resolution", "16", "--workers", "2")
    assert result.returncode == 2 and str(broken) in result.stderr and "Traceback" not in result.stderr
    card = pack(renders, tmp_path / "lenient", config, PackOptions(resolution=16, samples_per_shard=4, skip_bad=True))
    assert to_json(card.skipped_bad) == {"samples": 2, "files": [str(broken)]}
    assert card.counts.samples == 16 and sum(s.samples for s in card.shards) == 16
    keys = set(pq.read_table(tmp_path / "lenient" / "index.parquet").column("key").to_pylist())
    assert "a_var1_v0001" not in keys and "a_var1_v0001_m" not in keys and "a_var1_v0002" in keys


def _rewrite_member(shard: Path, name: str, change) -> None:
    members = _members(shard)
    members[name] = change(members[name])
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_verify_accepts_a_pack_and_names_every_kind_of_damage(renders: list[Path], tmp_path: Path) -> None:
    from pgrf.pipeline.verify import verify

    out = tmp_path / "shards"
    card = pack(renders, out, load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5))
    assert verify(out).problems == [] and verify(out).samples == 18
    ok = run_pgrf("verify", str(out))
    assert ok.returncode == 0 and "18 samples: OK" in ok.stdout

    first = out / card.shards[0].file
    mirrored = next(n for n in _members(first) if n.endswith("_m.json"))
    _rewrite_member(first, mirrored, lambda b: json.dumps({**json.loads(b), "c2w": np.eye(4).tolist()}).encode())
    png = next(n for n in _members(out / card.shards[1].file) if n.endswith(".png"))
    _rewrite_member(out / card.shards[1].file, png, lambda b: b[:30])
    last = out / card.shards[-1].file
    last.write_bytes(last.read_bytes()[:1000])
    (out / "stray-000000.tar").write_bytes(first.read_bytes())
    problems = verify(out).problems
    text = "\n".join(problems)
    assert f"{first.name}: sha256 differs" in text and f"{card.shards[1].file}: sha256 differs" in text
    assert f"{first.name}:{mirrored[:-5]}: camera is not S·c2w·F" in text
    assert f"{card.shards[1].file}:{png[:-4]}: not a readable PNG" in text
    assert f"{last.name}: " in text and "stray-000000.tar: shard not listed in dataset.json" in text
    bad = run_pgrf("verify", str(out))
    assert bad.returncode == 1 and "problems" in bad.stdout and "camera is not S·c2w·F" in bad.stderr
    missing = run_pgrf("verify", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no such shard folder" in missing.stderr and "Traceback" not in missing.stderr


def test_verify_reports_a_class_index_outside_the_class_names(renders: list[Path], tmp_path: Path) -> None:
    from pgrf.pipeline.verify import verify

    out = tmp_path / "shards"
    card = pack(renders, out, load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5))
    first = out / card.shards[0].file
    sample = next(n for n in _members(first) if n.endswith(".json"))[:-5]
    outside = len(card.class_names)
    _rewrite_member(first, f"{sample}.json", lambda b: json.dumps({**json.loads(b), "class": outside}).encode())
    _rewrite_member(first, f"{sample}.cls", lambda b: str(outside).encode())
    problems = verify(out).problems
    assert f"{first.name}:{sample}: class {outside} is outside dataset.json's class_names (0 to {outside - 1}); " \
           "re-run pgrf pack" in problems


def _descendants(pid: int) -> set[int]:
    """The living processes below ``pid`` (read from /proc), its children's children included."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            for child in map(int, children.read_text().split()):
                found |= {child, *_descendants(child)}
        except OSError:  # the task ended while being read
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _is_pool_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_kill_9_of_pack_ends_its_workers_and_resource_tracker(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path / "renders", "plants", {f"m{i}_var1": 0.5 for i in range(8)}, views=24, resolution=128)
    process = subprocess.Popen([sys.executable, "-m", "pgrf", "pack", str(plants), "--out", str(tmp_path / "out"),
                                "--resolution", "128", "--samples-per-shard", "8", "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while not any(map(_is_pool_worker, children)) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            children = _descendants(process.pid)
        assert process.poll() is None and any(map(_is_pool_worker, children)), "pack ended before a worker started"
        children = _descendants(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(_alive, children)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, children)), "pack's workers or its resource tracker outlived it"
    finally:
        process.kill()
        for pid in filter(_alive, children):
            os.kill(pid, signal.SIGKILL)


def test_a_second_pack_with_other_settings_stops_while_the_first_writes(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path / "renders", "plants", {f"m{i}_var1": 0.5 for i in range(16)}, views=24, resolution=64)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "pgrf", "pack", str(plants), "--out", str(out), "--resolution", "512",
                              "--samples-per-shard", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob(".lock-*")) + list(out.glob(".tmp-*")) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_pgrf("pack", str(plants), "--out", str(out), "--resolution", "64", "--samples-per-shard", "8", timeout=120)
        assert first.poll() is None, "the first pack ended before the second started"
        assert second.returncode == 2, second.stderr
        line = second.stderr.strip()
        assert "\n" not in line and str(out) in line and "pgrf pack" in line and str(first.pid) in line, line
        assert "resolution 512 there, 64 here" in line and "choose another output folder" in line, line
        assert first.wait(timeout=300) == 0, first.stderr.read()
    finally:
        first.kill()
    assert not list(out.glob(".lock-*")), "the lock outlived its run"
    verified = run_pgrf("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    again = run_pgrf("pack", str(plants), "--out", str(out), "--resolution", "64", "--samples-per-shard", "8")
    assert again.returncode == 0, again.stderr  # one after the other, new settings are fine
