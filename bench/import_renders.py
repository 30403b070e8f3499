"""Import benchmark: ``pgrf import epigraf-renders`` on a generated raw dataset, with and without ``--copy``.

Run from the repository root: ``.venv/bin/python bench/import_renders.py [--models 30] [--views 10] [--size 1024]``.

The dataset is written in EpiGRAF's raw layout (tests/libraries/epigraf_renders.py: metadata.json per collection,
RGBA PNGs, depth and normal files). Figures, all measured in this run on the same files (medians of ``--rounds``):

- **import (link / copy), 1 and 2 workers**: models and views per second through ``import_renders`` (read
  metadata, decode every PNG for its alpha, link or copy views and passes, cameras.json, log, manifest);
- **baseline**: what the authors' ``filter_models.py`` does per model to get its mean opacity — Pillow opens and
  decodes every PNG — in views per second, in this process; the ratio import ÷ baseline shows what reading the
  PNGs costs against everything else the import does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import report
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pgrf.config import Category  # noqa: E402
from pgrf.pipeline.import_renders import import_renders  # noqa: E402
from tests.libraries.epigraf_renders import write_raw  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--views", type=int, default=10)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def timed_import(raw: Path, work: Path, copy: bool, workers: int) -> float:
    out = work / f"out-{copy}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    import_renders(raw, Category("bench"), out, copy=copy, workers=workers)
    return time.perf_counter() - start


def baseline(raw: Path) -> float:
    start = time.perf_counter()
    for path in sorted(raw.glob("*/*/[0-9][0-9][0-9][0-9][0-9][0-9].png")):
        float(np.asarray(Image.open(path))[..., 3].astype(float).mean() / 255)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="pgrf-bench-import-") as folder:
        work = Path(folder)
        collections = {f"collection {c}": [f"Model {c}_{m}_LOD0" for m in range(5)] for c in range(args.models // 5)}
        write_raw(work / "raw", collections, views=args.views, size=args.size)
        models = sum(len(v) for v in collections.values())
        views = models * args.views
        figures: dict[str, float | int] = {"models": models, "views": views, "resolution": args.size}
        base = statistics.median(baseline(work / "raw") for _ in range(args.rounds))
        figures["baseline (Pillow decode) views/s"] = views / base
        for copy in (False, True):
            for workers in (1, 2):
                seconds = statistics.median(timed_import(work / "raw", work, copy, workers) for _ in range(args.rounds))
                name = f"import {'copy' if copy else 'link'}, {workers} worker{'s' if workers > 1 else ''}"
                figures[f"{name}: models/s"] = models / seconds
                figures[f"{name}: views/s"] = views / seconds
                figures[f"{name}: ÷ baseline"] = (views / seconds) / (views / base)
    report("pgrf import epigraf-renders", figures, args.json)


if __name__ == "__main__":
    main()
