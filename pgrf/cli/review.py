"""``pgrf review``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from pgrf.cli.app import ConfigOption, app, console, interruptible, note, reporter
from pgrf.config import load_config
from pgrf.review.page import ReviewOptions


@app.command()
def review(
    path: Annotated[Path, typer.Argument(help="A renders/<category> folder, a renders/ root or a shard folder.")],
    out: Annotated[Path, typer.Option(help="Folder for index.html and its thumbnails.")] = Path("review"),
    config: ConfigOption = None,
    views: Annotated[int, typer.Option(help="Renders: views in each model's contact strip.")] = ReviewOptions.views,
    size: Annotated[int, typer.Option(help="Thumbnail tile size in pixels.")] = ReviewOptions.size,
    samples: Annotated[int, typer.Option(help="Shards: random samples shown (each beside its mirrored twin).")] = ReviewOptions.samples,
    seed: Annotated[int, typer.Option(help="Shards: which samples are drawn.")] = ReviewOptions.seed,
    workers: Annotated[int, typer.Option(help="Processes making thumbnails.")] = ReviewOptions.workers,
    min_mean_alpha: Annotated[Optional[float], typer.Option(help="Renders: the sparse threshold "
                                                                 f"{note('config: the category')}.")] = None,
) -> None:
    """Write a static gallery (index.html + thumbnails) of renders or shards, to look at and pick models to exclude."""
    from pgrf.review.gallery import review as run_review

    options = ReviewOptions(views=views, size=size, samples=samples, seed=seed, workers=workers, min_mean_alpha=min_mean_alpha)
    with interruptible("finished thumbnails are kept; run the same command again to make the rest"):
        result = run_review(path, out, load_config(config), options, reporter=reporter)
    console.print(f"{result.cards} cards ({result.kind}), {result.made} thumbnails made, {result.cached} from an earlier run, "
                  f"{result.removed} stale removed, in {result.seconds:.1f} s → {escape(str(result.page))}")
