"""`pgrf render` end to end on the sample library: outputs, filters, faults, resume, sharding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pgrf import cameras, fileio
from pgrf.assets.discovery import discover
from pgrf.config import hdri_file, load_config, with_overrides
from pgrf.formats import manifest
from pgrf.formats import renders as records
from pgrf.render.options import RenderRun
from pgrf.render.runner import in_shard, plan
from tests.helpers import CONFIG, REPO, TINY, run_pgrf, silhouette

PLANTS_OK = {"rbfqjd2_var1", "rbfqjd2_var2", "sfmhcbkr_var1", "sfmhcbkr_var2"}


@pytest.fixture(scope="module")
def rendered(sample_library: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("renders")
    result = run_pgrf("render", "-c", "sample-plants", "-c", "sample-food", "--library", str(sample_library),
                      "--out", str(out), "--workers", "2", *TINY)
    return result, out


def _cameras(model_dir: Path) -> dict:
    """A model's cameras.json as written on disk (after checking it validates against its contract)."""
    records.read_cameras(model_dir)
    return json.loads((model_dir / records.CAMERAS_FILE).read_text())


def _records(category_dir: Path) -> list[dict]:
    """The render log's records as written on disk (after checking they validate against their contract)."""
    records.read_records(category_dir)
    return fileio.read_log(category_dir, records.LOG_FILE)


def _log(category_dir: Path) -> dict[str, dict]:
    return {record["model_id"]: record for record in _records(category_dir)}


def test_render_writes_the_design_layout(rendered) -> None:
    result, out = rendered
    assert result.returncode == 1, result.stderr  # the faulty assets failed
    plants = out / "sample-plants"
    finished = records.finished_models(plants)
    assert PLANTS_OK <= set(finished)
    assert not list(plants.glob(".tmp-*"))
    doc = _cameras(finished["sfmhcbkr_var1"])
    for key in ("schema", "model_id", "asset_id", "asset_name", "category", "class_name", "source_files", "render",
                "blender_version", "normalisation", "mean_alpha", "views"):
        assert key in doc
    assert doc["class_name"] == "sword fern" and doc["blender_version"].startswith("5.0")
    assert set(doc["render"]) >= {"engine", "device", "samples", "denoiser", "resolution", "fov", "radius", "seed"}
    assert set(doc["normalisation"]) == {"scale", "offset", "dims", "dims_product"}
    assert max(doc["normalisation"]["dims"]) == pytest.approx(2.0)
    assert len(doc["views"]) == 3
    expected = cameras.sample_views(doc["asset_id"], doc["model_id"], 0, 3, 3.5, np.pi / 4)
    coverage = []
    for view, camera in zip(doc["views"], expected):
        assert view["file"] == f"views/{view['index']:04d}.png"
        assert np.allclose(view["c2w"], camera.c2w) and np.allclose(view["intrinsics"], camera.intrinsics)
        image = Image.open(finished["sfmhcbkr_var1"] / view["file"])
        assert image.mode == "RGBA" and image.size == (32, 32)
        alpha = np.asarray(image)[..., 3] / 255.0
        assert alpha.min() == 0.0  # transparent film
        assert view["alpha_coverage"] == pytest.approx(alpha.mean())
        coverage.append(alpha.mean())
    assert doc["mean_alpha"] == pytest.approx(np.mean(coverage))


