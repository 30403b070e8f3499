"""The metadata of a ``pgrf train`` checkpoint: everything in it but the networks' and optimisers' state.

A checkpoint is a ``torch.save`` dict (pgrf.train.checkpoint writes it, pgrf.model.checkpoint reads it; no
torch here): ``format`` (CHECKPOINT_FORMAT), ``meta`` (``CheckpointMeta`` as JSON) and the state — ``G``,
``G_ema``, ``D``, ``opt_G``, ``opt_D`` (state dicts), ``augment`` (ADA's p controller) and ``rng`` (the RNG
states of every rank). ``split_checkpoint`` and ``join_checkpoint`` are the only code that knows this layout.

Format history: 1 — networks before the reference's (not readable). 2 — the reference's networks (D's patch
encoder, mapping networks and widths; G's linear colour, conv clamp and border-exact up-convolutions;
box-bounded rays), the metadata as top-level keys ``pgrf_version``, ``model_config``, ``dataset``,
``options`` and ``progress`` (still read: ``model_config`` becomes ``model``, the world size is the number
of ``rng`` entries). 3 — the same networks and state, the metadata in one ``meta`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgrf.formats.card import DatasetInfo
from pgrf.formats.schema import FormatError, Invalid, from_json, to_json

CHECKPOINT_FORMAT = 3
OLDEST_FORMAT = 2
"""The oldest format whose networks this pgrf still builds."""
META_KEY = "meta"
FORMAT_2_META = {"pgrf_version": "pgrf_version", "model_config": "model", "dataset": "dataset", "options": "options",
                 "progress": "progress"}
"""Format 2's top-level metadata keys and the ``CheckpointMeta`` field each became."""
FIX = "use a checkpoint written by pgrf train"


@dataclass
class Counters:
    """How far a run is: ``images`` seen and optimiser ``step``s so far, and the images seen at the last stats
    line (``last_tick``), checkpoint (``last_snapshot``), sample grid (``last_sample``) and FID (``last_fid``).
    The training loop counts in it; a checkpoint keeps a copy."""

    images: int = 0
    step: int = 0
    last_tick: int = 0
    last_snapshot: int = 0
    last_sample: int = 0
    last_fid: int = 0


@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says of its run: ``options`` (the run's ``TrainOptions`` fields), ``model`` (the
    ``ModelConfig`` fields its networks were built with), ``dataset`` (what G knows of its data),
    ``world_size`` (the processes that trained it; a resume needs as many), ``pgrf_version`` (of the writer)
    and ``progress`` (the counters). The run's ``config.json`` holds the same but ``progress``."""

    options: dict[str, Any]
    model: dict[str, Any]
    dataset: DatasetInfo
    world_size: int
    pgrf_version: str
    progress: Counters

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise Invalid(f"field 'world_size' must be at least 1; got {self.world_size}")

    def run_config(self) -> dict[str, Any]:
        """The run's ``config.json``: every field but ``progress``, in field order."""
        document = to_json(self)
        del document["progress"]
        return document


def join_checkpoint(meta: CheckpointMeta, state: dict[str, Any]) -> dict[str, Any]:
    """The dict ``torch.save`` writes: the format, the metadata as JSON, then ``state``."""
    return {"format": CHECKPOINT_FORMAT, META_KEY: to_json(meta), **state}


def split_checkpoint(checkpoint: Any, where: str) -> tuple[CheckpointMeta, dict[str, Any]]:
    """(metadata, state) of a dict ``torch.load`` read from a checkpoint of format 2 or 3; anything else is a
    one-line FormatError naming ``where``."""
    version = checkpoint.get("format") if isinstance(checkpoint, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version < OLDEST_FORMAT:
        raise FormatError(f"{where}: written by an older pgrf (checkpoint format {version}, this one reads "
                          f"{OLDEST_FORMAT} to {CHECKPOINT_FORMAT}) whose networks differ; retrain, or use the pgrf "
                          "that wrote it")
    if version == CHECKPOINT_FORMAT:
        state = {name: value for name, value in checkpoint.items() if name not in ("format", META_KEY)}
        return from_json(CheckpointMeta, checkpoint.get(META_KEY), where, FIX), state
    if version == 2:
        return _format_2(checkpoint, where)
    raise FormatError(f"{where}: not a pgrf checkpoint of format {OLDEST_FORMAT} to {CHECKPOINT_FORMAT}; {FIX}")


def _format_2(checkpoint: dict[str, Any], where: str) -> tuple[CheckpointMeta, dict[str, Any]]:
    document = {field: checkpoint[name] for name, field in FORMAT_2_META.items() if name in checkpoint}
    if isinstance(checkpoint.get("rng"), list):
        document["world_size"] = len(checkpoint["rng"])
    state = {name: value for name, value in checkpoint.items() if name != "format" and name not in FORMAT_2_META}
    return from_json(CheckpointMeta, document, f"{where} (checkpoint format 2)", FIX), state
