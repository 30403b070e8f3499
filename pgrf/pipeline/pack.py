"""``pgrf pack``: finished renders → shuffled WebDataset shards, ``index.parquet`` and ``dataset.json``.

Every view becomes a sample ``<model_id>_v<view>`` (plus ``_m`` for its mirrored copy, whose image is
flipped and whose camera is ``S · c2w · F``, docs/cameras.md). The shard plan (pgrf.pipeline.plan) fixes
every shard's samples from the inputs and the seed; shards are written in parallel by worker
processes, each under a temporary name renamed when complete, and journaled in ``.pack-journal.jsonl``
so a re-run after an interruption keeps the finished shards and writes only the rest.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pgrf import __version__, fileio
from pgrf.config import Config
from pgrf.errors import PgrfError
from pgrf.formats import manifest
from pgrf.formats import renders as records
from pgrf.formats.card import CARD_SCHEMA, CameraModel, Counts, DatasetCard, Filters, ShardEntry, SkippedBad, write_card
from pgrf.formats.renders import Cameras, Status
from pgrf.formats.shards import INDEX_FILE, SampleMeta, ShardRecord, index_row
from pgrf.limits import MAX_PIXELS
from pgrf.pipeline.encode import EncodeSettings, encode_shard
from pgrf.pipeline.filters import AppliedFilters, category_filters
from pgrf.pipeline.options import PackOptions
from pgrf.pipeline.plan import Sample, ShardPlan, plan_shards
from pgrf.pipeline.shards import sha256
from pgrf.processes import exit_with_parent
from pgrf.progress import QUIET, Reporter


@dataclass
class Collected:
    """The samples of the included models, class names, what the filters removed, and lines the user should see."""

    samples: list[Sample]
    classes: list[str]
    models: int
    removed: dict[str, int]
    thresholds: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def collect(render_dirs: list[Path], config: Config, options: PackOptions) -> Collected:
    """Read every finished model of the render folders; leave out excluded and sparse models; number the classes.

    Each category's filters are decided by ``pipeline.filters.category_filters``. ``exclude`` counts the models the
    categories' exclude files name now (finished ones are left out) and those the render log says were excluded and
    never rendered."""
    included: list[tuple[Path, Cameras]] = []
    removed = {"min_mean_alpha": 0, "min_dim_product": 0, "exclude": 0}
    thresholds: dict[str, Any] = {"min_mean_alpha": {}, "min_dim_product": {}, "exclude": {}}
    notes: list[str] = []
    seen: dict[str, Path] = {}
    for category_dir in render_dirs:
        if not category_dir.is_dir():
            raise PgrfError(f"{category_dir}: no such render folder; give renders/<category> folders written by pgrf render")
        finished = records.finished_models(category_dir)
        if not finished:
            raise PgrfError(f"{category_dir}: no finished models (model folders with cameras.json); run pgrf render first")
        log = records.latest_status(records.read_records(category_dir))
        removed["min_dim_product"] += sum(1 for r in log.values() if r.status is Status.SKIPPED_SMALL)
        removed["exclude"] += sum(1 for r in log.values() if r.status is Status.EXCLUDED and r.model_id not in finished)
        decided: dict[str, AppliedFilters] = {}
        for model_id, model_dir in finished.items():
            doc = records.read_cameras(model_dir)
            if doc.category not in decided:
                decided[doc.category] = filters = category_filters(category_dir, doc.category, config, options.min_mean_alpha)
                notes += [filters.note] if filters.note else []
                thresholds["min_mean_alpha"][doc.category] = filters.min_mean_alpha or 0.0
                thresholds["min_dim_product"][doc.category] = filters.min_dim_product
                if filters.exclude:
                    thresholds["exclude"][doc.category] = filters.exclude.path
            filters = decided[doc.category]
            if filters.exclude and filters.exclude.matches(doc.model_id, doc.asset_id):
                removed["exclude"] += 1
                continue
            if doc.mean_alpha < (filters.min_mean_alpha or 0.0):
                removed["min_mean_alpha"] += 1
                continue
            if model_id in seen:
                raise PgrfError(f"model id {model_id} is in both {seen[model_id]} and {category_dir}; pack them separately")
            seen[model_id] = category_dir
            included.append((model_dir, doc))
    cameras = {(doc.render.radius, doc.render.fov) for _, doc in included}
    if len(cameras) > 1:
        raise PgrfError(f"the renders use different camera models (radius, fov): {sorted(cameras)}; pack them separately")
    classes = sorted({doc.class_name for _, doc in included})
    samples = [s for model_dir, doc in included for s in _samples(model_dir, doc, classes.index(doc.class_name), options)]
    return Collected(samples, classes, len(included), removed, thresholds, notes)


def _samples(model_dir: Path, doc: Cameras, class_index: int, options: PackOptions) -> list[Sample]:
    samples = []
    for view in doc.views:
        meta = SampleMeta(model_id=doc.model_id, asset_id=doc.asset_id, category=doc.category, class_index=class_index,
                          class_name=doc.class_name, view=view.index, yaw=view.yaw, pitch=view.pitch,
                          radius=doc.render.radius, fov=doc.render.fov, c2w=view.c2w, intrinsics=view.intrinsics,
                          mirrored=False, resolution=options.resolution)
        samples.append(Sample(model_dir / view.file, meta, doc.mean_alpha))
        if options.mirror:
            samples.append(Sample(model_dir / view.file, meta.mirrored_copy(), doc.mean_alpha))
    return samples


def default_render_dirs(root: Path) -> list[Path]:
    """The category folder to pack when none is given: ``root`` (``renders/``) itself or its one category; several
    are a one-line error listing them, never one dataset of all."""
    found = manifest.categories(root) if root.is_dir() else []
    if not found:
        raise PgrfError(f"no renders given and no category folder in {root}/; give renders/<category> folders "
                        "written by pgrf render, e.g. pgrf pack renders/plants --out shards/plants")
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise PgrfError(f"{root}/ holds {len(found)} categories ({names}); pack one, e.g. pgrf pack {found[0]} "
                        f"--out shards/{found[0].name}, or name several to pack them into one dataset")
    return found


def pack(render_dirs: list[Path], out: Path, config: Config, options: PackOptions, reporter: Reporter = QUIET) -> DatasetCard:
    """Write shards, index and card to ``out`` (resuming an interrupted run; shards named after the first render folder
    unless ``options.name`` is set); returns the card. The filters' notes and the task ``pack`` (samples written) go
    to ``reporter``."""
    options = replace(options, name=options.name or render_dirs[0].name)
    collected = collect(render_dirs, config, options)
    for note in collected.notes:
        reporter.note(note)
    if not collected.samples:
        raise PgrfError("every model was filtered out (min_mean_alpha); nothing to pack")
    return write_dataset(collected, out, options, [str(d) for d in render_dirs], reporter)


def write_dataset(collected: Collected, out: Path, options: PackOptions, inputs: list[str],
                  reporter: Reporter = QUIET, max_pixels: int = MAX_PIXELS, command: str = "pgrf pack") -> DatasetCard:
    """Write the collected samples to ``out`` as shards, index and card (resuming an interrupted run); ``inputs``
    name where they came from (``pgrf pack``: the render folders, ``pgrf import zip``: the zip). The task ``pack``
    counts the samples of the shards written now; source images over ``max_pixels`` are not decoded. ``out`` is locked
    meanwhile for ``command`` (fileio.output_lock): a concurrent writer with other options or inputs stops with one line."""
    settings = EncodeSettings(options.resolution, options.background, options.skip_bad, max_pixels)
    digest_settings = {"resolution": options.resolution, "background": options.background}
    plans = plan_shards(collected.samples, options.samples_per_shard, options.seed, options.name, digest_settings)
    shaping = {**{k: v for k, v in asdict(options).items() if k != "workers"}, "inputs": [str(Path(i).resolve()) for i in inputs]}
    with fileio.output_lock(out, command, shaping):
        fileio.remove_stale_work(out)
        _remove_outdated_shards(out, options.name, {p.file for p in plans})
        finished = _finished_shards(out, plans, options.skip_bad)
        todo = [p for p in plans if p.file not in finished]
        results = {**finished, **_write_shards(out, todo, settings, options.workers, reporter)}
        ordered = [results[p.file] for p in plans]
        written = [_written(plan, set(result.keys)) for plan, result in zip(plans, ordered)]
        rows = [index_row(sample.meta, plan.file, position, sample.mean_alpha)
                for plan, samples in zip(plans, written) for position, sample in enumerate(samples)]
        with fileio.atomic_path(out / INDEX_FILE) as partial:
            pq.write_table(pa.Table.from_pylist(rows), partial)
        card = _card(collected, options, ordered, [sample for samples in written for sample in samples], inputs)
        write_card(out, card)
    return card


def _remove_outdated_shards(out: Path, name: str, planned: set[str]) -> None:
    """Shards of this name left by an earlier pack with other inputs or options would not match the card."""
    for path in out.glob(f"{name}-[0-9][0-9][0-9][0-9][0-9][0-9].tar"):
        if path.name not in planned:
            path.unlink()


def _finished_shards(out: Path, plans: list[ShardPlan], skip_bad: bool) -> dict[str, ShardRecord]:
    """Shards an earlier run finished from the same plan, still intact on disk."""
    journal = ShardRecord.read_journal(out)
    finished = {}
    for plan in plans:
        entry = journal.get(plan.file)
        path = out / plan.file
        if not entry or entry.digest != plan.digest or not path.is_file() or (entry.bad_files and not skip_bad):
            continue
        if sha256(path) == entry.sha256:
            finished[plan.file] = entry
    return finished


def _write_shards(out: Path, plans: list[ShardPlan], settings: EncodeSettings, workers: int,
                  reporter: Reporter) -> dict[str, ShardRecord]:
    """Encode the planned shards, in this process or in ``workers`` processes, journaling each one."""
    results: dict[str, ShardRecord] = {}

    def finish(result: ShardRecord) -> None:
        results[result.file] = result
        result.journal(out)

    with reporter.task("pack", total=sum(len(p.samples) for p in plans), unit="samples") as advance:
        if workers == 1 or len(plans) <= 1:
            for plan in plans:
                finish(encode_shard(out, plan, settings, advance))
            return results
        context = multiprocessing.get_context("spawn")
        ticks = context.Queue()
        with ProcessPoolExecutor(min(workers, len(plans)), context, initializer=_init_worker, initargs=(ticks,)) as pool:
            pending: set[Future] = {pool.submit(_encode_in_worker, out, plan, settings) for plan in plans}
            failure: BaseException | None = None
            try:
                while pending:
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    advance(_drain(ticks))
                    for future in done:
                        if future.cancelled():
                            continue
                        if future.exception() is None:
                            finish(future.result())
                        elif failure is None:
                            failure = future.exception()
                            for other in pending:
                                other.cancel()  # shards already being written still finish and are kept
            except BaseException:  # Ctrl-C: start nothing new; finished shards are journaled already
                for other in pending:
                    other.cancel()
                raise
            if isinstance(failure, BrokenProcessPool):
                raise PgrfError("a pack worker process died (killed, or out of memory); finished shards are kept, run the same "
                                "command again (with fewer --workers if memory is short)")
            if failure is not None:
                raise failure
        advance(_drain(ticks))  # the workers have exited: their last counts are all in the queue
    return results


_ticks: Any = None


def _init_worker(ticks: Any) -> None:
    global _ticks
    _ticks = ticks
    exit_with_parent()


def _encode_in_worker(out: Path, plan: ShardPlan, settings: EncodeSettings) -> ShardRecord:
    pending = 0

    def tick(n: int) -> None:
        nonlocal pending
        pending += n
        if pending >= 16:
            _ticks.put(pending)
            pending = 0

    result = encode_shard(out, plan, settings, tick)
    _ticks.put(pending)
    return result


def _drain(ticks: Any) -> int:
    total = 0
    while True:
        try:
            total += ticks.get_nowait()
        except queue.Empty:
            return total


def _written(plan: ShardPlan, keys: set[str]) -> list[Sample]:
    """The samples of one shard that were written (``--skip-bad`` may leave some out), in shard order."""
    return [sample for sample in plan.samples if sample.key in keys]


def _card(collected: Collected, options: PackOptions, results: list[ShardRecord], written: list[Sample],
          inputs: list[str]) -> DatasetCard:
    first = collected.samples[0].meta
    bad_files = sorted({f for r in results for f in r.bad_files})
    return DatasetCard(
        schema=CARD_SCHEMA,
        name=options.name,
        resolution=options.resolution,
        background=options.background,
        camera=CameraModel(first.radius, first.fov),
        counts=Counts(samples=len(written), unique_views=sum(1 for s in written if not s.meta.mirrored),
                      models=len({s.meta.model_id for s in written}), classes=len(collected.classes)),
        class_names=collected.classes,
        mirror=options.mirror,
        seed=options.seed,
        filters=Filters(collected.thresholds, collected.removed),
        skipped_bad=SkippedBad(len(collected.samples) - len(written), bad_files),
        inputs=inputs,
        shards=[ShardEntry(r.file, len(r.keys), r.sha256) for r in results],
        pgrf_version=__version__,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
