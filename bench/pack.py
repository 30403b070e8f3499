"""Pack benchmark: 1024² renders → 256² shards, against PNG decoding and the original pipeline.

Run from the repository root: ``.venv/bin/python bench/pack.py [--renders DIR] [--copies N] [--json FILE]``.

Inputs are real Cycles renders of the bundled sample plants at 1024² (rendered once with ``pgrf render``,
or taken from ``--renders``), replicated under new model ids until there are enough images. Every
figure is the median over ``--rounds`` rounds (peak memory: the maximum). Figures, all measured in
this run on the same files:

- **pack, 1 and 2 workers**: source images per second through ``pgrf pack`` (decode, premultiplied
  resize, composite, the view and its mirrored copy encoded, tar, index and card), each in a fresh
  process. Start-up (imports, loading numba's compiled kernel: ~1 s a process) is outside the clock
  with 1 worker, which packs in the measuring process, and inside it with 2, whose processes start
  during the run;
- **pack efficiency** = pack rate with 1 worker ÷ libspng decode rate (target ≥ 0.7). This machine's
  speed drifts by 10-40 % from second to second, and each of its two cores drifts on its own, so
  rates measured one after the other compare badly. The headline efficiency therefore times the
  decodes inside the pack run itself: the 1-worker child wraps the function pack reads renders with
  (``path.read_bytes()`` + libspng, exactly what the decode figure times) and divides the seconds
  spent in it by the pack's wall seconds, so both rates come from the same seconds, interleaved per
  image. As a cross-check the same child decodes all files on their own right before and right after
  packing, giving the efficiency against that standalone rate too;
- **decode**: source PNGs per second read and decoded by libspng (inside pack, and standalone) and
  by Pillow (what most scripts use);
- **baseline**: the original pipeline's steps — copy every render into one folder, resize each with
  Pillow and save it, then zip the folder — in images per second;
- **memory**: peak resident memory of ``pgrf pack`` (parent and workers) for N and 2N images: it must
  not grow with the number of samples.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyspng
from common import render_sample_plants, replicate, report
from PIL import Image
from rich.console import Console

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=Path, help="a renders/<category> folder at 1024² (default: render the sample plants)")
    parser.add_argument("--views", type=int, default=8, help="views per model when rendering")
    parser.add_argument("--copies", type=int, default=6, help="replicas of every rendered model (N images)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of decode and pack measurements; medians are reported")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", nargs=3, metavar=("RENDERS", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def decode_rate(files: list[Path], pillow: bool = False) -> float:
    """Source PNGs per second read and decoded to RGBA in this process (libspng, or Pillow)."""
    start = time.perf_counter()
    for path in files:
        if pillow:
            with Image.open(path) as image:
                image.convert("RGBA").load()
        else:
            pyspng.load(path.read_bytes(), format="RGBA")
    return len(files) / (time.perf_counter() - start)


def pack_run(renders: Path, out: Path, workers: int) -> dict[str, Any]:
    """``pgrf pack`` in a child process: wall seconds (in the child), peak RSS of it and its workers, and
    (1 worker) the seconds pack spent decoding and the standalone decode rates before and after."""
    result = subprocess.run([PYTHON, __file__, "--child", str(renders), str(out), str(workers)],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])


class _Stopwatch:
    """Wraps a function and adds up the seconds spent in it."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.seconds = function, 0.0

    def __call__(self, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.seconds += time.perf_counter() - start


def child(renders: Path, out: Path, workers: int) -> None:
    import pgrf.pipeline.encode
    from pgrf.config import load_config
    from pgrf.pipeline.composite import composite
    from pgrf.pipeline.pack import PackOptions, pack

    config = load_config(REPO / "assets.toml")
    files = sorted(renders.glob("*/views/*.png"))
    composite(np.zeros((8, 8, 4), np.uint8), 2, "white")  # start-up, like the imports: load the compiled 4x kernel
    decoding = _Stopwatch(pgrf.pipeline.encode.read_rgba)  # 1 worker packs in this process
    pgrf.pipeline.encode.read_rgba = decoding
    standalone = [decode_rate(files)] if workers == 1 else []
    start = time.perf_counter()
    card = pack([renders], out, config, PackOptions(resolution=256, workers=workers, samples_per_shard=64, min_mean_alpha=0.0))
    seconds = time.perf_counter() - start
    standalone += [decode_rate(files)] if workers == 1 else []
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"seconds": seconds, "samples": card.counts.samples, "views": card.counts.unique_views,
                      "peak_rss_mib": peak / 1024, "decode_seconds": decoding.seconds, "standalone_decode": standalone}))


