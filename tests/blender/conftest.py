"""Fixtures of the Blender tests: the sample library (with faults). Every test under tests/blender/ is marked
``blender``. Helpers live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.assets.sample_library import make_sample_library


@pytest.fixture(scope="session")
def sample_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    make_sample_library(root, with_faults=True)
    return root


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in this folder ``blender`` (before ``-m`` selects), so ``-m "not blender"`` runs the unit half."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.blender)
