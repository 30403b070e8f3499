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
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from pgrf.formats.shards import SampleMeta


@dataclass(frozen=True)
class Sample:
    """One image of the dataset, where its pixels come from, and its model's mean alpha (for the index)."""

    image: Path
    meta: SampleMeta
    mean_alpha: float
    member: str = ""
    """The member of the zip ``image`` that holds the pixels (``pgrf import zip``); empty: ``image`` is the PNG."""
    flipped: bool = False
    """The source already shows the mirrored view (a mirrored sample of an exported zip): flip only the others."""

    @property
    def source(self) -> tuple[Path, str]:
        """Where the pixels are: a view and its mirrored copy share one."""
        return self.image, self.member

    @property
    def key(self) -> str:
        return self.meta.key

    @cached_property
    def member_json(self) -> bytes:
        """The sample's json member. Made once, for the plan's digest, and travels with the sample to the
        worker that writes it."""
        return self.meta.member()


@dataclass(frozen=True)
class ShardPlan:
    """The samples of one shard, in order, and a digest of everything that decides its bytes."""

    file: str
    samples: tuple[Sample, ...]
    digest: str


def plan_shards(samples: list[Sample], samples_per_shard: int, seed: int, name: str, settings: dict[str, Any]) -> list[ShardPlan]:
    """Cut the samples into shards ``<name>-000000.tar …``; ``settings`` (resolution, background…) enter the digests."""
    groups: dict[tuple[Path, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.source, []).append(sample)
    pairs = list(groups.values())
    ordered = [s for i in np.random.default_rng(seed).permutation(len(pairs)) for s in pairs[i]]
    plans = []
    for number, start in enumerate(range(0, len(ordered), samples_per_shard)):
        chunk = ordered[start:start + samples_per_shard]
        shuffled = tuple(chunk[i] for i in np.random.default_rng([seed, number]).permutation(len(chunk)))
        plans.append(ShardPlan(f"{name}-{number:06d}.tar", shuffled, _digest(shuffled, settings)))
    return plans


def _digest(samples: tuple[Sample, ...], settings: dict[str, Any]) -> str:
    """Everything that decides a shard's bytes: the settings, and each sample's key, source file
    (path, size, mtime) and json member."""
    hasher = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    sources: dict[Path, str] = {}  # a view and its mirrored copy share one file
    for sample in samples:
        if sample.image not in sources:
            sources[sample.image] = _source(sample.image)
        hasher.update(f"{sample.key}\0{sources[sample.image]}\0{sample.member}\0".encode())
        hasher.update(sample.member_json)
    return hasher.hexdigest()


def _source(image: Path) -> str:
    try:
        stat = image.stat()
    except OSError:  # missing now: the shard cannot be finished, so it is never taken as done
        return f"{image}\0missing"
    return f"{image}\0{stat.st_size}\0{stat.st_mtime_ns}"
