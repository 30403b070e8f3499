"""`pgrf import epigraf-renders`: EpiGRAF's raw/filtered render layout → a pgrf render folder that pack and stats
read as any render. The datasets are written as the authors' render_dataset.py wrote them, without Blender
(tests/libraries/epigraf_renders.py); tests/blender/test_import_renders_blender.py renders one with Blender."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pgrf import cameras
from pgrf.config import Category, load_config
from pgrf.errors import PgrfError
from pgrf.formats import images as images_module
from pgrf.formats import renders as records
from pgrf.formats.renders import Status
from pgrf.pipeline import import_renders as importer
from pgrf.pipeline.import_renders import import_renders
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.stats import compute_stats
from tests.helpers import bomb_png, run_pgrf
from tests.libraries.epigraf_renders import write_raw

MODELS = {"Coll A": ["Thing 1", "Thing 2"], "collB": ["Other_LOD0"]}


@pytest.fixture()
def raw(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path / "raw"
    return root, write_raw(root, MODELS, views=4, size=32)


def _import(root: Path, out: Path, **kwargs) -> importer.ImportOutcome:
    return import_renders(root, kwargs.pop("category", Category("plants")), out, **kwargs)


def test_cameras_classes_files_and_alpha_of_an_import(raw, tmp_path: Path) -> None:
    root, points = raw
    outcome = _import(root, tmp_path / "renders")
    assert outcome.counts == {Status.RENDERED: 3} and not outcome.problems and outcome.views == 12
    category = tmp_path / "renders" / "plants"
    assert sorted(records.finished_models(category)) == ["Other_LOD0", "Thing_1", "Thing_2"]
    for model_id, collection in (("Thing_1", "Coll_A"), ("Thing_2", "Coll_A"), ("Other_LOD0", "collB")):
        doc = records.read_cameras(category / model_id)
        metadata = json.loads((root / collection / "metadata.json").read_text())
        frames = metadata[model_id.replace("_", " ") if model_id.startswith("Thing") else model_id]
        assert (doc.class_name, doc.asset_id, doc.category) == (collection, collection, "plants")
        assert doc.render.passes == ["depth", "normal"] and doc.render.resolution == 32
        assert (doc.render.radius, doc.render.fov) == (3.5, math.pi / 4)
        coverage = []
        for view, frame in zip(doc.views, frames):
            yaw, pitch, _ = frame["camera_angles"]
            assert np.allclose(view.c2w, cameras.look_at_origin(yaw, pitch, 3.5), atol=1e-12)  # same (φ, θ), pgrf's c2w
            assert math.isclose(view.yaw, yaw, abs_tol=1e-12) and math.isclose(view.pitch, pitch, abs_tol=1e-12)
            link = category / model_id / view.file
            source = root / f"{frame['file_path']}.png"
            assert link.is_symlink() and link.resolve() == source.resolve()
            assert (category / model_id / "passes" / f"{view.index:04d}_depth.exr").resolve() == \
                source.with_name(f"{source.stem}_depth_0001.exr").resolve()
            alpha = np.asarray(Image.open(source))[..., 3]
            assert view.alpha_coverage == pytest.approx(alpha.mean() / 255)
            coverage.append(alpha.mean() / 255)
            hits = [_on_alpha(points[f"{collection}/{model_id}"], c2w, np.array(view.intrinsics), alpha)
                    for c2w in (np.array(view.c2w), cameras.look_at_origin(yaw + 0.5, pitch, 3.5))]
            assert hits[0] > 0.99 and hits[1] < 0.95  # the points land on opaque pixels; from a camera turned 0.5 rad they do not
        assert doc.mean_alpha == pytest.approx(np.mean(coverage))
    table = pq.read_table(category / "manifest.parquet")
    assert table.num_rows == 12 and set(table.column("class_name").to_pylist()) == {"Coll_A", "collB"}
    stats = compute_stats(category)
    assert (stats.models, stats.images, stats.classes) == (3, 12, 2)


def _on_alpha(points: np.ndarray, c2w: np.ndarray, intrinsics: np.ndarray, alpha: np.ndarray) -> float:
    """The share of points projected onto an opaque pixel."""
    pixels, depth = cameras.project(points, c2w, intrinsics, alpha.shape[0])
    assert depth.min() > 0
    cells = np.clip(np.floor(pixels).astype(int), 0, alpha.shape[0] - 1)
    return float((alpha[cells[:, 1], cells[:, 0]] == 255).mean())


def test_copy_copies_the_pngs(raw, tmp_path: Path) -> None:
    root, _ = raw
    _import(root, tmp_path / "renders", copy=True)
    view = tmp_path / "renders" / "plants" / "Thing_1" / "views" / "0002.png"
    assert not view.is_symlink() and view.read_bytes() == (root / "Coll_A" / "Thing_1" / "000002.png").read_bytes()


def test_filters_of_the_category_are_applied_and_logged_as_a_render_does(raw, tmp_path: Path) -> None:
    root, _ = raw
    exclude = tmp_path / "rejected.txt"
    exclude.write_text("# hand-rejected\nother_lod0\n")
    config = tmp_path / "assets.toml"
    first = _import(root, tmp_path / "probe")
    alphas = sorted(r.mean_alpha for r in first.records)
    threshold = (alphas[0] + alphas[1]) / 2
    config.write_text(f"[categories.plants]\nsource = 'folders'\nmin_mean_alpha = {threshold}\nexclude = '{exclude.name}'\n")
    cfg = load_config(config)
    outcome = _import(root, tmp_path / "renders", category=cfg.category("plants"))
    assert outcome.counts == {Status.RENDERED: 1, Status.SPARSE: 1, Status.EXCLUDED: 1}
    log = records.latest_status(records.read_records(tmp_path / "renders" / "plants"))
    assert log["Other_LOD0"].status is Status.EXCLUDED and log["Other_LOD0"].reason == f"in {exclude}"
    sparse = next(r for r in log.values() if r.status is Status.SPARSE)
    assert sparse.reason.startswith(f"mean_alpha {sparse.mean_alpha:.4f} < min_mean_alpha {threshold}")
    assert "Other_LOD0" not in records.finished_models(tmp_path / "renders" / "plants")
    card = pack([tmp_path / "renders" / "plants"], tmp_path / "shards", cfg, PackOptions(resolution=16, mirror=False))
    assert card.counts.models == 1 and card.filters.removed_models == {"min_mean_alpha": 1, "min_dim_product": 0, "exclude": 1}


def test_rerun_and_interruption_keep_imported_models(raw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = raw
    category = tmp_path / "renders" / "plants"
    real = importer.import_model
    calls = []

    def interrupted(job):
        if calls:
            raise KeyboardInterrupt
        calls.append(job.model_id)
        return real(job)

    monkeypatch.setattr(importer, "import_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _import(root, tmp_path / "renders")
    assert list(records.finished_models(category)) == calls
    assert [r.model_id for r in records.read_records(category)] == calls
    assert pq.read_table(category / "manifest.parquet").num_rows == 4  # written on the way out
    monkeypatch.setattr(importer, "import_model", real)
    again = _import(root, tmp_path / "renders")
    assert again.finished == 1 and len(again.records) == 2 and calls[0] not in {r.model_id for r in again.records}
    mtime = (category / calls[0] / "cameras.json").stat().st_mtime_ns
    third = _import(root, tmp_path / "renders")
    assert third.finished == 3 and not third.records
    assert (category / calls[0] / "cameras.json").stat().st_mtime_ns == mtime
    assert pq.read_table(category / "manifest.parquet").num_rows == 12
    (category / records.LOG_FILE).unlink()  # as if a run was stopped after the models were in place, before logging
    fourth = _import(root, tmp_path / "renders")
    assert fourth.finished == 3 and sorted((r.model_id, r.status, r.views) for r in fourth.records) == \
        [("Other_LOD0", Status.RENDERED, 4), ("Thing_1", Status.RENDERED, 4), ("Thing_2", Status.RENDERED, 4)]
    assert len(records.read_records(category)) == 3


def test_faults_are_one_line_each_counted_and_the_run_goes_on(raw, tmp_path: Path) -> None:
    root, _ = raw
    (root / "no_metadata" / "model").mkdir(parents=True)  # a folder that is not a collection
    (root / "broken").mkdir()
    (root / "broken" / "metadata.json").write_text("{not json")
    metadata = json.loads((root / "Coll_A" / "metadata.json").read_text())
    metadata["Ghost"] = [dict(metadata["Thing 1"][0], file_path="Coll_A/Ghost/000000")]  # listed, folder missing
    (root / "Coll_A" / "metadata.json").write_text(json.dumps(metadata))
    (root / "Coll_A" / "Thing_1" / "000001.png").unlink()  # listed view missing
    (root / "Coll_A" / "Thing_2" / "000003.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # undecodable
    (root / "collB" / "Stray").mkdir()  # a model folder metadata.json does not list
    outcome = _import(root, tmp_path / "renders")
    problems = outcome.problems
    assert len(problems) == 6 and all("\n" not in p for p in problems)
    expected = [f"{root / 'no_metadata'}: no metadata.json", f"{root / 'broken' / 'metadata.json'}: unreadable",
                f"{root / 'Coll_A' / 'Ghost'}: listed in", f"{root / 'Coll_A' / 'Thing_1' / '000001.png'}: listed in",
                f"{root / 'Coll_A' / 'Thing_2' / '000003.png'}: corrupt", f"{root / 'collB' / 'Stray'}: not in"]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    log = records.latest_status(records.read_records(tmp_path / "renders" / "plants"))
    assert log["Ghost"].status is Status.FAILED
    assert [log[m].status for m in ("Thing_1", "Thing_2", "Other_LOD0")] == [Status.RENDERED] * 3
    assert log["Thing_1"].views == 3 and "000001.png: listed in" in log["Thing_1"].reason
    doc = records.read_cameras(tmp_path / "renders" / "plants" / "Thing_1")
    assert [v.index for v in doc.views] == [0, 2, 3]  # the authors' numbers, the missing view left out


def test_a_root_without_collections_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PgrfError, match="no such folder"):
        _import(tmp_path / "missing", tmp_path / "renders")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PgrfError, match="no collections"):
        _import(tmp_path / "empty", tmp_path / "renders")


def test_cli_imports_in_parallel_and_then_packs(raw, tmp_path: Path) -> None:
    root, _ = raw
    result = run_pgrf("import", "epigraf-renders", str(root), "--category", "plants", "--out", str(tmp_path / "r"),
                      "--workers", "2", "--config", os.devnull, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1  # a config that is not one: one line
    result = run_pgrf("import", "epigraf-renders", str(root), "--category", "plants", "--out", str(tmp_path / "r"),
                      "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 collections: 3 rendered (12 views" in result.stdout and "0 problems" in result.stdout
    assert len(records.finished_models(tmp_path / "r" / "plants")) == 3


def test_a_category_that_would_leave_the_output_folder_is_refused(raw, tmp_path: Path) -> None:
    out = tmp_path / "a" / "renders"
    result = run_pgrf("import", "epigraf-renders", str(raw[0]), "--category", "../../x", "--out", str(out))
    assert result.returncode == 2 and "category '../../x' cannot name a folder" in result.stderr.replace("\n", " ")
    assert not (tmp_path / "x").exists() and not out.exists()


def test_a_view_over_the_pixel_limit_is_left_out_before_it_is_decoded(raw, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = raw
    bomb = root / "Coll_A" / "Thing_2" / "000002.png"
    bomb.write_bytes(bomb_png(10_000, 10_000))
    decoded: list[int] = []
    real_load = images_module.pyspng.load
    monkeypatch.setattr(images_module.pyspng, "load", lambda data, **kw: decoded.append(len(data)) or real_load(data, **kw))
    problems = _import(root, tmp_path / "renders").problems
    assert problems == [f"{bomb}: 10000x10000 pixels, over the limit of 89478485; not decoded (re-create it smaller); "
                        "view left out"]
    assert len(decoded) == 11 and bomb.stat().st_size not in decoded  # the other views only


def test_an_import_holds_its_category_folder_against_other_roots_and_renders(raw, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = raw
    category = tmp_path / "renders" / "plants"
    held: list[dict] = []
    real = importer.import_model

    def watched(job):
        held.extend(json.loads(p.read_text()) for p in category.glob(".lock-*"))
        return real(job)

    monkeypatch.setattr(importer, "import_model", watched)
    _import(root, tmp_path / "renders")
    assert held and all(lock == held[0] for lock in held) and held[0]["command"] == "pgrf import epigraf-renders"
    assert held[0]["settings"]["root"] == str(root.resolve()) and held[0]["settings"]["copy"] is False
    assert not list(category.glob(".lock-*")), "the lock outlived its run"

    other = category / f".lock-{socket.gethostname()}@{os.getppid()}"  # a live process of this host
    other.write_text(json.dumps(held[0]))
    assert _import(root, tmp_path / "renders").finished == 3  # the same import shares the folder
    with pytest.raises(PgrfError, match=r"being written by pgrf import epigraf-renders .*copy False there, True here"):
        _import(root, tmp_path / "renders", copy=True)
    other.write_text(json.dumps({"command": "pgrf render", "settings": {"resolution": 1024}}))
    log = (category / records.LOG_FILE).read_bytes()
    with pytest.raises(PgrfError, match=r"being written by pgrf render .*resolution 1024 there, None here"):
        _import(root, tmp_path / "renders")
    assert (category / records.LOG_FILE).read_bytes() == log
