"""``pgrf train``: the patch-wise GAN training loop over the shards (docs/training.md).

One step, as the reference (universome/epigraf): G renders r×r patches (s, δx, δy) of fake views from
fresh z, cameras and patches and minimises the non-saturating loss of D's view of them; then the updated G
renders new fakes (new z, cameras, patches; no gradient) and D minimises the logistic loss on them and on
real patches cut at their own, independently drawn (s, δ), plus lazy R1 every ``r1_interval`` steps. Both
sides are blurred (σ fading over ``blur_kimg``) and ADA-augmented. Then G_ema is updated and ADA's p
adjusted. ``reuse_fakes`` lets D judge the G step's fakes instead (one rendering fewer per step) and
``shared_patches`` cuts the reals at the fakes' patches. Everything that changes with training time is a
function of images seen, and the data stream, RNGs, optimisers and ADA state are all in the checkpoint, so
a resumed run continues exactly where it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from pgrf import __version__, runtime
from pgrf.data.loader import Batch, train_loader
from pgrf.data.source import ShardSource
from pgrf.errors import PgrfError
from pgrf.evaluate.report import snapshot_fid, snapshot_grid
from pgrf.formats.card import CARD_FILE, DatasetCard, DatasetInfo, background_level
from pgrf.formats.checkpoint import CheckpointMeta, Counters
from pgrf.formats.stats_log import StatsLine, append_stats
from pgrf.model.checkpoint import LATEST, Checkpoint, load_checkpoint
from pgrf.model.discriminator import Discriminator
from pgrf.model.draws import Draws, step_seed
from pgrf.model.generator import Generator, density_noise_at
from pgrf.model.patches import PatchSampler, beta_at, extract_patches
from pgrf.model.poses import draw_poses
from pgrf.model.presets import ModelConfig, preset
from pgrf.progress import QUIET, Reporter
from pgrf.train.augment import AdaptiveP, AugmentPipe
from pgrf.train.checkpoint import save_checkpoint
from pgrf.train.cost import forward_gflops, parameter_count
from pgrf.train.losses import (
    adam,
    blur,
    blur_sigma_at,
    discriminator_loss,
    ema_beta,
    generator_loss,
    r1_penalty,
    update_ema,
)
from pgrf.train.memory import StepMemory, count_step, pick_batch_gpu, weight_bytes
from pgrf.train.options import TrainOptions
from pgrf.train.precision import allows_tf32, d_autocast, d_half

ADA_INTERVAL_STEPS = 4
"""ADA's p is adjusted every this many steps (as StyleGAN2-ADA), from the real images of all ranks."""


@dataclass
class Run:
    """The live objects of a run."""

    options: TrainOptions
    context: runtime.Context
    config: ModelConfig
    source: ShardSource
    folder: Path
    G: Generator
    D: Discriminator
    G_ema: Generator
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    ada: AdaptiveP
    augment: AugmentPipe
    sampler: PatchSampler
    progress: Counters = field(default_factory=Counters)

    @property
    def kimg(self) -> float:
        return self.progress.images / 1000

    @property
    def card(self) -> DatasetCard:
        """The dataset card of the shards (``train_source`` opens pack folders only)."""
        return self.source.pack_card()

    @property
    def info(self) -> DatasetInfo:
        """The dataset facts G keeps (checkpoints, config.json, evaluation)."""
        return self.card.info(self.card.class_names if self.config.c_dim else [], str(Path(self.options.shards).resolve()))


def train_source(options: TrainOptions) -> ShardSource:
    """``--shards`` opened: a pack folder, its card checked against the shard files it lists."""
    folder = Path(options.shards)
    if not folder.is_dir():
        raise PgrfError(f"--shards {folder}: not a pgrf pack folder; pgrf train needs its {CARD_FILE}")
    return ShardSource.open(folder)


