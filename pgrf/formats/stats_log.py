"""A run's ``stats.jsonl``: one ``StatsLine`` per tick of ``pgrf train`` and one ``FidRecord`` per FID.

Each line is a JSON object written in one piece (``fileio.append_log``, which puts ``time`` first); a line
with a ``fid`` key is an FID record (with its ``kimg``), any other a tick's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pgrf import fileio
from pgrf.formats.fid_record import FidRecord
from pgrf.formats.schema import from_json, to_json

STATS_FILE = "stats.jsonl"


@dataclass(frozen=True, kw_only=True)
class StatsLine:
    """One tick of training: where it ended (``kimg``, ``step``), the means over its steps of the losses
    (``loss_G``, ``loss_D``; ``r1``: the R1 penalty summed over its regularised steps divided by all its steps,
    left out when none was regularised) and of the gradient norms (``grad_norm_G``, ``grad_norm_D``), and
    at its end ADA's ``ada_p``, the patch-scale ``beta``, the blur ``blur_sigma``, the speed (``images_per_s``,
    ``s_per_kimg``) and the peak memory of the process (``peak_rss_mib``; ``peak_gpu_mib`` on CUDA only)."""

    OMIT_NONE: ClassVar[bool] = True

    kimg: float
    step: int
    loss_G: float
    loss_D: float
    r1: float | None = None
    grad_norm_G: float
    grad_norm_D: float
    ada_p: float
    beta: float
    blur_sigma: float
    images_per_s: float
    s_per_kimg: float
    peak_rss_mib: float
    peak_gpu_mib: float | None = None


def append_stats(run_folder: Path, line: StatsLine | FidRecord) -> None:
    """Append a tick's statistics or an FID record to the run's ``stats.jsonl``."""
    fileio.append_log(run_folder, STATS_FILE, to_json(line))


def read_stats(run_folder: Path) -> list[StatsLine | FidRecord]:
    """Every complete line of the run's ``stats.jsonl``, oldest first (a line cut short by a crash is ignored)."""
    path = run_folder / STATS_FILE
    lines: list[StatsLine | FidRecord] = []
    for number, data in enumerate(fileio.read_log(run_folder, STATS_FILE), 1):
        where = f"{path}: line {number}"
        if isinstance(data, dict) and "fid" in data:
            lines.append(FidRecord.parse(data, where))
        else:
            lines.append(from_json(StatsLine, data, where, "fix or delete that line"))
    return lines
