"""``pgrf verify``: check a shard folder against its card and index, sample by sample."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pgrf.formats.card import CARD_FILE, DatasetCard, ShardEntry, read_card
from pgrf.formats.images import BadImage, decode_png
from pgrf.formats.schema import FormatError
from pgrf.formats.shards import INDEX_FILE, MEMBERS, SampleMeta, original_key
from pgrf.pipeline.shards import iter_samples, sha256

TOLERANCE = 1e-9


@dataclass
class Report:
    """What ``verify`` found: counts and one line per problem."""

    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)


def verify(shards_dir: Path, progress: Callable[[int], None] = lambda n: None) -> Report:
    """Check every shard, sample, index row and mirrored camera; ``progress`` is called once per shard."""
    card = read_card(shards_dir)
    report = Report()
    index = _read_index(shards_dir, report)
    listed = {entry.file for entry in card.shards}
    report.problems += [f"{p.name}: shard not listed in dataset.json" for p in sorted(shards_dir.glob("*.tar")) if p.name not in listed]
    cameras: dict[str, tuple[str, SampleMeta]] = {}
    for entry in card.shards:
        _check_shard(shards_dir / entry.file, entry, card, index, cameras, report)
        progress(1)
    _check_mirrors(cameras, report)
    if index is not None and report.samples != len(index.get("key", [])):
        report.problems.append(f"{INDEX_FILE}: {len(index['key'])} rows but the shards hold {report.samples} samples")
    if card.counts.samples != report.samples:
        report.problems.append(f"{CARD_FILE}: counts.samples is {card.counts.samples} but the shards hold {report.samples}")
    return report


def _read_index(shards_dir: Path, report: Report) -> dict[str, list] | None:
    try:
        return pq.read_table(shards_dir / INDEX_FILE).to_pydict()
    except (OSError, ValueError) as error:
        report.problems.append(f"{INDEX_FILE}: unreadable ({error})")
        return None


def _check_shard(path: Path, entry: ShardEntry, card: DatasetCard, index: dict[str, list] | None,
                 cameras: dict[str, tuple[str, SampleMeta]], report: Report) -> None:
    report.shards += 1
    if not path.is_file():
        report.problems.append(f"{path.name}: listed in dataset.json but missing")
        return
    if sha256(path) != entry.sha256:
        report.problems.append(f"{path.name}: sha256 differs from dataset.json (the file changed or is truncated)")
    keys: list[str] = []
    seen: set[str] = set()
    try:
        for key, members in iter_samples(path):  # streamed: memory does not grow with the shard
            where = f"{path.name}:{key}"
            if key in cameras or key in seen:
                report.problems.append(f"{where}: key also in {cameras[key][0] if key in cameras else path.name}")
            keys.append(key)
            seen.add(key)
            report.samples += 1
            meta = _check_sample(where, members, card.resolution, report)
            if meta is not None:
                cameras[key] = (path.name, meta)
                _check_class(where, meta, card.class_names, report)
    except (tarfile.TarError, OSError, EOFError) as error:
        report.problems.append(f"{path.name}: not a readable tar ({error})")
        return
    if len(keys) != entry.samples:
        report.problems.append(f"{path.name}: {len(keys)} samples, {CARD_FILE} says {entry.samples}")
    if index is not None:
        rows = sorted((p, k) for s, p, k in zip(index["shard"], index["position"], index["key"]) if s == path.name)
        if [k for _, k in rows] != keys:
            report.problems.append(f"{path.name}: {INDEX_FILE} rows do not match the shard's samples and their order")


def _check_sample(where: str, members: dict[str, bytes], resolution: int, report: Report) -> SampleMeta | None:
    if sorted(members) != sorted(MEMBERS):
        report.problems.append(f"{where}: members {sorted(members)}, expected {list(MEMBERS)}")
    if "png" in members:
        try:
            image = decode_png(members["png"], "RGB", where)
            if image.shape[:2] != (resolution, resolution):
                report.problems.append(f"{where}: image is {image.shape[1]}×{image.shape[0]}, dataset.json says {resolution}²")
        except BadImage as error:
            report.problems.append(str(error))
    try:
        meta = SampleMeta.parse(members.get("json", b""), where)
    except FormatError as error:
        report.problems.append(str(error))
        return None
    if members.get("cls", b"").decode(errors="replace").strip() != str(meta.class_index):
        report.problems.append(f"{where}: cls member differs from the json's class {meta.class_index}")
    return meta


def _check_class(where: str, meta: SampleMeta, class_names: list[str], report: Report) -> None:
    """A sample's class must index the card's ``class_names`` (as ``pgrf stats`` requires)."""
    if class_names and not 0 <= meta.class_index < len(class_names):
        report.problems.append(f"{where}: class {meta.class_index} is outside {CARD_FILE}'s class_names "
                               f"(0 to {len(class_names) - 1}); re-run pgrf pack")


def _check_mirrors(cameras: dict[str, tuple[str, SampleMeta]], report: Report) -> None:
    for key, (shard, meta) in cameras.items():
        if meta.mirrored != (key != original_key(key)):
            report.problems.append(f"{shard}:{key}: json says mirrored={meta.mirrored}, the key says otherwise")
        if not meta.mirrored:
            continue
        original = cameras.get(original_key(key))
        if original is None:
            report.problems.append(f"{shard}:{key}: mirrored sample without its original {original_key(key)}")
            continue
        expected = original[1].mirrored_copy()
        if not np.allclose(meta.c2w, expected.c2w, atol=TOLERANCE) or \
                not np.isclose(meta.yaw, expected.yaw, atol=TOLERANCE) or meta.pitch != expected.pitch:
            report.problems.append(f"{shard}:{key}: camera is not S·c2w·F (and −yaw) of {original_key(key)}")