def build(options: TrainOptions, context: runtime.Context, checkpoint: Checkpoint | None = None,
          source: ShardSource | None = None) -> Run:
    """Models, optimisers and state of a fresh run (or, given its ``checkpoint``, of one about to be resumed) on
    ``source`` (default: ``train_source(options)``)."""
    source = source if source is not None else train_source(options)
    card = source.pack_card()
    c_dim = len(card.class_names) if options.conditional and len(card.class_names) > 1 else 0
    if checkpoint is not None:
        config = checkpoint.model_config
    else:
        config = preset(options.preset).with_dataset(card.resolution, c_dim)
        overrides = {"hyper": options.hyper, "camera_cond": options.camera_cond, "patch_schedule": options.schedule,
                     "patch_resolution": options.patch_res}
        config = config.override(**{name: value for name, value in overrides.items() if value is not None})
    check_batch(options, context.world, config.mbstd_group)
    torch.manual_seed(options.seed)  # the same initial networks on every rank (broadcast from rank 0 all the same)
    background = background_level(card.background)  # G composites over the reals' background
    G = Generator(config, background).to(context.device).train()
    D = Discriminator(config).to(context.device).train()
    G_ema = Generator(config, background).to(context.device).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    for module in (G, D, G_ema):
        runtime.broadcast_module(module, context)
    torch.manual_seed(options.seed * context.world + context.rank)  # then each rank its own numbers (the reference's)
    # R1 is added to the ordinary D step every r1_interval steps (its weight × r1_interval), not taken as an extra
    # optimiser step as in StyleGAN2, so D makes one Adam step per iteration and needs no lr/beta compensation.
    betas = (0.0, 0.99)
    return Run(
        options=options, context=context, config=config, source=source, folder=run_folder(options, card),
        G=G, D=D, G_ema=G_ema,
        opt_G=adam(G.parameters(), options.lr, betas, context.device),
        opt_D=adam(D.parameters(), options.lr, betas, context.device),
        ada=AdaptiveP(options.ada_target, interval=ADA_INTERVAL_STEPS * options.batch, speed_kimg=options.ada_kimg),
        augment=AugmentPipe(),
        sampler=PatchSampler(config.resolution, config.patch_resolution, config.patch_schedule, config.anneal_kimg,
                             config.beta_start, config.beta_end),
    )


def check_batch(options: TrainOptions, world: int, group: int) -> None:
    """One line unless ``--batch`` splits into equal per-process batches, and those into ``--batch-gpu`` rounds, each
    a multiple of the minibatch-stddev ``group`` (or smaller than it)."""
    per_rank = options.batch // world
    if options.batch % world or (per_rank > group and per_rank % group):
        raise PgrfError(f"--batch {options.batch} must split into equal per-process batches ({world} processes) "
                        f"that are multiples of the minibatch-stddev group ({group}); try {group * world * 2}")
    size = options.batch_gpu
    if size is not None and (per_rank % size or (size < per_rank and size % group)):
        raise PgrfError(f"--batch-gpu {size} must divide the per-process batch ({per_rank}) into rounds that are "
                        f"multiples of the minibatch-stddev group ({group}); try {min(group, per_rank)}")


def run_folder(options: TrainOptions, card: DatasetCard) -> Path:
    """``out/name``; the name defaults to ``<dataset name>-<preset>``."""
    return Path(options.out) / (options.name or f"{card.name}-{options.preset}")


def _prepare(options: TrainOptions, context: runtime.Context) -> tuple[Run, bool]:
    """The run about to train: fresh, or restored from ``--resume`` (then the second value is True)."""
    source = train_source(options)
    checkpoint = None
    if options.resume is not None:  # a checkpoint's path, or latest: this run's last
        latest = run_folder(options, source.pack_card()) / "checkpoints" / LATEST
        checkpoint = load_checkpoint(latest if options.resume == "latest" else Path(options.resume), context.device)
        options = resumed_options(options, checkpoint.meta.options)
    run = build(options, context, checkpoint, source)
    if checkpoint is not None:
        restore(run, checkpoint)
    return run, checkpoint is not None


