"""What ``pgrf stats`` and ``pgrf export`` print: the statistics as rich tables, an export as one summary line."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from pgrf.pipeline.export import ExportResult
    from pgrf.pipeline.stats import Histogram, StatsResult


def print_stats(result: StatsResult, console: Console | None = None, max_classes: int = 30) -> None:
    """Print the Table-5 summary, filters and per-class counts with rich."""
    console = console or Console()
    resolution = ", ".join(f"{r}²" for r in result.resolutions) or "?"
    mirrors = "in the data" if result.mirrored else ("if packed with --mirror" if result.kind == "renders" else "none packed")
    table = Table(title=f"{escape(result.path)} ({result.kind})", show_header=False)
    table.add_column("statistic", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("images (unique views)", f"{result.images:,}")
    table.add_row("images with mirrors", f"{result.images_with_mirrors:,} ({mirrors})")
    table.add_row("models", f"{result.models:,}")
    table.add_row("classes", f"{result.classes:,}")
    table.add_row("resolution", resolution)
    for angle in (result.yaw, result.pitch):
        colour = "green" if angle.uniform else "red"
        table.add_row(f"{angle.name} distribution", f"[{colour}]{escape(angle.distribution)}[/{colour}]")
        table.add_row(f"{angle.name} mean / range", f"{angle.mean:.4f} / [{angle.min:.4f}, {angle.max:.4f}]")
        table.add_row(f"{angle.name} KS ({escape(angle.tested)})", f"D = {angle.ks_statistic:.5f}, p = {angle.ks_pvalue:.4g}")
    for item in result.filters:
        table.add_row(f"filter {item.name}", f"removed {item.removed_models} models (threshold {escape(_threshold_text(item.threshold))})")
    if result.render_status:
        table.add_row("render log", ", ".join(f"{k} {v}" for k, v in result.render_status.items()))
    console.print(table)
    classes = Table(title="per class" + (f" (top {max_classes} of {len(result.per_class)})" if len(result.per_class) > max_classes else ""))
    for column in ("class", "models", "images"):
        classes.add_column(column, justify="left" if column == "class" else "right")
    for group in result.per_class[:max_classes]:
        classes.add_row(escape(group.name), f"{group.models:,}", f"{group.images:,}")
    console.print(classes)
    if len(result.per_category) > 1:
        parts = (f"{escape(g.name)} {g.models} models / {g.images:,} images" for g in result.per_category)
        console.print("per category: " + ", ".join(parts))
    console.print("mean alpha per model: " + _sparkline(result.mean_alpha) +
                  f" (0 … {result.mean_alpha.edges[-1]:.2f}, {sum(result.mean_alpha.counts)} models)")
    for note in result.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def _threshold_text(threshold: Any) -> str:
    if isinstance(threshold, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(threshold.items())) or "none"
    return "as rendered" if threshold is None else str(threshold)


def _sparkline(histogram: Histogram) -> str:
    blocks = " ▁▂▃▄▅▆▇█"
    peak = max(histogram.counts) or 1
    return "".join(blocks[math.ceil(c / peak * 8)] for c in histogram.counts)


def print_export(result: ExportResult, console: Console | None = None) -> None:
    """One summary line of an export."""
    console = console or Console()
    console.print(f"wrote {result.images:,} images ({result.resolution}², labels: {result.labels}) to "
                  f"{escape(str(result.path))} ({result.size_bytes / 2**20:.1f} MiB)")
