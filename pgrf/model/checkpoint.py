"""Reading training checkpoints and loading G from one for inference (pgrf.train.checkpoint writes them;
their layout and metadata are the contract of pgrf.formats.checkpoint)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pgrf.errors import PgrfError
from pgrf.formats.card import DatasetInfo, background_level
from pgrf.formats.checkpoint import CheckpointMeta, split_checkpoint
from pgrf.model.generator import Generator
from pgrf.model.presets import ModelConfig

LATEST = "latest.pt"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as read: its file, its metadata, and its state (``G``, ``G_ema``, ``D``, ``opt_G``,
    ``opt_D`` state dicts, ``augment``, ``rng``)."""

    path: Path
    meta: CheckpointMeta
    state: dict[str, Any]

    @property
    def model_config(self) -> ModelConfig:
        """The ModelConfig its networks were built with."""
        try:
            return ModelConfig().override(**self.meta.model)
        except PgrfError as error:
            raise PgrfError(f"{self.path}: {error}; use the pgrf that wrote it") from None


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by ``pgrf train`` (a .pt file or its checkpoints folder), or raise a one-line
    error naming the file. It is read with ``weights_only``: a pickle that would build any other object (and so
    could run code) is refused."""
    if path.is_dir():
        path = path / LATEST
    if not path.is_file():
        raise PgrfError(f"{path}: no such checkpoint; give a .pt file or a run's checkpoints folder written by pgrf train")
    try:
        document = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise PgrfError(f"{path}: holds objects other than tensors, numbers, strings and containers, which pgrf checkpoints "
                        "never do, and pgrf does not run code from a file; use a checkpoint written by pgrf train") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise PgrfError(f"{path}: not a readable checkpoint ({str(error).splitlines()[0]}); use another snapshot") from None
    meta, state = split_checkpoint(document, str(path))
    return Checkpoint(path, meta, state)


def ema_generator(checkpoint: Checkpoint, device: str | torch.device = "cpu") -> Generator:
    """G_ema of a checkpoint, in eval mode on ``device``."""
    generator = Generator(checkpoint.model_config, background_level(checkpoint.meta.dataset.background)).to(device)
    generator.load_state_dict(checkpoint.state["G_ema"])
    return generator.eval().requires_grad_(False)


def load_generator(path: Path, device: str | torch.device = "cpu") -> tuple[Generator, DatasetInfo]:
    """G_ema of a checkpoint, in eval mode on ``device``, and its dataset facts."""
    checkpoint = load_checkpoint(path, device)
    return ema_generator(checkpoint, device), checkpoint.meta.dataset
