"""``pgrf review``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from pgrf.cli.app import ConfigOption, app, console, interruptible, note, reporter, with_options
from pgrf.config import load_config
from pgrf.review.page import ReviewOptions

REVIEW_HELP = {
    "views": "Renders: views in each model's contact strip.",
    "size": "Thumbnail tile size in pixels.",
    "samples": "Shards: random samples shown (each beside its mirrored twin).",
    "seed": "Shards: which samples are drawn.",
    "workers": "Processes making thumbnails.",
    "min_mean_alpha": f"Renders: the sparse threshold {note('default: the filters of each category')}.",
}


@app.command()
@with_options(ReviewOptions, REVIEW_HELP)
def review(
    path: Annotated[Path, typer.Argument(help="A renders/<category> folder, a renders/ root or a shard folder.")],
    out: Annotated[Path, typer.Option(help="Folder for index.html and its thumbnails.")] = Path("review"),
    config: ConfigOption = None,
    **values: Any,
) -> None:
    """Write a static gallery (index.html + thumbnails) of renders or shards, to look at and pick models to exclude."""
    from pgrf.review.gallery import review as run_review

    options = ReviewOptions(**values)
    with interruptible("finished thumbnails are kept; run the same command again to make the rest"):
        result = run_review(path, out, load_config(config), options, reporter=reporter)
    console.print(f"{result.cards} cards ({result.kind}), {result.made} thumbnails made, {result.cached} from an earlier run, "
                  f"{result.removed} stale removed, in {result.seconds:.1f} s → {escape(str(result.page))}")
