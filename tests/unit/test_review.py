"""pgrf review: the page's cards (status, mean alpha, why), thumbnails and their cache, the shards page, and the
exclude list the page's script writes, checked against pgrf.formats.exclude and a re-run of pgrf pack."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from pgrf.cli import app
from pgrf.config import load_config
from pgrf.formats import exclude as exclude_format
from pgrf.formats import renders as records
from pgrf.formats.renders import RenderRecord, Status
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.progress import QUIET
from pgrf.review.gallery import review
from pgrf.review.page import Card, Page, ReviewOptions, page_html, read_page
from pgrf.review.thumbs import pick_views, shrink
from tests.helpers import run_pgrf

ALPHAS = {"a1": 0.5, "b2": 0.01, "c3": 0.3}
EXCLUDE_JS = resources.files("pgrf.review") / "static" / "exclude.js"


def _config(tmp_path: Path, excluded: str) -> Path:
    (tmp_path / "exclude.txt").write_text(excluded, encoding="utf-8")
    path = tmp_path / "assets.toml"
    path.write_text('[categories.cat]\nsource = "folders"\nmin_mean_alpha = 0.05\nexclude = "exclude.txt"\n', encoding="utf-8")
    return path


def _cards(out: Path) -> dict[str, dict]:
    return {card.get("key", card["id"]): card for card in read_page(out / "index.html")["cards"]}


@pytest.fixture()
def category(tmp_path: Path) -> Path:
    """Three finished models (one sparse under the config's 0.05), one skipped as small, one failed, one excluded."""
    folder = fake_renders(tmp_path / "renders", "cat", ALPHAS, views=6, resolution=32)
    records.append_record(folder, RenderRecord("broken", Status.FAILED, asset_id="broken", attempt=2, reason="import failed: bad FBX"))
    records.append_record(folder, RenderRecord("gone", Status.EXCLUDED, asset_id="gone"))
    return folder


def test_page_lists_every_model_with_its_status_mean_alpha_and_why(category: Path, tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "# rejected\nC3\ngone\nfuture_*  # none yet\nold1\n"))
    result = review(category, tmp_path / "review", config, ReviewOptions(views=4, size=64, workers=1), QUIET)
    cards = _cards(tmp_path / "review")
    assert set(cards) == {"a1", "b2", "c3", "tiny", "broken", "gone"} and result.cards == 6 and result.made == 3
    status = {name: card["status"] for name, card in cards.items()}
    assert status == {"a1": "rendered", "b2": "sparse", "c3": "excluded", "tiny": "skipped_small", "broken": "failed",
                      "gone": "excluded"}
    for name, alpha in ALPHAS.items():
        assert cards[name]["mean_alpha"] == records.read_cameras(category / name).mean_alpha == alpha
        assert cards[name]["dims_product"] == 8.0 and cards[name]["class"] == f"class{list(ALPHAS).index(name) % 2}"
    assert "0.0100 < min_mean_alpha 0.05" in cards["b2"]["why"]
    assert "exclude file" in cards["c3"]["why"] and cards["c3"]["selected"] and cards["gone"]["selected"]
    assert not any(cards[name].get("selected") for name in ("a1", "b2", "tiny", "broken"))
    assert "import failed: bad FBX" in cards["broken"]["why"] and "attempt 2" in cards["broken"]["why"]
    assert "0.02 < min_dim_product 2" in cards["tiny"]["why"] and cards["tiny"]["dims_product"] == pytest.approx(0.02)
    assert all("thumb" not in cards[name] for name in ("tiny", "broken", "gone"))
    page = read_page(tmp_path / "review" / "index.html")
    assert page["kind"] == "renders" and page["tiles"] == 4 and page["size"] == 64
    assert page["kept"] == {"cat": ["future_*", "old1"]}  # entries that name no card are written back as they are


def test_with_no_filters_known_the_render_log_decides(category: Path, tmp_path: Path) -> None:
    (category / records.FILTERS_FILE).unlink()  # renders of an older pgrf, in a category no config defines
    records.append_record(category, RenderRecord("b2", Status.SPARSE, asset_id="b2", mean_alpha=0.01))
    records.append_record(category, RenderRecord("c3", Status.EXCLUDED, asset_id="c3"))
    review(category, tmp_path / "review", None, ReviewOptions(workers=1), QUIET)
    cards = _cards(tmp_path / "review")
    assert (cards["a1"]["status"], cards["b2"]["status"], cards["c3"]["status"]) == ("rendered", "sparse", "excluded")
    assert [name for name, card in cards.items() if card["selected"]] == ["c3", "gone"]


