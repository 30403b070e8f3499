"""The cards of a renders folder for ``pgrf review``: every model its render log or its disk knows, with the status
``pgrf pack`` would give it now and why.

A finished model is ``excluded`` when its category's exclude file names it, ``sparse`` when its mean alpha
is below the category's ``min_mean_alpha`` (both left out of packs), else ``rendered``, by the filters
``pipeline.filters`` decides; where no threshold is known the render log's word is taken. A model that was
never finished shows its latest log record (``skipped_small``, ``failed``, ``timeout``, ``excluded``) and the
reason. What each finished model's ``cameras.json`` says and its thumbnail are cached in the review folder,
keyed by the file's size and mtime, so a re-run reads and draws only new or re-rendered models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pgrf.config import Config
from pgrf.fileio import atomic_path
from pgrf.formats import renders as records
from pgrf.formats.exclude import ExcludeList
from pgrf.formats.renders import RenderRecord, Status
from pgrf.formats.schema import FormatError, from_json, to_json
from pgrf.pipeline.filters import AppliedFilters, category_filters
from pgrf.pipeline.parallel import run_parallel
from pgrf.progress import Reporter
from pgrf.review.page import THUMBS_DIR, Card, Cards, ReviewOptions
from pgrf.review.thumbs import KEPT, THUMB_VERSION, pick_views, strip_thumbnail, thumb_name

CACHE_FILE = ".review-cache.json"
UNREADABLE = "unreadable"
"""The status of a model folder whose cameras.json cannot be read (pack would stop on it)."""


@dataclass(frozen=True)
class ModelFacts:
    """What a card shows of a finished model's cameras.json, and its thumbnail."""

    asset_id: str = ""
    asset_name: str = ""
    category: str = ""
    class_name: str = ""
    mean_alpha: float = 0.0
    dims_product: float | None = None
    thumb: str = ""
    """Relative to the review folder; empty when it could not be made (``error`` says why)."""
    error: str = ""


@dataclass(frozen=True)
class FactsJob:
    """Read one finished model and make its strip (in a worker process)."""

    model_dir: Path
    out: Path
    thumb: str
    """The strip's path relative to ``out``: ``thumbs/<category folder>/<model>-<digest of the stamp>.webp``."""
    views: int
    size: int


def model_facts(job: FactsJob) -> ModelFacts:
    """A finished model's facts; a bad cameras.json or PNG becomes the facts' ``error`` instead of stopping the run."""
    try:
        doc = records.read_cameras(job.model_dir)
    except FormatError as error:
        return ModelFacts(error=str(error))
    chosen = pick_views(doc.views, job.views)
    facts = ModelFacts(doc.asset_id, doc.asset_name, doc.category, doc.class_name, doc.mean_alpha,
                       doc.normalisation.dims_product if doc.normalisation else None)
    if not chosen:
        return _with(facts, error="cameras.json lists no views; re-render the model (pgrf render --force)")
    error = strip_thumbnail([job.model_dir / view.file for view in chosen], job.out / job.thumb, job.size)
    return _with(facts, error=error) if error else _with(facts, thumb=job.thumb)


def _with(facts: ModelFacts, **changes: str) -> ModelFacts:
    return ModelFacts(**{**to_json(facts), **changes})


def _stamp(model_dir: Path, options: ReviewOptions) -> str:
    stat = (model_dir / records.CAMERAS_FILE).stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}:{options.views}:{options.size}:{THUMB_VERSION}"


def _read_cache(out: Path) -> dict[str, tuple[str, ModelFacts]]:
    """The facts of an earlier run, by model folder; a missing or damaged cache is empty (everything is re-read)."""
    try:
        document = json.loads((out / CACHE_FILE).read_text(encoding="utf-8"))
        return {name: (entry["stamp"], from_json(ModelFacts, entry["facts"], CACHE_FILE, ""))
                for name, entry in document.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, FormatError):
        return {}


def _write_cache(out: Path, cache: dict[str, tuple[str, ModelFacts]]) -> None:
    document = {name: {"stamp": stamp, "facts": to_json(facts)} for name, (stamp, facts) in sorted(cache.items())}
    with atomic_path(out / CACHE_FILE) as partial:
        partial.write_text(json.dumps(document), encoding="utf-8")


def render_cards(category_dirs: list[Path], out: Path, config: Config | None, options: ReviewOptions,
                 reporter: Reporter) -> Cards:
    """Every model of the category folders as a card, finished models with a contact strip."""
    cache = _read_cache(out)
    finished = {category_dir: records.finished_models(category_dir) for category_dir in category_dirs}
    facts: dict[Path, ModelFacts] = {}
    stamps: dict[Path, str] = {}
    jobs, fresh = [], set()
    for category_dir, models in finished.items():
        for model_id, model_dir in models.items():
            stamps[model_dir] = stamp = _stamp(model_dir, options)
            entry = cache.get(str(model_dir.resolve()))
            if entry and entry[0] == stamp and entry[1].thumb and (out / entry[1].thumb).is_file():
                facts[model_dir] = entry[1]
                continue
            thumb = f"{THUMBS_DIR}/{category_dir.name}/{thumb_name(model_id, stamp)}"
            if not (out / thumb).is_file():  # else an interrupted run drew it before writing its cache
                fresh.add(model_dir)
            jobs.append(FactsJob(model_dir, out, thumb, options.views, options.size))
    cached = len(facts)
    for job, result in run_parallel(jobs, model_facts, options.workers, "thumbnails", reporter, KEPT):
        facts[job.model_dir] = result
    _write_cache(out, {str(d.resolve()): (stamps[d], f) for d, f in facts.items() if f.thumb})
    cards, summary, judge = [], [], _Judge(config, options)
    for category_dir, models in finished.items():
        cards += _category(category_dir, models, facts, judge)
        summary += judge.summary(category_dir)
    made = sum(1 for model_dir in fresh if facts[model_dir].thumb)
    return Cards(cards, summary, made, cached + len(jobs) - len(fresh), judge.excludes)


