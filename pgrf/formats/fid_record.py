"""The FID record: what ``compute_fid`` returns, ``pgrf fid --json`` writes and training logs to ``stats.jsonl``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgrf.formats.schema import from_json, omitted, to_json


@dataclass(frozen=True)
class DetectorInfo:
    """Which network made a set of features: ``kind`` (``pytorch-fid``, ``nvidia-torchscript`` or ``module``)
    and the sha256 of its file (of its weights, for a module built in code)."""

    kind: str
    sha256: str


@dataclass(frozen=True, kw_only=True)
class FidRecord:
    """One FID (and KID) of a generator against the real images of shards.

    ``kimg``: the training time of the generator, only in ``stats.jsonl`` (left out elsewhere). ``fid``: the
    Fréchet distance. ``protocol``: ``fid50k_full``, ``fid2k`` or ``fid<num>_custom``. ``detector``: the
    feature network. ``num_fake``, ``num_real``: images on each side. ``real_mirrored``: the reals' mirrored
    copies were added (a run trained with ``--mirror``). ``real_stats``: the cache file of the real
    statistics (null: not cached); ``real_stats_cached``: they were read from it. ``kid``, ``kid_std``: KID and
    its std over subsets (only when asked for). ``seconds``: the wall time of the whole computation.
    """

    kimg: float | None = omitted()
    fid: float
    protocol: str
    detector: DetectorInfo
    num_fake: int
    num_real: int
    real_mirrored: bool
    real_stats: str | None
    real_stats_cached: bool
    kid: float | None = omitted()
    kid_std: float | None = omitted()
    seconds: float

    @classmethod
    def parse(cls, data: Any, where: str) -> FidRecord:
        """A record read back from JSON; a bad one is a one-line FormatError naming ``where`` and the field."""
        return from_json(cls, data, where, "compute the FID again (pgrf fid)")


def write_fid_json(path: Path, record: FidRecord, checkpoint: str, shards: str, psi: float, seed: int) -> None:
    """``pgrf fid --json``: the checkpoint, the shards, ψ and the seed, then the record's fields."""
    document = {"checkpoint": checkpoint, "shards": shards, "psi": psi, "seed": seed, **to_json(record)}
    path.write_text(json.dumps(document, indent=2) + "\n")
