"""``pgrf pack``: finished renders → shuffled WebDataset shards, ``index.parquet`` and ``dataset.json``.

Every view becomes a sample ``<model_id>_v<view>`` (plus ``_m`` for its mirrored copy, whose image is
flipped and whose camera is ``S · c2w · F``, DESIGN.md §1). Samples are shuffled globally with a seeded
permutation and cut into shards of equal sample counts, so the same inputs and seed give
byte-identical shards.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from pgrf import __version__
from pgrf.cameras import mirror_angles, mirror_c2w
from pgrf.config import Config
from pgrf.errors import PgrfError
from pgrf.pipeline.images import BACKGROUNDS, composite, encode_png
from pgrf.pipeline.shards import write_shard
from pgrf.render import records

CARD_SCHEMA = 1
CARD_FILE = "dataset.json"
INDEX_FILE = "index.parquet"


@dataclass(frozen=True)
class PackOptions:
    """What ``pgrf pack`` makes of the renders."""

    resolution: int = 256
    mirror: bool = True
    background: str = "white"
    samples_per_shard: int = 1000
    seed: int = 0
    name: str = "dataset"
    min_mean_alpha: float | None = None  # None: each category's value from the config

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise PgrfError(f"--background must be one of {', '.join(BACKGROUNDS)}; got {self.background!r}")
        if self.resolution <= 0 or self.samples_per_shard <= 0:
            raise PgrfError("--resolution and --samples-per-shard must be positive")


@dataclass(frozen=True)
class Sample:
    """One image of the dataset and where its pixels come from."""

    key: str
    image: Path
    meta: dict[str, Any]


@dataclass
class Collected:
    """The samples of the included models, class names, and what the filters removed."""

    samples: list[Sample]
    classes: list[str]
    models: int
    removed: dict[str, int]
    thresholds: dict[str, Any]


def collect(render_dirs: list[Path], config: Config, options: PackOptions) -> Collected:
    """Read every finished model of the render folders; leave out sparse models; number the classes."""
    included: list[tuple[Path, dict[str, Any]]] = []
    removed = {"min_mean_alpha": 0, "min_dim_product": 0}
    thresholds: dict[str, Any] = {"min_mean_alpha": {}, "min_dim_product": config.render.min_dim_product}
    seen: dict[str, Path] = {}
    for category_dir in render_dirs:
        if not category_dir.is_dir():
            raise PgrfError(f"{category_dir}: no such render folder; give renders/<category> folders written by pgrf render")
        finished = records.finished_models(category_dir)
        if not finished:
            raise PgrfError(f"{category_dir}: no finished models (model folders with cameras.json); run pgrf render first")
        log = records.latest_status(records.read_log(category_dir))
        removed["min_dim_product"] += sum(1 for r in log.values() if r.get("status") == "skipped_small")
        for model_id, model_dir in finished.items():
            doc = records.read_cameras(model_dir)
            threshold = _min_mean_alpha(config, doc["category"], options)
            thresholds["min_mean_alpha"][doc["category"]] = threshold
            if doc["mean_alpha"] < threshold:
                removed["min_mean_alpha"] += 1
                continue
            if model_id in seen:
                raise PgrfError(f"model id {model_id} is in both {seen[model_id]} and {category_dir}; pack them separately")
            seen[model_id] = category_dir
            included.append((model_dir, doc))
    cameras = {(doc["render"]["radius"], doc["render"]["fov"]) for _, doc in included}
    if len(cameras) > 1:
        raise PgrfError(f"the renders use different camera models (radius, fov): {sorted(cameras)}; pack them separately")
    classes = sorted({doc["class_name"] for _, doc in included})
    samples = [s for model_dir, doc in included for s in _samples(model_dir, doc, classes.index(doc["class_name"]), options)]
    return Collected(samples, classes, len(included), removed, thresholds)


def _min_mean_alpha(config: Config, category: str, options: PackOptions) -> float:
    if options.min_mean_alpha is not None:
        return options.min_mean_alpha
    return config.categories[category].min_mean_alpha if category in config.categories else 0.0


def _samples(model_dir: Path, doc: dict[str, Any], class_index: int, options: PackOptions) -> list[Sample]:
    samples = []
    for view in doc["views"]:
        meta = {"model_id": doc["model_id"], "asset_id": doc["asset_id"], "category": doc["category"], "class": class_index,
                "class_name": doc["class_name"], "view": view["index"], "yaw": view["yaw"], "pitch": view["pitch"],
                "radius": doc["render"]["radius"], "fov": doc["render"]["fov"], "c2w": view["c2w"],
                "intrinsics": view["intrinsics"], "mirrored": False, "resolution": options.resolution,
                "mean_alpha": doc["mean_alpha"]}
        key = f"{doc['model_id']}_v{view['index']:04d}"
        samples.append(Sample(key, model_dir / view["file"], meta))
        if options.mirror:
            yaw, pitch = mirror_angles(view["yaw"], view["pitch"])
            mirrored = {**meta, "yaw": yaw, "pitch": pitch, "c2w": mirror_c2w(view["c2w"]).tolist(), "mirrored": True}
            samples.append(Sample(f"{key}_m", model_dir / view["file"], mirrored))
    return samples


def _members(sample: Sample, options: PackOptions) -> list[tuple[str, bytes]]:
    rgb = composite(sample.image, options.resolution, options.background)
    if sample.meta["mirrored"]:
        rgb = rgb[:, ::-1]
    meta = {k: v for k, v in sample.meta.items() if k != "mean_alpha"}
    return [(f"{sample.key}.png", encode_png(np.ascontiguousarray(rgb))),
            (f"{sample.key}.json", json.dumps(meta, sort_keys=True).encode()),
            (f"{sample.key}.cls", str(sample.meta["class"]).encode())]


def pack(render_dirs: list[Path], out: Path, config: Config, options: PackOptions, console: Console | None = None) -> dict[str, Any]:
    """Write shards, index and card to ``out``; returns the card."""
    collected = collect(render_dirs, config, options)
    if not collected.samples:
        raise PgrfError("every model was filtered out (min_mean_alpha); nothing to pack")
    order = np.random.default_rng(options.seed).permutation(len(collected.samples))
    shuffled = [collected.samples[i] for i in order]
    out.mkdir(parents=True, exist_ok=True)
    shards, rows = [], []
    chunks = [shuffled[i:i + options.samples_per_shard] for i in range(0, len(shuffled), options.samples_per_shard)]
    with Progress(console=console or Console(stderr=True)) as progress:
        task = progress.add_task("pack", total=len(shuffled))
        for number, chunk in enumerate(chunks):
            name = f"{options.name}-{number:06d}.tar"

            def members(chunk: list[Sample] = chunk) -> Any:
                for sample in chunk:
                    yield from _members(sample, options)
                    progress.advance(task)

            digest = write_shard(out / name, members())
            shards.append({"file": name, "samples": len(chunk), "sha256": digest})
            rows += [_index_row(sample, name, position) for position, sample in enumerate(chunk)]
    pq.write_table(pa.Table.from_pylist(rows), out / INDEX_FILE)
    card = _card(collected, options, shards, render_dirs)
    (out / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
    return card


def _index_row(sample: Sample, shard: str, position: int) -> dict[str, Any]:
    meta = sample.meta
    return {"key": sample.key, "shard": shard, "position": position, "model_id": meta["model_id"], "asset_id": meta["asset_id"],
            "category": meta["category"], "class": meta["class"], "view": meta["view"], "yaw": meta["yaw"],
            "pitch": meta["pitch"], "mirrored": meta["mirrored"], "mean_alpha": meta["mean_alpha"]}


def _card(collected: Collected, options: PackOptions, shards: list[dict[str, Any]], render_dirs: list[Path]) -> dict[str, Any]:
    first = collected.samples[0].meta
    unique_views = sum(1 for s in collected.samples if not s.meta["mirrored"])
    return {
        "schema": CARD_SCHEMA,
        "name": options.name,
        "resolution": options.resolution,
        "background": options.background,
        "camera": {"radius": first["radius"], "fov": first["fov"], "convention": "opencv_c2w+normalized_K (pgrf/cameras.py)"},
        "counts": {"samples": len(collected.samples), "unique_views": unique_views, "models": collected.models,
                   "classes": len(collected.classes)},
        "class_names": collected.classes,
        "mirror": options.mirror,
        "seed": options.seed,
        "filters": {"thresholds": collected.thresholds, "removed_models": collected.removed},
        "inputs": [str(d) for d in render_dirs],
        "shards": shards,
        "pgrf_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
