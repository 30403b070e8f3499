"""`pgrf import zip`: StyleGAN-family zips → pgrf shards. The authors' processed zip (built as their
prepare_for_training.py did) gives the cameras of the raw import; `pgrf export` → `pgrf import zip` gives back
the cameras, classes and pixels in both label modes; EG3D labels in a +Y-up world; faults are counted lines."""

from __future__ import annotations

import io
import json
import math
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyspng
import pytest
from PIL import Image, PngImagePlugin

from pgrf import cameras
from pgrf.config import Category, load_config
from pgrf.errors import PgrfError
from pgrf.formats import images as images_module
from pgrf.formats import renders as records
from pgrf.formats.card import read_card
from pgrf.formats.images import may_be_transparent
from pgrf.formats.shards import SampleMeta
from pgrf.pipeline import import_zip as import_zip_module
from pgrf.pipeline.export import export_zip
from pgrf.pipeline.import_renders import import_renders
from pgrf.pipeline.import_zip import ZipOptions, import_zip, parse_name
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.shards import iter_samples
from pgrf.pipeline.stats import compute_stats
from pgrf.pipeline.verify import verify
from tests.helpers import CONFIG, bomb_png, run_pgrf
from tests.libraries.epigraf_renders import build_processed_zip, write_raw

MODELS = {"Coll A": ["Thing 1", "Thing 2"], "collB": ["Other_LOD0"]}


def _samples(shards: Path) -> dict[str, tuple[SampleMeta, np.ndarray]]:
    """Every sample of a shard folder: its json member and decoded pixels, by key."""
    found = {}
    for entry in read_card(shards).shards:
        for key, members in iter_samples(shards / entry.file):
            found[key] = (SampleMeta.parse(members["json"], key), pyspng.load(members["png"]))
    return found


@pytest.fixture()
def imported(tmp_path: Path) -> tuple[Path, Path]:
    """A raw dataset and its pgrf import."""
    raw = tmp_path / "raw"
    write_raw(raw, MODELS, views=4, size=32)
    import_renders(raw, Category("plants"), tmp_path / "renders")
    return raw, tmp_path / "renders" / "plants"


