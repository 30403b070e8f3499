"""Writing training checkpoints (the layout is pgrf.formats.checkpoint's, reading is in pgrf.model.checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pgrf.fileio import atomic_path, write_failed
from pgrf.formats.checkpoint import CheckpointMeta, join_checkpoint


def save_checkpoint(path: Path, meta: CheckpointMeta, state: dict[str, Any]) -> None:
    """Write ``meta`` and ``state`` (state dicts, RNG states) to ``path`` atomically: a crash leaves the previous
    file intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as partial:
        try:
            torch.save(join_checkpoint(meta, state), partial)
        except RuntimeError as error:  # torch reports a short write (disk full, file-size limit) in its own words
            if "inline_container" not in str(error):
                raise
            raise write_failed(path, str(error).splitlines()[0]) from None
