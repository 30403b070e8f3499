"""The render stage's files (docs/formats.md): each model's ``cameras.json``, the category's
``render-log.jsonl`` and ``filters.json``, as typed contracts (pgrf.formats.schema).

No bpy here: the orchestrator, workers, tests and later stages read these files without Blender.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from pgrf import __version__, fileio
from pgrf.cameras import View
from pgrf.config import NO_HDRI, Category, RenderSettings, hdri_file
from pgrf.formats.catalog import ModelSpec
from pgrf.formats.exclude import read_exclude
from pgrf.formats.schema import FormatError, Invalid, check_matrix, from_json, to_json

CAMERAS_SCHEMA = 1
CAMERAS_FILE = "cameras.json"
LOG_FILE = "render-log.jsonl"
FILTERS_SCHEMA = 1
FILTERS_FILE = "filters.json"


class Status(StrEnum):
    """What became of one attempt at a model."""

    RENDERED = "rendered"
    SPARSE = "sparse"
    """Rendered, but its mean alpha is below the category's min_mean_alpha: kept on disk, left out of packs."""
    SKIPPED_SMALL = "skipped_small"
    """Normalised dims_product below min_dim_product: not rendered."""
    FAILED = "failed"
    TIMEOUT = "timeout"
    EXCLUDED = "excluded"
    """Named by the category's exclude file (hand-rejected): not rendered."""

    @property
    def error(self) -> bool:
        """The attempt failed and will be retried."""
        return self in (Status.FAILED, Status.TIMEOUT)


def view_file(index: int) -> str:
    return f"views/{index:04d}.png"


@dataclass(frozen=True)
class Normalisation:
    """How a model was moved and scaled into the scene bound, and its resulting extents."""

    scale: float
    offset: list[float]
    dims: list[float]
    dims_product: float


@dataclass(frozen=True)
class RenderedView:
    """One view of a model: its file, camera (docs/cameras.md) and alpha coverage."""

    index: int
    file: str
    yaw: float
    pitch: float
    c2w: list[list[float]]
    intrinsics: list[list[float]]
    alpha_coverage: float

    def __post_init__(self) -> None:
        check_matrix(self.c2w, 4, "c2w")
        check_matrix(self.intrinsics, 3, "intrinsics")


@dataclass(frozen=True)
class RenderInfo:
    """The settings a model was rendered with."""

    engine: str
    device: str
    samples: int
    adaptive_threshold: float
    denoiser: str | None
    resolution: int
    fov: float
    radius: float
    seed: int
    passes: list[str]
    hdri: str | None
    """The ``hdri`` setting: a studio light name or an image path; None: the even white world light."""
    hdri_file: str | None = None
    """The image that lit the model (a studio light's EXR in bpy's wheel); None: even white light or an older file."""
    world_strength: float = 1.0
    world_rotation: float = 0.0
    """Degrees the HDRI was turned about +Z."""
    dither: float = 1.0
    """Film dither; files written before it was recorded were rendered with Blender's default, 1.0."""


@dataclass(frozen=True)
class Cameras:
    """A finished model's ``cameras.json``."""

    schema: int
    model_id: str
    asset_id: str
    asset_name: str
    category: str
    class_name: str
    source_files: list[str]
    render: RenderInfo
    blender_version: str
    pgrf_version: str
    normalisation: Normalisation | None
    """None where the extents were never recorded (``pgrf import epigraf-renders``)."""
    mean_alpha: float
    views: list[RenderedView]

    def __post_init__(self) -> None:
        if self.schema != CAMERAS_SCHEMA:
            raise Invalid(f"schema {self.schema} is not {CAMERAS_SCHEMA}")

    def settings_differ(self, settings: RenderSettings) -> bool:
        """Whether ``settings`` would render other views (count, size or camera seed) or light them otherwise (HDRI,
        strength, rotation). Noise-level settings (samples, denoiser, dither) do not count."""
        render = self.render
        ours = (len(self.views), render.resolution, render.seed, _lighting(render.hdri, render.world_strength, render.world_rotation))
        theirs = (settings.views, settings.resolution, settings.seed,
                  _lighting(_recorded_hdri(settings), settings.world_strength, settings.world_rotation))
        return ours != theirs


def _recorded_hdri(settings: RenderSettings) -> str | None:
    return None if settings.hdri in ("", NO_HDRI) else settings.hdri


def _lighting(hdri: str | None, strength: float, rotation: float) -> tuple[str | None, float, float]:
    """What decides the look of the world light (the rotation of an even white light changes nothing)."""
    return hdri, strength, rotation if hdri else 0.0