def test_contact_strip_shows_the_views_over_transparency(category: Path, tmp_path: Path) -> None:
    review(category, tmp_path / "review", None, ReviewOptions(views=4, size=64, workers=1), QUIET)
    card = _cards(tmp_path / "review")["a1"]
    strip = np.asarray(Image.open(tmp_path / "review" / card["thumb"]).convert("RGBA")).astype(float)
    assert strip.shape == (64, 4 * 64, 4)
    for tile in np.split(strip, 4, axis=1):  # fake_renders: an opaque (200, 0, 10) box of 16 × 14 of 32² at (8, 4)
        assert tile[..., 3].mean() / 255 == pytest.approx(16 * 14 / 32**2, abs=0.02)
        assert np.abs(tile[24:40, 12:32, :3] - (200, 0, 10)).max() < 16  # the box's inside (lossy WebP)
        assert tile[2:14, :, 3].max() < 8  # above the box: transparent
    views = records.read_cameras(category / "a1").views
    chosen = pick_views(views, 4)
    assert [v.yaw for v in chosen] == sorted(v.yaw for v in chosen) and len({v.index for v in chosen}) == 4


def test_strip_tiles_reduce_only_the_silhouette_and_equal_a_full_premultiplied_box_mean() -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # transparent pixels with colour, as some renderers leave them
    rgba[13:40, 21:30, 3] = rng.integers(1, 256, (27, 9), dtype=np.uint8)
    tile = np.asarray(shrink(rgba, 8)).astype(float)
    alpha = rgba[..., 3:].astype(float)
    blocks = lambda a: a.reshape(8, 8, 8, 8, a.shape[-1]).mean(axis=(1, 3))  # noqa: E731
    mean_alpha, premultiplied = blocks(alpha), blocks(rgba[..., :3] * alpha / 255)
    assert np.abs(tile[..., 3] - mean_alpha[..., 0]).max() <= 1
    inside = mean_alpha[..., 0] > 64  # straight colour = premultiplied mean ÷ alpha (rounding grows as alpha falls)
    assert np.abs(tile[inside][:, :3] - 255 * premultiplied[inside] / mean_alpha[inside]).max() <= 3
    assert tile[mean_alpha[..., 0] == 0].max() == 0 and np.asarray(shrink(np.zeros((64, 64, 4), np.uint8), 8)).max() == 0


def test_pick_views_goes_round_the_model_from_the_side() -> None:
    identity = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
    k = [[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]]
    yaws = [-3.0, -1.6, -0.7, 0.1, 0.9, 1.5, 2.4, 3.1]
    views = [records.RenderedView(i, records.view_file(i), yaw, math.pi / 2, identity, k, 0.5) for i, yaw in enumerate(yaws)]
    views.append(records.RenderedView(8, records.view_file(8), -2.35, 0.1, identity, k, 0.5))  # from above: left out
    assert [v.yaw for v in pick_views(views, 4)] == [-3.0, -0.7, 0.9, 2.4]  # closest to -3π/4, -π/4, π/4, 3π/4
    assert [v.index for v in pick_views(views[:2], 4)] == [0, 1]


def test_a_rerun_makes_only_new_thumbnails(category: Path, tmp_path: Path) -> None:
    out, options = tmp_path / "review", ReviewOptions(views=3, size=32, workers=1)
    first = review(category, out, None, options, QUIET)
    thumbs = {name: (out / card["thumb"]).stat().st_mtime_ns for name, card in _cards(out).items() if "thumb" in card}
    assert (first.made, first.cached) == (3, 0) and len(thumbs) == 3
    first_a1 = _cards(out)["a1"]["thumb"]
    fake_renders(tmp_path / "renders", "cat", {"d4": 0.4, "e5": 0.2}, views=6, resolution=32)
    second = review(category, out, None, options, QUIET)
    assert (second.made, second.cached, second.removed, second.cards) == (2, 3, 0, 8)
    assert {name: (out / _cards(out)[name]["thumb"]).stat().st_mtime_ns for name in thumbs} == thumbs
    doc = category / "a1" / records.CAMERAS_FILE  # a re-render: a new cameras.json
    os.utime(doc, ns=(doc.stat().st_atime_ns, doc.stat().st_mtime_ns + 10**9))
    third = review(category, out, None, options, QUIET)
    assert (third.made, third.cached, third.removed) == (1, 4, 1)
    assert _cards(out)["a1"]["thumb"] != first_a1 and (out / _cards(out)["a1"]["thumb"]).is_file()
    (out / ".review-cache.json").write_text("{not json")  # a damaged cache (or an interrupted run): every model is read
    fourth = review(category, out, None, options, QUIET)  # again, but the strips on disk are not redrawn
    assert (fourth.made, fourth.cached, fourth.removed) == (0, 5, 0)
    assert len(list((out / "thumbs").rglob("*.webp"))) == 5