def test_the_authors_processed_zip_gives_the_cameras_of_the_raw_import(imported, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    raw, renders = imported
    (tmp_path / "work").mkdir()
    archive = build_processed_zip(raw, tmp_path / "plants_processed.zip", tmp_path / "work")
    monkeypatch.setattr(import_zip_module, "ALPHA_CHUNK", 5)  # alpha measured by 2 processes, 5 images a task
    options = PackOptions(resolution=16, mirror=False, name="zip", workers=2)
    result = import_zip(archive, tmp_path / "from_zip", options, ZipOptions())
    assert not result.problems  # keys 'Coll_A/Thing 1/000000.png' matched 'plants_processed/Coll_A/Thing_1_000000.png'
    pack([renders], tmp_path / "from_raw", load_config(CONFIG), PackOptions(resolution=16, mirror=False, name="raw"))
    from_zip, from_raw = _samples(tmp_path / "from_zip"), _samples(tmp_path / "from_raw")
    assert sorted(from_zip) == sorted(from_raw) and len(from_zip) == 12
    for key, (meta, pixels) in from_zip.items():
        raw_meta, raw_pixels = from_raw[key]
        assert np.allclose(meta.c2w, raw_meta.c2w, atol=1e-9) and np.allclose(meta.intrinsics, raw_meta.intrinsics)
        assert math.isclose(meta.yaw, raw_meta.yaw, abs_tol=1e-9) and math.isclose(meta.pitch, raw_meta.pitch, abs_tol=1e-9)
        assert meta.class_name == raw_meta.class_name  # class numbers differ (the authors numbered a set), names agree
        assert np.array_equal(pixels, raw_pixels)  # composited and resized as pgrf pack does
    index = pq.read_table(tmp_path / "from_zip" / "index.parquet").to_pylist()
    for row in index:  # each model's mean alpha, measured from the zip's RGBA images as the raw import measured it
        assert row["mean_alpha"] == pytest.approx(records.read_cameras(renders / row["model_id"]).mean_alpha, abs=1e-12)
    assert len({row["mean_alpha"] for row in index}) == 3
    card = read_card(tmp_path / "from_zip")
    assert (card.camera.radius, card.camera.fov) == (3.5, math.pi / 4) and sorted(card.class_names) == ["Coll_A", "collB"]
    assert card.counts.models == 3 and verify(tmp_path / "from_zip").problems == []
    stats = compute_stats(tmp_path / "from_zip")
    assert (stats.models, stats.images, stats.classes) == (3, 12, 2)


@pytest.mark.parametrize("labels", ["camera", "class"])
def test_export_then_import_gives_back_cameras_classes_and_pixels(imported, tmp_path: Path, labels: str) -> None:
    _, renders = imported
    card = pack([renders], tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, mirror=True, name="p"))
    export_zip(tmp_path / "shards", tmp_path / "exported.zip", labels)
    result = import_zip(tmp_path / "exported.zip", tmp_path / "back", PackOptions(resolution=16, name="b"), ZipOptions())
    assert not result.problems
    before, after = _samples(tmp_path / "shards"), _samples(tmp_path / "back")
    assert sorted(after) == sorted(before) and len(after) == 24  # mirrored copies come back as themselves
    for key, (meta, pixels) in after.items():
        old, old_pixels = before[key]
        exact = labels == "camera"
        assert (np.array_equal if exact else lambda a, b: np.allclose(a, b, atol=1e-12))(meta.c2w, old.c2w)
        assert np.allclose(meta.intrinsics, old.intrinsics, atol=0 if exact else 1e-15)
        assert math.isclose(math.cos(meta.yaw - old.yaw), 1.0, abs_tol=1e-12) and math.isclose(meta.pitch, old.pitch, abs_tol=1e-9)
        assert (meta.class_index, meta.class_name, meta.mirrored, meta.model_id, meta.view) == \
            (old.class_index, old.class_name, old.mirrored, old.model_id, old.view)
        assert np.array_equal(pixels, old_pixels)
    assert {row["mean_alpha"] for row in pq.read_table(tmp_path / "back" / "index.parquet").to_pylist()} == {1.0}  # opaque PNGs
    back = read_card(tmp_path / "back")
    assert back.class_names == card.class_names and (back.camera.radius, back.camera.fov) == (card.camera.radius, card.camera.fov)


def _zip(path: Path, images: dict[str, np.ndarray | bytes], document: dict) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, image in images.items():
            if isinstance(image, np.ndarray):
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="PNG" if name.endswith(".png") else "JPEG")
                image = buffer.getvalue()
            archive.writestr(name, image)
        archive.writestr("dataset.json", json.dumps(document))
    return path


def test_eg3d_labels_in_the_y_up_world(tmp_path: Path) -> None:
    views = [cameras.View(0.3, 1.0, 2.7, 0.3), cameras.View(-2.0, 2.2, 2.7, 0.3)]
    image = np.full((8, 8, 3), 128, np.uint8)
    labels = [[f"00000/img{i:08d}.png", cameras.eg3d_label(v.c2w, v.intrinsics, "yup")] for i, v in enumerate(views)]
    archive = _zip(tmp_path / "ffhq.zip", {name: image for name, _ in labels}, {"labels": labels})
    import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="f", mirror=False), ZipOptions(world="yup"))
    found = _samples(tmp_path / "out")
    assert sorted(found) == ["img00000000_v0000", "img00000001_v0000"]
    for i, view in enumerate(views):
        meta = found[f"img{i:08d}_v0000"][0]
        assert np.allclose(meta.c2w, view.c2w, atol=1e-12) and (meta.yaw, meta.pitch) == pytest.approx((view.yaw, view.pitch))
    card = read_card(tmp_path / "out")
    assert card.camera.radius == pytest.approx(2.7) and card.camera.fov == pytest.approx(0.3) and card.class_names == ["ffhq"]
    import_zip(archive, tmp_path / "wrong", PackOptions(resolution=8, name="f", mirror=False), ZipOptions(world="zup"))
    assert not np.allclose(_samples(tmp_path / "wrong")["img00000000_v0000"][0].c2w, views[0].c2w, atol=1e-3)


