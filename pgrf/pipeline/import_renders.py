"""``pgrf import epigraf-renders``: EpiGRAF's published raw/filtered renders (pgrf.formats.epigraf) → a pgrf render folder.

Each model becomes ``<out>/<category>/<model_id>/`` with ``views/NNNN.png`` (symlinks to the original PNGs, or
copies with ``copy``), ``passes/NNNN_depth.exr`` and ``passes/NNNN_normal.png`` when the authors' depth and
normal files are there, and a ``cameras.json`` whose c2w come from the Blender ``transform_matrix``
(``cameras.blender_to_opencv``), yaw and pitch from those c2w (``cameras.c2w_angles``) and alpha coverage
from the PNGs. View numbers are the authors' (``000005.png`` → view 5). The category's render log gets one
record per model as ``pgrf render`` writes it (``rendered``, ``sparse`` below the category's
``min_mean_alpha``, ``excluded`` by its exclude file, ``failed``), then ``manifest.parquet`` is rebuilt, so
pack, stats, verify, export and train read the folder as any render.

Models are imported in parallel processes, each written under a temporary name and renamed into place
when complete, so Ctrl-C or a crash never leaves half a model and a re-run imports only what is missing.
A collection without a readable metadata.json, a listed file that is missing and a PNG that does not
decode are each one line naming the file; the run goes on and counts them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pgrf import __version__, fileio, paths
from pgrf.cameras import DEFAULT_FOV, DEFAULT_RADIUS, blender_to_opencv, c2w_angles, normalized_intrinsics
from pgrf.config import Category, check_category_name
from pgrf.errors import PgrfError
from pgrf.formats import manifest
from pgrf.formats import renders as records
from pgrf.formats.epigraf import DEPTH_SUFFIX, METADATA_FILE, NORMAL_SUFFIX, Frame, model_folder, read_metadata
from pgrf.formats.exclude import read_exclude
from pgrf.formats.images import BadImage, read_rgba
from pgrf.formats.renders import (
    CAMERAS_SCHEMA,
    Cameras,
    CategoryFilters,
    RenderedView,
    RenderInfo,
    RenderRecord,
    Status,
    view_file,
)
from pgrf.formats.schema import FormatError, to_json
from pgrf.pipeline.parallel import run_parallel
from pgrf.progress import QUIET, Reporter

SOURCE = "EpiGRAF renders (github.com/universome/megascans-rendering)"
BLENDER_VERSION = "2.93.10"
"""The Blender the authors rendered with (megascans-rendering README)."""


@dataclass(frozen=True)
class ModelJob:
    """One model to import: where its files are, its frames, and where it goes."""

    model_id: str
    collection: str
    name: str
    source: Path
    metadata: Path
    frames: tuple[Frame, ...]
    category: str
    category_dir: Path
    copy: bool
    min_mean_alpha: float


@dataclass
class ModelResult:
    """What became of one model: its log record and the files it had to leave out."""

    record: RenderRecord
    problems: list[str] = field(default_factory=list)


@dataclass
class Scan:
    """The models found under a root, the models the exclude file names, and what could not be read."""

    jobs: list[ModelJob] = field(default_factory=list)
    excluded: list[ModelJob] = field(default_factory=list)
    failed: list[ModelResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    collections: int = 0


@dataclass
class ImportOutcome:
    """What a run did."""

    records: list[RenderRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    finished: int = 0
    """Models an earlier run imported (left as they are)."""
    collections: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def counts(self) -> Counter:
        return Counter(r.status for r in self.records)

    @property
    def views(self) -> int:
        return sum(r.views or 0 for r in self.records)


def safe_id(name: str) -> str:
    """A model id from a folder name: letters, digits, '-' and '_' only (sample keys may not hold dots), shortened
    with a hash of the whole name beyond ``paths.MODEL_ID_BYTES``."""
    return paths.short_name(re.sub(r"[^A-Za-z0-9_-]", "_", name), paths.MODEL_ID_BYTES)


def scan(root: Path, category: Category, category_dir: Path, copy: bool) -> Scan:
    """Every collection (a folder with metadata.json) under ``root``, or ``root`` itself when it is one."""
    if not root.is_dir():
        raise PgrfError(f"{root}: no such folder; give the folder holding the collections (<root>/<collection>/metadata.json)")
    result = Scan()
    collections = [root] if (root / METADATA_FILE).is_file() else sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found: list[tuple[str, str, Path, Path, tuple[Frame, ...]]] = []
    for collection_dir in collections:
        try:
            metadata = read_metadata(collection_dir)
        except FormatError as error:
            result.problems.append(str(error))
            continue
        result.collections += 1
        listed = set()
        for name, frames in sorted(metadata.models.items()):
            folder = frames[0].folder if frames else model_folder(name)
            listed.add(folder)
            found.append((collection_dir.name, name, collection_dir / folder, collection_dir / METADATA_FILE, tuple(frames)))
        for extra in sorted(p.name for p in collection_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if extra not in listed:
                result.problems.append(f"{collection_dir / extra}: not in {collection_dir / METADATA_FILE}; left out "
                                       "(add its frames to metadata.json to import it)")
    if not found and not result.problems:
        raise PgrfError(f"{root}: no collections (<root>/<collection>/metadata.json); give the folder of EpiGRAF's renders")
    names = Counter(safe_id(source.name) for _, _, source, _, _ in found)
    rejected = read_exclude(category.exclude) if category.exclude else None
    for collection, name, source, metadata_path, frames in found:
        model_id = safe_id(source.name) if names[safe_id(source.name)] == 1 else safe_id(f"{collection}_{source.name}")
        job = ModelJob(model_id, collection, name, source, metadata_path, frames, category.name, category_dir, copy,
                       category.min_mean_alpha)
        if rejected is not None and rejected.matches(model_id, collection):
            result.excluded.append(job)
        elif not source.is_dir() or not frames:
            reason = (f"{source}: listed in {metadata_path} but missing" if not source.is_dir()
                      else f"{metadata_path}: model '{name}' lists no frames")
            result.problems.append(reason)
            result.failed.append(ModelResult(RenderRecord(model_id, Status.FAILED, asset_id=collection, reason=reason,
                                                          seconds=0.0)))
        else:
            result.jobs.append(job)
    return result


def import_model(job: ModelJob) -> ModelResult:
    """Import one model into a temporary folder and rename it into place; returns its record and problems."""
    start = time.monotonic()
    work = job.category_dir / fileio.temporary_name(job.model_id)
    shutil.rmtree(work, ignore_errors=True)
    (work / "views").mkdir(parents=True)
    problems: list[str] = []
    views: list[RenderedView] = []
    resolution = 0
    passes = {"depth": True, "normal": True}
    try:
        for position, frame in enumerate(job.frames):
            png = job.source / f"{frame.stem}.png"
            index = int(frame.stem) if frame.stem.isdigit() else position
            if any(v.index == index for v in views):
                problems.append(f"{job.metadata}: model '{job.name}' lists view {frame.stem} twice; the repeat left out")
                continue
            if not png.is_file():
                problems.append(f"{png}: listed in {job.metadata} but missing; view left out")
                continue
            try:
                alpha = read_rgba(png)[..., 3]
            except BadImage as error:
                problems.append(f"{error}; view left out")
                continue
            size = alpha.shape[0]
            if alpha.shape[0] != alpha.shape[1] or (resolution and size != resolution):
                problems.append(f"{png}: {alpha.shape[1]}×{alpha.shape[0]}, not square {resolution or size}²; view left out")
                continue
            resolution = size
            _place(png, work / view_file(index), job.copy)
            for name, suffix, target in (("depth", DEPTH_SUFFIX, f"{index:04d}_depth.exr"),
                                         ("normal", NORMAL_SUFFIX, f"{index:04d}_normal.png")):
                extra = job.source / f"{frame.stem}{suffix}"
                if extra.is_file():
                    _place(extra, work / "passes" / target, job.copy)
                else:
                    passes[name] = False
            c2w = blender_to_opencv(np.array(frame.transform_matrix, float))
            yaw, pitch, _ = c2w_angles(c2w)
            intrinsics = normalized_intrinsics(frame.fov if frame.fov is not None else DEFAULT_FOV)
            views.append(RenderedView(index, view_file(index), yaw, pitch, c2w.tolist(), intrinsics.tolist(),
                                      float(np.mean(alpha, dtype=np.float64) / 255.0)))
        record = RenderRecord(job.model_id, Status.FAILED, asset_id=job.collection, device="imported")
        if not views:
            shutil.rmtree(work, ignore_errors=True)
            return ModelResult(replace(record, reason=f"{job.source}: no readable views", seconds=time.monotonic() - start),
                               problems)
        doc = _cameras(job, views, resolution, [name for name, present in passes.items() if present])
        records.write_cameras(work, doc)
        final = job.category_dir / job.model_id
        if final.exists():  # another run finished it meanwhile: keep that one
            shutil.rmtree(work)
        else:
            os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # no-op once moved into place
    imported = _record(doc, job.min_mean_alpha, problems)
    return ModelResult(replace(imported, seconds=time.monotonic() - start), problems)


def _record(doc: Cameras, min_mean_alpha: float, problems: Sequence[str] = ()) -> RenderRecord:
    """The log record of an imported model: ``rendered``, or ``sparse`` below the category's min_mean_alpha."""
    sparse = doc.mean_alpha < min_mean_alpha
    reasons = ([f"mean_alpha {doc.mean_alpha:.4f} < min_mean_alpha {min_mean_alpha}"] if sparse else []) + list(problems)
    return RenderRecord(doc.model_id, Status.SPARSE if sparse else Status.RENDERED, asset_id=doc.asset_id, device="imported",
                        reason="; ".join(reasons), mean_alpha=doc.mean_alpha, views=len(doc.views), seconds=0.0)


