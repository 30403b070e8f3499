"""pipeline.filters: which filters apply to a category's renders — a config the user gave, else what the render
stage recorded, else (older renders) the shipped category's defaults, announced."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.config import Category, load_config
from pgrf.formats import renders as records
from pgrf.formats.exclude import read_exclude, write_exclude
from pgrf.pipeline.filters import category_filters
from pgrf.pipeline.synthetic import fake_renders
from tests.helpers import CONFIG

MODELS = {"dense": 0.4, "sparse": 0.02}


def test_the_recorded_filters_apply_without_a_config(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path, "plants", MODELS, recorded_alpha=0.5)
    recorded = records.read_filters(plants)
    assert recorded is not None and (recorded.category, recorded.min_mean_alpha, recorded.min_dim_product) == ("plants", 0.5, 2.0)
    filters = category_filters(plants, "plants", None)
    assert (filters.min_mean_alpha, filters.min_dim_product, filters.note) == (0.5, 2.0, None)
    assert filters.source == str(plants / records.FILTERS_FILE)
    assert category_filters(plants, "plants", None, 0.1).min_mean_alpha == 0.1  # the flag replaces it


def test_a_config_the_user_gives_overrides_the_record(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path, "plants", MODELS, recorded_alpha=0.5)
    filters = category_filters(plants, "plants", load_config(CONFIG))
    assert (filters.min_mean_alpha, filters.source) == (0.03, str(CONFIG))
    unknown = category_filters(plants, "not-in-the-config", load_config(CONFIG))
    assert unknown.min_mean_alpha == 0.5  # a config that does not define the category leaves the record in force


def test_older_renders_get_the_shipped_category_defaults_announced(tmp_path: Path) -> None:
    plants = fake_renders(tmp_path, "plants", MODELS, recorded_alpha=None)
    filters = category_filters(plants, "plants", None)
    assert filters.min_mean_alpha == 0.03 and filters.note is not None
    assert "records no filters" in filters.note and "category 'plants' of the default pgrf ships" in filters.note
    odd = fake_renders(tmp_path, "odd", MODELS, recorded_alpha=None)
    none = category_filters(odd, "odd", None)
    assert none.min_mean_alpha is None and none.note is not None and "no model is left out" in none.note


@pytest.mark.parametrize("edited", [False, True])
def test_the_recorded_exclude_file_applies_while_its_entries_are_unchanged(tmp_path: Path, edited: bool) -> None:
    plants = fake_renders(tmp_path, "plants", MODELS)
    exclude = tmp_path / "plants.exclude"
    write_exclude(exclude, "plants", ["sparse"])
    records.write_filters(plants, records.filters_record(Category("plants", exclude=str(exclude)), 2.0, "pgrf render"))
    assert records.read_filters(plants).exclude_sha256 == read_exclude(exclude).digest  # type: ignore[union-attr]
    write_exclude(exclude, "plants", ["sparse", "dense"] if edited else ["sparse"])  # a rewrite, a new header date
    filters = category_filters(plants, "plants", None)
    if edited:
        assert filters.exclude is None and filters.note is not None and "is changed" in filters.note
    else:
        assert filters.exclude is not None and filters.exclude.matches("sparse", "x") and filters.note is None
