"""pgrf review benchmark and browser check.

Run from the repository root: ``.venv/bin/python bench/review.py [--sample-renders DIR] [--models 2000] [--browser]``.

Figures, all measured in this run:

- **sample library**: ``pgrf review`` (a fresh process, as a user runs it) on the sample library's render
  folder (``--sample-renders``: a ``renders/`` root or category, e.g. what ``scripts/demo.sh`` rendered;
  else the sample plants are rendered here at 16 views of 128²): first run, cached re-run, page and
  thumbnail sizes;
- **synthetic library**: ``--models`` models of ``--views`` views at ``--resolution``² (default 2,000 ×
  128 views at 1024², M-Plants' layout), every view a symlink to one of a few textured RGBA sources
  (noise-textured silhouettes: harder to decode than real renders), each with a real ``cameras.json``:
  first run with ``--workers`` processes, cached re-run, a re-run after 100 new models, page size; against
  the **baselines**, per model in one process on 200 of the models, one right after the other: reading its
  ``cameras.json`` and decoding the 4 views of its strip (the least work a first run does), against the whole
  of review's work for it in the same process;
- **browser** (``--browser``; Debian's ``chromium`` and ``chromium-driver``, driven by selenium from the
  ``browser`` extra; nothing is downloaded): opens a page of a small synthetic category from disk headless,
  ticks "exclude" on two models, reads the exported list, checks it byte for byte against
  ``write_exclude`` and that ``pgrf pack`` re-run with it as the category's exclude file leaves out exactly
  those two; clicks the download button and compares the file; checks search, status filter and sort; on
  the 2,000-model page times the first cards, a re-sort and scrolling every card in; saves screenshots
  (``--screenshot FILE``: the sample library page, for the README).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from common import in_work_dir, render_sample_plants, report
from PIL import Image

from pgrf import cameras
from pgrf.config import RenderSettings
from pgrf.formats import renders as records
from pgrf.formats.catalog import ModelSpec
from pgrf.formats.exclude import read_exclude, write_exclude
from pgrf.formats.images import read_rgba
from pgrf.pipeline.synthetic import fake_renders
from pgrf.review.page import read_page
from pgrf.review.renders import FactsJob, model_facts
from pgrf.review.thumbs import pick_views

SOURCES = 6


def run_review(path: Path, out: Path, *flags: str, cwd: Path) -> tuple[float, str]:
    """``pgrf review PATH --out OUT`` in a fresh process; (wall seconds, its summary line)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pgrf", "review", str(path), "--out", str(out), *flags], cwd=cwd,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"pgrf review failed: {done.stderr[-2000:]}")
    return seconds, done.stdout.strip()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def source_views(folder: Path, resolution: int) -> list[Path]:
    """A few RGBA renders-to-be: a shaded, noise-textured blob (about a third of the frame) over transparent black,
    as Cycles writes the film; the noise makes them a little harder to decode than real renders."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:resolution, 0:resolution] / resolution - 0.5
    paths = []
    for i in range(SOURCES):
        blob = (x / (0.25 + 0.04 * i)) ** 2 + (y / 0.35) ** 2 < 1
        shade = (120 + 100 * (x - y))[..., None] * np.array([0.4 + 0.1 * i, 1.0, 0.5])
        rgb = np.clip(shade + rng.integers(0, 24, (resolution, resolution, 3)), 0, 255)
        rgba = np.zeros((resolution, resolution, 4), np.uint8)
        rgba[blob, :3] = rgb[blob]
        rgba[blob, 3] = 255
        paths.append(folder / f"source{i}.png")
        Image.fromarray(rgba, "RGBA").save(paths[-1])
    return paths


def synthetic_library(root: Path, models: int, views: int, resolution: int, start: int = 0) -> Path:
    """``models`` finished models under ``root/synthetic``, every view a symlink to a source PNG."""
    category = root / "synthetic"
    sources = source_views(root / "sources", resolution) if not (root / "sources").is_dir() else sorted((root / "sources").glob("*.png"))
    settings = RenderSettings(views=views, resolution=resolution)
    normalisation = records.Normalisation(1.0, [0.0, 0.0, 0.0], [2.0, 1.5, 1.8], 5.4)
    for m in range(start, start + models):
        model_id = f"model{m:05d}"
        spec = ModelSpec(model_id, model_id, f"Model {m}", "synthetic", f"class{m % 25}", "folders", ("x.glb",))
        target = category / model_id
        if (target / records.CAMERAS_FILE).is_file():
            continue
        (target / "views").mkdir(parents=True, exist_ok=True)
        for index in range(views):
            link = target / records.view_file(index)
            if not link.is_symlink():
                link.symlink_to(sources[(m + index) % len(sources)])
        sampled = cameras.sample_views(model_id, model_id, 0, views, settings.radius, settings.fov)
        alpha = 0.02 + 0.3 * ((m * 7919) % 100) / 100
        doc = records.cameras_document(spec, settings, sampled, [alpha] * views, normalisation, "CPU", "5.0.1")
        records.write_cameras(target, doc)
    return category


def baselines(category: Path, models: int, out: Path) -> tuple[float, float, float]:
    """Milliseconds per model, in one process, on the first ``models`` models: reading its cameras.json (the
    contract) and decoding the 4 views its strip is made of (the least work a first run does), then the whole of
    review's work for it (read, pick, decode, reduce, encode, write), one right after the other."""
    model_dirs = list(records.finished_models(category).values())[:models]
    start = time.perf_counter()
    chosen = [[model_dir / v.file for v in pick_views(records.read_cameras(model_dir).views, 4)] for model_dir in model_dirs]
    read = time.perf_counter() - start
    start = time.perf_counter()
    for files in chosen:
        for file in files:
            read_rgba(file)
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for model_dir in model_dirs:
        model_facts(FactsJob(model_dir, out, f"thumbs/{model_dir.name}.webp", 4, 128))
    work = time.perf_counter() - start
    return tuple(1e3 * seconds / len(model_dirs) for seconds in (read, decode, work))