def test_shards_page_shows_random_samples_beside_their_mirrored_twins(tmp_path: Path) -> None:
    folder = fake_renders(tmp_path / "renders", "cat", ALPHAS, views=4, resolution=32)
    shards = tmp_path / "shards"
    card = pack([folder], shards, load_config(_config(tmp_path, "zz_old\n")), PackOptions(resolution=32, samples_per_shard=5, name="cat"))
    result = review(shards, tmp_path / "review", None, ReviewOptions(samples=5, size=32, workers=1), QUIET)
    page = read_page(tmp_path / "review" / "index.html")
    index = {row["key"]: row for row in pq.read_table(shards / "index.parquet").to_pylist()}
    assert page["kind"] == "shards" and page["tiles"] == 2 and result.cards == 5 == result.made
    summary = dict(page["summary"])
    assert summary["samples"] == f"{card.counts.samples} (8 unique views)" and summary["models"] == "2"
    assert "min_mean_alpha 1" in summary["models removed by filters"]
    assert summary["exclude file (cat)"] == str((tmp_path / "exclude.txt").resolve()) and page["kept"] == {"cat": ["zz_old"]}
    for key, shown in _cards(tmp_path / "review").items():
        row = index[key]
        assert not row["mirrored"] and shown["twin"] == f"{key}_m" and index[shown["twin"]]["mirrored"]
        assert shown["yaw"] == pytest.approx(math.degrees(row["yaw"]), abs=0.01)
        assert shown["pitch"] == pytest.approx(math.degrees(row["pitch"]), abs=0.01)
        assert shown["class"] == card.class_names[row["class"]] and shown["mean_alpha"] == row["mean_alpha"]
        pair = np.asarray(Image.open(tmp_path / "review" / shown["thumb"]).convert("RGB")).astype(float)
        left, right = pair[:, :32], pair[:, 32:]
        assert pair.shape == (32, 64, 3) and np.abs(left - right[:, ::-1]).mean() < 4  # the twin is the flipped sample
        assert np.abs(left - right).mean() > 20  # and the box is asymmetric, so the flip shows
    again = review(shards, tmp_path / "review", None, ReviewOptions(samples=5, size=32, workers=1), QUIET)
    assert (again.made, again.cached) == (0, 5)


def _node(expression: str) -> str:
    """What ``expression`` gives with the page's exclude.js loaded as ``page``, run by Node.js (on the machine image)."""
    node = shutil.which("node")
    assert node, "node (Node.js) runs the page's script in this test; install the nodejs package"
    call = f"const page = require({json.dumps(str(EXCLUDE_JS))}); process.stdout.write({expression});"
    return subprocess.run([node, "-e", call], capture_output=True, text=True, check=True, timeout=60).stdout


