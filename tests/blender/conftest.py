"""Shared fixtures: the sample library (with faults). Helpers live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.datasets.sample_library import make_sample_library


@pytest.fixture(scope="session")
def sample_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    make_sample_library(root, with_faults=True)
    return root
