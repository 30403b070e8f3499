"""Quixel metadata shared by Bridge and Fab downloads: the asset JSON's words, category matching and classes.

Both write a Bridge-style ``<id>.json`` with ``id``, ``name``, ``categories`` (the type first), ``tags`` and
``semanticTags``; a category of assets.toml selects assets by those words and names their classes.
"""

from __future__ import annotations

import re
from typing import Any

from pgrf.config import Category

GENERIC_CATEGORIES = {"3d", "3d asset", "3d assets", "3d plant", "3d plants", "3dplant", "asset", "assets"}


def categories(meta: dict[str, Any]) -> list[Any]:
    """The asset's ``categories`` (its type first), or none when the JSON holds something other than a list."""
    value = meta.get("categories")
    return value if isinstance(value, list) else []


def terms(meta: dict[str, Any]) -> set[str]:
    """Lower-case words of the asset's categories, tags and semantic tags, plurals folded."""
    values: list[Any] = [meta.get("categories") or [], meta.get("tags") or []]
    semantic = meta.get("semanticTags")
    if isinstance(semantic, dict):
        values.extend(semantic.values())
    words: set[str] = set()
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                words.update(_fold(w) for w in re.split(r"[^a-z0-9]+", item.lower()) if w)
    return words


def _fold(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def matches(meta: dict[str, Any], category: Category) -> bool:
    """Match on the asset's words; an asset with no categories or tags at all is judged by its type folder."""
    words = terms(meta)
    if not words:
        return True
    if any(_fold(t.lower()) in words for t in category.exclude_words):
        return False
    return not category.match or any(_fold(t.lower()) in words for t in category.match)


def class_name(meta: dict[str, Any], asset_name: str, category: Category) -> str:
    """The class of an asset under ``category.class_from``: ``asset`` is one class per asset (``<name> <id>``, as
    M-Plants), ``category`` the most specific JSON category, otherwise the species (semantic name or asset name)."""
    if category.class_from == "asset" and meta.get("id"):
        return f"{asset_name.strip().lower()} {str(meta['id']).strip().lower()}"
    if category.class_from == "category":  # the most specific (last) non-generic category
        specific = [c for c in categories(meta) if isinstance(c, str) and c.strip().lower() not in GENERIC_CATEGORIES]
        if specific:
            return specific[-1].strip().lower()
    semantic = meta.get("semanticTags")
    name = semantic.get("name") if isinstance(semantic, dict) else None
    return str(name or asset_name).strip().lower()