def train(options: TrainOptions, reporter: Reporter = QUIET) -> Path:
    """Train until ``options.kimg``; returns the run folder. Rank 0 reports the task of the images to train and a
    status of each tick's speed and losses."""
    context = runtime.setup(options.device)
    runtime.allow_tf32(allows_tf32(options.precision))
    try:
        run, resumed = _prepare(options, context)
        reporter = reporter if context.main else QUIET
        fit_batch_gpu(run, reporter=reporter)
        if not resumed and context.main:
            _start_folder(run, resolved_config(run))
        if options.fid_kimg and not options.inception:
            reporter.note("FID skipped: no Inception weights (give --inception FILE or set PGRF_INCEPTION)")
        _loop(run, reporter)
        return run.folder
    finally:
        runtime.teardown()


RUN_SETTINGS = ("kimg", "batch_gpu", "workers", "device", "tick_kimg", "snapshot_kimg", "sample_kimg", "fid_kimg", "fid_num",
                "inception", "out", "name", "resume", "shards")
"""Options a resumed run takes from the command line; every other one (what the training computes) from the checkpoint."""


BEFORE_OPTION = {"reuse_fakes": True, "shared_patches": True}
"""What runs whose checkpoints predate an option did (they resume doing it)."""
REMOVED_OPTIONS = {"antialias_patches": False}
"""Options that no longer exist, with the value a checkpoint must hold to be resumed."""
PRECISION_OF_TF32 = {True: "tf32", False: "bf16"}
"""The ``precision`` of a run from before it, by its removed ``tf32`` option (absent: False): its D ran under bf16
autocast on CUDA, so ``--no-tf32`` runs resume as 'bf16'; ``--tf32`` runs resume as 'tf32'."""


def resumed_options(options: TrainOptions, saved_options: dict[str, Any]) -> TrainOptions:
    """The checkpoint's training options (``CheckpointMeta.options``) with this invocation's run settings
    (``RUN_SETTINGS``)."""
    saved = {**BEFORE_OPTION, **{k: v for k, v in saved_options.items() if k not in RUN_SETTINGS}}
    tf32 = saved.pop("tf32", False)
    saved.setdefault("precision", PRECISION_OF_TF32[bool(tf32)])
    for name, value in REMOVED_OPTIONS.items():
        if saved.pop(name, value) != value:
            raise PgrfError(f"the checkpoint was trained with --{name.replace('_', '-')}, which pgrf no longer has; "
                            "resume it with the pgrf version that wrote it")
    return replace(options, **saved)


def dry_run(options: TrainOptions) -> tuple[Path, dict[str, Any], bool]:
    """Everything ``train`` does before its first step, then stop: (run folder, the resolved config, whether
    it was written). A fresh run's ``config.json`` is written as by ``train``, with ``parameters`` (G, D)
    and ``gflops_per_sample`` (one sample's forward pass of each, ``pgrf.train.cost``) added; a resumed
    run's is left alone, as ``train`` leaves it."""
    context = runtime.setup(options.device)
    runtime.allow_tf32(allows_tf32(options.precision))
    try:
        run, resumed = _prepare(options, context)
        memory = step_memory(run)
        fit_batch_gpu(run, memory)  # on CUDA the printed figures are then those of the round it takes
        per_rank = run.options.batch // context.world
        chosen = run.options.batch_gpu or per_rank
        config = {**resolved_config(run),
                  "parameters": {"G": parameter_count(run.G), "D": parameter_count(run.D)},
                  "gflops_per_sample": forward_gflops(run.G, run.D, run.card.camera),
                  "memory_mib": {"per_sample": {"G_step": _mib(memory.g_phase), "D_step": _mib(memory.d_phase)},
                                 "weights": _mib(memory.weights), "batch_gpu": chosen,
                                 "per_gpu": _mib(memory.per_gpu(chosen))}}
        written = not resumed and context.main
        if written:
            _start_folder(run, config)
        return run.folder, config, written
    finally:
        runtime.teardown()


