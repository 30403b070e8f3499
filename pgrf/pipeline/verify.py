"""``pgrf verify``: check a shard folder against its card and index, sample by sample."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pgrf.cameras import mirror_angles, mirror_c2w
from pgrf.formats.images import BadImage, decode_png
from pgrf.formats.shards import (
    INDEX_FILE,
    MEMBERS,
    SAMPLE_FIELDS,
    original_key,
    read_card,
)
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
    listed = {entry["file"] for entry in card["shards"]}
    report.problems += [f"{p.name}: shard not listed in dataset.json" for p in sorted(shards_dir.glob("*.tar")) if p.name not in listed]
    cameras: dict[str, dict[str, Any]] = {}
    for entry in card["shards"]:
        _check_shard(shards_dir / entry["file"], entry, card, index, cameras, report)
        progress(1)
    _check_mirrors(cameras, report)
    if index is not None and report.samples != len(index.get("key", [])):
        report.problems.append(f"{INDEX_FILE}: {len(index['key'])} rows but the shards hold {report.samples} samples")
    if card.get("counts", {}).get("samples") != report.samples:
        report.problems.append(f"dataset.json: counts.samples is {card.get('counts', {}).get('samples')} but the shards hold {report.samples}")
    return report


def _read_index(shards_dir: Path, report: Report) -> dict[str, list] | None:
    try:
        return pq.read_table(shards_dir / INDEX_FILE).to_pydict()
    except (OSError, ValueError) as error:
        report.problems.append(f"{INDEX_FILE}: unreadable ({error})")
        return None


def _check_shard(path: Path, entry: dict[str, Any], card: dict[str, Any], index: dict[str, list] | None,
                 cameras: dict[str, dict[str, Any]], report: Report) -> None:
    report.shards += 1
    if not path.is_file():
        report.problems.append(f"{path.name}: listed in dataset.json but missing")
        return
    if sha256(path) != entry.get("sha256"):
        report.problems.append(f"{path.name}: sha256 differs from dataset.json (the file changed or is truncated)")
    keys: list[str] = []
    seen: set[str] = set()
    try:
        for key, members in iter_samples(path):  # streamed: memory does not grow with the shard
            where = f"{path.name}:{key}"
            if key in cameras or key in seen:
                report.problems.append(f"{where}: key also in {cameras[key]['shard'] if key in cameras else path.name}")
            keys.append(key)
            seen.add(key)
            report.samples += 1
            meta = _check_sample(where, members, card["resolution"], report)
            if meta is not None:
                cameras[key] = {"shard": path.name, "c2w": meta["c2w"], "yaw": meta["yaw"], "pitch": meta["pitch"],
                                "mirrored": meta["mirrored"]}
    except (tarfile.TarError, OSError, EOFError) as error:
        report.problems.append(f"{path.name}: not a readable tar ({error})")
        return
    if len(keys) != entry.get("samples"):
        report.problems.append(f"{path.name}: {len(keys)} samples, dataset.json says {entry.get('samples')}")
    if index is not None:
        rows = sorted((p, k) for s, p, k in zip(index["shard"], index["position"], index["key"]) if s == path.name)
        if [k for _, k in rows] != keys:
            report.problems.append(f"{path.name}: {INDEX_FILE} rows do not match the shard's samples and their order")


def _check_sample(where: str, members: dict[str, bytes], resolution: int, report: Report) -> dict[str, Any] | None:
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
        meta = json.loads(members.get("json", b""))
    except (json.JSONDecodeError, UnicodeDecodeError):
        report.problems.append(f"{where}: json member missing or not valid JSON")
        return None
    missing = [f for f in SAMPLE_FIELDS if f not in meta]
    if missing:
        report.problems.append(f"{where}: json lacks {', '.join(missing)}")
        return None
    if members.get("cls", b"").decode(errors="replace").strip() != str(meta["class"]):
        report.problems.append(f"{where}: cls member differs from the json's class {meta['class']}")
    return meta


def _check_mirrors(cameras: dict[str, dict[str, Any]], report: Report) -> None:
    for key, camera in cameras.items():
        if camera["mirrored"] != (key != original_key(key)):
            report.problems.append(f"{camera['shard']}:{key}: json says mirrored={camera['mirrored']}, the key says otherwise")
        if not camera["mirrored"]:
            continue
        original = cameras.get(original_key(key))
        if original is None:
            report.problems.append(f"{camera['shard']}:{key}: mirrored sample without its original {original_key(key)}")
            continue
        expected_yaw, expected_pitch = mirror_angles(original["yaw"], original["pitch"])
        if not np.allclose(camera["c2w"], mirror_c2w(original["c2w"]), atol=TOLERANCE) or \
                not np.isclose(camera["yaw"], expected_yaw, atol=TOLERANCE) or camera["pitch"] != expected_pitch:
            report.problems.append(f"{camera['shard']}:{key}: camera is not S·c2w·F (and −yaw) of {original_key(key)}")
