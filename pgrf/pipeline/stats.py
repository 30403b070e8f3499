"""``pgrf stats``: the dataset statistics of the EpiGRAF appendix (Table 5) for shards or renders.

A shards folder is read from ``dataset.json`` + ``index.parquet``; a render category from its
``manifest.parquet`` (when it lists exactly the finished models) or the models' ``cameras.json``;
a render root from each category under it. For renders the numbers are those ``pgrf pack`` would
produce: finished models at or above the category's ``min_mean_alpha`` threshold.

Camera angles follow docs/cameras.md (yaw = azimuth in [-π, π), pitch = polar angle from +Z in [0, π]).
The uniform-sphere check is a one-sample Kolmogorov–Smirnov test of yaw against U[-π, π] and of
cos(pitch) against U[-1, 1], on unique views only: a mirrored copy has yaw' = −yaw, so adding the
mirrored copies would add dependent draws (and make any yaw distribution look symmetric).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats as scipy_stats

from pgrf.cameras import POLE_EPS
from pgrf.config import Config
from pgrf.errors import PgrfError
from pgrf.formats import manifest
from pgrf.formats import renders as records
from pgrf.formats.card import CARD_FILE, read_card
from pgrf.formats.manifest import MANIFEST_FILE, MANIFEST_SCHEMA
from pgrf.formats.renders import Status
from pgrf.formats.shards import INDEX_FILE
from pgrf.pipeline.filters import category_filters

ANGLE_BINS = 36
ALPHA_BINS = 40
UNIFORM_P = 0.01
"""KS p-value at or above which an angle is reported as uniform on the sphere."""
SHARD_COLUMNS = ("model_id", "category", "class", "view", "yaw", "pitch", "mirrored", "mean_alpha")
MANIFEST_COLUMNS = ("model_id", "category", "class_name", "yaw", "pitch", "mean_alpha", "resolution")
VIEW_SCHEMA = pa.schema([MANIFEST_SCHEMA.field(name) for name in MANIFEST_COLUMNS])


@dataclass
class Histogram:
    """Counts over bins with the given edges (len(edges) == len(counts) + 1)."""

    edges: list[float]
    counts: list[int]
    expected: list[float] | None = None  # counts a uniform-sphere distribution would give


@dataclass
class AngleStats:
    """Summary of one camera angle over the unique views, with its KS test against the uniform sphere."""

    name: str
    mean: float
    std: float
    min: float
    max: float
    ks_statistic: float
    ks_pvalue: float
    tested: str  # what was compared with which uniform law
    histogram: Histogram

    @property
    def uniform(self) -> bool:
        return self.ks_pvalue >= UNIFORM_P

    @property
    def distribution(self) -> str:
        """Table 5's notation: USphere(centre, half-width) when uniform, else the empirical mean and std."""
        if self.uniform:
            return f"USphere({_angle((self.min + self.max) / 2)}, {_angle((self.max - self.min) / 2)})"
        return f"not uniform: mean {self.mean:.3f}, std {self.std:.3f}"


@dataclass
class GroupCount:
    """Models and unique views of one class or category."""

    name: str
    models: int
    images: int


@dataclass
class FilterStat:
    """One filter: its threshold(s) and how many models it removed."""

    name: str
    threshold: Any
    removed_models: int


