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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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
from pgrf.model.generator import Generator, density_noise_at
from pgrf.model.patches import PatchSampler, beta_at, extract_patches
from pgrf.model.poses import sample_poses
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
from pgrf.train.options import TrainOptions

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
    torch_rng: torch.Generator
    numpy_rng: np.random.Generator
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
    per_rank, group = options.batch // context.world, config.mbstd_group
    if options.batch % context.world or (per_rank > group and per_rank % group):
        raise PgrfError(f"--batch {options.batch} must split into equal per-process batches ({context.world} processes) "
                        f"that are multiples of the minibatch-stddev group ({group}); try {group * context.world * 2}")
    torch.manual_seed(options.seed)
    background = background_level(card.background)  # G composites over the reals' background
    G = Generator(config, background).to(context.device).train()
    D = Discriminator(config).to(context.device).train()
    G_ema = Generator(config, background).to(context.device).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    for module in (G, D, G_ema):
        runtime.broadcast_module(module, context)
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
        torch_rng=torch.Generator().manual_seed(options.seed * 1000 + context.rank),
        numpy_rng=np.random.default_rng([options.seed, context.rank]),
    )


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
    runtime.allow_tf32(options.tf32)
    try:
        run, resumed = _prepare(options, context)
        if not resumed and context.main:
            _start_folder(run, resolved_config(run))
        reporter = reporter if context.main else QUIET
        if options.fid_kimg and not options.inception:
            reporter.note("FID skipped: no Inception weights (give --inception FILE or set PGRF_INCEPTION)")
        _loop(run, reporter)
        return run.folder
    finally:
        runtime.teardown()


RUN_SETTINGS = ("kimg", "workers", "device", "tick_kimg", "snapshot_kimg", "sample_kimg", "fid_kimg", "fid_num",
                "inception", "out", "name", "resume", "shards")
"""Options a resumed run takes from the command line; every other one (what the training computes) from the checkpoint."""


BEFORE_OPTION = {"reuse_fakes": True, "shared_patches": True}
"""What runs whose checkpoints predate an option did (they resume doing it)."""
REMOVED_OPTIONS = {"antialias_patches": False}
"""Options that no longer exist, with the value a checkpoint must hold to be resumed."""


def resumed_options(options: TrainOptions, saved_options: dict[str, Any]) -> TrainOptions:
    """The checkpoint's training options (``CheckpointMeta.options``) with this invocation's run settings
    (``RUN_SETTINGS``)."""
    saved = {**BEFORE_OPTION, **{k: v for k, v in saved_options.items() if k not in RUN_SETTINGS}}
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
    runtime.allow_tf32(options.tf32)
    try:
        run, resumed = _prepare(options, context)
        config = {**resolved_config(run),
                  "parameters": {"G": parameter_count(run.G), "D": parameter_count(run.D)},
                  "gflops_per_sample": forward_gflops(run.G, run.D, run.card.camera)}
        written = not resumed and context.main
        if written:
            _start_folder(run, config)
        return run.folder, config, written
    finally:
        runtime.teardown()


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
    return {"image": batch["image"].to(device).float() / 127.5 - 1.0, "label": batch["label"].to(device),
            "c2w": batch["c2w"].to(device), "intrinsics": batch["intrinsics"].to(device),
            "angles": torch.stack([batch["yaw"], batch["pitch"]], dim=1).to(device)}


@dataclass(frozen=True)
class Fakes:
    """Fake patches and what D is told about them: their patch parameters and (camera-conditioned D) angles."""

    images: torch.Tensor
    patch: torch.Tensor
    angles: torch.Tensor | None


def render_fakes(run: Run, reals: dict[str, torch.Tensor], c: torch.Tensor | None, kimg: float) -> Fakes:
    """G's patches for new z, cameras (``fake_poses``) and patch parameters; classes are the reals' (the data's
    frequencies). Drawn from the run's RNGs in a fixed order: cameras, patches, z."""
    options, config, device = run.options, run.config, run.context.device
    n = reals["image"].shape[0]
    if options.fake_poses == "data":
        c2w, intrinsics, angles = reals["c2w"], reals["intrinsics"], reals["angles"]
    else:
        camera = run.card.camera
        c2w, intrinsics, angles = (t.to(device) for t in sample_poses(n, camera.radius, camera.fov, run.numpy_rng))
    patch = run.sampler.sample(n, kimg, group_size=config.mbstd_group, generator=run.torch_rng, device=device)
    z = torch.randn(n, config.z_dim, generator=run.torch_rng).to(device)
    images = run.G(z, c, c2w, intrinsics, patch, density_noise_std=density_noise_at(kimg, config))
    return Fakes(images, patch, angles if config.camera_cond else None)