def test_faults_are_counted_lines_and_the_rest_is_imported(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 4), np.uint8)
    image[2:6, 2:6] = [10, 20, 30, 255]
    angles = {"top/a/m_000000.png": [0.1, 1.0, 0.0], "top/a/m_000001.png": [0.2, 1.1, 0.0], "top/a/bad_000000.png": [0.3, 1.2, 0.0],
              "top/a/ghost_000000.png": [0.4, 1.3, 0.0], "top/a/jpg_000000.jpg": [0.5, 1.4, 0.0]}
    images = {"top/a/m_000000.png": image, "top/a/m_000001.png": image, "top/a/bad_000000.png": b"\x89PNG\r\n\x1a\nbroken",
              "top/a/nocam_000000.png": image, "top/a/jpg_000000.jpg": image[..., :3]}
    archive = _zip(tmp_path / "top.zip", images, {"camera_angles": angles})
    result = import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="t", skip_bad=True, mirror=False), ZipOptions())
    assert len(result.problems) == 2 and all("\n" not in p for p in result.problems)
    assert "key 'top/a/ghost_000000.png' names no image" in result.problems[0] + result.problems[1]
    assert "top/a/nocam_000000.png: no camera_angles entry" in result.problems[0] + result.problems[1]
    card = result.card
    assert card.skipped_bad.samples == 1 and card.skipped_bad.files == [f"{archive}:top/a/bad_000000.png"]
    found = _samples(tmp_path / "out")
    assert sorted(found) == ["jpg_v0000", "m_v0000", "m_v0001"]
    meta, pixels = found["m_v0001"]
    assert np.allclose(meta.c2w, cameras.look_at_origin(0.2 - math.pi / 2, 1.1, 3.5))  # the authors' Euler yaw − π/2
    assert (pixels[3, 3] == [10, 20, 30]).all() and (pixels[0, 0] == 255).all()  # composited over white


def test_bad_zips_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "not.zip").write_bytes(b"not a zip")
    image = np.zeros((4, 4, 3), np.uint8)
    cases = {
        "not.zip": "not a readable zip",
        "missing.zip": "no such file",
        "json.zip": "not valid JSON",
        "mixed.zip": "mixes class and camera labels",
        "nocams.zip": "no cameras",
    }
    with zipfile.ZipFile(tmp_path / "json.zip", "w") as archive:
        archive.writestr("a.png", b"")
        archive.writestr("dataset.json", "{oops")
    _zip(tmp_path / "mixed.zip", {"a.png": image, "b.png": image}, {"labels": [["a.png", 1], ["b.png", [0.0] * 25]]})
    _zip(tmp_path / "nocams.zip", {"a.png": image}, {"labels": [["a.png", 1]]})
    for name, message in cases.items():
        with pytest.raises(PgrfError, match=message) as error:
            import_zip(tmp_path / name, tmp_path / "out", PackOptions(name="x"), ZipOptions())
        assert "\n" not in str(error.value)
    with pytest.raises(PgrfError, match="--labels must be one of"):
        ZipOptions(labels="eg3d")


def test_transparency_is_read_from_the_headers() -> None:
    def encoded(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **kwargs)
        return buffer.getvalue()

    rgb = Image.new("RGB", (4, 4), (1, 2, 3))
    assert not may_be_transparent(encoded(rgb)) and not may_be_transparent(encoded(rgb, "JPEG"))
    assert not may_be_transparent(encoded(rgb.convert("L")))
    assert may_be_transparent(encoded(rgb.convert("RGBA"))) and may_be_transparent(encoded(rgb.convert("LA")))
    assert may_be_transparent(encoded(rgb.convert("P"), transparency=0))  # a tRNS chunk
    keyed = encoded(Image.new("P", (4, 4), 0), transparency=0)
    assert (images_module.decode_image(keyed, "keyed.png")[..., 3] == 0).all()  # and it is applied when decoded
    assert not may_be_transparent(encoded(rgb.convert("P")))