@dataclass
class StatsResult:
    """Dataset statistics; ``to_json()`` gives the ``--json`` document."""

    path: str
    kind: str  # "shards" or "renders"
    images: int  # unique views (Table 5's "number of images")
    images_with_mirrors: int  # shards: samples incl. mirrored copies; renders: what pack --mirror writes
    mirrored: bool  # whether images_with_mirrors counts mirrored copies present in the data
    models: int
    classes: int
    resolutions: list[int]
    yaw: AngleStats
    pitch: AngleStats
    per_class: list[GroupCount]
    per_category: list[GroupCount]
    filters: list[FilterStat]
    mean_alpha: Histogram  # over models
    render_status: dict[str, int] = field(default_factory=dict)  # renders: latest log status per model
    notes: list[str] = field(default_factory=list)
    yaw_values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    pitch_values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (angles' raw values left out)."""
        doc = asdict(self)
        del doc["yaw_values"], doc["pitch_values"]
        for name in ("yaw", "pitch"):
            angle: AngleStats = getattr(self, name)
            doc[name] |= {"uniform": angle.uniform, "distribution": angle.distribution}
        return doc

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")


@dataclass
class _Views:
    """Column arrays of the unique views, plus per-model facts."""

    model_id: np.ndarray
    category: np.ndarray
    class_name: np.ndarray
    yaw: np.ndarray
    pitch: np.ndarray
    model_alpha: dict[str, float]  # every known model, included or not


def compute_stats(path: Path, config: Config | None = None, min_mean_alpha: float | None = None) -> StatsResult:
    """Statistics of a shards folder, a ``renders/<category>`` folder or a ``renders/`` root.

    For renders, each category's filters (``pipeline.filters``, ``min_mean_alpha`` replacing the threshold) decide
    which finished models count, as in ``pgrf pack``; shards carry their own filter record.
    """
    path = Path(path)
    if not path.exists():
        raise PgrfError(f"{path}: no such folder; give a shards folder (dataset.json + index.parquet) or a renders folder")
    if not path.is_dir():
        raise PgrfError(f"{path}: not a folder; give a shards folder (dataset.json + index.parquet) or a renders folder")
    if (path / CARD_FILE).is_file() or (path / INDEX_FILE).is_file():
        return _shard_stats(path)
    found = manifest.categories(path)
    if found:
        return _render_stats(path, found, config, min_mean_alpha)
    raise PgrfError(f"{path}: neither a shards folder (dataset.json + index.parquet) nor a renders folder "
                    "(model folders with cameras.json); give what pgrf pack or pgrf render wrote")


def _shard_stats(path: Path) -> StatsResult:
    card, index = read_card(path), _read_table(path / INDEX_FILE, SHARD_COLUMNS)
    if index.num_rows == 0:
        raise PgrfError(f"{path / INDEX_FILE}: no samples; re-run pgrf pack")
    columns = {name: index.column(name).to_numpy(zero_copy_only=False) for name in SHARD_COLUMNS}
    class_names = card.class_names
    classes = columns["class"].astype(np.int64)
    if class_names and (classes.min() < 0 or classes.max() >= len(class_names)):
        raise PgrfError(f"{path / INDEX_FILE}: class index out of range of dataset.json's class_names; re-run pgrf pack")
    names = np.asarray(class_names, dtype=object)[classes] if class_names else classes.astype(str).astype(object)
    unique = ~columns["mirrored"].astype(bool)
    first = np.unique(columns["model_id"], return_index=True)[1]
    views = _Views(columns["model_id"][unique], columns["category"][unique], names[unique], columns["yaw"][unique],
                   columns["pitch"][unique], dict(zip(columns["model_id"][first], columns["mean_alpha"][first].tolist())))
    thresholds, removed = card.filters.thresholds, card.filters.removed_models
    result = _summarise(path, "shards", views, [card.resolution],
                        [FilterStat(name, thresholds.get(name), int(count)) for name, count in removed.items()])
    result.images_with_mirrors, result.mirrored = index.num_rows, bool((~unique).any())
    counts = card.counts
    if (counts.samples, counts.unique_views) != (index.num_rows, result.images):
        result.notes.append(f"{CARD_FILE} counts ({counts.samples} samples, {counts.unique_views} unique) "
                            f"differ from index.parquet ({index.num_rows}, {result.images}); run pgrf verify")
    return result


def _render_stats(path: Path, category_dirs: list[Path], config: Config | None, min_mean_alpha: float | None) -> StatsResult:
    parts, thresholds, limits, notes, status = [], {}, {}, [], Counter()
    resolutions: set[int] = set()
    excluded = 0  # models the render log says an exclude file named (never rendered)
    for category_dir in category_dirs:
        table = _category_views(category_dir)
        latest = records.latest_status(records.read_records(category_dir))
        status.update(str(r.status) for r in latest.values())
        excluded += sum(1 for r in latest.values() if r.status is Status.EXCLUDED)
        if table.num_rows:
            parts.append(table)
            resolutions.update(int(r) for r in np.unique(table.column("resolution").to_numpy()))
            for category in np.unique(table.column("category").to_numpy(zero_copy_only=False)):
                filters = category_filters(category_dir, str(category), config, min_mean_alpha)
                thresholds[str(category)] = filters.min_mean_alpha or 0.0
                limits[str(category)] = filters.min_dim_product
                notes += [filters.note] if filters.note else []
    if not parts:
        raise PgrfError(f"{path}: no finished models (model folders with cameras.json); run pgrf render first")
    table = pa.concat_tables(parts)
    col = {name: table.column(name).to_numpy(zero_copy_only=False) for name in MANIFEST_COLUMNS}
    first = np.unique(col["model_id"], return_index=True)[1]
    if len(set(zip(col["category"].tolist(), col["model_id"].tolist()))) != len(first):
        raise PgrfError(f"{path}: a model id appears in more than one category; give the categories separately")
    limit = np.array([thresholds[c] for c in col["category"]], dtype=float)
    keep = col["mean_alpha"] >= limit
    views = _Views(col["model_id"][keep], col["category"][keep], col["class_name"][keep], col["yaw"][keep],
                   col["pitch"][keep], dict(zip(col["model_id"][first], col["mean_alpha"][first].tolist())))
    sparse = len(np.unique(col["model_id"][~keep]))
    small = status.get(Status.SKIPPED_SMALL, 0)
    filters = [FilterStat("min_mean_alpha", thresholds, sparse),
               FilterStat("min_dim_product", limits, small),
               FilterStat("exclude", None, excluded)]
    result = _summarise(path, "renders", views, sorted(resolutions), filters)
    result.images_with_mirrors, result.mirrored = 2 * result.images, False
    result.render_status = dict(sorted(status.items()))
    result.notes += [*notes, "renders: images_with_mirrors is what pgrf pack --mirror would write (2 × unique views)"]
    return result


def _category_views(category_dir: Path) -> pa.Table:
    """One row per view of every finished model: the manifest if it is current, else the cameras.json files."""
    finished = records.finished_models(category_dir)
    manifest = category_dir / MANIFEST_FILE
    if manifest.is_file():
        table = _read_table(manifest, MANIFEST_COLUMNS)
        if set(table.column("model_id").to_pylist()) == set(finished):
            return table.cast(VIEW_SCHEMA)
    rows: dict[str, list[Any]] = {name: [] for name in MANIFEST_COLUMNS}
    for model_id, model_dir in finished.items():
        doc = records.read_cameras(model_dir)
        for value in [(model_id, doc.category, doc.class_name, v.yaw, v.pitch, doc.mean_alpha, doc.render.resolution)
                      for v in doc.views]:
            for name, item in zip(MANIFEST_COLUMNS, value):
                rows[name].append(item)
    return pa.table(rows, schema=VIEW_SCHEMA)


def _read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    if not path.is_file():
        raise PgrfError(f"{path}: missing; re-run the stage that writes it (pgrf pack or pgrf render)")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        if missing:
            raise PgrfError(f"{path}: missing columns {', '.join(missing)}; re-run the stage that writes it")
        return pq.read_table(path, columns=list(columns))
    except (OSError, pa.ArrowException) as exc:
        raise PgrfError(f"{path}: not a readable parquet file ({type(exc).__name__}); re-run the stage that writes it") from None


def _summarise(path: Path, kind: str, views: _Views, resolutions: list[int], filters: list[FilterStat]) -> StatsResult:
    """The common part of both sources: counts, angle statistics, groups, the mean-alpha histogram."""
    yaw, pitch = np.asarray(views.yaw, float), np.asarray(views.pitch, float)
    if not len(yaw):
        raise PgrfError(f"{path}: every model was filtered out (min_mean_alpha); nothing to describe")
    model_ids = np.unique(views.model_id)
    included = np.array([views.model_alpha[m] for m in model_ids])
    every = np.array(list(views.model_alpha.values()))
    top = max(0.05, math.ceil(every.max() / 0.05) * 0.05)
    counts, edges = np.histogram(every, bins=ALPHA_BINS, range=(0.0, top))
    notes = [f"KS tests use the {len(yaw)} unique views; mirrored copies (yaw' = −yaw) are dependent draws and are left out",
             (f"pitch is the polar angle from +Z (docs/cameras.md), clamped to [{POLE_EPS:g}, π − {POLE_EPS:g}]; "
              "uniform on the sphere means cos(pitch) ~ U[-1, 1]")]
    if len(included) != len(every):
        notes.append(f"mean_alpha histogram covers all {len(every)} finished models, {len(included)} of them included")
    return StatsResult(
        path=str(path), kind=kind, images=len(yaw), images_with_mirrors=len(yaw), mirrored=False,
        models=len(model_ids), classes=len(np.unique(views.class_name.astype(str))), resolutions=resolutions,
        yaw=_yaw_stats(yaw), pitch=_pitch_stats(pitch),
        per_class=_groups(views.class_name, views.model_id), per_category=_groups(views.category, views.model_id),
        filters=filters, mean_alpha=Histogram(edges.tolist(), counts.tolist()), notes=notes,
        yaw_values=yaw, pitch_values=pitch,
    )


def _yaw_stats(yaw: np.ndarray) -> AngleStats:
    test = scipy_stats.kstest(yaw, "uniform", args=(-math.pi, 2 * math.pi))
    counts, edges = np.histogram(yaw, bins=ANGLE_BINS, range=(-math.pi, math.pi))
    expected = [len(yaw) / ANGLE_BINS] * ANGLE_BINS
    return AngleStats("yaw", float(yaw.mean()), float(yaw.std()), float(yaw.min()), float(yaw.max()),
                      float(test.statistic), float(test.pvalue), "yaw vs U[-π, π]",
                      Histogram(edges.tolist(), counts.tolist(), expected))


def _pitch_stats(pitch: np.ndarray) -> AngleStats:
    test = scipy_stats.kstest(np.cos(pitch), "uniform", args=(-1.0, 2.0))
    counts, edges = np.histogram(pitch, bins=ANGLE_BINS, range=(0.0, math.pi))
    expected = (len(pitch) * (np.cos(edges[:-1]) - np.cos(edges[1:])) / 2).tolist()
    return AngleStats("pitch", float(pitch.mean()), float(pitch.std()), float(pitch.min()), float(pitch.max()),
                      float(test.statistic), float(test.pvalue), "cos(pitch) vs U[-1, 1]",
                      Histogram(edges.tolist(), counts.tolist(), expected))


def _groups(names: np.ndarray, model_ids: np.ndarray) -> list[GroupCount]:
    """Models and views per name, most views first, then by name."""
    labels = names.astype(str).tolist()
    models = Counter(name for name, _ in set(zip(labels, model_ids.tolist())))
    groups = [GroupCount(name, models[name], count) for name, count in Counter(labels).items()]
    return sorted(groups, key=lambda g: (-g.images, g.name))


def _angle(value: float) -> str:
    """An angle as a multiple of π when it is one (to 2 decimals), else in radians."""
    for fraction, text in ((0.0, "0"), (0.25, "π/4"), (0.5, "π/2"), (0.75, "3π/4"), (1.0, "π")):
        if abs(value - fraction * math.pi) < 0.01:
            return text
    return f"{value:.2f}"

