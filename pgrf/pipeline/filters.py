"""Which filters apply to a category's finished renders, for ``pgrf pack``, ``pgrf stats`` and ``pgrf review``.

In order, the first that speaks decides:
1. a config file the user gave or keeps in the working folder (not the shipped default) that defines the
   category: its ``min_mean_alpha`` and ``exclude`` file, and ``[render] min_dim_product``;
2. the category's ``filters.json``, written by the ``pgrf render`` or ``pgrf import`` that made the renders (its
   exclude file applies while its entries are unchanged);
3. renders written before pgrf recorded their filters: the defaults of the category of that name in the
   config in force (the shipped ``plants`` and ``food`` among them), announced in one line;
4. otherwise no filter, announced in one line.
``--min-mean-alpha`` replaces the threshold whichever of them decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pgrf.config import Config, shipped_defaults
from pgrf.formats.exclude import ExcludeList, read_exclude
from pgrf.formats.renders import FILTERS_FILE, read_filters


@dataclass(frozen=True)
class AppliedFilters:
    """The filters of one category, where they came from, and a line to show when the user should know."""

    min_mean_alpha: float | None
    """None: no threshold is known (pack then leaves nothing out as sparse; review shows the render log's word)."""
    min_dim_product: float | None
    exclude: ExcludeList | None
    source: str
    note: str | None = None


def category_filters(category_dir: Path, category: str, config: Config | None,
                     min_mean_alpha: float | None = None) -> AppliedFilters:
    """The filters of ``category`` (rendered into ``category_dir``) by the rules of the module docstring; no ``config``
    is the shipped default's place (no config file)."""
    filters = _decide(category_dir, category, config or shipped_defaults())
    if min_mean_alpha is not None:
        filters = replace(filters, min_mean_alpha=min_mean_alpha, source=f"--min-mean-alpha; otherwise {filters.source}",
                          note=None)
    return filters


def _decide(category_dir: Path, name: str, config: Config) -> AppliedFilters:
    defined = config.categories.get(name)
    if defined is not None and not config.shipped:
        return _from_config(defined.min_mean_alpha, defined.exclude, config, str(config.path))
    recorded = read_filters(category_dir)
    if recorded is not None:
        exclude, note = None, None
        if recorded.exclude is not None:
            current = read_exclude(recorded.exclude) if Path(recorded.exclude).is_file() else None
            if current is not None and current.digest == recorded.exclude_sha256:
                exclude = current
            else:
                note = (f"{category_dir}: the exclude file {recorded.exclude} it was rendered with is "
                        f"{'changed' if current else 'gone'}; give --config with the category to apply one")
        return AppliedFilters(recorded.min_mean_alpha, recorded.min_dim_product, exclude,
                       str(category_dir / FILTERS_FILE), note)
    if defined is not None:
        filters = _from_config(defined.min_mean_alpha, defined.exclude, config, f"category '{name}' of {config.found}")
        return replace(filters, note=f"{category_dir} records no filters (rendered before pgrf wrote {FILTERS_FILE}): "
                                     f"using {filters.source}, min_mean_alpha {filters.min_mean_alpha:g}")
    return AppliedFilters(None, None, None, "none", f"{category_dir} records no filters and '{name}' is no category of "
                                                    f"{config.found}: no model is left out as sparse or excluded")


def _from_config(min_mean_alpha: float, exclude: str, config: Config, source: str) -> AppliedFilters:
    return AppliedFilters(min_mean_alpha, config.render.min_dim_product, read_exclude(exclude) if exclude else None, source)
