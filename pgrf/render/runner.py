"""Orchestration of ``pgrf render``: what to render, a pool of recycled Blender workers, the run log.

Resumability: a model is finished when its folder (renamed into place last) holds cameras.json, so
an interrupted or killed run never leaves a partial model that counts as done. Models whose last log
record says ``skipped_small`` are re-judged from the logged normalisation without Blender. Failed
and timed-out models are retried. Sharding hashes model ids, so it is stable when a library grows.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from pgrf import fileio
from pgrf.config import Category, RenderSettings
from pgrf.formats import manifest
from pgrf.formats import renders as records
from pgrf.formats.catalog import Catalog, ModelSpec
from pgrf.formats.renders import RenderRecord, Status
from pgrf.formats.schema import to_json
from pgrf.progress import QUIET, Reporter
from pgrf.render import gpus
from pgrf.render.blender.job import RenderJob
from pgrf.render.options import RenderRun
from pgrf.render.worker import log_path, output_tail, worker_main

KILL_GRACE = 5.0
RUN_ONLY = frozenset({"device", "workers", "timeout", "recycle_after"})
"""Render settings that say how a run works, not what it writes: runs differing only in these (or in their share of
the models, e.g. SLURM array tasks on mixed CPU and GPU nodes) may write one category folder together."""


def in_shard(model_id: str, shard_index: int, num_shards: int) -> bool:
    """Deterministic, library-order-independent split of models over ``num_shards`` runs."""
    digest = hashlib.sha1(model_id.encode()).digest()
    return int.from_bytes(digest[:8], "little") % num_shards == shard_index


@dataclass
class Plan:
    """What this run will do with each model of the catalog."""

    todo: list[ModelSpec] = field(default_factory=list)
    unusable: list[ModelSpec] = field(default_factory=list)
    excluded: list[ModelSpec] = field(default_factory=list)
    """Named by the category's exclude file: logged as ``excluded``, never rendered."""
    finished: list[str] = field(default_factory=list)
    filtered: list[str] = field(default_factory=list)
    other_settings: list[str] = field(default_factory=list)
    other_shards: int = 0
    over_limit: int = 0


def plan(catalog: Catalog, category_dir: Path, settings: RenderSettings, run: RenderRun | None = None) -> Plan:
    """Split the catalog into the models ``run`` (default: every model, once) renders now and those already dealt with."""
    run = run or RenderRun()
    result = Plan()
    finished = records.finished_models(category_dir)
    latest = records.latest_status(records.read_records(category_dir))
    for spec in sorted(catalog.models, key=lambda m: m.model_id):
        if not in_shard(spec.model_id, run.shard_index, run.num_shards):
            result.other_shards += 1
        elif not spec.usable:
            result.unusable.append(spec)
        elif run.force:
            result.todo.append(spec)
        elif spec.model_id in finished:
            result.finished.append(spec.model_id)
            if records.read_cameras(finished[spec.model_id]).settings_differ(settings):
                result.other_settings.append(spec.model_id)
        elif spec.model_id in latest and latest[spec.model_id].too_small_for(settings.min_dim_product):
            result.filtered.append(spec.model_id)
        else:
            result.todo.append(spec)
    result.excluded = [m for m in sorted(catalog.excluded, key=lambda m: m.model_id)
                       if in_shard(m.model_id, run.shard_index, run.num_shards)]
    if run.limit is not None and len(result.todo) > run.limit:
        result.over_limit = len(result.todo) - run.limit
        result.todo = result.todo[:run.limit]
    return result


@dataclass
class _Slot:
    """One worker process and the model it is rendering."""

    process: Any
    conn: Any
    lane: int
    """Which of the run's ``workers`` places it holds (its replacement holds it next, on the same GPUs)."""
    spec: ModelSpec | None = None
    started: float = 0.0
    rendered: int = 0


@dataclass
class Outcome:
    """What a run did: one log record per attempted model."""

    records: list[RenderRecord] = field(default_factory=list)
    views: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    fatal: str = ""
    """A settings error reported by a worker (e.g. no CUDA device): the run stopped, nothing was logged."""

    @property
    def counts(self) -> Counter:
        return Counter(r.status for r in self.records)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.records if r.status.error)


