"""Reading training checkpoints and loading G from one for inference (pgrf.train.checkpoint writes them).

A checkpoint is a ``torch.save`` dict:
``format`` (CHECKPOINT_FORMAT), ``pgrf_version``, ``model_config`` (ModelConfig fields), ``dataset``
(resolution, radius, fov, class_names, mirror, shards), ``options`` (the run's TrainOptions),
``G``, ``G_ema``, ``D`` and ``opt_G``/``opt_D`` state dicts, ``augment`` (ADA p controller state),
``progress`` (images seen, steps, batches drawn) and ``rng`` (torch, CUDA and the loop's generators).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetInfo, background_level
from pgrf.model.generator import Generator
from pgrf.model.presets import ModelConfig

CHECKPOINT_FORMAT = 2
"""2: the networks match the reference (D's patch encoder, mapping networks and widths; G's linear colour,
conv clamp and border-exact up-convolutions; box-bounded rays). Format 1 weights do not fit them."""
LATEST = "latest.pt"


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``pgrf train``, or raise a one-line error naming the file."""
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise PgrfError(f"{path}: no such checkpoint; give a .pt file or a run's checkpoints folder written by pgrf train")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise PgrfError(f"{path}: not a readable checkpoint ({str(error).splitlines()[0]}); use another snapshot") from None
    version = state.get("format") if isinstance(state, dict) else None
    if isinstance(version, int) and version < CHECKPOINT_FORMAT:
        raise PgrfError(f"{path}: written by an older pgrf (checkpoint format {version}, this one reads "
                        f"{CHECKPOINT_FORMAT}) whose networks differ; retrain, or use the pgrf that wrote it")
    if version != CHECKPOINT_FORMAT:
        raise PgrfError(f"{path}: not a pgrf checkpoint of format {CHECKPOINT_FORMAT}")
    return state


def model_config(state: dict[str, Any]) -> ModelConfig:
    """The ModelConfig a checkpoint was trained with."""
    return ModelConfig(**state["model_config"])


def dataset_info(state: dict[str, Any]) -> DatasetInfo:
    """The dataset facts stored in a checkpoint."""
    return DatasetInfo.parse(state["dataset"], "checkpoint")


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, DatasetInfo]:
    """G_ema of a checkpoint, in eval mode on ``device``, and its dataset facts."""
    state = load_checkpoint(path, device)
    info = dataset_info(state)
    generator = Generator(model_config(state), background_level(info.background)).to(device)
    generator.load_state_dict(state["G_ema"])
    return generator.eval().requires_grad_(False), info