def _place(source: Path, target: Path, copy: bool) -> None:
    """Copy ``source`` to ``target``, or link it there (an absolute link, so the folder can be moved)."""
    target.parent.mkdir(exist_ok=True)
    if copy:
        shutil.copyfile(source, target)
    else:
        target.symlink_to(source.resolve())


def _cameras(job: ModelJob, views: list[RenderedView], resolution: int, passes: list[str]) -> Cameras:
    first = job.frames[0]
    radius = first.camera_radius if first.camera_radius is not None else float(
        np.mean([np.linalg.norm(np.array(v.c2w)[:3, 3]) for v in views]))
    fov = first.fov if first.fov is not None else DEFAULT_FOV
    return Cameras(
        schema=CAMERAS_SCHEMA,
        model_id=job.model_id,
        asset_id=job.collection,
        asset_name=job.name,
        category=job.category,
        class_name=job.collection,
        source_files=[str(job.metadata), str(job.source)],
        render=RenderInfo(engine=f"CYCLES, imported from {SOURCE}", device="imported", samples=0, adaptive_threshold=0.0,
                          denoiser=None, resolution=resolution, fov=fov, radius=radius if radius else DEFAULT_RADIUS,
                          seed=0, passes=passes, hdri=None, dither=0.0),
        blender_version=BLENDER_VERSION,
        pgrf_version=__version__,
        normalisation=None,  # the authors scaled each object to a largest extent of 2; extents were not recorded
        mean_alpha=float(np.mean([v.alpha_coverage for v in views])),
        views=sorted(views, key=lambda v: v.index),
    )