def bench_sample(work: Path, renders: Path | None, config: Path, figures: dict[str, Any]) -> Path:
    source = renders or render_sample_plants(work, views=16, resolution=128)
    out = work / "review-sample"
    shutil.rmtree(out, ignore_errors=True)
    cold, line = run_review(source, out, "--config", str(config), cwd=work)
    warm, _ = run_review(source, out, "--config", str(config), cwd=work)
    page = read_page(out / "index.html")
    figures |= {"sample: models": len(page["cards"]), "sample: first run s": cold, "sample: cached re-run s": warm,
                "sample: index.html kB": (out / "index.html").stat().st_size / 1e3,
                "sample: thumbnails kB": folder_bytes(out / "thumbs") / 1e3}
    print(line)
    return out


def bench_synthetic(work: Path, args: argparse.Namespace, figures: dict[str, Any]) -> Path:
    root = work / "synthetic"
    start = time.perf_counter()
    category = synthetic_library(root, args.models, args.views, args.resolution)
    print(f"synthetic library: {args.models} models in {time.perf_counter() - start:.1f} s")
    out = work / "review-synthetic"
    shutil.rmtree(out, ignore_errors=True)
    flags = ("--workers", str(args.workers))
    cold, line = run_review(category, out, *flags, cwd=work)
    print(line)
    warm, _ = run_review(category, out, *flags, cwd=work)
    synthetic_library(root, 100, args.views, args.resolution, start=args.models)
    added, line = run_review(category, out, *flags, cwd=work)
    print(line)
    for m in range(args.models, args.models + 100):  # the library keeps --models models for the next run
        shutil.rmtree(category / f"model{m:05d}")
    read_ms, decode_ms, work_ms = baselines(category, 200, work / "review-baseline")
    rate = args.models / cold
    figures |= {"synthetic: models": args.models, "synthetic: views, resolution": f"{args.views}, {args.resolution}²",
                "synthetic: first run s": cold, "synthetic: models/s": rate, "synthetic: cached re-run s": warm,
                "synthetic: re-run after +100 models s": added,
                "synthetic: index.html kB": (out / "index.html").stat().st_size / 1e3,
                "synthetic: thumbnails MB": folder_bytes(out / "thumbs") / 1e6,
                "first run: ms per model per worker": 1e3 * args.workers / rate,
                "1 process: read cameras.json, ms per model": read_ms,
                "1 process: decode the 4 strip views, ms per model": decode_ms,
                "1 process: review's whole work, ms per model": work_ms,
                "(read + decode) ÷ review's whole work": (read_ms + decode_ms) / work_ms}
    return out


