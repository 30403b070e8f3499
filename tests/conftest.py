"""Shared fixtures: the sample library (with faults) and a way to run the CLI as users do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pgrf.datasets.sample_library import make_sample_library

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "assets.toml"
TINY = ["--views", "3", "--resolution", "32", "--samples", "4", "--no-denoise"]
"""Render flags for the unit suite: real Cycles renders, small enough for CI."""


@pytest.fixture(scope="session")
def sample_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    make_sample_library(root, with_faults=True)
    return root


def run_pgrf(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m pgrf ARGS`` and capture its output."""
    return subprocess.run([sys.executable, "-m", "pgrf", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def blender_check(name: str, out: Path) -> Path:
    """Run one check of tests/blender_checks.py in its own Blender process."""
    result = subprocess.run([sys.executable, str(REPO / "tests" / "blender_checks.py"), name, str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return out
