"""``dataset.json`` of StyleGAN-family dataset zips (StyleGAN2-ADA ``dataset_tool.py``, EG3D, EpiGRAF):

- ``labels``: ``[[file, label], …]`` (StyleGAN2-ADA, EG3D) or ``{file: label}`` (EpiGRAF's
  ``prepare_for_training.py``), or null; a label is a class index or EG3D's 25 floats (c2w 16 + K 9);
- ``camera_angles``: ``{file: [yaw, pitch, roll]}`` (EpiGRAF), in either form;
- ``pgrf``: what ``pgrf export`` adds (source, resolution, class names, camera model, conventions).

File names are the zip members' paths; loaders match them after dropping the extension and a leading
folder named like the zip (EpiGRAF ``src/training/dataset.py`` at bda8d47), which ``match_names`` does too; the
authors' ``prepare_for_training.py`` (megascans-rendering at c6a34ad) writes ``camera_angles`` keys
``<collection>/<object name>/<NNNNNN>.png`` for images it stores flattened as ``<collection>/<folder>_<NNNNNN>.png``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

from pgrf.formats.schema import FormatError, Invalid, from_json

DATASET_FILE = "dataset.json"
EG3D_LABEL_SIZE = 25
FIX = "give a dataset.json with 'labels' as [[file, label], …] and optional 'camera_angles' {file: [yaw, pitch, roll]}"


@dataclass(frozen=True)
class ExportCamera:
    radius: float
    fov: float
    fov_degrees: float | None = None


@dataclass(frozen=True)
class ExportNote:
    """The ``pgrf`` entry ``pgrf export`` writes: where the data came from and what labels and angles mean."""

    source: str
    resolution: int
    class_names: list[str]
    camera: ExportCamera
    model_classes: dict[str, int] | None = None
    """Each model's class index (pgrf ≥ the import feature; older exports lack it)."""
    labels: str | None = None
    """What a label is, in words."""
    camera_angles: str | None = None
    """What ``camera_angles`` hold, in words."""


@dataclass(frozen=True)
class StyleganDataset:
    """A zip's ``dataset.json``, with both spellings of ``labels`` and ``camera_angles`` made ``{file: value}``."""

    labels: Any = None
    camera_angles: Any = None
    pgrf: ExportNote | None = None

    def __post_init__(self) -> None:
        for name, label in self.label_of.items():
            if not (_is_class(label) or _is_camera(label)):
                raise Invalid(f"field 'labels.{name}' must be a class index or {EG3D_LABEL_SIZE} numbers")
        for name, value in self.angles_of.items():
            if not (isinstance(value, list) and len(value) in (2, 3) and all(_number(v) for v in value)):
                raise Invalid(f"field 'camera_angles.{name}' must be [yaw, pitch, roll]")

    @cached_property
    def label_of(self) -> dict[str, int | list[float]]:
        """Each file's label: a class index or EG3D's 25 floats."""
        return _as_dict(self.labels, "labels")

    @cached_property
    def angles_of(self) -> dict[str, list[float]]:
        """Each file's ``[yaw, pitch, roll]``."""
        return _as_dict(self.camera_angles, "camera_angles")


def parse_dataset(data: bytes, where: str) -> StyleganDataset:
    """A zip's dataset.json, validated; a bad one is a FormatError naming ``where`` and the field."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"{where}: not valid JSON ({type(error).__name__}); {FIX}") from None
    return from_json(StyleganDataset, document, where, FIX)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_class(label: Any) -> bool:
    return isinstance(label, int) and not isinstance(label, bool) and label >= 0


def _is_camera(label: Any) -> bool:
    return isinstance(label, list) and len(label) == EG3D_LABEL_SIZE and all(_number(v) for v in label)


def _as_dict(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return dict(value)
    raise Invalid(f"field '{name}' must be [[file, value], …] or {{file: value}}")


def name_key(name: str, root: str = "") -> str:
    """How loaders compare file names: '/' separators, no extension, no leading ``root/`` folder."""
    path = name.replace("\\", "/").lstrip("/")
    if root and path.startswith(root + "/"):
        path = path[len(root) + 1:]
    return str(PurePosixPath(path).with_suffix("")) if PurePosixPath(path).suffix else path


def key_spellings(key: str) -> list[str]:
    """The ways one dataset.json key may name an image: as written, with spaces made underscores (the authors'
    folder names), and with its model folder flattened into the file name (``<collection>/<model>_<NNNNNN>``,
    megascans-rendering ``copy_files(flatten_parent_dir=True)``)."""
    spellings = [key, key.replace(" ", "_")]
    for spelling in list(spellings):
        parts = spelling.split("/")
        if len(parts) >= 2:
            spellings.append("/".join(parts[:-2] + [f"{parts[-2]}_{parts[-1]}"]))
    return list(dict.fromkeys(spellings))


def match_names(images: list[str], keys: list[str]) -> tuple[dict[str, str], list[str]]:
    """Map each image member to the dataset.json key that names it; returns (image → key, unmatched keys).

    Both sides are compared as ``name_key``s; image names are tried without their first folder too (the zip's
    top folder, which EpiGRAF's loader strips when it is named like the zip)."""
    lookup: dict[str, str] = {}
    for image in images:
        full = name_key(image)
        lookup.setdefault(full, image)
        if "/" in full:
            lookup.setdefault(full.split("/", 1)[1], image)
    matched: dict[str, str] = {}
    unmatched = []
    for key in keys:
        image = next((lookup[s] for s in key_spellings(name_key(key)) if s in lookup), None)
        if image is None or image in matched:
            unmatched.append(key)
        else:
            matched[image] = key
    return matched, unmatched
