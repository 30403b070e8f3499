"""Which sample goes into which shard, decided before any pixel is touched.

Views are shuffled globally with the seed and each view's mirrored copy stays next to it while the
sequence is cut into equal shards; every shard is then shuffled on its own. So every shard mixes many
models and classes, the pair (view, mirrored view) is usually in one shard and its PNG is decoded
once, and the plan — hence every shard's bytes — depends only on the inputs and the seed, never on
the number of workers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One image of the dataset and where its pixels come from."""

    key: str
    image: Path
    meta: dict[str, Any]


@dataclass(frozen=True)
class ShardPlan:
    """The samples of one shard, in order, and a digest of everything that decides its bytes."""

    file: str
    samples: tuple[Sample, ...]
    digest: str


def plan_shards(samples: list[Sample], samples_per_shard: int, seed: int, name: str, settings: dict[str, Any]) -> list[ShardPlan]:
    """Cut the samples into shards ``<name>-000000.tar …``; ``settings`` (resolution, background…) enter the digests."""
    groups: dict[Path, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.image, []).append(sample)
    pairs = list(groups.values())
    ordered = [s for i in np.random.default_rng(seed).permutation(len(pairs)) for s in pairs[i]]
    plans = []
    for number, start in enumerate(range(0, len(ordered), samples_per_shard)):
        chunk = ordered[start:start + samples_per_shard]
        shuffled = tuple(chunk[i] for i in np.random.default_rng([seed, number]).permutation(len(chunk)))
        plans.append(ShardPlan(f"{name}-{number:06d}.tar", shuffled, _digest(shuffled, settings)))
    return plans


def _digest(samples: tuple[Sample, ...], settings: dict[str, Any]) -> str:
    hasher = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for sample in samples:
        stat = sample.image.stat() if sample.image.exists() else None
        source = [str(sample.image), stat.st_size, stat.st_mtime_ns] if stat else [str(sample.image)]
        hasher.update(json.dumps([sample.key, source, sample.meta], sort_keys=True).encode())
    return hasher.hexdigest()
