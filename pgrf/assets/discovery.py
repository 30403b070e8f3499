"""One entry point for finding the models of a category, whatever the library layout."""

from __future__ import annotations

from pathlib import Path

from pgrf.assets import fab, folders, megascans
from pgrf.assets.objects import split_models
from pgrf.config import Category
from pgrf.formats.catalog import Catalog
from pgrf.formats.exclude import read_exclude


def discover(root: Path, category: Category, texture_size: str = "2K") -> Catalog:
    """The catalog of ``category`` in the library at ``root`` (a megascans library holding Fab downloads is read as
    Fab): split into objects when the category says so, and with the models its exclude file names moved to
    ``catalog.excluded``."""
    if category.source == "folders":
        catalog = folders.discover(root, category)
    elif category.source == "fab" or fab.is_fab_library(root):
        catalog = fab.discover(root, category)
    else:
        catalog = megascans.discover(root, category, texture_size)
    if category.split_objects:
        catalog.models = split_models(catalog.models)
    if category.exclude:
        rejected = read_exclude(category.exclude)
        catalog.excluded = [m for m in catalog.models if rejected.matches(m.model_id, m.asset_id)]
        catalog.models = [m for m in catalog.models if not rejected.matches(m.model_id, m.asset_id)]
    return catalog
