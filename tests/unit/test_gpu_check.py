"""bench/gpu_check.py's tiny CPU run: every section writes finite figures, and --only reruns one keeping the rest."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SECTIONS = ("equality", "steps", "speed", "train", "fid")


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [number for item in value.values() for number in _numbers(item)]
    return []


def _check(out: Path, *extra: str) -> dict:
    command = [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--device", "cpu", "--quick", "--out", str(out), *extra]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=240)  # a guard against a hang
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_quick_cpu_run_writes_every_section_with_finite_numbers(tmp_path: Path) -> None:
    document = _check(tmp_path)
    sections = document["sections"]
    assert tuple(sections) == SECTIONS
    for name, result in sections.items():
        assert "error" not in result, (name, result.get("traceback"))
        numbers = _numbers(result)
        assert numbers and all(math.isfinite(number) for number in numbers), name
    assert sections["equality"]["equal"] and sections["equality"]["max_abs_diff_images"] == 0.0  # the CPU against itself
    assert sections["steps"]["finite"] and sections["steps"]["r1_steps"] >= 1 and sections["steps"]["ada_p"] > 0
    assert sections["train"]["ticks"] == 3 and sections["train"]["peak_rss_mib"] > 0
    assert sections["fid"]["features"] == 2048 and sections["speed"]["g_ms_per_image"] > 0
    rerun = _check(tmp_path, "--only", "equality")["sections"]
    assert tuple(rerun) == SECTIONS and rerun["equality"]["section_s"] != sections["equality"]["section_s"]
    assert rerun["fid"] == sections["fid"]
