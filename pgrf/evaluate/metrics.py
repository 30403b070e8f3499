"""FID and KID of a generator against the real images of a shard folder.

Generated images: G's deterministic full-resolution renders (``Generator.render_image``) at the
dataset resolution, poses uniform on the sphere like the data (``sample_poses``), classes drawn with
the dataset's class frequencies (``index.parquet``; uniform without one), z ~ N(0, I). All of it is
drawn from ``seed`` in fixed blocks of ``FAKE_BLOCK`` images, so the images do not depend on the
batch size. Both sides are quantised to uint8 before the Inception network, as real PNGs are.

Real statistics: every sample of the shards exactly once (mirrored copies included, as packed), and
with ``mirror`` (a run trained with ``--mirror``, which flips reals on the fly) every sample's mirrored
copy as well, so the reals are the distribution G was trained on. They are cached next to the shards
in ``fid-stats-<hash>.npz`` under a key made of the shards' sha256s (``ShardSource.identity``: from the
dataset card, or hashed for loose tar files), the detector (its kind and file sha256, ``inception.describe``) and whether
mirrored copies were added, so new shards, another detector or the other mirroring never reuse stale
statistics.

Protocols (StyleGAN2-ADA's names): ``fid50k_full`` — 50,000 generated images against every real
image, for final numbers — and ``fid2k`` — 2,048 generated images against every real image, what
EpiGRAF's ablations and training-time FID use. Results record the protocol and the detector.

Under torchrun every rank calls these functions: the shards are dealt to the ranks and the blocks of
generated images too (block i to rank i mod world), and their partial statistics are combined in a
fixed order, so every rank gets the same numbers as a single process would (to float round-off).

The shards are a ``ShardSource`` (pgrf.data.source), opened once by the caller, or what it opens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pgrf.data.loader import exact_loader
from pgrf.data.source import Shards, as_source
from pgrf.errors import PgrfError
from pgrf.evaluate.fid import (
    FeatureAccumulator,
    FeatureStats,
    PartialStats,
    combine,
    fid,
    kid,
    load_stats,
    save_stats,
    stats_cache_path,
)
from pgrf.evaluate.inception import describe, load_detector, resolve_weights
from pgrf.evaluate.options import PROTOCOLS
from pgrf.evaluate.views import to_uint8
from pgrf.formats.card import DatasetInfo
from pgrf.formats.fid_record import FidRecord
from pgrf.model.generator import Generator
from pgrf.model.poses import sample_poses
from pgrf.runtime import Context, gather_objects

MISSING_WEIGHTS = "FID needs the Inception weights: --inception FILE or PGRF_INCEPTION"
FAKE_BLOCK = 1024
"""Generated images are drawn from the seed in blocks of this many (poses, classes, then latents)."""
KID_REAL_FEATURES = 10000
"""Real features kept (and cached) for KID."""
KID_SUBSET = 1000
CACHE_VERSION = "pgrf-fid-real-2"

Progress = Callable[[str, int], None]
"""Called with ('real' or 'fake', images just processed)."""


def inception_network(inception: nn.Module | str | Path | None, device: torch.device | str) -> nn.Module:
    """A loaded feature network as is (moved to ``device``), or the detector file at a path / ``PGRF_INCEPTION``
    (pytorch-fid's state dict or NVIDIA's TorchScript detector)."""
    if isinstance(inception, nn.Module):
        return inception.to(device)
    if resolve_weights(inception) is None:
        raise PgrfError(MISSING_WEIGHTS)
    return load_detector(inception, device)


def protocol_name(num: int) -> str:
    """The protocol of ``num`` generated images (``fid<num>_custom`` outside the named ones)."""
    return next((name for name, count in PROTOCOLS.items() if count == num), f"fid{num}_custom")


def class_probabilities(shards: Shards, c_dim: int) -> np.ndarray | None:
    """The dataset's frequencies of the first ``c_dim`` classes (``index.parquet`` of a pack folder), uniform
    without it; None if unconditional."""
    if c_dim == 0:
        return None
    counts = np.ones(c_dim)
    known = as_source(shards).class_counts
    if known is not None:
        found, head = np.zeros(c_dim), known[:c_dim]
        found[:len(head)] = head
        counts = found if found.sum() > 0 else counts
    return counts / counts.sum()


@torch.no_grad()
def real_statistics(shards: Shards, model: nn.Module, device: torch.device | str, batch: int = 64,
                    keep: int = 0, workers: int = 0, cache: bool = True, mirror: bool = False,
                    progress: Progress | None = None) -> tuple[FeatureStats, Path | None, bool]:
    """Inception statistics of every real image (and, with ``mirror``, of its mirrored copy too): (stats, cache
    file or None, whether it came from the cache).

    ``keep`` real features are kept for KID; a cached file without enough of them is recomputed.
    """
    source = as_source(shards)
    identity = source.identity if cache else None
    path, key = None, ""
    if identity is not None:
        detector = describe(model)
        key = f"{CACHE_VERSION}\ndetector {detector.kind} {detector.sha256}\nshards {identity[0]}"
        key += "\nmirrored copies added" if mirror else ""  # unmirrored keys stay as they were
        path = stats_cache_path(identity[1], key)
        stats = load_stats(path, key)
        if stats is not None and (keep == 0 or (stats.features is not None
                                                and len(stats.features) >= min(keep, stats.count))):
            return stats, path, True
    context = Context.current()
    accumulator = FeatureAccumulator(keep)
    for data in exact_loader(source, batch, context=context, workers=workers, mirror=mirror):
        accumulator.update(model(data["image"].to(device)))
        if progress:
            progress("real", len(data["image"]))
    parts = _gather_blocks([accumulator.partial()], context)
    count = sum(part.count for part in parts)
    if count < 2:
        raise PgrfError(f"{source.name}: FID needs at least 2 real images, found {count}")
    stats = combine(parts, keep)
    if path is not None and context.rank != 0:
        path = None  # rank 0 writes the cache
    if path is not None:
        try:
            save_stats(stats, path, key)
        except OSError:  # a read-only shard folder: compute again next time
            path = None
    return stats, path, False


@torch.no_grad()
def generated_statistics(generator: Generator, info: DatasetInfo, model: nn.Module, num: int, seed: int = 0,
                         psi: float = 1.0, batch: int = 16, chunk: int = 8192, keep: int = 0,
                         class_probs: np.ndarray | None = None, progress: Progress | None = None) -> FeatureStats:
    """Inception statistics of ``num`` generated images, deterministic for ``seed`` whatever ``batch`` and the
    number of ranks are (each rank renders its share of the blocks)."""
    device = next(generator.parameters()).device
    c_dim, z_dim = generator.config.c_dim, generator.config.z_dim
    probs = class_probs if class_probs is not None else (np.full(c_dim, 1 / c_dim) if c_dim else None)
    context = Context.current()
    parts: list[PartialStats] = []
    for block_start in range(context.rank * FAKE_BLOCK, num, context.world * FAKE_BLOCK):
        accumulator = FeatureAccumulator(keep)
        rng = np.random.default_rng([seed, block_start // FAKE_BLOCK])
        count = min(FAKE_BLOCK, num - block_start)
        c2w, intrinsics, _ = sample_poses(count, info.radius, info.fov, rng)
        labels = None
        if probs is not None:
            labels = torch.nn.functional.one_hot(torch.from_numpy(rng.choice(c_dim, size=count, p=probs)), c_dim).float()
        z = torch.from_numpy(rng.standard_normal((count, z_dim), dtype=np.float32))
        for start in range(0, count, batch):
            part = slice(start, start + batch)
            images = generator.render_image(z[part].to(device), None if labels is None else labels[part].to(device),
                                            c2w[part].to(device), intrinsics[part].to(device), info.resolution,
                                            psi=psi, chunk=chunk)
            accumulator.update(model(to_uint8(images).to(next(model.parameters()).device)))
            if progress:
                progress("fake", len(images))
        parts.append(accumulator.partial())
    gathered = _gather_blocks(parts, context)
    return combine(gathered, keep)


def _gather_blocks(parts: list[PartialStats], context: Context) -> list[PartialStats]:
    """Every rank's parts in block order (rank r holds blocks r, r + world, …; with one part each, rank
    order); just ``parts`` in one process."""
    every = gather_objects(parts, context)
    blocks = max(len(rank_parts) for rank_parts in every)
    return [every[rank][i] for i in range(blocks) for rank in range(context.world) if i < len(every[rank])]


def compute_fid(generator: Generator, dataset_info: DatasetInfo, shards: Shards,
                inception: nn.Module | str | Path | None = None, num: int = 2048, batch: int = 16,
                device: torch.device | str | None = None, seed: int = 0, psi: float = 1.0, with_kid: bool = False,
                workers: int = 0, chunk: int = 8192, cache: bool = True, mirror: bool = False,
                progress: Progress | None = None) -> FidRecord:
    """FID (and KID) of ``num`` images of ``generator`` against the shards' real images (with ``mirror``, and
    their mirrored copies: for runs trained with ``--mirror``); KID only ``with_kid``.

    Under torchrun every rank must call it (they share the work) and gets the same result.
    ``inception``: the FID Inception's weights file (default ``PGRF_INCEPTION``) or an already loaded
    network (any module mapping uint8 NCHW images to (N, D) features). ``generator`` keeps its
    device; ``device`` (default: G's) is where the feature network runs.
    """
    if num < 2:
        raise PgrfError(f"--num must be at least 2, got {num}")
    if batch < 1:
        raise PgrfError(f"--batch must be positive, got {batch}")
    started = time.perf_counter()
    device = device if device is not None else next(generator.parameters()).device
    model = inception_network(inception, device)
    keep_real = KID_REAL_FEATURES if with_kid else 0
    source = as_source(shards)
    real, cache_path, cached = real_statistics(source, model, device, max(batch, 32), keep_real, workers, cache, mirror,
                                               progress)
    probs = class_probabilities(source, generator.config.c_dim)
    fake = generated_statistics(generator, dataset_info, model, num, seed, psi, batch, chunk,
                                num if with_kid else 0, probs, progress)
    kid_mean = kid_std = None
    if with_kid:
        assert fake.features is not None and real.features is not None
        kid_mean, kid_std = kid(fake.features, real.features, max_subset_size=KID_SUBSET, seed=seed)
    return FidRecord(fid=fid(fake, real), protocol=protocol_name(num), detector=describe(model), num_fake=fake.count,
                     num_real=real.count, real_mirrored=mirror, real_stats=None if cache_path is None else str(cache_path),
                     real_stats_cached=cached, kid=kid_mean, kid_std=kid_std, seconds=time.perf_counter() - started)
