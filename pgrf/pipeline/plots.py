"""PNG plots of a :class:`~pgrf.pipeline.stats.StatsResult` (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: no display needed
import matplotlib.pyplot as plt
import numpy as np

from pgrf.pipeline.stats import AngleStats, Histogram, StatsResult

SCATTER_POINTS = 20_000
"""The yaw–pitch scatter shows at most this many unique views (a seeded random subset)."""
TOP_CLASSES = 40
PLOTS = ("yaw.png", "pitch.png", "yaw_pitch.png", "classes.png", "mean_alpha.png")


def write_plots(result: StatsResult, out: Path) -> list[Path]:
    """Write the yaw and pitch histograms, the yaw–pitch scatter, class counts and mean alpha to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    figures = [_angle(result.yaw), _angle(result.pitch), _scatter(result), _classes(result), _mean_alpha(result)]
    paths = []
    for name, figure in zip(PLOTS, figures):
        figure.savefig(out / name, dpi=100)
        plt.close(figure)
        paths.append(out / name)
    return paths


def _angle(angle: AngleStats) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
    _bars(axes, angle.histogram, "views")
    if angle.histogram.expected:
        centres = (np.asarray(angle.histogram.edges[:-1]) + np.asarray(angle.histogram.edges[1:])) / 2
        axes.plot(centres, angle.histogram.expected, color="black", lw=1.5, label="uniform on the sphere")
        axes.legend(loc="lower center")
    axes.set_xlabel(f"{angle.name} (rad)")
    axes.set_title(f"{angle.name}: KS p = {angle.ks_pvalue:.3g} ({angle.tested})")
    return figure


def _scatter(result: StatsResult) -> plt.Figure:
    """Yaw on x, pitch on y (0 = from above, at the top), as in the EpiGRAF appendix's Figure 13."""
    yaw, pitch = result.yaw_values, result.pitch_values
    if len(yaw) > SCATTER_POINTS:
        keep = np.random.default_rng(0).choice(len(yaw), SCATTER_POINTS, replace=False)
        yaw, pitch = yaw[keep], pitch[keep]
    figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
    size = float(np.clip(2000 / max(len(yaw), 1), 1, 16))  # dots stay visible for small datasets
    axes.scatter(yaw, pitch, s=size, alpha=0.3 if len(yaw) > 2000 else 0.8, linewidths=0, rasterized=True)
    axes.set_xlim(-math.pi, math.pi)
    axes.set_ylim(math.pi, 0)
    axes.set_xlabel("yaw (rad)")
    axes.set_ylabel("pitch (rad, from +Z)")
    axes.set_title(f"{Path(result.path).name}: {len(yaw):,} of {result.images:,} unique views")
    return figure


def _classes(result: StatsResult) -> plt.Figure:
    groups = result.per_class[:TOP_CLASSES]
    names = [g.name for g in groups]
    images = [g.images for g in groups]
    rest = result.per_class[TOP_CLASSES:]
    if rest:
        names.append(f"({len(rest)} others)")
        images.append(sum(g.images for g in rest))
    figure, axes = plt.subplots(figsize=(7, 1.5 + 0.22 * len(names)), layout="constrained")
    axes.barh(range(len(names)), images)
    axes.set_yticks(range(len(names)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("unique views")
    axes.set_title(f"{result.classes} classes, {result.models:,} models")
    return figure


def _mean_alpha(result: StatsResult) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
    _bars(axes, result.mean_alpha, "models")
    thresholds = next((f.threshold for f in result.filters if f.name == "min_mean_alpha"), None)
    values = thresholds.values() if isinstance(thresholds, dict) else [thresholds]
    for value in sorted({v for v in values if isinstance(v, (int, float)) and v > 0}):
        axes.axvline(value, color="red", ls="--", lw=1, label=f"min_mean_alpha {value}")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    axes.set_xlabel("mean alpha over all pixels of all views")
    axes.set_title("mean alpha per model")
    return figure


def _bars(axes: plt.Axes, histogram: Histogram, unit: str) -> None:
    edges = np.asarray(histogram.edges)
    axes.bar(edges[:-1], histogram.counts, width=np.diff(edges), align="edge", alpha=0.7, edgecolor="white")
    axes.set_ylabel(unit)