def _round(work: Path, files: list[Path]) -> dict[str, float]:
    """One measurement of Pillow's decode and of pack with 1 and 2 workers, taken back to back."""
    figures = {"decode_pillow_images_per_s": decode_rate(files, pillow=True)}
    for workers in (1, 2):
        run = pack_run(work / "renders-n" / "plants", work / f"shards-{workers}", workers)
        shutil.rmtree(work / f"shards-{workers}")
        figures[f"pack_{workers}w_images_per_s"] = run["views"] / run["seconds"]
        figures[f"pack_{workers}w_samples_per_s"] = run["samples"] / run["seconds"]
        figures[f"pack_{workers}w_peak_rss_mib"] = run["peak_rss_mib"]
        if workers == 1:
            figures["decode_in_pack_images_per_s"] = run["views"] / run["decode_seconds"]
            figures["decode_standalone_images_per_s"] = statistics.mean(run["standalone_decode"])
            figures["pack_efficiency"] = run["decode_seconds"] / run["seconds"]
    figures["pack_efficiency_vs_standalone_decode"] = figures["pack_1w_images_per_s"] / figures["decode_standalone_images_per_s"]
    figures["pack_efficiency_vs_pillow_decode"] = figures["pack_1w_images_per_s"] / figures["decode_pillow_images_per_s"]
    return figures


def baseline(files: list[Path], work: Path) -> float:
    """Copy into one folder, resize with Pillow, save, zip: the original scripts' steps; images per second."""
    start = time.perf_counter()
    flat, resized = work / "flat", work / "resized"
    flat.mkdir(parents=True)
    resized.mkdir()
    for number, path in enumerate(files):
        shutil.copy(path, flat / f"{number:08d}.png")
    for path in sorted(flat.iterdir()):
        with Image.open(path) as image:
            image.convert("RGBA").resize((256, 256), Image.Resampling.LANCZOS).save(resized / path.name)
    with zipfile.ZipFile(work / "dataset.zip", "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(resized.iterdir()):
            archive.write(path, path.name)
    return len(files) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="pgrf-bench-pack-") as tmp:
        work = Path(tmp)
        source = args.renders or render_sample_plants(work, args.views, 1024)
        small = replicate(source, work / "renders-n" / "plants", args.copies)
        replicate(source, work / "renders-2n" / "plants", 2 * args.copies)
        figures: dict[str, Any] = {"images": len(small), "rounds": args.rounds}
        rounds = [_round(work, small) for _ in range(args.rounds)]  # interleaved: the machine's speed drifts
        for name in rounds[0]:
            summary = max if name.endswith("peak_rss_mib") else statistics.median
            figures[name] = summary(r[name] for r in rounds)
        figures["pack_efficiency_per_round"] = [round(r["pack_efficiency"], 3) for r in rounds]
        figures["pack_efficiency_vs_standalone_decode_per_round"] = [
            round(r["pack_efficiency_vs_standalone_decode"], 3) for r in rounds]
        figures["pack_2n_peak_rss_mib"] = pack_run(work / "renders-2n" / "plants", work / "shards-2n", 1)["peak_rss_mib"]
        figures["baseline_images_per_s"] = baseline(small, work / "baseline")
        figures["speedup_vs_baseline_1w"] = figures["pack_1w_images_per_s"] / figures["baseline_images_per_s"]
    report(f"pack: {figures['images']} renders 1024² → 256² shards (+ mirrored copies)", figures, args.json)

if __name__ == "__main__":
    main()