@contextlib.contextmanager
def _w_avg_kept(generator: Generator) -> Iterator[None]:
    """G's tracked average w is not updated inside (it is tracked once per step, at G's step)."""
    generator.mapping.eval()
    try:
        yield
    finally:
        generator.mapping.train(generator.training)


def step(run: Run, batch: Batch) -> dict[str, float]:
    """One G step and one D step (with R1 every ``r1_interval`` steps); returns the losses."""
    options, config, device = run.options, run.config, run.context.device
    reals = _reals(batch, device)
    n = reals["image"].shape[0]
    kimg = run.kimg
    c = F.one_hot(reals["label"], config.c_dim).float() if config.c_dim else None
    sigma = blur_sigma_at(kimg, options.blur_sigma, options.blur_kimg)

    # G: non-saturating loss on D's view of the fake patches
    run.D.requires_grad_(False)
    fake = render_fakes(run, reals, c, kimg)
    loss_G = generator_loss(_judge(run, fake.images, fake.patch, c, fake.angles, sigma))
    run.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    runtime.average_gradients(run.G, run.context)
    runtime.average_buffers(run.G, run.context)
    grad_G = _grad_norm(run.G)
    run.opt_G.step()

    # D: logistic loss on fakes of the updated G and on real patches, plus lazy R1 on the (un-augmented) reals
    run.D.requires_grad_(True)
    if options.reuse_fakes:
        fake = Fakes(fake.images.detach(), fake.patch, fake.angles)
    else:
        with torch.no_grad(), _w_avg_kept(run.G):
            fake = render_fakes(run, reals, c, kimg)
    real_patch = fake.patch if options.shared_patches else run.sampler.sample(
        n, kimg, group_size=config.mbstd_group, generator=run.torch_rng, device=device)
    regularise = options.gamma > 0 and run.progress.step % options.r1_interval == 0
    real_patches = extract_patches(reals["image"], real_patch, config.patch_resolution)
    real_patches = real_patches.detach().requires_grad_(regularise)
    real_logits = _judge(run, real_patches, real_patch, c, reals["angles"] if config.camera_cond else None, sigma)
    fake_logits = _judge(run, fake.images, fake.patch, c, fake.angles, sigma)
    loss_D = discriminator_loss(real_logits, fake_logits)
    r1 = r1_penalty(real_logits, real_patches).mean() if regularise else torch.zeros((), device=device)
    run.opt_D.zero_grad(set_to_none=True)
    (loss_D + r1 * (options.gamma / 2) * options.r1_interval).backward()
    runtime.average_gradients(run.D, run.context)
    grad_D = _grad_norm(run.D)
    run.opt_D.step()

    run.progress.images += options.batch
    run.progress.step += 1
    update_ema(run.G_ema, run.G, ema_beta(options.batch, run.progress.images, options.ema_half_life_kimg, options.ema_rampup))
    if options.augment:
        run.ada.observe(real_logits)
        if run.progress.step % ADA_INTERVAL_STEPS == 0:
            run.ada.update(lambda t: runtime.all_sum(t, run.context))
    values = torch.stack([loss_G.detach(), loss_D.detach(), r1.detach(), grad_G, grad_D]).tolist()
    names = ("loss_G", "loss_D", "r1", "grad_norm_G", "grad_norm_D")
    bad = [name for name, value in zip(names, values) if not math.isfinite(value)]
    if bad:
        raise PgrfError(f"non-finite {', '.join(bad)} at step {run.progress.step} ({run.kimg:.3f} kimg); training stopped, "
                        f"the last good checkpoint in {run.folder / 'checkpoints'} is intact — resume with lower --lr or higher --gamma")
    return {name: value for name, value in zip(names, values) if name != "r1" or regularise}


def _judge(run: Run, images: torch.Tensor, patch: torch.Tensor, c: torch.Tensor | None, camera: torch.Tensor | None,
           sigma: float) -> torch.Tensor:
    """D's logits for patches after blur and ADA (D in bf16 autocast on CUDA, fp32 on CPU)."""
    images = blur(images, sigma)
    if run.options.augment and run.ada.p > 0:
        images = run.augment(images, run.ada.p, generator=run.torch_rng)
    precision = (torch.autocast("cuda", dtype=torch.bfloat16) if run.context.device.type == "cuda"
                 else contextlib.nullcontext())
    with precision:
        return run.D(images, patch, c, camera).float()


def _grad_norm(module: torch.nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).cpu()


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
    rng = {"torch": torch.get_rng_state(), "loop": run.torch_rng.get_state(), "numpy": run.numpy_rng.bit_generator.state,
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
    torch.set_rng_state(rng["torch"].cpu())
    run.torch_rng.set_state(rng["loop"].cpu())
    run.numpy_rng.bit_generator.state = rng["numpy"]
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