def step_memory(run: Run) -> StepMemory:
    """A step's memory (``pgrf.train.memory``), counted by running one on the ``meta`` device: one round of a
    minibatch-stddev group of samples with R1 and the run's augmentation, networks built on ``meta`` from its config."""
    meta = runtime.Context(device=torch.device("meta"))
    samples = run.config.mbstd_group
    with torch.device("meta"):
        G, D = Generator(run.config, run.G.background).train(), Discriminator(run.config).train()
        G_ema = Generator(run.config, run.G.background).eval().requires_grad_(False)
    probe = replace(run, context=meta, G=G, D=D, G_ema=G_ema, opt_G=adam(G.parameters(), 0.0, (0.0, 0.99), meta.device),
                    opt_D=adam(D.parameters(), 0.0, (0.0, 0.99), meta.device), ada=AdaptiveP(interval=1 << 30),
                    options=replace(run.options, batch=samples, batch_gpu=None, r1_interval=1), progress=Counters())
    g_phase, d_phase = count_step(lambda: step(probe, empty_batch(samples, run.config.resolution, meta.device),
                                               read=lambda values: [0.0] * values.numel()), samples)
    return StepMemory(g_phase, d_phase, weight_bytes(run.G, run.D))


def fit_batch_gpu(run: Run, memory: StepMemory | None = None, reporter: Reporter = QUIET) -> None:
    """On CUDA without ``--batch-gpu``, the largest round that fits the card's free memory (``pick_batch_gpu``, with
    ``memory``, counted here when not given) becomes the run's, in a note to ``reporter``; elsewhere nothing."""
    device, per_rank = run.context.device, run.options.batch // run.context.world
    if device.type == "cuda" and run.options.batch_gpu is None:
        memory = memory if memory is not None else step_memory(run)
        free = torch.cuda.mem_get_info(device)[0]
        size = pick_batch_gpu(per_rank, run.config.mbstd_group, memory, free)
        run.options = replace(run.options, batch_gpu=size if size < per_rank else None)
        reporter.note(f"--batch-gpu {size}: about {_mib(memory.per_gpu(size)):,} MiB a GPU of {_mib(free):,} MiB free "
                      f"({_mib(memory.per_sample):,} MiB of activations a sample)")


def empty_batch(n: int, resolution: int, device: torch.device) -> Batch:
    """A batch of the loader's shapes and dtypes with unset values (for ``meta`` runs)."""
    def empty(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=device)

    return {"image": empty(n, 3, resolution, resolution, dtype=torch.uint8), "label": empty(n, dtype=torch.long),
            "c2w": empty(n, 4, 4), "intrinsics": empty(n, 3, 3), "yaw": empty(n), "pitch": empty(n)}


def _mib(size: float) -> int:
    return round(size / 2**20)


def resolved_config(run: Run) -> dict[str, Any]:
    """``config.json``: the resolved options, model sizes, dataset facts, world size and pgrf version."""
    return run_meta(run).run_config()


def _start_folder(run: Run, resolved: dict[str, Any]) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    if (run.folder / "checkpoints" / LATEST).exists():
        raise PgrfError(f"{run.folder} already holds a run; resume it with --resume latest or choose another --name")
    (run.folder / "config.json").write_text(json.dumps(resolved, indent=2), encoding="utf-8")


