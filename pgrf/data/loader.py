"""Streaming the shards of ``pgrf pack`` into batches for training and evaluation (WebDataset).

Two modes:
- **training** (`train_loader`): every (rank, worker) draws shards at random with replacement, shuffles
  samples in a buffer and yields batches forever; the stream is cut into epochs of exactly
  ``batches_per_epoch`` batches on every rank, so DDP ranks never wait for one another. Seeds depend only
  on (seed, epoch, rank, worker role), so a resumed run replays the same stream: ``start_batch`` skips
  what was already consumed (without decoding it) and rotates the workers' roles so the batches come
  in the same order as in an uninterrupted run (DataLoader always asks worker 0 first). One DataLoader with
  persistent workers serves every epoch: each worker's copy of the stream counts the epochs it began, so
  worker processes start once per run (memory pinned when training on CUDA).
- **exactly once** (`exact_loader`): shards are dealt to the (rank, worker) pairs in turn and read in
  order, so every sample is seen exactly once across all ranks and workers (statistics, FID of reals).
  Ranks may get different numbers of samples; combine their results with a sum or an all-gather.

Corrupt members (a PNG or json that does not decode, a truncated tar, a member whose header declares more
bytes than the shard holds, an image of another size than the card's resolution, or than the first sample's
where there is no card) are skipped with a warning and counted in each batch's ``skipped`` field. In
training mode, where shards are drawn again and again, a stream that meets ``UNREADABLE_LIMIT`` shard failures
(tar errors, shards without a sample) or corrupt samples in a row stops with a ``PgrfError`` naming those
shards, instead of spinning forever on a dataset nothing can be read from. Shards are a ``ShardSource``
(pgrf.data.source), or what it opens: a pack folder, a brace pattern (``shards/plants-{000000..000009}.tar``),
a single tar, or URLs WebDataset opens (``pipe:``, ``http://``).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pgrf.data.source import Shards, ShardSource, as_source
from pgrf.errors import PgrfError
from pgrf.formats.images import BadImage, decode_png
from pgrf.formats.schema import FormatError
from pgrf.formats.shards import SampleMeta
from pgrf.runtime import Context

UNREADABLE_LIMIT = 100
"""Training streams stop after this many shard failures (tar errors, empty shards) or corrupt samples in a row."""

Batch = dict[str, Any]
"""``image`` uint8 (B, 3, H, W); ``label`` int64 (B,); ``c2w`` float32 (B, 4, 4) OpenCV camera-to-world;
``intrinsics`` float32 (B, 3, 3) normalised K; ``yaw``, ``pitch`` float32 (B,); ``mirrored`` bool (B,);
``key`` list of sample keys; ``skipped`` int: corrupt samples dropped since the worker's previous batch."""


