"""`pgrf stats`: Table-5 numbers on synthetic M-Plants/M-Food indexes, the uniform-sphere KS test, renders, plots, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rich.console import Console

from pgrf import cameras
from pgrf.cli.show import print_stats
from pgrf.config import load_config
from pgrf.errors import PgrfError
from pgrf.formats.card import CARD_SCHEMA, CameraModel, Counts, DatasetCard, Filters, ShardEntry, SkippedBad, write_card
from pgrf.formats.manifest import write_manifest
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.plots import PLOTS, write_plots
from pgrf.pipeline.stats import compute_stats
from pgrf.pipeline.synthetic import fake_renders
from tests.helpers import CONFIG

RADIUS, FOV = 3.5, math.pi / 4


def _synthetic_shards(out: Path, prefix: str, models: int, classes: int, views: int = 128, mirror: bool = True,
                      uniform_in_angle: bool = False) -> Path:
    """index.parquet + dataset.json of a packed dataset (no tars), cameras from the real sampler.

    ``uniform_in_angle`` draws pitch uniform in [0, π] instead of cos(pitch) uniform: a biased dataset.
    """
    ids = [f"{prefix}{i:04d}_var1" for i in range(models)]
    angles = [cameras.sample_views(m, m, 0, views, RADIUS, FOV) for m in ids]
    yaw = np.array([v.yaw for model in angles for v in model])
    pitch = np.array([v.pitch for model in angles for v in model])
    if uniform_in_angle:
        pitch = np.random.default_rng(1).uniform(cameras.POLE_EPS, math.pi - cameras.POLE_EPS, len(pitch))
    model_id = np.repeat(np.array(ids, dtype=object), views)
    view = np.tile(np.arange(views), models)
    klass = np.repeat(np.arange(models) % classes, views)
    alpha = np.repeat(0.05 + 0.9 * np.arange(models) / models, views)
    columns = {"model_id": model_id, "view": view, "class": klass, "yaw": yaw, "pitch": pitch,
               "mirrored": np.zeros(len(yaw), bool), "mean_alpha": alpha}
    if mirror:
        mirrored_yaw = np.where(-yaw >= math.pi, -yaw - 2 * math.pi, -yaw)
        columns = {k: np.concatenate([v, v]) for k, v in columns.items()}
        columns["yaw"][len(yaw):] = mirrored_yaw
        columns["mirrored"][len(yaw):] = True
    n = len(columns["yaw"])
    keys = [f"{m}_v{v:04d}{'_m' if f else ''}" for m, v, f in zip(columns["model_id"], columns["view"], columns["mirrored"])]
    table = pa.table({"key": keys, "shard": ["x-000000.tar"] * n, "position": np.arange(n), **columns,
                      "asset_id": columns["model_id"], "category": [prefix] * n})
    out.mkdir(parents=True)
    pq.write_table(table, out / "index.parquet")
    card = DatasetCard(
        schema=CARD_SCHEMA, name=prefix, resolution=256, background="white", camera=CameraModel(RADIUS, FOV),
        counts=Counts(samples=n, unique_views=len(yaw), models=models, classes=classes),
        class_names=[f"{prefix}-class{c:02d}" for c in range(classes)], mirror=mirror, seed=0,
        filters=Filters({"min_mean_alpha": {prefix: 0.03}, "min_dim_product": 2.0}, {"min_mean_alpha": 7, "min_dim_product": 3}),
        skipped_bad=SkippedBad(0, []), inputs=[], shards=[ShardEntry("x-000000.tar", n, "")], pgrf_version="test", created="")
    write_card(out, card)
    return out


@pytest.mark.parametrize(("prefix", "models", "images"), [("plants", 1108, 141_824), ("food", 199, 25_472)])
def test_reports_the_published_dataset_sizes_and_a_uniform_sphere(tmp_path: Path, prefix: str, models: int, images: int) -> None:
    result = compute_stats(_synthetic_shards(tmp_path / "shards", prefix, models, classes=12))
    assert (result.images, result.images_with_mirrors, result.models, result.classes) == (images, 2 * images, models, 12)
    assert result.mirrored and result.kind == "shards" and result.resolutions == [256]
    assert result.yaw.ks_pvalue > 0.01 and result.pitch.ks_pvalue > 0.01
    assert result.yaw.distribution == "USphere(0, π)" and result.pitch.distribution == "USphere(π/2, π/2)"
    assert abs(result.yaw.mean) < 0.02 and abs(result.pitch.mean - math.pi / 2) < 0.02
    assert sum(g.images for g in result.per_class) == images and sum(g.models for g in result.per_class) == models
    assert {f.name: f.removed_models for f in result.filters} == {"min_mean_alpha": 7, "min_dim_product": 3}
    assert sum(result.mean_alpha.counts) == models and sum(result.pitch.histogram.counts) == images
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["images"] == images and doc["pitch"]["uniform"] and "yaw_values" not in doc


def test_ks_test_detects_pitch_uniform_in_angle(tmp_path: Path) -> None:
    result = compute_stats(_synthetic_shards(tmp_path / "shards", "food", 199, classes=3, uniform_in_angle=True))
    assert result.pitch.ks_pvalue < 1e-3 and not result.pitch.uniform
    assert result.yaw.ks_pvalue > 0.01
    assert result.pitch.distribution.startswith("not uniform")


def test_shards_without_mirrors(tmp_path: Path) -> None:
    result = compute_stats(_synthetic_shards(tmp_path / "shards", "food", 5, classes=2, views=16, mirror=False))
    assert (result.images, result.images_with_mirrors, result.mirrored) == (80, 80, False)


def test_printed_table_and_json_and_plots(tmp_path: Path) -> None:
    result = compute_stats(_synthetic_shards(tmp_path / "shards", "food", 60, classes=45, views=64))
    console = Console(record=True, width=120)
    print_stats(result, console)
    text = console.export_text()
    for expected in ("3,840", "7,680", "USphere(0, π)", "p = ", "removed 7 models", "top 30 of 45"):
        assert expected in text
    result.write_json(tmp_path / "stats.json")
    assert json.loads((tmp_path / "stats.json").read_text())["models"] == 60
    paths = write_plots(result, tmp_path / "plots")
    assert [p.name for p in paths] == list(PLOTS)
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_renders_category_and_root(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6, "sparse_var1": 0.01}, views=4)
    fake_renders(tmp_path / "renders", "food", {"apple": 0.7}, views=4)
    config = load_config(CONFIG)
    result = compute_stats(plants, config)  # plants' min_mean_alpha 0.03 leaves out sparse_var1
    assert (result.kind, result.images, result.images_with_mirrors, result.models, result.classes) == ("renders", 8, 16, 2, 2)
    assert {f.name: f.removed_models for f in result.filters} == {"min_mean_alpha": 1, "min_dim_product": 1, "exclude": 0}
    assert result.resolutions == [32] and sum(result.mean_alpha.counts) == 3
    assert compute_stats(plants).models == 3  # no config: no threshold
    write_manifest(plants)
    assert compute_stats(plants, config).images == 8  # same numbers from the manifest
    both = compute_stats(tmp_path / "renders", config)
    assert (both.images, both.models) == (12, 3) and [g.name for g in both.per_category] == ["plants", "food"]
    assert compute_stats(tmp_path / "renders", min_mean_alpha=0.55).models == 2
    pack([plants, tmp_path / "renders" / "food"], tmp_path / "shards", config, PackOptions(resolution=8))
    packed = compute_stats(tmp_path / "shards")
    assert (packed.images, packed.images_with_mirrors, packed.models, packed.classes) == (12, 24, 3, 2)
    assert [(g.name, g.images) for g in packed.per_class] == [(g.name, g.images) for g in both.per_class]
    assert {f.name: f.removed_models for f in packed.filters} == {f.name: f.removed_models for f in both.filters}


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(PgrfError, match="no such folder"):
        compute_stats(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PgrfError, match="neither a shards folder"):
        compute_stats(tmp_path / "empty")
    shards = _synthetic_shards(tmp_path / "shards", "food", 3, classes=1, views=4)
    (shards / "index.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(PgrfError, match=r"index\.parquet: not a readable parquet file .*re-run") as error:
        compute_stats(shards)
    assert "\n" not in str(error.value)
    (shards / "dataset.json").write_text("{")
    with pytest.raises(PgrfError, match=r"dataset\.json: not valid JSON"):
        compute_stats(shards)
    (shards / "dataset.json").unlink()
    with pytest.raises(PgrfError, match=r"dataset\.json: missing"):
        compute_stats(shards)
