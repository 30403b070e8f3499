"""`pgrf export`: StyleGAN-family zip with EG3D camera labels or class labels and EpiGRAF camera angles."""

from __future__ import annotations

import io
import json
import math
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pgrf import cameras
from pgrf.cameras import EPIGRAF_FROM_PGRF, epigraf_angles
from pgrf.config import load_config
from pgrf.errors import PgrfError
from pgrf.pipeline.export import _write_joined, export_zip
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from tests.helpers import CONFIG


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    plants = fake_renders(root / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=3)
    food = fake_renders(root / "renders", "food", {"apple": 0.7}, views=3)
    pack([plants, food], root / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5, name="mix"))
    return root / "shards"


def _tar_samples(shards: Path) -> dict[str, tuple[bytes, dict]]:
    """key → (png bytes, json metadata) of every sample in the shards."""
    card = json.loads((shards / "dataset.json").read_text())
    samples = {}
    for entry in card["shards"]:
        with tarfile.open(shards / entry["file"]) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        for name, data in members.items():
            if name.endswith(".png"):
                key = name[:-4]
                samples[key] = (data, json.loads(members[f"{key}.json"]))
    return samples


def _epigraf_c2w(yaw: float, pitch: float, radius: float) -> np.ndarray:
    """EpiGRAF's camera (Y up, OpenGL axes: x right, y up, z back) at its [yaw, pitch], written from its formula."""
    origin = radius * np.array([math.sin(pitch) * math.cos(yaw), math.cos(pitch), math.sin(pitch) * math.sin(yaw)])
    forward = -origin / np.linalg.norm(origin)
    left = np.cross([0.0, 1.0, 0.0], forward)
    left /= np.linalg.norm(left)
    up = np.cross(forward, left)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = -left, up, -forward, origin
    return c2w


def test_camera_labels_and_angles_round_trip(shards: Path, tmp_path: Path) -> None:
    result = export_zip(shards, tmp_path / "cams.zip", labels="camera")
    samples = _tar_samples(shards)
    assert result.images == len(samples) == 18 and result.resolution == 16
    with zipfile.ZipFile(tmp_path / "cams.zip") as archive:
        assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
        doc = json.loads(archive.read("dataset.json"))
        labels = dict(doc["labels"])
        assert sorted(archive.namelist()) == sorted([*labels, "dataset.json"]) and set(doc["camera_angles"]) == set(labels)
        for key, (png, meta) in samples.items():
            name = f"{meta['model_id']}/{key}.png"
            assert archive.read(name) == png  # copied, not re-encoded
            label = np.array(labels[name])
            assert label.shape == (25,)
            assert np.array_equal(label[:16].reshape(4, 4), meta["c2w"]) and np.array_equal(label[16:].reshape(3, 3), meta["intrinsics"])
            yaw, pitch, roll = doc["camera_angles"][name]
            assert (pitch, roll) == (meta["pitch"], 0.0) and -math.pi <= yaw < math.pi
            assert math.isclose(math.cos(yaw), math.cos(meta["yaw"])) and math.isclose(math.sin(yaw), -math.sin(meta["yaw"]))
    assert doc["pgrf"]["camera"]["radius"] == 3.5


def test_epigraf_angles_give_the_same_camera_in_epigraf_world(shards: Path) -> None:
    """A point seen by our camera at pixel (u, v) is seen at (u, v) by EpiGRAF's camera from the exported angles."""
    assert np.isclose(np.linalg.det(EPIGRAF_FROM_PGRF), 1.0)  # a rotation, not a reflection
    points = np.random.default_rng(0).uniform(-1, 1, (50, 3))
    rotated = points @ EPIGRAF_FROM_PGRF[:3, :3].T
    for _, meta in _tar_samples(shards).values():
        ours, _ = cameras.project(points, meta["c2w"], meta["intrinsics"], 16)
        yaw, pitch, _ = epigraf_angles(meta["yaw"], meta["pitch"])
        opencv = _epigraf_c2w(yaw, pitch, meta["radius"]) @ np.diag([1.0, -1.0, -1.0, 1.0])
        theirs, _ = cameras.project(rotated, opencv, meta["intrinsics"], 16)
        assert np.allclose(ours, theirs, atol=1e-6)
    assert epigraf_angles(-math.pi, 1.0)[0] == -math.pi  # wrapped into [-π, π)
    mirrored = cameras.mirror_angles(0.3, 1.0)
    assert epigraf_angles(*mirrored)[0] == -epigraf_angles(0.3, 1.0)[0]  # EpiGRAF's x-flip negates yaw, as our mirror does


def test_class_labels(shards: Path, tmp_path: Path) -> None:
    export_zip(shards, tmp_path / "classes.zip", labels="class")
    with zipfile.ZipFile(tmp_path / "classes.zip") as archive:
        doc = json.loads(archive.read("dataset.json"))
    labels = dict(doc["labels"])
    for key, (_, meta) in _tar_samples(shards).items():
        assert labels[f"{meta['model_id']}/{key}.png"] == meta["class"]
    assert np.array(list(labels.values())).ndim == 1 and set(labels.values()) == {0, 1}
    assert doc["pgrf"]["class_names"] == ["class0", "class1"]


def test_same_shards_give_the_same_zip(shards: Path, tmp_path: Path) -> None:
    export_zip(shards, tmp_path / "one" / "data.zip")
    export_zip(shards, tmp_path / "two" / "data.zip")
    assert (tmp_path / "one" / "data.zip").read_bytes() == (tmp_path / "two" / "data.zip").read_bytes()
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["data.zip"]  # no temporary file left
    with zipfile.ZipFile(tmp_path / "one" / "data.zip") as archive:
        first = archive.namelist()[0]
        assert Image.open(io.BytesIO(archive.read(first))).size == (16, 16)
    joined = io.BytesIO()
    _write_joined(joined, iter(["1", "2", "3", "4", "5"]), chunk=2)  # dataset.json is streamed in chunks
    assert joined.getvalue() == b"1, 2, 3, 4, 5"


def test_bad_shards_are_one_line_errors(shards: Path, tmp_path: Path) -> None:
    with pytest.raises(PgrfError, match="no such shard folder"):
        export_zip(tmp_path / "missing", tmp_path / "out.zip")
    with pytest.raises(PgrfError, match="must be a .zip"):
        export_zip(shards, tmp_path / "out.tar")
    with pytest.raises(PgrfError, match="--labels must be one of camera, class"):
        export_zip(shards, tmp_path / "out.zip", labels="pose")
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in shards.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    first = json.loads((shards / "dataset.json").read_text())["shards"][0]["file"]
    (broken / first).write_bytes((broken / first).read_bytes()[:700])  # truncated inside the first member
    with pytest.raises(PgrfError, match=rf"{first}: not a readable tar .*run pgrf verify") as error:
        export_zip(broken, tmp_path / "out.zip")
    assert "\n" not in str(error.value) and not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".tmp-*"))
    (broken / first).unlink()
    with pytest.raises(PgrfError, match="listed in dataset.json but missing"):
        export_zip(broken, tmp_path / "out.zip")