def cameras_document(
    spec: ModelSpec,
    settings: RenderSettings,
    views: list[View],
    coverage: list[float],
    normalisation: Normalisation | None,
    device: str,
    blender_version: str,
) -> Cameras:
    """The ``cameras.json`` of one model."""
    return Cameras(
        schema=CAMERAS_SCHEMA,
        model_id=spec.model_id,
        asset_id=spec.asset_id,
        asset_name=spec.asset_name,
        category=spec.category,
        class_name=spec.class_name,
        source_files=list(spec.files),
        render=RenderInfo(
            engine="CYCLES",
            device=device,
            samples=settings.samples,
            adaptive_threshold=settings.adaptive_threshold,
            denoiser="OPENIMAGEDENOISE" if settings.denoise else None,
            resolution=settings.resolution,
            fov=settings.fov,
            radius=settings.radius,
            seed=settings.seed,
            passes=list(settings.passes),
            hdri=_recorded_hdri(settings),
            hdri_file=str(image) if (image := hdri_file(settings.hdri)) else None,
            world_strength=settings.world_strength,
            world_rotation=settings.world_rotation,
            dither=settings.dither,
        ),
        blender_version=blender_version,
        pgrf_version=__version__,
        normalisation=normalisation,
        mean_alpha=float(sum(coverage) / len(coverage)) if coverage else 0.0,
        views=[
            RenderedView(i, view_file(i), view.yaw, view.pitch, view.c2w.tolist(), view.intrinsics.tolist(), coverage[i])
            for i, view in enumerate(views)
        ],
    )


def write_cameras(model_dir: Path, cameras: Cameras) -> None:
    """Write a model's ``cameras.json``."""
    (model_dir / CAMERAS_FILE).write_text(json.dumps(to_json(cameras)), encoding="utf-8")


def read_cameras(model_dir: Path) -> Cameras:
    """A model's ``cameras.json``, validated; a bad file is a one-line error naming it and the field."""
    path = model_dir / CAMERAS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"{path}: unreadable ({type(error).__name__}); re-render the model (pgrf render --force)") from None
    return from_json(Cameras, data, str(path), "re-render the model (pgrf render --force)")


def finished_models(category_dir: Path) -> dict[str, Path]:
    """Model directories that were completed (renamed into place with their cameras.json)."""
    if not category_dir.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(category_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / CAMERAS_FILE).is_file()
    }


@dataclass(frozen=True)
class RenderRecord:
    """One line of ``render-log.jsonl``: one attempt at one model (unknown keys of other versions are ignored)."""

    OMIT_NONE: ClassVar[bool] = True

    model_id: str
    status: Status
    time: str | None = None
    """Added when the line is written."""
    asset_id: str | None = None
    category: str | None = None
    attempt: int | None = None
    device: str | None = None
    normalisation: Normalisation | None = None
    reason: str = ""
    mean_alpha: float | None = None
    views: int | None = None
    seconds: float | None = None
    worker_peak_rss_mb: float | None = None
    blender_tail: str | None = None

    def too_small_for(self, min_dim_product: float) -> bool:
        """A size-filtered model that ``min_dim_product`` would still filter out (judged from its logged normalisation)."""
        return (self.status is Status.SKIPPED_SMALL and self.normalisation is not None
                and self.normalisation.dims_product < min_dim_product)


def append_record(category_dir: Path, record: RenderRecord) -> None:
    """Append one model's record to the category's render log."""
    document = to_json(record)
    document.pop("time", None)
    fileio.append_log(category_dir, LOG_FILE, document)


def read_records(category_dir: Path) -> list[RenderRecord]:
    """Every complete record of the category's render log, oldest first (a line cut short by a crash is ignored)."""
    path = category_dir / LOG_FILE
    return [from_json(RenderRecord, data, f"{path}: record {number}", "fix or delete that line")
            for number, data in enumerate(fileio.read_log(category_dir, LOG_FILE), 1)]


def latest_status(records: list[RenderRecord]) -> dict[str, RenderRecord]:
    """The most recent record of each model."""
    return {record.model_id: record for record in records}


@dataclass(frozen=True)
class CategoryFilters:
    """A category's ``filters.json``: the filters its last ``pgrf render`` or ``pgrf import`` ran with, so that pack,
    stats and review apply the same ones without a config. Written when a run starts."""

    schema: int
    category: str
    written_by: str
    """The command that wrote it, e.g. ``pgrf render``."""
    min_mean_alpha: float
    min_dim_product: float | None
    """None where no size filter ran (imported renders)."""
    exclude: str | None
    """The exclude file the run read, as its path then; None: no exclude file."""
    exclude_sha256: str | None
    """``ExcludeList.digest`` of that file's entries, to tell whether the file is still the same."""
    pgrf_version: str

    def __post_init__(self) -> None:
        if self.schema != FILTERS_SCHEMA:
            raise Invalid(f"schema {self.schema} is not {FILTERS_SCHEMA}")


def filters_record(category: Category, min_dim_product: float | None, written_by: str) -> CategoryFilters:
    """The ``filters.json`` of a run over ``category`` (its exclude file read for the digest)."""
    exclude = read_exclude(category.exclude) if category.exclude else None
    return CategoryFilters(FILTERS_SCHEMA, category.name, written_by, category.min_mean_alpha, min_dim_product,
                           exclude.path if exclude else None, exclude.digest if exclude else None, __version__)


def write_filters(category_dir: Path, filters: CategoryFilters) -> None:
    """Write (replace) the category's ``filters.json``."""
    category_dir.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_path(category_dir / FILTERS_FILE) as partial:
        partial.write_text(json.dumps(to_json(filters), indent=1), encoding="utf-8")


def read_filters(category_dir: Path) -> CategoryFilters | None:
    """The category's recorded filters; None for renders written before pgrf recorded them."""
    path = category_dir / FILTERS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FormatError(f"{path}: unreadable ({type(error).__name__}); delete it and re-run pgrf render") from None
    return from_json(CategoryFilters, data, str(path), "delete it and re-run pgrf render")