def _category(category_dir: Path, models: dict[str, Path], facts: dict[Path, ModelFacts], judge: _Judge) -> list[Card]:
    """The cards of one category folder: finished models first, then the ones only its render log knows."""
    folder = category_dir.name
    log = records.latest_status(records.read_records(category_dir))
    cards = []
    for model_id, model_dir in models.items():
        found, record = facts[model_dir], log.get(model_id)
        if not found.asset_id:
            cards.append(Card(model_id, folder, "", UNREADABLE, found.error))
            continue
        category = found.category or folder
        status, why = judge.finished(category_dir, model_id, found, record, category)
        notes = [why] if why else []
        if record and record.status.error:
            notes.append(f"latest attempt {record.status}: {record.reason or 'no reason logged'} (the earlier render on disk is used)")
        if found.error:
            notes.append(f"no thumbnail: {found.error}")
        cards.append(Card(model_id, category, found.class_name, status, "; ".join(notes), status == Status.EXCLUDED,
                          found.asset_id, found.asset_name, found.mean_alpha, found.dims_product, found.thumb or None))
    for model_id, record in log.items():
        if model_id not in models:
            category = record.category or folder
            why, selected = judge.unfinished(category_dir, record, category)
            dims = record.normalisation.dims_product if record.normalisation else None
            cards.append(Card(model_id, category, "", str(record.status), why, selected, record.asset_id,
                              mean_alpha=record.mean_alpha, dims_product=dims))
    return cards


class _Judge:
    """What pgrf pack (and the next pgrf render) would do with a model, under each category's filters
    (``pipeline.filters.category_filters``)."""

    def __init__(self, config: Config | None, options: ReviewOptions) -> None:
        self.config, self.options = config, options
        self.decided: dict[tuple[Path, str], AppliedFilters] = {}

    def filters(self, category_dir: Path, category: str) -> AppliedFilters:
        if (category_dir, category) not in self.decided:
            self.decided[category_dir, category] = category_filters(category_dir, category, self.config,
                                                                    self.options.min_mean_alpha)
        return self.decided[category_dir, category]

    @property
    def excludes(self) -> dict[str, ExcludeList]:
        """The exclude list of each category that has one."""
        return {category: f.exclude for (_, category), f in self.decided.items() if f.exclude}

    def finished(self, category_dir: Path, model_id: str, found: ModelFacts, record: RenderRecord | None,
                 category: str) -> tuple[Status, str]:
        filters = self.filters(category_dir, category)
        rejected, threshold = filters.exclude, filters.min_mean_alpha
        if rejected and rejected.matches(model_id, found.asset_id):
            return Status.EXCLUDED, f"named by the exclude file {rejected.path}: pgrf pack leaves it out"
        if threshold is not None:
            if found.mean_alpha < threshold:
                return Status.SPARSE, f"mean alpha {found.mean_alpha:.4f} < min_mean_alpha {threshold:g}: pgrf pack leaves it out"
            return Status.RENDERED, ""
        if record and record.status is Status.SPARSE:
            return Status.SPARSE, "below the category's min_mean_alpha when rendered: pgrf pack leaves it out"
        if record and record.status is Status.EXCLUDED:
            return Status.EXCLUDED, "logged as excluded by the category's exclude file"
        return Status.RENDERED, ""

    def unfinished(self, category_dir: Path, record: RenderRecord, category: str) -> tuple[str, bool]:
        """Why a model has no finished folder, and whether it starts in the exclude list."""
        filters = self.filters(category_dir, category)
        status = record.status
        if status is Status.EXCLUDED:
            rejected = filters.exclude
            named = rejected is None or rejected.matches(record.model_id, record.asset_id or "")
            why = "named by the category's exclude file: not rendered"
            return (why if named else "excluded when rendered, but the exclude file no longer names it: the next pgrf render "
                    "renders it"), named
        if status is Status.SKIPPED_SMALL:
            dims = record.normalisation.dims_product if record.normalisation else float("nan")
            limit = filters.min_dim_product
            if limit is None:
                return f"dims product {dims:.3g} below min_dim_product when rendered: not rendered", False
            if record.too_small_for(limit):
                return f"dims product {dims:.3g} < min_dim_product {limit:g}: not rendered", False
            return f"dims product {dims:.3g} is not below min_dim_product {limit:g} now: the next pgrf render renders it", False
        if status.error:
            return f"{record.reason or 'no reason logged'} (attempt {record.attempt or 1}; the next pgrf render retries it)", False
        return f"logged as {status}, but its folder is not on disk (pgrf render --force renders it again)", False

    def summary(self, category_dir: Path) -> list[list[str]]:
        folder = category_dir.name
        decided = [f for (d, _), f in self.decided.items() if d == category_dir] or [self.filters(category_dir, folder)]
        rows = []
        for filters in decided:
            threshold = filters.min_mean_alpha
            rows += [[f"{folder}: min_mean_alpha", "the render log's word" if threshold is None else f"{threshold:g}"],
                     [f"{folder}: exclude file", filters.exclude.path if filters.exclude else "none"]]
            if filters.min_dim_product is not None:
                rows.append([f"{folder}: min_dim_product", f"{filters.min_dim_product:g}"])
            rows.append([f"{folder}: filters from", filters.source])
        return rows
