"""Write one planned shard: decode each source PNG once, composite, flip for the mirrored copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pgrf.formats.images import BadImage, encode_png, read_member_rgba, read_rgba
from pgrf.formats.shards import ShardRecord
from pgrf.pipeline.composite import composite
from pgrf.pipeline.plan import Sample, ShardPlan
from pgrf.pipeline.shards import write_shard


@dataclass(frozen=True)
class EncodeSettings:
    """How pixels are produced; resolution and background are part of every shard's digest."""

    resolution: int
    background: str
    skip_bad: bool
    max_pixels: int
    """Source images whose header gives more pixels are refused before decoding (not part of the digest)."""


def encode_shard(out: Path, plan: ShardPlan, settings: EncodeSettings, progress: Callable[[int], None]) -> ShardRecord:
    """Write ``plan`` to ``out / plan.file`` (atomically); bad PNGs stop it unless ``settings.skip_bad``."""
    result = ShardRecord(plan.file, plan.digest)
    result.sha256 = write_shard(out / plan.file, _members(plan, settings, result, progress))
    return result

def _members(plan: ShardPlan, settings: EncodeSettings, result: ShardRecord,
             progress: Callable[[int], None]) -> Iterator[tuple[str, bytes]]:
    by_image: dict[tuple[Path, str], list[Sample]] = {}
    for sample in plan.samples:
        by_image.setdefault(sample.source, []).append(sample)
    pending: dict[str, bytes] = {}  # PNGs encoded for samples later in the shard (twins of earlier ones)
    bad: set[tuple[Path, str]] = set()
    for sample in plan.samples:
        progress(1)
        if sample.source in bad:
            continue
        if sample.key not in pending:
            try:
                pending.update(_encode(by_image[sample.source], settings))
            except BadImage:
                if not settings.skip_bad:
                    raise
                bad.add(sample.source)
                result.bad_files.append(f"{sample.image}:{sample.member}" if sample.member else str(sample.image))
                continue
        result.keys.append(sample.key)
        yield f"{sample.key}.png", pending.pop(sample.key)
        yield f"{sample.key}.json", sample.member_json
        yield f"{sample.key}.cls", str(sample.meta.class_index).encode()

def _encode(twins: list[Sample], settings: EncodeSettings) -> dict[str, bytes]:
    """PNGs of every sample of this shard made from one source image (a view and its mirrored copy)."""
    source = twins[0]
    rgba = (read_member_rgba(source.image, source.member, settings.max_pixels) if source.member
            else read_rgba(source.image, settings.max_pixels))
    image = composite(rgba, settings.resolution, settings.background)
    return {s.key: encode_png(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if s.meta.mirrored != s.flipped else image)
            for s in twins}