def import_renders(root: Path, category: Category, out: Path, *, copy: bool = False, workers: int = 1,
                   reporter: Reporter = QUIET) -> ImportOutcome:
    """Import every model under ``root`` into ``out/<category>`` (resuming an earlier run); returns what was done.
    Each problem is also a ``problem`` note to ``reporter``, which gets the task ``import`` (models imported).
    The category folder is locked meanwhile (fileio.output_lock): an import of another root, or a render, stops there."""
    check_category_name(category.name, str(out))
    category_dir = out / category.name
    filters = records.filters_record(category, None, "pgrf import epigraf-renders")
    shaping = {"root": str(root.resolve()), "copy": copy, "filters": to_json(filters)}
    with fileio.output_lock(category_dir, "pgrf import epigraf-renders", shaping):
        return _import(root, category, category_dir, filters, copy, workers, reporter)


def _import(root: Path, category: Category, category_dir: Path, filters: CategoryFilters, copy: bool, workers: int,
            reporter: Reporter) -> ImportOutcome:
    """import_renders' work, with ``category_dir`` held."""
    fileio.remove_stale_work(category_dir)
    records.write_filters(category_dir, filters)
    start = time.monotonic()
    found = scan(root, category, category_dir, copy)
    outcome = ImportOutcome(problems=list(found.problems), collections=found.collections)
    for problem in found.problems:
        reporter.note(problem, kind="problem")
    attempts = Counter(r.model_id for r in records.read_records(category_dir))

    def log(job_collection: str, result: ModelResult) -> None:
        model_id = result.record.model_id
        attempts[model_id] += 1
        record = replace(result.record, asset_id=job_collection, category=category.name, attempt=attempts[model_id])
        records.append_record(category_dir, record)
        outcome.records.append(record)
        for problem in result.problems:
            outcome.problems.append(problem)
            reporter.note(problem, kind="problem")

    for result in found.failed:
        log(result.record.asset_id or "", replace(result, problems=[]))
    for job in found.excluded:
        log(job.collection, ModelResult(RenderRecord(job.model_id, Status.EXCLUDED, reason=f"in {category.exclude}",
                                                     seconds=0.0)))
    finished = records.finished_models(category_dir)
    todo = [job for job in found.jobs if job.model_id not in finished]
    outcome.finished = len(found.jobs) - len(todo)
    for job in found.jobs:  # put in place by a run stopped before it logged them
        if job.model_id in finished and not attempts[job.model_id]:
            log(job.collection, ModelResult(_record(records.read_cameras(finished[job.model_id]), job.min_mean_alpha)))
    try:
        for job, result in run_parallel(todo, import_model, workers, "import", reporter,
                                        "finished models are in place and logged"):
            log(job.collection, result)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        fileio.remove_stale_work(category_dir)
        manifest.write_manifest(category_dir)
    outcome.seconds = time.monotonic() - start
    if outcome.interrupted:
        raise KeyboardInterrupt
    return outcome
