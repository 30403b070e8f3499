"""FID and KID from Inception features: statistics, a streaming accumulator, cached real statistics.

FID is the Fréchet distance between Gaussians fitted to two feature sets (mean and covariance in
float64, covariance with the unbiased 1/(n-1) normalisation as numpy's ``np.cov``). The trace of
(C1 C2)^½ comes from symmetric eigendecompositions (negative round-off eigenvalues clipped to 0)
instead of ``scipy.linalg.sqrtm``: the same value for PSD covariances, several times faster. KID is the unbiased MMD² with the cubic
polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over random subsets (as in the KID paper and
StyleGAN2-ADA's metrics).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pgrf.fileio import atomic_path

STATS_SCHEMA = 1


@dataclass(frozen=True)
class FeatureStats:
    """Mean (D,) and covariance (D, D) in float64 of ``count`` features, plus up to K kept features for KID."""

    mean: np.ndarray
    cov: np.ndarray
    count: int
    features: np.ndarray | None = None


def _as_float64(features: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected features of shape (N, D), got {array.shape}")
    return array


def feature_stats(features: np.ndarray | torch.Tensor) -> FeatureStats:
    """Mean and covariance of all of ``features`` (N, D) at once (N >= 2)."""
    array = _as_float64(features)
    if len(array) < 2:
        raise ValueError("feature statistics need at least 2 samples")
    return FeatureStats(array.mean(axis=0), np.cov(array, rowvar=False), len(array))


class FeatureAccumulator:
    """Streaming mean and covariance: memory is O(D²) whatever the number of images.

    Sums are float64 and taken about a shift (the first batch's mean), so the covariance does not
    lose precision to cancellation. The first ``keep`` features are also kept (float32) for KID.
    """

    def __init__(self, keep: int = 0) -> None:
        self.keep = keep
        self.count = 0
        self._shift: np.ndarray | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None
        self._kept: list[np.ndarray] = []
        self._kept_count = 0

    def update(self, features: np.ndarray | torch.Tensor) -> None:
        """Add a batch of features (N, D)."""
        array = _as_float64(features)
        if len(array) == 0:
            return
        if self._shift is None:
            self._shift = array.mean(axis=0)
            self._sum = np.zeros_like(self._shift)
            self._outer = np.zeros((len(self._shift),) * 2)
        elif array.shape[1] != len(self._shift):
            raise ValueError(f"feature dimension changed from {len(self._shift)} to {array.shape[1]}")
        centred = array - self._shift
        self._sum += centred.sum(axis=0)
        self._outer += centred.T @ centred
        self.count += len(array)
        if self._kept_count < self.keep:
            taken = array[: self.keep - self._kept_count].astype(np.float32)
            self._kept.append(taken)
            self._kept_count += len(taken)

    def partial(self) -> PartialStats:
        """This accumulator's contribution, to ``combine`` with others' (an empty one has count 0)."""
        if self._shift is None or self._sum is None or self._outer is None:
            return PartialStats(0, np.zeros(0), np.zeros((0, 0)))
        offset = self._sum / self.count
        kept = np.concatenate(self._kept) if self._kept else None
        return PartialStats(self.count, self._shift + offset, self._outer - self.count * np.outer(offset, offset), kept)

    def stats(self) -> FeatureStats:
        """Statistics of everything added so far (at least 2 features)."""
        if self.count < 2 or self._shift is None or self._sum is None or self._outer is None:
            raise ValueError("feature statistics need at least 2 samples")
        offset = self._sum / self.count
        cov = (self._outer - self.count * np.outer(offset, offset)) / (self.count - 1)
        kept = np.concatenate(self._kept) if self._kept else None
        return FeatureStats(self._shift + offset, (cov + cov.T) / 2, self.count, kept)


@dataclass(frozen=True)
class PartialStats:
    """What one process (or one block of images) contributes: count, mean, the centred sum of outer
    products M2 = Σ (x − mean)(x − mean)ᵀ, and its kept features; ``combine`` merges them exactly."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    features: np.ndarray | None = None


def combine(parts: list[PartialStats], keep: int = 0) -> FeatureStats:
    """Statistics of the union of ``parts``, in order (Chan et al.'s pairwise update, float64); the first
    ``keep`` kept features in that order are kept."""
    parts = [part for part in parts if part.count > 0]
    if sum(part.count for part in parts) < 2:
        raise ValueError("feature statistics need at least 2 samples")
    count, mean, m2 = parts[0].count, parts[0].mean.copy(), parts[0].m2.copy()
    for part in parts[1:]:
        total = count + part.count
        delta = part.mean - mean
        mean += delta * (part.count / total)
        m2 += part.m2 + np.outer(delta, delta) * (count * part.count / total)
        count = total
    kept = [part.features for part in parts if part.features is not None and len(part.features)]
    features = np.concatenate(kept)[:keep] if kept and keep else None
    cov = m2 / (count - 1)
    return FeatureStats(mean, (cov + cov.T) / 2, count, features)


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """||m1 - m2||² + tr(C1 + C2 - 2 (C1 C2)^½), in float64."""
    mean1, mean2 = np.atleast_1d(np.asarray(mean1, np.float64)), np.atleast_1d(np.asarray(mean2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != (len(mean1),) * 2:
        raise ValueError(f"mismatched statistics: means {mean1.shape} {mean2.shape}, covariances {cov1.shape} {cov2.shape}")
    diff = mean1 - mean2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * _trace_sqrt_product(cov1, cov2))


def _trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr((C1 C2)^½) = Σ √λ(√C1 C2 √C1) for PSD C1, C2: two symmetric eigendecompositions, ~5× faster
    than a general matrix square root at 2048² and free of its complex round-off."""
    values, vectors = np.linalg.eigh(cov1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    product = root1 @ cov2 @ root1
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum())


def fid(stats1: FeatureStats, stats2: FeatureStats) -> float:
    """FID between two feature statistics."""
    return frechet_distance(stats1.mean, stats1.cov, stats2.mean, stats2.cov)


def mmd2_polynomial(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equally sized samples with k(a, b) = (a·b / d + 1)³."""
    m, d = x.shape
    if len(y) != m or m < 2:
        raise ValueError("MMD² needs two samples of the same size >= 2")
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kid(features1: np.ndarray | torch.Tensor, features2: np.ndarray | torch.Tensor, num_subsets: int = 100,
        max_subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets) of two feature sets; subsets drawn without replacement, seeded."""
    x, y = _as_float64(features1), _as_float64(features2)
    m = min(len(x), len(y), max_subset_size)
    rng = np.random.default_rng(seed)
    values = [mmd2_polynomial(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
              for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))


def stats_cache_path(directory: str | os.PathLike[str], key: str) -> Path:
    """Where the statistics for ``key`` (e.g. shard hashes + image count + resolution) are cached."""
    return Path(directory) / f"fid-stats-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def save_stats(stats: FeatureStats, path: str | os.PathLike[str], key: str) -> None:
    """Write ``stats`` with its key to an .npz, atomically (a partial file never has the final name)."""
    path = Path(path)
    arrays = {"schema": np.array(STATS_SCHEMA), "key": np.array(key), "mean": stats.mean, "cov": stats.cov,
              "count": np.array(stats.count)}
    if stats.features is not None:
        arrays["features"] = stats.features
    with atomic_path(path) as partial, partial.open("wb") as handle:
        np.savez(handle, **arrays)


def load_stats(path: str | os.PathLike[str], key: str) -> FeatureStats | None:
    """Cached statistics for ``key``; None when the file is missing, unreadable, or for another key."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if int(data["schema"]) != STATS_SCHEMA or str(data["key"]) != key:
                return None
            features = data["features"] if "features" in data.files else None
            return FeatureStats(data["mean"], data["cov"], int(data["count"]), features)
    except (OSError, KeyError, ValueError):
        return None