class _Stream(IterableDataset):
    """One (rank, worker)'s stream of decoded samples, batched in the worker."""

    def __init__(self, source: ShardSource, batch_size: int, context: Context, seed: int, training: bool, mirror: bool,
                 shuffle_buffer: int, epoch: int = 0, offset: int = 0) -> None:
        super().__init__()
        self.urls, self.batch_size, self.context, self.seed = source.urls, batch_size, context, seed
        self.resolution = source.card.resolution if source.card is not None else None
        self.training, self.mirror, self.shuffle_buffer = training, mirror, shuffle_buffer
        self.epoch, self.offset = epoch, offset

    def __iter__(self) -> Iterator[Batch]:
        """The batches of the next epoch: the first call (in each worker) streams ``epoch`` from ``offset``, every
        later call (a persistent DataLoader's next epoch) the epoch after from its start."""
        epoch, offset = self.epoch, self.offset
        self.epoch, self.offset = epoch + 1, 0
        return self._batches(epoch, offset)

    def _batches(self, epoch: int, offset: int) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        reader = self.context.rank * workers + worker
        readers = self.context.world * workers
        role = (worker + offset) % workers  # the worker that produced this slot in an uninterrupted epoch
        skip = (offset // workers + (role < offset % workers)) * self.batch_size
        seed = _seed(self.seed, epoch, self.context.rank, role)
        counter = _Skipped(UNREADABLE_LIMIT if self.training else None)
        if self.training:
            shards = wds.ResampledShards(self.urls, seed=seed, worker_seed=lambda: 0, deterministic=True)
            stages = [shards, counter.samples, wds.shuffle(self.shuffle_buffer, min(self.shuffle_buffer, 100), rng=random.Random(seed))]
        else:
            stages = [wds.SimpleShardList(self.urls[reader::readers]), counter.samples]
        rng = np.random.default_rng(seed)
        flips = (self.mirror and (not self.training or rng.random() < 0.5) for _ in itertools.count())
        raw = itertools.islice(zip(wds.DataPipeline(*stages), flips), skip, None)  # flips drawn before the skip
        raw = itertools.takewhile(lambda _: not counter.stuck, raw)
        side = _Side(self.resolution)
        decoded = (s for raw_sample, flip in raw for s in _decode(raw_sample, counter, side, flip, both=not self.training))
        while True:
            chunk = list(itertools.islice(decoded, self.batch_size))
            if counter.stuck:
                yield Unreadable(counter.stuck_message())
                return
            if not chunk or (self.training and len(chunk) < self.batch_size):
                return
            yield collate(chunk, counter.take())


@dataclass(frozen=True)
class Unreadable:
    """What a training stream yields instead of a batch when it gave up (``UNREADABLE_LIMIT``)."""

    message: str


class _Skipped:
    """Counts corrupt input (warning once per problem) and, with a ``limit``, how much of it came in a row:
    shard failures (tar errors, shards without a sample) since a shard last gave a sample, and corrupt samples
    since one last decoded. Either reaching the limit makes the stream ``stuck``."""

    def __init__(self, limit: int | None) -> None:
        self.count, self.limit = 0, limit
        self.shard_failures, self.bad_samples, self.last = 0, 0, ""
        self.failing: dict[str, None] = {}  # the shards that failed since the last good sample, in order
        self.current = "?"

    def samples(self, shards: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pipeline stage: the raw samples of each shard (``{"url": …}``); a shard without any is unreadable."""
        for shard in shards:
            self.current = shard["url"]
            found = False
            opened = wds.tariterators.url_opener(iter([shard]), handler=self.tar_error)
            bounded = ({**source, "stream": _EndOfShard(source["stream"])} for source in opened)
            files = wds.tariterators.tar_file_expander(bounded, handler=self.tar_error)
            for sample in wds.tariterators.group_by_keys(files, handler=self.tar_error):
                found, self.shard_failures = True, 0
                yield sample
            if not found:
                self._failed(self.current, "no sample in the shard")
                self.shard_failures += 1
            if self.stuck:
                return

    def tar_error(self, error: Exception) -> bool:
        self.count += 1
        reason = f"{type(error).__name__}: {error.args[0] if error.args else ''}"  # webdataset appends stream and url
        warnings.warn(f"skipping unreadable data in {self.current}: {reason}", stacklevel=2)
        self._failed(self.current, reason)
        self.shard_failures += 1
        return not self.stuck

    def bad_sample(self, key: str, url: str, reason: str) -> None:
        self.count += 1
        warnings.warn(f"skipping corrupt sample {key}: {reason}", stacklevel=2)
        self._failed(url, f"corrupt sample {key}: {reason}")
        self.bad_samples += 1

    def good(self) -> None:
        self.bad_samples = 0
        self.failing.clear()

    def _failed(self, url: str, reason: str) -> None:
        self.failing[url] = None
        self.last = reason

    @property
    def stuck(self) -> bool:
        return self.limit is not None and max(self.shard_failures, self.bad_samples) >= self.limit

    def stuck_message(self) -> str:
        names = list(self.failing)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return (f"{shown}: nothing readable in {max(self.shard_failures, self.bad_samples)} tries in a row "
                f"(last: {self.last}); the shards are truncated or corrupt — check them with pgrf verify and re-run pgrf pack")

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


class _EndOfShard:
    """A shard's stream that raises ``tarfile.ReadError`` when read again after its end. tarfile skips a member by
    reading it, so a header declaring more bytes than the shard holds (base-256 sizes reach 2^60 and beyond) would
    otherwise cost endless empty reads at the end of the stream, 10 kB at a time."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.ended = stream, False

    def read(self, size: int = -1) -> bytes:
        if self.ended:
            raise tarfile.ReadError("a member runs past the end of the shard (its header declares more bytes than the shard holds)")
        data = self.stream.read(size)
        self.ended = size != 0 and not data
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


@dataclass(frozen=True)
class _Decoded:
    """One decoded sample: RGB pixels (H, W, 3) and its json member."""

    image: np.ndarray
    meta: SampleMeta

    def mirrored(self) -> _Decoded:
        """The flipped image with the mirrored camera (as ``pgrf pack --mirror``); mirroring is an involution."""
        return _Decoded(np.ascontiguousarray(self.image[:, ::-1]), self.meta.mirrored_copy())


class _Side:
    """The side every image of a stream must have: the card's resolution, else (no card) the first image's."""

    def __init__(self, resolution: int | None) -> None:
        self.side, self.source = resolution, "the card's resolution"

    def mismatch(self, image: np.ndarray) -> str | None:
        """Why ``image`` has the wrong size, or None."""
        height, width = image.shape[:2]
        if self.side is None:
            self.side, self.source = height, "the stream's first image"
        if (height, width) == (self.side, self.side):
            return None
        return f"image is {width}x{height}, {self.source} is {self.side}x{self.side}"


def _decode(raw: dict[str, Any], counter: _Skipped, side: _Side, flip: bool, both: bool) -> Iterator[_Decoded]:
    """The decoded sample; when ``flip``, its mirrored copy instead (or as well, when ``both``)."""
    key = raw.get("__key__", "?")
    try:
        sample = _Decoded(decode_png(raw["png"], "RGB", key), SampleMeta.parse(raw["json"], key))
    except (KeyError, BadImage, FormatError) as error:
        reason = f"no {error} member" if isinstance(error, KeyError) else str(error) or type(error).__name__
        counter.bad_sample(key, raw.get("__url__", "?"), reason)
        return
    if reason := side.mismatch(sample.image):
        counter.bad_sample(key, raw.get("__url__", "?"), reason)
        return
    counter.good()
    if both or not flip:
        yield sample
    if flip:
        yield sample.mirrored()


def collate(samples: list[_Decoded], skipped: int = 0) -> Batch:
    """Stack decoded samples into a batch of tensors."""
    images = np.stack([s.image for s in samples]).transpose(0, 3, 1, 2)
    metas = [s.meta for s in samples]
    return {"image": torch.from_numpy(np.ascontiguousarray(images)),
            "label": torch.tensor([m.class_index for m in metas], dtype=torch.int64),
            "c2w": torch.from_numpy(np.asarray([m.c2w for m in metas], np.float32)),
            "intrinsics": torch.from_numpy(np.asarray([m.intrinsics for m in metas], np.float32)),
            "yaw": torch.tensor([m.yaw for m in metas], dtype=torch.float32),
            "pitch": torch.tensor([m.pitch for m in metas], dtype=torch.float32),
            "mirrored": torch.tensor([m.mirrored for m in metas]),
            "key": [m.key for m in metas], "skipped": skipped}


def train_loader(shards: Shards, batch_size: int, batches_per_epoch: int, *,
                 context: Context | None = None, workers: int = 0, seed: int = 0, shuffle_buffer: int = 1000,
                 mirror: bool = False, start_batch: int = 0) -> Iterator[Batch]:
    """Endless training batches for this rank: epochs of exactly ``batches_per_epoch`` batches.

    ``mirror`` flips each sample with probability ½ (mirrored camera included), for shards packed with
    ``--no-mirror``. ``start_batch`` resumes the stream after that many batches of this rank.
    """
    source, context = as_source(shards), context or Context.current()
    epoch, offset = divmod(start_batch, batches_per_epoch)
    stream = _Stream(source, batch_size, context, seed, True, mirror, shuffle_buffer, epoch, offset)
    loader = DataLoader(stream, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=context.device.type == "cuda", generator=_own_generator(seed, epoch))
    while True:  # each pass over the loader is one epoch of the workers' streams (_Stream.__iter__)
        for batch in itertools.islice(loader, batches_per_epoch - offset):
            if isinstance(batch, Unreadable):
                raise PgrfError(batch.message)
            yield batch
        offset = 0


def exact_loader(shards: Shards, batch_size: int, *, context: Context | None = None, workers: int = 0,
                 mirror: bool = False) -> Iterator[Batch]:
    """Every sample of the shards exactly once across all ranks and workers (the last batches may be short)."""
    stream = _Stream(as_source(shards), batch_size, context or Context.current(), 0, False, mirror, 0)
    yield from DataLoader(stream, batch_size=None, num_workers=workers, generator=_own_generator(0, 0))


def _own_generator(seed: int, epoch: int) -> torch.Generator:
    """The DataLoader draws its workers' base seed from this, not from (and not advancing) torch's global RNG."""
    return torch.Generator().manual_seed(_seed(seed, epoch) % 2**63)
