"""Loader benchmark: samples per second per worker from our shards vs the exported StyleGAN-style zip.

Run from the repository root: ``.venv/bin/python bench/loader.py [--renders DIR] [--copies N] [--json FILE]``.

Shards are packed from real Cycles renders of the bundled sample plants (rendered once at 256², or
taken from ``--renders``), replicated under new model ids. Both readers run in one process (one
worker) and hand out batches of uint8 image tensors with their labels:

- **ours**: ``pgrf.data.loader.exact_loader`` over the shards (sequential tar reads, libspng decode,
  cameras and class parsed from each json member);
- **baseline**: the same images exported with ``pgrf export`` and read by a plain PyTorch map-style
  Dataset as StyleGAN-family trainers do (zip member read, Pillow decode, to tensor), shuffled, batched
  by a DataLoader.

Figures: samples/s of each, their ratio (target ≥ 1.5), and the loader's peak resident memory for N
and 2N samples (it must not grow with the number of samples).
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import render_sample_plants, replicate, report
from PIL import Image
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parent.parent
BATCH = 32
console = Console()


class ZipImages(Dataset):
    """The baseline: images and labels of a StyleGAN-family dataset zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            labels = json.loads(archive.read("dataset.json"))["labels"]
        self.names = [name for name, _ in labels]
        self.labels = [label for _, label in labels]
        self.archive: zipfile.ZipFile | None = None

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.archive is None:
            self.archive = zipfile.ZipFile(self.path)
        with Image.open(io.BytesIO(self.archive.read(self.names[index]))) as image:
            pixels = np.asarray(image.convert("RGB"))
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy()), torch.tensor(self.labels[index])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=Path, help="a renders/<category> folder (default: render the sample plants at 256²)")
    parser.add_argument("--views", type=int, default=16, help="views per model when rendering")
    parser.add_argument("--copies", type=int, default=10, help="replicas of every rendered model (N images)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--child", nargs=1, metavar="SHARDS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def ours_rate(shards: Path) -> tuple[float, int]:
    from pgrf.data.loader import exact_loader

    start, count = time.perf_counter(), 0
    for batch in exact_loader(shards, BATCH):
        count += len(batch["key"])
    return count / (time.perf_counter() - start), count


def baseline_rate(archive: Path) -> float:
    loader = DataLoader(ZipImages(archive), batch_size=BATCH, shuffle=True, num_workers=0)
    start, count = time.perf_counter(), 0
    for images, _ in loader:
        count += len(images)
    return count / (time.perf_counter() - start)


def peak_memory(shards: Path) -> float:
    """Peak RSS (MiB) of a child process that streams every sample of ``shards`` once."""
    result = subprocess.run([sys.executable, __file__, "--child", str(shards)], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])["peak_rss_mib"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        ours_rate(Path(args.child[0]))
        print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    from pgrf.config import load_config
    from pgrf.pipeline.export import export_zip
    from pgrf.pipeline.pack import PackOptions, pack

    config = load_config(REPO / "assets.toml")
    with tempfile.TemporaryDirectory(prefix="pgrf-bench-loader-") as tmp:
        work = Path(tmp)
        source = args.renders or render_sample_plants(work, args.views, 256)
        for name, copies in (("n", args.copies), ("2n", 2 * args.copies)):
            replicate(source, work / f"renders-{name}" / "plants", copies)
            options = PackOptions(resolution=256, samples_per_shard=500, min_mean_alpha=0.0, workers=2)
            pack([work / f"renders-{name}" / "plants"], work / f"shards-{name}", config, options)
        export_zip(work / "shards-n", work / "dataset.zip", "class")
        ours, samples = ours_rate(work / "shards-n")
        figures: dict[str, Any] = {"samples": samples, "ours_samples_per_s": ours,
                                   "zip_baseline_samples_per_s": baseline_rate(work / "dataset.zip")}
        figures["ratio"] = figures["ours_samples_per_s"] / figures["zip_baseline_samples_per_s"]
        figures["peak_rss_n_mib"] = peak_memory(work / "shards-n")
        figures["peak_rss_2n_mib"] = peak_memory(work / "shards-2n")
    report(f"loader, one worker, batches of {BATCH}: {figures['samples']} samples at 256²", figures, args.json)

if __name__ == "__main__":
    main()
