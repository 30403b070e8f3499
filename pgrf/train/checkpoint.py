"""Writing training checkpoints (the format and reading are in pgrf.model.checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pgrf.fileio import atomic_path, write_failed
from pgrf.model.checkpoint import CHECKPOINT_FORMAT


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a crash leaves the previous file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        try:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, partial)
        except RuntimeError as error:  # torch reports a short write (disk full, file-size limit) in its own words
            if "inline_container" not in str(error):
                raise
            raise write_failed(path, str(error).splitlines()[0]) from None
