"""``pgrf export``: shards → a StyleGAN-family dataset zip (StyleGAN2-ADA, EG3D, EpiGRAF loaders).

The zip is uncompressed (ZIP_STORED) and holds one PNG per sample, copied byte for byte from the
shards, named ``<model_id>/<key>.png`` (the sample key of docs/formats.md, so every image traces back
to its shard sample and render), plus ``dataset.json`` at the root with

- ``labels``: ``[[file, label], …]`` sorted by file, where label is either EG3D's 25-float camera
  label — the OpenCV camera-to-world matrix (16, row-major) followed by the normalised intrinsics
  (9, row-major), exactly the sample's ``c2w`` and ``intrinsics`` — or the class index (int);
- ``camera_angles``: ``{file: [yaw, pitch, 0]}`` in EpiGRAF's convention (see ``pgrf.cameras.epigraf_angles``);
- ``pgrf``: the source card's name, resolution, class names, each model's class index (``model_classes``, so
  ``pgrf import zip`` gets classes back from camera-labelled zips too), camera model and these conventions.

Members are written in shard order with fixed timestamps and attributes, so the same shards give a
byte-identical zip; the file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import itertools
import json
import math
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pgrf.cameras import epigraf_angles
from pgrf.errors import PgrfError
from pgrf.fileio import atomic_path
from pgrf.formats.card import DatasetCard, read_card
from pgrf.formats.schema import to_json
from pgrf.formats.shards import SampleMeta
from pgrf.formats.stylegan import ExportCamera, ExportNote
from pgrf.pipeline.options import ExportOptions
from pgrf.pipeline.shards import iter_samples
from pgrf.progress import QUIET, Reporter

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Every member's timestamp (the earliest a zip can hold), so the same shards give the same bytes."""


@dataclass(frozen=True)
class ExportResult:
    """What ``export_zip`` wrote."""

    path: Path
    images: int
    labels: str
    resolution: int
    size_bytes: int


def camera_label(c2w: Any, intrinsics: Any) -> list[float]:
    """EG3D's 25-float label: OpenCV c2w (4×4, row-major) then normalised K (3×3, row-major)."""
    return [float(x) for x in np.asarray(c2w, float).reshape(16)] + [float(x) for x in np.asarray(intrinsics, float).reshape(9)]


def image_name(model_id: str, key: str) -> str:
    """The zip member of one sample: ``<model_id>/<key>.png``."""
    return f"{model_id}/{key}.png"


def export_zip(shards_dir: Path, out: Path, labels: str = "camera", reporter: Reporter = QUIET) -> ExportResult:
    """Write the shards' samples to the dataset zip ``out`` with ``labels`` (``ExportOptions.labels``), reporting the
    task ``export`` (images written); returns what was written."""
    labels = ExportOptions(labels).labels
    if out.suffix.lower() != ".zip":
        raise PgrfError(f"{out}: the output must be a .zip file (StyleGAN-family loaders need the extension)")
    card = read_card(shards_dir)
    paths = [shards_dir / entry.file for entry in card.shards]
    for path in paths:
        if not path.is_file():
            raise PgrfError(f"{path}: listed in dataset.json but missing; re-run pgrf pack")
    out.parent.mkdir(parents=True, exist_ok=True)
    label_of: dict[str, Any] = {}
    angles: dict[str, list[float]] = {}
    classes: dict[str, int] = {}
    with atomic_path(out) as partial:
        with (zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
              reporter.task("export", total=sum(e.samples for e in card.shards), unit="images") as advance):
            for path, entry in zip(paths, card.shards):
                count = 0
                for key, png, meta in _samples(path):
                    name = image_name(meta.model_id, key)
                    if name.split("/", 1)[0] == out.stem:
                        raise PgrfError(f"{out}: model {meta.model_id} has the zip's own name, which loaders strip "
                                        "from file names; choose another --out name")
                    if name in label_of:
                        raise PgrfError(f"{path}: sample {key} appears twice in the shards; run pgrf verify")
                    _write(archive, name, png)
                    label_of[name] = (np.array(camera_label(meta.c2w, meta.intrinsics)) if labels == "camera"
                                      else meta.class_index)
                    angles[name] = epigraf_angles(meta.yaw, meta.pitch)
                    classes[meta.model_id] = meta.class_index
                    count += 1
                    advance()
                if count != entry.samples:
                    raise PgrfError(f"{path}: {count} samples, dataset.json says {entry.samples}; run pgrf verify")
            _write_document(archive, card, labels, label_of, angles, classes)
    return ExportResult(out, len(label_of), labels, card.resolution, out.stat().st_size)


def _samples(path: Path) -> Iterator[tuple[str, bytes, SampleMeta]]:
    """(key, png bytes, json metadata) of each sample of one shard, in tar order."""
    try:
        for key, members in iter_samples(path):
            yield _sample(path, key, members)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise PgrfError(f"{path}: not a readable tar ({type(error).__name__}); run pgrf verify, then re-run pgrf pack") from None


def _sample(path: Path, key: str, members: dict[str, bytes]) -> tuple[str, bytes, SampleMeta]:
    if "png" not in members or "json" not in members:
        raise PgrfError(f"{path}: sample {key} lacks its png or json member; run pgrf verify")
    return key, members["png"], SampleMeta.parse(members["json"], f"{path}: sample {key}")


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type, info.create_system, info.external_attr = zipfile.ZIP_STORED, 3, 0o644 << 16
    return info


def _write(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    archive.writestr(_info(name), data)


def _write_document(archive: zipfile.ZipFile, card: DatasetCard, labels: str, label_of: dict[str, Any],
                    angles: dict[str, list[float]], classes: dict[str, int]) -> None:
    """``dataset.json``, streamed in chunks so a large dataset never becomes one JSON tree in memory."""
    names = sorted(label_of)
    labelled = (json.dumps([n, label_of[n] if labels == "class" else label_of[n].tolist()]) for n in names)
    angled = (f"{json.dumps(n)}: {json.dumps(angles[n])}" for n in names)
    with archive.open(_info("dataset.json"), "w") as handle:
        handle.write(b'{"labels": [')
        _write_joined(handle, labelled)
        handle.write(b'], "camera_angles": {')
        _write_joined(handle, angled)
        handle.write(f'}}, "pgrf": {json.dumps(to_json(_conventions(card, labels, classes)))}}}'.encode())


def _write_joined(handle: IO[bytes], items: Iterator[str], chunk: int = 4096) -> None:
    """Write items separated by ", ", a chunk at a time."""
    first = True
    while batch := list(itertools.islice(items, chunk)):
        handle.write(((", " if not first else "") + ", ".join(batch)).encode())
        first = False


def _conventions(card: DatasetCard, labels: str, classes: dict[str, int]) -> ExportNote:
    """The ``pgrf`` entry of dataset.json: where the data came from and what labels and angles mean."""
    return ExportNote(
        source=card.name, resolution=card.resolution, class_names=card.class_names,
        camera=ExportCamera(radius=card.camera.radius, fov=card.camera.fov, fov_degrees=math.degrees(card.camera.fov)),
        model_classes=dict(sorted(classes.items())),
        labels="camera: OpenCV c2w (16, row-major) + normalised K (9, row-major), pgrf world (+Z up)"
               if labels == "camera" else "class: index into class_names",
        camera_angles="EpiGRAF [yaw, pitch, roll] = [-pgrf_yaw wrapped to [-pi, pi), pgrf_pitch, 0]; "
                      "EpiGRAF world = pgrf world rotated by (x, y, z) -> (x, z, -y)",
    )