def test_filters_and_faults_are_logged(rendered) -> None:
    result, out = rendered
    plants, food = _log(out / "sample-plants"), _log(out / "sample-food")
    assert all(plants[m]["status"] == "rendered" for m in PLANTS_OK)
    assert plants["tdxwcafa_var1"]["status"] == "sparse"
    assert plants["tdxwcafa_var1"]["mean_alpha"] < 0.03 <= plants["rbfqjd2_var1"]["mean_alpha"]
    assert (out / "sample-plants" / "tdxwcafa_var1" / "cameras.json").is_file()  # sparse renders are kept
    assert food["vhzdaa3"]["status"] == "skipped_small" and food["vhzdaa3"]["normalisation"]["dims_product"] < 2.0
    assert not (out / "sample-food" / "vhzdaa3").exists()
    assert food["xcorrupt"]["status"] == "failed" and "could not import" in food["xcorrupt"]["reason"]
    assert "Invalid header" in food["xcorrupt"]["blender_tail"]  # Blender's own words
    assert food["xempty"]["status"] == "failed" and "no mesh geometry" in food["xempty"]["reason"]
    assert plants["xmissing_var1"]["status"] == "failed" and "Albedo" in plants["xmissing_var1"]["reason"]
    assert food["uk4pdgnfw_01"]["status"] == "rendered"
    for record in list(plants.values()) + list(food.values()):
        assert {"status", "reason", "seconds", "attempt"} <= set(record)
    assert "failed xcorrupt" in " ".join(result.stderr.split())
    recorded = records.read_filters(out / "sample-plants")  # what pack, stats and review apply without a config
    assert recorded is not None and (recorded.written_by, recorded.min_mean_alpha, recorded.min_dim_product) == (
        "pgrf render", 0.03, 2.0)


def test_manifest_has_one_row_per_view_of_every_finished_model(rendered) -> None:
    _, out = rendered
    table = pq.read_table(out / "sample-plants" / manifest.MANIFEST_FILE).to_pylist()
    finished = records.finished_models(out / "sample-plants")
    assert len(table) == 3 * len(finished)
    row = next(r for r in table if r["model_id"] == "rbfqjd2_var2" and r["view"] == 1)
    doc = _cameras(finished["rbfqjd2_var2"])
    assert row["file"] == "rbfqjd2_var2/views/0001.png"
    assert np.allclose(np.reshape(row["c2w"], (4, 4)), doc["views"][1]["c2w"])
    assert row["yaw"] == doc["views"][1]["yaw"] and row["mean_alpha"] == doc["mean_alpha"]


def test_rerun_only_retries_failures(rendered, sample_library: Path) -> None:
    _, out = rendered
    before = {c: len(_records(out / c)) for c in ("sample-plants", "sample-food")}
    mtime = (out / "sample-plants" / "rbfqjd2_var1" / "cameras.json").stat().st_mtime_ns
    result = run_pgrf("render", "-c", "sample-plants", "-c", "sample-food", "--library", str(sample_library),
                      "--out", str(out), *TINY)
    assert result.returncode == 1
    new_plants = _records(out / "sample-plants")[before["sample-plants"]:]
    new_food = _records(out / "sample-food")[before["sample-food"]:]
    assert {r["model_id"] for r in new_plants} == {"xmissing_var1"}
    assert {r["model_id"] for r in new_food} == {"xcorrupt", "xempty"}  # skipped_small is not re-imported
    assert all(r["attempt"] == 2 for r in new_plants + new_food)
    assert (out / "sample-plants" / "rbfqjd2_var1" / "cameras.json").stat().st_mtime_ns == mtime


def _corner_obj(path: Path) -> np.ndarray:
    """Write an asymmetric solid (three boxes meeting at a corner) as OBJ; returns its triangles (OBJ frame)."""
    boxes = [((0, 0, 0), (2.0, 0.6, 0.6)), ((0, 0.6, 0), (0.6, 1.8, 0.6)), ((0, 0, 0.6), (0.6, 0.6, 1.6))]
    vertices, faces = [], []
    for low, high in boxes:
        base = len(vertices)
        vertices += [(x, y, z) for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
        quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
        faces += [(base + q[0], base + q[1], base + q[2]) for q in quads] + [(base + q[0], base + q[2], base + q[3]) for q in quads]
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in vertices) + "".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces))
    return np.array(vertices, float)[np.array(faces)]