def browser(work: Path, synthetic_page: Path | None, sample_page: Path | None, screenshot: Path | None,
            figures: dict[str, Any]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    folder = work / "browser"
    shutil.rmtree(folder, ignore_errors=True)
    alphas = {f"m{i:02d}": 0.04 + 0.07 * i for i in range(10)}
    category = fake_renders(folder / "renders", "cat", alphas, views=8, resolution=64)
    config = folder / "assets.toml"
    config.write_text('[categories.cat]\nsource = "folders"\nmin_mean_alpha = 0.05\n', encoding="utf-8")
    run_review(category, folder / "review", "--config", str(config), cwd=folder)
    downloads = folder / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get((folder / "review" / "index.html").resolve().as_uri())
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.card"))
        cards = driver.find_elements(By.CSS_SELECTOR, "li.card")
        assert len(cards) == len(alphas) + 1, f"{len(cards)} cards"  # and fake_renders' skipped 'tiny'
        picked = ["m07", "m02"]
        for model_id in picked:
            driver.find_element(By.CSS_SELECTOR, f'input[aria-label="exclude {model_id}"]').click()
        text = driver.find_element(By.CSS_SELECTOR, 'textarea[data-category="cat"]').get_property("value")
        write_exclude(folder / "python.txt", "cat", picked)
        assert text == (folder / "python.txt").read_text(encoding="utf-8"), f"the page wrote {text!r}"
        driver.find_element(By.CSS_SELECTOR, "button.download").click()
        WebDriverWait(driver, 20).until(lambda d: (downloads / "exclude-cat.txt").is_file())
        assert (downloads / "exclude-cat.txt").read_text(encoding="utf-8") == text
        (folder / "review-shot.png").write_bytes(driver.get_screenshot_as_png())
        search = driver.find_element(By.ID, "search")
        search.send_keys("m0")
        WebDriverWait(driver, 5).until(lambda d: "Showing 10 of 11" in d.find_element(By.ID, "shown").text)
        search.clear()
        driver.find_element(By.CSS_SELECTOR, '#status-filter input[value="skipped_small"]').click()
        WebDriverWait(driver, 5).until(lambda d: "Showing 10 of 11" in d.find_element(By.ID, "shown").text)
        driver.execute_script('const s = document.getElementById("sort"); s.value = "alpha-desc"; s.dispatchEvent(new Event("change"));')
        first = driver.find_element(By.CSS_SELECTOR, "li.card h2").text
        assert first == "m09", f"highest mean alpha first, got {first}"
        pack_with(folder, category, config, text, picked, {m for m, a in alphas.items() if a >= 0.05} - set(picked))
        figures["browser: exclude round trip (2 toggled → pack leaves out exactly those)"] = "ok"
        if synthetic_page:
            figures |= _responsiveness(driver, synthetic_page)
        if sample_page and screenshot:
            _screenshot(driver, sample_page, screenshot, folder / "sample.png")
    finally:
        driver.quit()


def pack_with(folder: Path, category: Path, config: Path, text: str, picked: list[str], expected: set[str]) -> None:
    """Save the page's list as the category's exclude file, re-run pgrf pack, and check it packed exactly ``expected``."""
    config.write_text(config.read_text() + 'exclude = "exclude.txt"\n', encoding="utf-8")
    (folder / "exclude.txt").write_text(text, encoding="utf-8")
    assert read_exclude(folder / "exclude.txt").patterns == tuple(sorted(picked))
    done = subprocess.run([sys.executable, "-m", "pgrf", "pack", str(category), "--out", str(folder / "shards"), "--config", str(config),
                           "--resolution", "32"], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    packed = set(pq.read_table(folder / "shards" / "index.parquet", columns=["model_id"]).column("model_id").to_pylist())
    assert packed == expected, f"packed {sorted(packed)}, expected {sorted(expected)}"


def _screenshot(driver: Any, page: Path, screenshot: Path, raw: Path) -> None:
    """The page at 1400 × 900 with its first thumbnails loaded and two models ticked, saved as a 128-colour PNG."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(1400, 900)
    driver.get((page / "index.html").resolve().as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.card img"))
    for box in driver.find_elements(By.CSS_SELECTOR, "input.exclude")[1:3]:  # two models in the exclude list, to show it
        box.click()
    driver.execute_script("window.scrollTo(0, 0);")
    time.sleep(1.0)
    raw.write_bytes(driver.get_screenshot_as_png())
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    Image.open(raw).convert("RGB").quantize(colors=128).save(screenshot, optimize=True)
    print(f"screenshot → {screenshot} ({screenshot.stat().st_size / 1e3:.0f} kB)")


def _responsiveness(driver: Any, page: Path) -> dict[str, Any]:
    """On the big page: load to first cards, a re-sort of every card, and scrolling until every card is in."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get((page / "index.html").resolve().as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "li.card"))
    loaded = driver.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                   "return n.loadEventEnd || n.domContentLoadedEventEnd;")
    sort_ms = driver.execute_script("const s = document.getElementById('sort'); const t = performance.now(); s.value = 'alpha-asc';"
                                    "s.dispatchEvent(new Event('change')); return performance.now() - t;")
    total = len(read_page(page / "index.html")["cards"])
    start = time.perf_counter()
    while len(driver.find_elements(By.CSS_SELECTOR, "li.card")) < total and time.perf_counter() - start < 120:
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        time.sleep(0.05)
    return {"browser: big page load → first cards ms": loaded, "browser: re-sort every card ms": sort_ms,
            "browser: scroll until every card is in s": time.perf_counter() - start,
            "browser: cards in the page after scrolling": len(driver.find_elements(By.CSS_SELECTOR, "li.card"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample-renders", type=Path, help="renders of the sample library (default: render the sample plants here)")
    parser.add_argument("--config", type=Path, default=Path("assets.toml").resolve())
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--views", type=int, default=128)
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--browser", action="store_true", help="also run the browser check (chromium + chromium-driver, selenium)")
    parser.add_argument("--screenshot", type=Path, help="with --browser: save the sample library page here (PNG, 128 colours)")
    parser.add_argument("--work-dir", type=Path, help="keep inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))

    def run(work: Path) -> None:
        figures: dict[str, Any] = {}
        sample = bench_sample(work, args.sample_renders.resolve() if args.sample_renders else None, args.config, figures)
        synthetic = bench_synthetic(work, args, figures) if args.models else None
        if args.browser:
            browser(work, synthetic, sample, args.screenshot.resolve() if args.screenshot else None, figures)
        report("pgrf review", figures, args.json)

    in_work_dir(args.work_dir, "pgrf-review-bench-", run)


if __name__ == "__main__":
    main()