def test_the_pages_exclude_file_is_write_exclude_byte_for_byte_and_pack_honours_it(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text = _node('page.excludeText("cat", ["c3", "a1", "c3"], "2026-11-30")')
    with monkeypatch.context() as patch:  # time.strftime is the time module's: patched for this call only
        patch.setattr(exclude_format.time, "strftime", lambda pattern: "2026-11-30")
        exclude_format.write_exclude(tmp_path / "python.txt", "cat", ["c3", "a1"])
    assert text == (tmp_path / "python.txt").read_text(encoding="utf-8")
    assert text.startswith("# pgrf exclude list for category 'cat', written 2026-11-30\n") and text.endswith("a1\nc3\n")
    folder = fake_renders(tmp_path / "renders", "cat", {**ALPHAS, "d4": 0.4}, views=2, resolution=32)
    config = load_config(_config(tmp_path, text))
    assert config.categories["cat"].exclude and exclude_format.read_exclude(config.categories["cat"].exclude).patterns == ("a1", "c3")
    card = pack([folder], tmp_path / "shards", config, PackOptions(resolution=16, name="cat"))
    packed = {row["model_id"] for row in pq.read_table(tmp_path / "shards" / "index.parquet").to_pylist()}
    assert packed == {"d4"} and card.filters.removed_models["exclude"] == 2  # b2 is sparse (0.05)
    assert _node("page.excludeDate(new Date(2026, 0, 5))") == "2026-01-05"  # the same %Y-%m-%d as write_exclude


def test_the_page_inlines_its_script_and_keeps_any_text_inside_its_data(tmp_path: Path) -> None:
    nasty = 'x</script><script>alert(1)</script><!--'
    page = Page("renders", "t", "src", "now", 4, 128, [["label", nasty]], [Card("m", "cat", nasty, "rendered")])
    html = page_html(page)
    assert html.count("</script>") == 2 and "<!--pgrf:" not in html  # the data's element and the script's
    assert EXCLUDE_JS.read_text(encoding="utf-8") in html
    (tmp_path / "index.html").write_text(html, encoding="utf-8")
    data = read_page(tmp_path / "index.html")
    assert data["summary"] == [["label", nasty]] and data["cards"] == [{"id": "m", "category": "cat", "class": nasty,
                                                                        "status": "rendered", "why": "", "selected": False}]


def test_review_errors_are_one_line(tmp_path: Path) -> None:
    result = run_pgrf("review", str(tmp_path / "nowhere"), "--out", str(tmp_path / "review"))
    assert result.returncode == 2 and "no such folder" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_pgrf("review", str(tmp_path / "empty"), "--out", str(tmp_path / "review"))
    assert result.returncode == 2 and "neither a shard folder" in result.stderr


def test_a_renders_root_shows_every_category_and_unmirrored_shards_show_one_tile(tmp_path: Path) -> None:
    fake_renders(tmp_path / "renders", "cat", {"a1": 0.5}, views=2)
    food = fake_renders(tmp_path / "renders", "food", {"apple": 0.7, "pear": 0.6}, views=2)
    review(tmp_path / "renders", tmp_path / "review", None, ReviewOptions(size=16, workers=1), QUIET)
    page = read_page(tmp_path / "review" / "index.html")
    assert sorted((card["category"], card["id"]) for card in page["cards"]) == [
        ("cat", "a1"), ("cat", "tiny"), ("food", "apple"), ("food", "pear"), ("food", "tiny")]
    assert {card["thumb"].split("/")[1] for card in page["cards"] if "thumb" in card} == {"cat", "food"}
    pack([food], tmp_path / "shards", load_config(_config(tmp_path, "")), PackOptions(resolution=16, mirror=False, name="food"))
    review(tmp_path / "shards", tmp_path / "review", None, ReviewOptions(samples=3, size=16, workers=1), QUIET)
    page = read_page(tmp_path / "review" / "index.html")
    assert page["tiles"] == 1 and len(page["cards"]) == 3 and not any("twin" in card for card in page["cards"])
    assert all(Image.open(tmp_path / "review" / card["thumb"]).size == (16, 16) for card in page["cards"])
    assert len(list((tmp_path / "review" / "thumbs").rglob("*.webp"))) == 3  # the renders' strips were stale: removed


def test_review_flags_default_to_review_options_and_run_without_a_config(category: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    group = typer.main.get_command(app)
    params = {p.name: p for p in group.get_command(typer.Context(group), "review").params}
    for name in ("views", "size", "samples", "seed", "workers", "min_mean_alpha"):
        assert params[name].default == getattr(ReviewOptions, name), name
    text = CliRunner().invoke(app, ["review", "--help"], env={"COLUMNS": "250"}).output
    assert "[default: the filters of each category]" in text and not any(noise in text for noise in ("<int>", "INTEGER", "FLOAT", "<path>"))
    monkeypatch.chdir(tmp_path)  # no ./assets.toml and no $PGRF_CONFIG: the renders' recorded filters decide
    monkeypatch.delenv("PGRF_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["review", str(category), "--out", "out", "--workers", "1", "--views", "2"])
    assert result.exit_code == 0, result.output
    assert "6 cards (renders), 3 thumbnails made" in result.output and (tmp_path / "out" / "index.html").is_file()
    assert _cards(tmp_path / "out")["b2"]["status"] == "rendered"  # 0.01, but the renders record no threshold
    assert read_page(tmp_path / "out" / "index.html")["tiles"] == 2


def test_a_broken_cameras_json_or_png_is_a_card_that_says_so(category: Path, tmp_path: Path) -> None:
    (category / "a1" / records.CAMERAS_FILE).write_text("{", encoding="utf-8")
    for view in (category / "c3" / "views").iterdir():
        view.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = review(category, tmp_path / "review", None, ReviewOptions(workers=1), QUIET)
    cards = _cards(tmp_path / "review")
    assert cards["a1"]["status"] == "unreadable" and "cameras.json: unreadable" in cards["a1"]["why"]
    assert cards["c3"]["status"] == "rendered" and "thumb" not in cards["c3"]
    assert "no thumbnail" in cards["c3"]["why"] and "corrupt or truncated PNG" in cards["c3"]["why"]
    assert (result.made, result.cards) == (1, 6) and "thumb" in cards["b2"]
    again = review(category, tmp_path / "review", None, ReviewOptions(workers=1), QUIET)
    assert (again.made, again.cached) == (0, 1)  # broken models are tried again, not cached