def test_projected_geometry_matches_the_rendered_alpha(tmp_path: Path) -> None:
    triangles = _corner_obj(tmp_path / "lib" / "shapes" / "corner.obj")
    config = tmp_path / "assets.toml"
    config.write_text("[categories.shapes]\nsource = 'folders'\nclass_from = 'folder'\n")
    result = run_pgrf("render", "-c", "shapes", "--config", str(config), "--library", str(tmp_path / "lib"),
                      "--out", str(tmp_path / "out"), "--views", "6", "--resolution", "64", "--samples", "4", "--no-denoise")
    assert result.returncode == 0, result.stderr
    doc = _cameras(tmp_path / "out" / "shapes" / "shapes_corner")
    norm = doc["normalisation"]
    blender_frame = triangles[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # OBJ is Y-up: (x, y, z) -> (x, -z, y)
    world = (blender_frame + norm["offset"]) * norm["scale"]
    assert np.allclose(world.reshape(-1, 3).max(0) - world.reshape(-1, 3).min(0), norm["dims"])
    for view in doc["views"]:
        pixels, depth = cameras.project(world.reshape(-1, 3), np.array(view["c2w"]), np.array(view["intrinsics"]), 64)
        assert depth.min() > 0
        predicted = silhouette(pixels.reshape(-1, 3, 2), 64)
        alpha = np.asarray(Image.open(tmp_path / "out" / "shapes" / "shapes_corner" / view["file"]))[..., 3] > 127
        iou = (predicted & alpha).sum() / (predicted | alpha).sum()
        flipped_iou = (predicted[:, ::-1] & alpha).sum() / (predicted[:, ::-1] | alpha).sum()
        assert iou > 0.9, (view["index"], iou)
        assert flipped_iou < iou  # the test can tell a mirrored camera from the right one


def _start(sample_library: Path, out: Path, *extra: str) -> subprocess.Popen:
    """``pgrf render`` in the background; its stderr goes to ``out/render-stderr.txt`` (read it when a check fails).

    SIGINT is reset to its default in the child: a test run started in the background of a non-interactive shell
    (``nohup … &``) inherits SIGINT ignored, and Python keeps it so, which would make Ctrl-C a no-op here.
    """
    with open(out / "render-stderr.txt", "wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "pgrf", "render", "-c", "sample-plants", "--library", str(sample_library),
                                 "--out", str(out), "--workers", "1", *extra], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(condition, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_interrupted_run_resumes_without_partial_or_repeated_models(sample_library: Path, tmp_path: Path, how: str) -> None:
    flags = ["--views", "8", "--resolution", "32", "--samples", "4", "--no-denoise"]
    category = tmp_path / "sample-plants"
    process = _start(sample_library, tmp_path, *flags)
    _wait_for(lambda: len(records.finished_models(category)) >= 1 and list(category.glob(".tmp-*")))
    process.send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
    code = process.wait(60)
    assert code == (-signal.SIGKILL if how == "kill" else 130), (tmp_path / "render-stderr.txt").read_text()[-2000:]
    time.sleep(1.5)  # an orphaned worker notices its parent is gone and exits
    at_stop = set(records.finished_models(category))
    for model_dir in records.finished_models(category).values():
        assert len(list((model_dir / "views").glob("*.png"))) == 8  # nothing partial counts as finished
    log_before = len(_records(category))
    result = run_pgrf("render", "-c", "sample-plants", "--library", str(sample_library), "--out", str(tmp_path), *flags)
    assert result.returncode == 1, result.stderr  # only the faulty plant fails
    finished = records.finished_models(category)
    assert PLANTS_OK <= set(finished) and not list(category.glob(".tmp-*"))
    again = {r["model_id"] for r in _records(category)[log_before:] if r["status"] in ("rendered", "sparse")}
    assert again and not again & at_stop  # no finished model rendered twice
    table = pq.read_table(category / manifest.MANIFEST_FILE)
    assert table.num_rows == 8 * len(finished)


def test_a_crashed_worker_fails_only_its_model(sample_library: Path, tmp_path: Path) -> None:
    category = tmp_path / "sample-plants"
    process = _start(sample_library, tmp_path, "--views", "40", "--resolution", "32", "--samples", "2", "--no-denoise", "--limit", "2")
    _wait_for(lambda: list(category.glob(".tmp-*@*@*")))
    victim = next(category.glob(".tmp-*@*@*"))
    pid = victim.name.rsplit("@", 1)[1]
    os.kill(int(pid), signal.SIGKILL)  # as the kernel's OOM killer would
    assert process.wait(300) == 1
    log = _log(category)
    crashed = [r for r in log.values() if "crashed" in r["reason"]]
    assert len(crashed) == 1 and crashed[0]["status"] == "failed" and "exit code -9" in crashed[0]["reason"]
    finished = [m for m, r in log.items() if r["status"] in ("rendered", "sparse")]
    assert len(finished) == 1 and not list(category.glob(".tmp-*"))  # the run went on with the next model


def test_timeout_kills_the_model_and_the_run_goes_on(sample_library: Path, tmp_path: Path) -> None:
    result = run_pgrf("render", "-c", "sample-plants", "--library", str(sample_library), "--out", str(tmp_path),
                      "--views", "200", "--resolution", "64", "--samples", "16", "--timeout", "1", "--limit", "2")
    assert result.returncode == 1
    log = _log(tmp_path / "sample-plants")
    assert [r["status"] for r in log.values()] == ["failed", "timeout", "timeout"]  # unusable plant + 2 timeouts
    assert all("--timeout" in r["reason"] for r in log.values() if r["status"] == "timeout")
    assert not records.finished_models(tmp_path / "sample-plants") and not list((tmp_path / "sample-plants").glob(".tmp-*"))


def test_shards_partition_the_models(sample_library: Path) -> None:
    cfg = load_config(CONFIG)
    category = cfg.category("sample-plants")
    catalog = discover(cfg.library_root(category, str(sample_library)), category)
    settings = with_overrides(cfg.render, views=3)
    shards = [plan(catalog, Path("/nonexistent"), settings, RenderRun(shard_index=i, num_shards=3)) for i in range(3)]
    ids = [{m.model_id for m in s.todo + s.unusable} for s in shards]
    assert set().union(*ids) == {m.model_id for m in catalog.models}
    assert sum(len(i) for i in ids) == len(catalog.models)
    assert all(in_shard(m, i, 3) for i, shard in enumerate(ids) for m in shard)
    limited = plan(catalog, Path("/nonexistent"), settings, RenderRun(limit=2))
    assert len(limited.todo) == 2 and limited.over_limit == len(catalog.models) - 1 - 2


def test_bad_shard_arguments_are_one_line_errors(sample_library: Path) -> None:
    result = run_pgrf("render", "-c", "sample-plants", "--library", str(sample_library), "--shard-index", "2", "--num-shards", "2")
    assert result.returncode == 2 and "--shard-index must be in [0, --num-shards)" in result.stderr


def test_force_replaces_a_finished_model_and_passes_are_written(sample_library: Path, tmp_path: Path) -> None:
    args = ["render", "-c", "sample-food", "--library", str(sample_library), "--out", str(tmp_path), *TINY, "--limit", "1"]
    assert run_pgrf(*args).returncode == 0  # --limit 1 renders only the apple (first in id order)
    first = _cameras(tmp_path / "sample-food" / "tgmlbdyp")
    assert run_pgrf(*args, "--force", "--passes", "depth,normal").returncode == 0
    log = [r for r in _records(tmp_path / "sample-food") if r["model_id"] == "tgmlbdyp"]
    assert [r["attempt"] for r in log] == [1, 2]
    second = _cameras(tmp_path / "sample-food" / "tgmlbdyp")
    assert second["views"][0]["c2w"] == first["views"][0]["c2w"] and second["render"]["passes"] == ["depth", "normal"]
    exr = (tmp_path / "sample-food" / "tgmlbdyp" / "passes" / "0000.exr").read_bytes()
    assert exr[:4] == b"\x76\x2f\x31\x01"  # OpenEXR magic
    assert b"Depth.Z" in exr and b"Normal.X" in exr


def test_hdri_lights_the_model(tmp_path: Path) -> None:
    _corner_obj(tmp_path / "lib" / "shapes" / "corner.obj")
    Image.new("RGB", (16, 8), (255, 40, 40)).save(tmp_path / "red.png")
    colours = {}
    for world in ("", "red.png"):
        config = tmp_path / f"assets{len(world)}.toml"
        config.write_text(f"[render]\nhdri = '{world}'\n[categories.shapes]\nsource = 'folders'\n")
        out = tmp_path / f"out{len(world)}"
        result = run_pgrf("render", "-c", "shapes", "--config", str(config), "--library", str(tmp_path / "lib"),
                          "--out", str(out), *TINY)
        assert result.returncode == 0, result.stderr
        pixels = np.asarray(Image.open(out / "shapes" / "shapes_corner" / "views" / "0000.png"), float)
        colours[world] = pixels[pixels[..., 3] == 255][:, :3].mean(0)
    white, red = colours[""], colours["red.png"]
    assert abs(white[0] - white[1]) < 10  # a grey material under even white light stays grey
    assert red[0] > 2 * red[1]


def test_unavailable_device_stops_the_run_with_one_line(sample_library: Path, tmp_path: Path) -> None:
    result = run_pgrf("render", "-c", "sample-food", "--library", str(sample_library), "--out", str(tmp_path),
                      *TINY, "--device", "optix")
    assert result.returncode == 2
    assert "--device optix: no OPTIX device found; use --device auto or cpu" in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr
    assert not _records(tmp_path / "sample-food")  # a settings error is not a model's attempt


def test_filtered_models_are_rejudged_from_the_log_when_the_threshold_changes(sample_library: Path, tmp_path: Path) -> None:
    cfg = load_config(CONFIG)
    category = cfg.category("sample-food")
    catalog = discover(cfg.library_root(category, str(sample_library)), category)
    tmp_path.mkdir(exist_ok=True)
    small = records.Normalisation(1.0, [0.0, 0.0, 0.0], [2.0, 0.6, 0.12], 0.144)
    records.append_record(tmp_path, records.RenderRecord("vhzdaa3", records.Status.SKIPPED_SMALL, normalisation=small))
    strict = plan(catalog, tmp_path, with_overrides(cfg.render, min_dim_product=2.0))
    assert strict.filtered == ["vhzdaa3"] and "vhzdaa3" not in {m.model_id for m in strict.todo}
    lenient = plan(catalog, tmp_path, with_overrides(cfg.render, min_dim_product=0.1))
    assert not lenient.filtered and "vhzdaa3" in {m.model_id for m in lenient.todo}


def test_pack_reads_real_renders_and_leaves_out_sparse_models(rendered, tmp_path: Path) -> None:
    _, out = rendered
    result = run_pgrf("pack", str(out / "sample-plants"), str(out / "sample-food"), "--out", str(tmp_path), "--resolution", "16")
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "dataset.json").read_text())
    finished = {**records.finished_models(out / "sample-plants"), **records.finished_models(out / "sample-food")}
    assert card["counts"]["models"] == len(finished) - 1  # the sparse twigs are left out
    assert card["counts"]["samples"] == 2 * 3 * card["counts"]["models"]
    assert card["filters"]["removed_models"] == {"min_mean_alpha": 1, "min_dim_product": 1, "exclude": 0}
    assert card["filters"]["thresholds"]["min_mean_alpha"] == {"sample-plants": 0.03, "sample-food": 0.0}  # as recorded
    assert "sword fern" in card["class_names"] and "mushroom" in card["class_names"]


@pytest.mark.parametrize("name, content", [("text.hdr", b"#?RADIANCE\nthis is no image\n"), ("truncated.exr", None)])
def test_an_hdri_that_does_not_decode_stops_the_run_with_one_line(tmp_path: Path, name: str, content: bytes | None) -> None:
    _corner_obj(tmp_path / "lib" / "shapes" / "corner.obj")
    studio = hdri_file("studio")
    hdri = tmp_path / name
    hdri.write_bytes(content if content is not None else studio.read_bytes()[:len(studio.read_bytes()) * 2 // 3])
    config = tmp_path / "assets.toml"
    config.write_text(f"[render]\nhdri = '{name}'\n[categories.shapes]\nsource = 'folders'\n")
    result = run_pgrf("render", "-c", "shapes", "--config", str(config), "--library", str(tmp_path / "lib"),
                      "--out", str(tmp_path / "out"), *TINY)
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert f"render.hdri: {hdri} does not decode as an image" in message and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "shapes" / "shapes_corner").exists()