def _png_with_text_before_pixels(image: Image.Image, text_bytes: int, **kwargs) -> bytes:
    """A PNG whose first IDAT comes after a tEXt chunk of ``text_bytes`` (metadata a header read must not trust)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * text_bytes)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, **kwargs)
    return buffer.getvalue()


def test_the_alpha_pass_inflates_only_the_headers_of_opaque_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opaque = np.full((8, 8, 3), 90, np.uint8)
    half = np.zeros((8, 8, 4), np.uint8)
    half[:4, :, 3] = 255
    images = {"rgb_000000.png": opaque, "jpg_000000.jpg": opaque, "rgba_000000.png": half,
              "late_000000.png": _png_with_text_before_pixels(Image.new("P", (8, 8), 0), 100_000, transparency=0)}
    archive = _zip(tmp_path / "mixed.zip", images, {"camera_angles": {n: [0.1, 1.0, 0.0] for n in images}})
    whole: list[str] = []
    real = images_module.read_member

    def counted(path: Path, member: str, head: bool = False) -> bytes:
        data = real(path, member, head)
        if not head:
            whole.append(member)
        return data

    monkeypatch.setattr(images_module, "read_member", counted)
    monkeypatch.setattr(import_zip_module, "read_member", counted)
    alphas = import_zip_module._member_alphas(archive, sorted(images), images_module.MAX_PIXELS)
    assert dict(zip(sorted(images), alphas)) == {"jpg_000000.jpg": 1.0, "late_000000.png": 0.0, "rgb_000000.png": 1.0,
                                                 "rgba_000000.png": 0.5}
    assert sorted(whole) == ["late_000000.png", "rgba_000000.png"]  # the tRNS came after the first 64 KiB


def test_a_header_cut_off_by_the_head_is_judged_on_the_whole_member() -> None:
    rgb = Image.new("RGB", (4, 4), (1, 2, 3))
    late = _png_with_text_before_pixels(rgb, 100_000)
    assert not may_be_transparent(late) and may_be_transparent(late[:images_module.HEAD_BYTES])


def test_file_names_give_model_and_view() -> None:
    assert parse_name("Coll_A/Thing_1_000005.png") == ("Thing_1", 5, False)
    assert parse_name("plant_v0003/plant_v0003_m.png") == ("plant", 3, True)
    assert parse_name("m.odel/Thing.1_v0012.png") == ("Thing_1", 12, False)
    assert parse_name("00000/img00000042.png") == ("img00000042", 0, False)


def test_cli_import_zip_after_export(imported, tmp_path: Path) -> None:
    _, renders = imported
    pack([renders], tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, mirror=False, name="p"))
    export_zip(tmp_path / "shards", tmp_path / "exported.zip", "class")
    result = run_pgrf("import", "zip", str(tmp_path / "exported.zip"), "--out", str(tmp_path / "back"), "--resolution", "16")
    assert result.returncode == 0, result.stderr
    assert "12 samples (3 models, 2 classes) in 1 shards" in result.stdout and "0 problems" in result.stdout
    result = run_pgrf("import", "zip", str(tmp_path / "nothing.zip"), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no such file" in result.stderr


def test_an_image_over_the_pixel_limit_is_left_out_before_it_is_decoded(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real_load = images_module.pyspng.load
    monkeypatch.setattr(images_module.pyspng, "load", lambda data, **kw: decoded.append(len(data)) or real_load(data, **kw))
    small = np.full((8, 8, 3), 50, np.uint8)
    angles = {"small_000000.png": [0.1, 1.0, 0.0], "bomb_000000.png": [0.2, 1.0, 0.0]}
    archive = _zip(tmp_path / "bomb.zip", {"small_000000.png": small, "bomb_000000.png": bomb_png(10_000, 10_000)},
                   {"camera_angles": angles})
    assert archive.stat().st_size < 1_000_000  # 10⁸ pixels in a small zip
    result = import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="b", skip_bad=True, mirror=False), ZipOptions())
    assert result.problems == [f"{archive}:bomb_000000.png: 10000x10000 pixels, over the limit of 89478485; not decoded "
                               "(--max-pixels raises the limit); left out"]
    assert sorted(_samples(tmp_path / "out")) == ["small_v0000"] and result.card.skipped_bad.samples == 0
    assert decoded and max(decoded) < 1000  # only the small image reached libspng
    assert ZipOptions().max_pixels == Image.MAX_IMAGE_PIXELS
    lowered = import_zip(archive, tmp_path / "low", PackOptions(resolution=8, name="l", skip_bad=True, mirror=False),
                         ZipOptions(max_pixels=64))  # 8x8 is at the limit: kept
    assert sorted(_samples(tmp_path / "low")) == ["small_v0000"] and len(lowered.problems) == 1
    with pytest.raises(PgrfError, match="every image is over the size limits; raise --max-pixels"):
        import_zip(archive, tmp_path / "none", PackOptions(resolution=8, name="n", mirror=False), ZipOptions(max_pixels=63))
    with pytest.raises(PgrfError, match="--max-pixels must be positive"):
        ZipOptions(max_pixels=0)


def test_a_zip_member_inflating_far_beyond_its_size_is_refused_before_it_is_read(tmp_path: Path) -> None:
    archive = tmp_path / "inflating.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("good_000000.png", _png_bytes(np.full((8, 8, 3), 50, np.uint8)))
        with handle.open("big_000000.png", "w") as member:  # 64 MiB of zeros: ~64 kB deflated
            for _ in range(64):
                member.write(bytes(1 << 20))
        handle.writestr("dataset.json", json.dumps({"camera_angles": {"good_000000.png": [0.1, 1.0, 0.0],
                                                                      "big_000000.png": [0.2, 1.0, 0.0]}}))
    assert archive.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        result = import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="z", skip_bad=True, mirror=False),
                            ZipOptions())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # the 64 MiB member was never inflated into memory
    assert len(result.problems) == 1 and "\n" not in result.problems[0]
    assert result.problems[0].startswith(f"{archive}:big_000000.png: inflates ")
    assert "over 100x; not read" in result.problems[0] and sorted(_samples(tmp_path / "out")) == ["good_v0000"]

    document = tmp_path / "document.zip"
    with zipfile.ZipFile(document, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("a.png", _png_bytes(np.zeros((4, 4, 3), np.uint8)))
        handle.writestr("dataset.json", b" " * (64 << 20))
    with pytest.raises(PgrfError, match=r"document\.zip:dataset\.json: inflates \d+ bytes to 67108864, over 100x") as error:
        import_zip(document, tmp_path / "doc", PackOptions(name="d"), ZipOptions())
    assert "\n" not in str(error.value)


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_jpeg_whose_header_is_over_the_pixel_limit_is_left_out_before_it_is_decoded(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (50, 60, 70)).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")  # SOF0: length, precision, height, width
    data[frame + 5:frame + 9] = struct.pack(">HH", 10_000, 10_000)
    small = np.full((8, 8, 3), 50, np.uint8)
    angles = {"small_000000.png": [0.1, 1.0, 0.0], "big_000000.jpg": [0.2, 1.0, 0.0]}
    archive = _zip(tmp_path / "jpeg.zip", {"small_000000.png": small, "big_000000.jpg": bytes(data)}, {"camera_angles": angles})
    with pytest.warns(Image.DecompressionBombWarning):  # Pillow warns at open; pgrf refuses before decoding
        result = import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="j", skip_bad=True, mirror=False),
                            ZipOptions())
    assert result.problems == [f"{archive}:big_000000.jpg: 10000x10000 pixels, over the limit of 89478485; not decoded "
                               "(--max-pixels raises the limit); left out"]
    assert sorted(_samples(tmp_path / "out")) == ["small_v0000"] and result.card.skipped_bad.samples == 0


def test_small_members_that_compress_well_are_not_held_to_the_ratio(tmp_path: Path) -> None:
    image = np.full((8, 8, 3), 50, np.uint8)
    archive = tmp_path / "labels.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("img000000.png", _png_bytes(image))
        document = json.dumps({"camera_angles": {"img000000.png": [0.1, 1.0, 0.0]}}, indent=2) + " " * 1_000_000
        handle.writestr("dataset.json", document)  # a MB of json, deflated far more than 100x
        info = handle.getinfo("dataset.json")
    assert info.file_size < 1 << 20 and info.file_size > 100 * info.compress_size
    result = import_zip(archive, tmp_path / "out", PackOptions(resolution=8, name="s", mirror=False), ZipOptions())
    assert result.card.counts.samples == 1