def _loop(run: Run, reporter: Reporter) -> None:
    options, context = run.options, run.context
    batches = batches_of(run)
    total = int(options.kimg * 1000)
    tick = _Tick(time.perf_counter(), run.progress.images)
    with reporter.task(f"train to {options.kimg:g} kimg", total=total, unit="img", status="",
                       done=run.progress.images) as advance:
        while run.progress.images < total:
            before = run.progress.images
            losses = step(run, next(batches))
            tick.add(losses)
            done = run.progress.images
            advance(done - before)
            if done - run.progress.last_tick >= options.tick_kimg * 1000 or done >= total:
                stats = tick.close(run, done)
                run.progress.last_tick = done
                if context.main:
                    append_stats(run.folder, stats)
                advance.status(f"{stats.images_per_s:.1f} img/s  G {stats.loss_G:.3f}  D {stats.loss_D:.3f}  "
                               f"p {stats.ada_p:.3f}")
            _periodic(run, done >= total)


@dataclass
class _Tick:
    """Losses and timing since the last stats line."""

    start: float
    images: int
    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0

    def add(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.steps += 1

    def close(self, run: Run, images: int) -> StatsLine:
        seconds = time.perf_counter() - self.start
        done, kimg, config, device = images - self.images, images / 1000, run.config, run.context.device
        stats = StatsLine(kimg=kimg, step=run.progress.step, **{k: v / max(self.steps, 1) for k, v in self.sums.items()},
                          ada_p=run.ada.p, beta=beta_at(kimg, config.anneal_kimg, config.beta_start, config.beta_end),
                          blur_sigma=blur_sigma_at(kimg, run.options.blur_sigma, run.options.blur_kimg),
                          images_per_s=done / seconds if seconds else 0.0, s_per_kimg=seconds / done * 1000 if done else 0.0,
                          peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          peak_gpu_mib=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None)
        self.start, self.images, self.sums, self.steps = time.perf_counter(), images, {}, 0
        return stats


def _reals(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """The batch on ``device``, images in [-1, 1]; copied without waiting (the loader pins its batches on CUDA)."""
    def moved(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device, non_blocking=True)

    return {"image": moved(batch["image"]).float() / 127.5 - 1.0, "label": moved(batch["label"]),
            "c2w": moved(batch["c2w"]), "intrinsics": moved(batch["intrinsics"]),
            "angles": moved(torch.stack([batch["yaw"], batch["pitch"]], dim=1))}


@dataclass(frozen=True)
class FakeInputs:
    """What G is given for one step's fakes, drawn for the whole per-process batch: z, cameras and patches."""

    z: torch.Tensor
    c2w: torch.Tensor
    intrinsics: torch.Tensor
    angles: torch.Tensor
    patch: torch.Tensor

    def rows(self, rows: slice) -> FakeInputs:
        return FakeInputs(self.z[rows], self.c2w[rows], self.intrinsics[rows], self.angles[rows], self.patch[rows])


@dataclass(frozen=True)
class Fakes:
    """Fake patches and what D is told about them: their patch parameters and (camera-conditioned D) angles."""

    images: torch.Tensor
    patch: torch.Tensor
    angles: torch.Tensor | None


class StepDraws:
    """The named random streams (``pgrf.model.draws``) of one rank's step: each a function of the run's seed, the
    rank and the step only, so a resumed run, and any ``--batch-gpu``, draws the same numbers."""

    def __init__(self, run: Run, batch: int) -> None:
        self.seed, self.rank, self.step, self.batch = run.options.seed, run.context.rank, run.progress.step, batch
        self.device = run.context.device

    def __call__(self, stream: str, rows: slice | None = None) -> Draws:
        whole = Draws(step_seed(self.seed, self.rank, self.step, stream), self.batch, self.device)
        return whole if rows is None else whole.rows(rows.start, rows.stop)


def fake_inputs(run: Run, reals: dict[str, torch.Tensor], kimg: float, draws: Draws) -> FakeInputs:
    """z, cameras (``fake_poses``) and patch parameters of a step's fakes, drawn on the device in a fixed order:
    cameras, patches, z."""
    options, config, device = run.options, run.config, run.context.device
    if options.fake_poses == "data":
        c2w, intrinsics, angles = reals["c2w"], reals["intrinsics"], reals["angles"]
    else:
        c2w, intrinsics, angles = draw_poses(draws, run.card.camera.radius, run.card.camera.fov)
    patch = run.sampler.sample(draws.count, kimg, group_size=config.mbstd_group, generator=draws, device=device)
    return FakeInputs(draws.randn(config.z_dim), c2w, intrinsics, angles, patch)


def render_fakes(run: Run, inputs: FakeInputs, c: torch.Tensor | None, kimg: float, draws: Draws) -> Fakes:
    """G's patches of ``inputs`` (one round's rows) for classes ``c``, with G's random numbers from ``draws``; G's
    tracked average w is left alone (``track_w_avg`` does it once per step)."""
    with _w_avg_kept(run.G):
        images = run.G(inputs.z, c, inputs.c2w, inputs.intrinsics, inputs.patch,
                       density_noise_std=density_noise_at(kimg, run.config), draws=draws)
    return Fakes(images, inputs.patch, inputs.angles if run.config.camera_cond else None)


@contextlib.contextmanager
def _w_avg_kept(generator: Generator) -> Iterator[None]:
    """G's tracked average w is not updated inside."""
    generator.mapping.eval()
    try:
        yield
    finally:
        generator.mapping.train(generator.training)


@torch.no_grad()
def track_w_avg(run: Run, inputs: FakeInputs, c: torch.Tensor | None) -> None:
    """Move G's tracked average w toward the mean w of the step's whole batch (one update a step, whatever the
    rounds: the mean of equal rounds' means is the batch's)."""
    run.G.mapping(inputs.z, c, update_w_avg=True)


def rounds(batch: int, batch_gpu: int | None) -> list[slice]:
    """The rows of each round of gradient accumulation over a per-process ``batch``."""
    size = batch_gpu or batch
    return [slice(start, start + size) for start in range(0, batch, size)]


def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """One-hot float rows (``F.one_hot`` checks the labels' range on the host: a device sync)."""
    return (labels[:, None] == torch.arange(classes, device=labels.device)).float()


def read_back(values: torch.Tensor) -> list[float]:
    """The step's one device-to-host transfer: its losses and gradient norms."""
    return values.tolist()


def step(run: Run, batch: Batch, read: Callable[[torch.Tensor], list[float]] = read_back) -> dict[str, float]:
    """One G step and one D step (with R1 every ``r1_interval`` steps), each accumulated over rounds of
    ``--batch-gpu`` samples; returns the losses. ``read`` brings the step's numbers to the host (its only sync)."""
    options, config, device = run.options, run.config, run.context.device
    reals = _reals(batch, device)
    n = reals["image"].shape[0]
    kimg, draws = run.kimg, StepDraws(run, n)
    c = _one_hot(reals["label"], config.c_dim) if config.c_dim else None
    sigma = blur_sigma_at(kimg, options.blur_sigma, options.blur_kimg)
    parts = rounds(n, options.batch_gpu)

    def rows_of(tensor: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
        return tensor[rows] if tensor is not None else None

    # G: non-saturating loss on D's view of the fake patches
    run.D.requires_grad_(False)
    inputs = fake_inputs(run, reals, kimg, draws("G inputs"))
    run.opt_G.zero_grad(set_to_none=True)
    loss_G, kept = torch.zeros((), device=device), []
    for rows in parts:
        fake = render_fakes(run, inputs.rows(rows), rows_of(c, rows), kimg, draws("G render", rows))
        logits = _judge(run, fake.images, fake.patch, rows_of(c, rows), fake.angles, sigma, draws("G judge", rows))
        loss = generator_loss(logits) * ((rows.stop - rows.start) / n)
        loss.backward()
        loss_G += loss.detach()
        if options.reuse_fakes:
            kept.append(Fakes(fake.images.detach(), fake.patch, fake.angles))
    track_w_avg(run, inputs, c)
    runtime.average_gradients(run.G, run.context)
    runtime.average_buffers(run.G, run.context)
    grad_G = _grad_norm(run.G, device)
    run.opt_G.step()

    # D: logistic loss on fakes of the updated G and on real patches, plus lazy R1 on the (un-augmented) reals
    run.D.requires_grad_(True)
    fresh = None if options.reuse_fakes else fake_inputs(run, reals, kimg, draws("D inputs"))
    if options.shared_patches:
        real_patch = inputs.patch if fresh is None else fresh.patch
    else:
        real_patch = run.sampler.sample(n, kimg, group_size=config.mbstd_group, generator=draws("real patches"), device=device)
    regularise = options.gamma > 0 and run.progress.step % options.r1_interval == 0
    run.opt_D.zero_grad(set_to_none=True)
    loss_D, r1 = torch.zeros((), device=device), torch.zeros((), device=device)
    for index, rows in enumerate(parts):
        if fresh is None:
            fake = kept[index]
        else:
            with torch.no_grad():
                fake = render_fakes(run, fresh.rows(rows), rows_of(c, rows), kimg, draws("D render", rows))
        real_patches = extract_patches(reals["image"][rows], real_patch[rows], config.patch_resolution)
        real_patches = real_patches.detach().requires_grad_(regularise)
        real_logits = _judge(run, real_patches, real_patch[rows], rows_of(c, rows),
                             reals["angles"][rows] if config.camera_cond else None, sigma, draws("D real", rows))
        fake_logits = _judge(run, fake.images, fake.patch, rows_of(c, rows), fake.angles, sigma, draws("D fake", rows))
        share = (rows.stop - rows.start) / n
        loss = discriminator_loss(real_logits, fake_logits) * share
        penalty = r1_penalty(real_logits, real_patches).sum() / n if regularise else torch.zeros((), device=device)
        (loss + penalty * (options.gamma / 2) * options.r1_interval).backward()
        loss_D, r1 = loss_D + loss.detach(), r1 + penalty.detach()
        if options.augment:
            run.ada.observe(real_logits)
    runtime.average_gradients(run.D, run.context)
    grad_D = _grad_norm(run.D, device)
    run.opt_D.step()

    run.progress.images += options.batch
    run.progress.step += 1
    update_ema(run.G_ema, run.G, ema_beta(options.batch, run.progress.images, options.ema_half_life_kimg, options.ema_rampup))
    if options.augment and run.progress.step % ADA_INTERVAL_STEPS == 0:
        run.ada.update(lambda t: runtime.all_sum(t, run.context))
    values = read(torch.stack([loss_G, loss_D, r1, grad_G, grad_D]))
    names = ("loss_G", "loss_D", "r1", "grad_norm_G", "grad_norm_D")
    bad = [name for name, value in zip(names, values) if not math.isfinite(value)]
    if bad:
        raise PgrfError(f"non-finite {', '.join(bad)} at step {run.progress.step} ({run.kimg:.3f} kimg); training stopped, "
                        f"the last good checkpoint in {run.folder / 'checkpoints'} is intact — resume with lower --lr or higher --gamma")
    return {name: value for name, value in zip(names, values) if name != "r1" or regularise}


def _judge(run: Run, images: torch.Tensor, patch: torch.Tensor, c: torch.Tensor | None, camera: torch.Tensor | None,
           sigma: float, draws: Draws) -> torch.Tensor:
    """D's float32 logits for patches after blur and ADA, in the run's ``precision`` (``pgrf.train.precision``); the
    augmentation and D's dropout draw from ``draws``."""
    images = blur(images, sigma)
    if run.options.augment:
        images = run.augment(images, run.ada.p_tensor, draws)
    precision, device = run.options.precision, run.context.device
    with d_autocast(precision, device):
        return run.D(images, patch, c, camera, draws, half=d_half(precision, device)).float()


def _grad_norm(module: torch.nn.Module, device: torch.device) -> torch.Tensor:
    """The norm of all of ``module``'s gradients, on ``device`` (read back with the step's other numbers)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros((), device=device)
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _periodic(run: Run, final: bool) -> None:
    """Checkpoints, sample grids and FID when their kimg interval has passed (and at the end)."""
    options, progress, images = run.options, run.progress, run.progress.images
    if final or images - progress.last_sample >= options.sample_kimg * 1000:
        progress.last_sample = images
        if run.context.main:
            path = run.folder / "samples" / f"grid-{_kimg_label(images)}.png"
            snapshot_grid(run.G_ema, run.info, path)
    if options.fid_kimg and options.inception and (final or images - progress.last_fid >= options.fid_kimg * 1000):
        progress.last_fid = images
        record = snapshot_fid(run.G_ema, run.info, run.source,  # every rank takes a share of the images
                              options.inception, options.fid_num, run.kimg, run.context.device, options.seed,
                              mirror=options.mirror)
        if run.context.main:
            append_stats(run.folder, record)
    if final or images - progress.last_snapshot >= options.snapshot_kimg * 1000:
        snapshot = images - progress.last_snapshot >= options.snapshot_kimg * 1000
        progress.last_snapshot = images
        meta, state = run_meta(run), checkpoint_state(run)
        if run.context.main:
            save_checkpoint(run.folder / "checkpoints" / LATEST, meta, state)
            if snapshot or final:
                save_checkpoint(run.folder / "checkpoints" / f"snapshot-{_kimg_label(images)}.pt", meta, state)


def _kimg_label(images: int) -> str:
    return f"{images / 1000:010.3f}kimg"


def run_meta(run: Run) -> CheckpointMeta:
    """What a checkpoint (and, but the counters, ``config.json``) says of the run."""
    return CheckpointMeta(options=asdict(run.options), model=asdict(run.config), dataset=run.info,
                          world_size=run.context.world, pgrf_version=__version__, progress=replace(run.progress))


def checkpoint_state(run: Run) -> dict[str, Any]:
    """The state a resume needs besides ``run_meta``: networks, optimisers, ADA, the RNG states of every rank."""
    rng = {"torch": torch.get_rng_state(),
           "cuda": torch.cuda.get_rng_state(run.context.device) if run.context.device.type == "cuda" else None}
    return {"G": run.G.state_dict(), "G_ema": run.G_ema.state_dict(), "D": run.D.state_dict(),
            "opt_G": run.opt_G.state_dict(), "opt_D": run.opt_D.state_dict(), "augment": run.ada.state_dict(),
            "rng": runtime.gather_objects(rng, run.context)}


def restore(run: Run, checkpoint: Checkpoint) -> None:
    """Put a run back in the state of a checkpoint."""
    meta, state = checkpoint.meta, checkpoint.state
    if meta.world_size != run.context.world:
        raise PgrfError(f"{checkpoint.path}: written by {meta.world_size} processes; resume it with the same number")
    for name in ("G", "G_ema", "D", "opt_G", "opt_D"):
        getattr(run, name).load_state_dict(state[name])
    run.ada.load_state_dict(state["augment"])
    run.progress = replace(meta.progress)
    rng = state["rng"][run.context.rank]
    torch.set_rng_state(rng["torch"].cpu())  # a step's own numbers come from its seed (StepDraws), not from state
    if rng["cuda"] is not None and run.context.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"].cpu(), run.context.device)
    run.options = replace(run.options, resume=None)


def batches_of(run: Run) -> Iterator[Batch]:
    """This rank's training stream from the run's current step (epochs of about one pass over the data)."""
    per_rank = run.options.batch // run.context.world
    epoch = max(1, math.ceil(run.card.counts.samples / run.options.batch))
    return train_loader(run.source, per_rank, epoch, context=run.context,
                        workers=run.options.workers, seed=run.options.seed, shuffle_buffer=run.options.shuffle_buffer,
                        mirror=run.options.mirror, start_batch=run.progress.step)