class Runner:
    """Render a plan with ``workers`` processes, each replaced after ``recycle_after`` models, reporting the task
    ``render <category>`` (models done, with the views per second as its status) to ``reporter``. On GPUs each
    worker is started with its share of them in ``CUDA_VISIBLE_DEVICES`` (``gpus.worker_environments``)."""

    def __init__(self, category: Category, category_dir: Path, settings: RenderSettings, *, force: bool = False,
                 reporter: Reporter = QUIET) -> None:
        self.category, self.category_dir, self.settings, self.force = category, category_dir, settings, force
        self.reporter = reporter
        self.context = mp.get_context("spawn")
        self.threads = max(1, (os.cpu_count() or 1) // settings.workers) if settings.workers > 1 else 0
        self.environments = gpus.worker_environments(settings.device, settings.workers, os.environ)
        self.outcome = Outcome()
        self.pending: deque[ModelSpec] = deque()
        self.attempts = Counter(r.model_id for r in records.read_records(category_dir))

    def run(self, plan: Plan) -> Outcome:
        """Render ``plan`` with the category folder held (fileio.output_lock): a concurrent render with other
        output-shaping settings, or an import, stops with one line; runs sharing the settings share the folder."""
        filters = records.filters_record(self.category, self.settings.min_dim_product, "pgrf render")
        shaping = {**{k: v for k, v in asdict(self.settings).items() if k not in RUN_ONLY}, "filters": to_json(filters)}
        with fileio.output_lock(self.category_dir, "pgrf render", shaping):
            return self._run(plan, filters)

    def _run(self, plan: Plan, filters: records.CategoryFilters) -> Outcome:
        fileio.remove_stale_work(self.category_dir)
        records.write_filters(self.category_dir, filters)
        start = time.monotonic()
        for spec in plan.unusable:
            self._log(spec, RenderRecord(spec.model_id, Status.FAILED, reason="; ".join(spec.problems), seconds=0.0))
        for spec in plan.excluded:
            self._log(spec, RenderRecord(spec.model_id, Status.EXCLUDED, reason=f"in {self.category.exclude}", seconds=0.0))
        self.pending = deque(plan.todo)
        slots: list[_Slot] = []
        before = len(self.outcome.records)  # the unusable and excluded models, logged above
        try:
            with self.reporter.task(f"render {self.category.name}", total=len(plan.todo), status="- views/s") as models:
                shown = 0
                while self.pending or any(s.spec for s in slots):
                    self._fill(slots)
                    self._poll(slots)
                    elapsed = time.monotonic() - start
                    models.status(f"{self.outcome.views / elapsed:.2f} views/s" if elapsed > 0 else "- views/s")
                    done = len(self.outcome.records) - before
                    models(done - shown)
                    shown = done
        except KeyboardInterrupt:
            self.outcome.interrupted = True
        finally:
            for slot in slots:
                self._stop(slot, kill=self.outcome.interrupted or slot.spec is not None)
            fileio.remove_stale_work(self.category_dir)
            manifest.write_manifest(self.category_dir)
        self.outcome.seconds = time.monotonic() - start
        return self.outcome

    def _fill(self, slots: list[_Slot]) -> None:
        """Give every idle worker a model, starting or replacing workers as needed."""
        for slot in [s for s in slots if s.spec is None and (s.rendered >= self.settings.recycle_after or not s.process.is_alive())]:
            self._stop(slot, kill=False)
            slots.remove(slot)
        while len(slots) < self.settings.workers and len(slots) < len(self.pending) + sum(1 for s in slots if s.spec):
            lane = min(set(range(self.settings.workers)) - {s.lane for s in slots})
            parent, child = self.context.Pipe()
            process = self.context.Process(target=worker_main, args=(child, self.environments[lane]), daemon=True)
            process.start()
            child.close()
            slots.append(_Slot(process, parent, lane))
        for slot in slots:
            if slot.spec is None and self.pending:
                slot.spec = self.pending.popleft()
                slot.started = time.monotonic()
                slot.conn.send(self._job(slot.spec))

    def _job(self, spec: ModelSpec) -> RenderJob:
        return RenderJob(spec, self.settings, str(self.category_dir), self.category.min_mean_alpha, self.threads, self.force)

    def _poll(self, slots: list[_Slot]) -> None:
        """Wait briefly for worker messages; record crashed and timed-out models."""
        busy = [s for s in slots if s.spec]
        ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=0.5)
        for slot in busy:
            if slot.conn in ready or slot.conn.poll():
                self._receive(slot)
            elif slot.process.sentinel in ready:
                self._crashed(slot)
            if slot.spec is not None and time.monotonic() - slot.started > self.settings.timeout:
                self._lost(slot, Status.TIMEOUT, f"no result after {self.settings.timeout:.0f} s (--timeout)")

    def _receive(self, slot: _Slot) -> None:
        try:
            while slot.conn.poll():
                kind, payload = slot.conn.recv()
                if kind == "start":  # the model's clock starts when the worker takes it
                    slot.started = time.monotonic()
                elif kind == "view":
                    self.outcome.views += 1
                elif kind == "fatal":
                    self._fatal(slot, payload)
                    return
                else:
                    self._finish(slot, payload)
                    return
        except (EOFError, OSError):
            self._crashed(slot)

    def _crashed(self, slot: _Slot) -> None:
        slot.process.join(KILL_GRACE)  # reap it, so its exit code is known
        self._lost(slot, Status.FAILED, f"Blender worker crashed (exit code {slot.process.exitcode})")

    def _fatal(self, slot: _Slot, reason: str) -> None:
        """A setting no model can satisfy: stop the run, log nothing."""
        self.outcome.fatal = reason
        self.pending.clear()
        slot.spec = None

    def _finish(self, slot: _Slot, record: RenderRecord) -> None:
        assert slot.spec is not None
        if record.status is Status.FAILED:
            record = replace(record, blender_tail=output_tail(log_path(self.category_dir, slot.spec.model_id)))
        if record.seconds is None:
            record = replace(record, seconds=time.monotonic() - slot.started)
        self._log(slot.spec, record)
        slot.spec = None
        slot.rendered += 1

    def _lost(self, slot: _Slot, status: Status, reason: str) -> None:
        """The worker died or hung: record the model and kill the worker (``_fill`` replaces dead ones)."""
        assert slot.spec is not None
        self._stop(slot, kill=True)
        tail = output_tail(log_path(self.category_dir, slot.spec.model_id))
        self._log(slot.spec, RenderRecord(slot.spec.model_id, status, reason=reason, blender_tail=tail,
                                          seconds=time.monotonic() - slot.started))
        slot.spec = None

    def _stop(self, slot: _Slot, kill: bool) -> None:
        if slot.process.is_alive() and not kill:
            try:
                slot.conn.send(None)
            except OSError:
                pass
            slot.process.join(KILL_GRACE)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        slot.conn.close()

    def _log(self, spec: ModelSpec, record: RenderRecord) -> None:
        self.attempts[spec.model_id] += 1
        full = replace(record, asset_id=spec.asset_id, category=self.category.name, attempt=self.attempts[spec.model_id])
        records.append_record(self.category_dir, full)
        self.outcome.records.append(full)
