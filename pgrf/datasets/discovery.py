"""One entry point for finding the models of a category, whatever the library layout."""

from __future__ import annotations

from pathlib import Path

from pgrf.config import Category
from pgrf.datasets import fab, folders, megascans
from pgrf.formats.catalog import Catalog


def discover(root: Path, category: Category, texture_size: str = "2K") -> Catalog:
    """The catalog of ``category`` in the library at ``root``; a megascans library holding Fab downloads is read as Fab."""
    if category.source == "folders":
        return folders.discover(root, category)
    if category.source == "fab" or fab.is_fab_library(root):
        return fab.discover(root, category)
    return megascans.discover(root, category, texture_size)
