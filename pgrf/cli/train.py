"""``pgrf train``: one flag per ``TrainOptions`` field (``with_options``), its type and default read from the dataclass."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from pgrf.cli.app import app, console, errors, interruptible, note, reporter, with_options
from pgrf.devices import DEVICE_CHOICES
from pgrf.extras import require
from pgrf.train.options import TrainOptions

HELP: dict[str, str] = {
    "shards": "A shard folder written by pgrf pack.",
    "out": "Runs folder; the run is written to OUT/NAME.",
    "name": f"Run name {note('default: <dataset>-<preset>')}.",
    "kimg": "Train until this many thousand images have been seen.",
    "batch": "Images per step over all processes.",
    "batch_gpu": "Samples per process per round of gradient accumulation "
                 "(default: the whole per-process batch; on CUDA what fits the card).",
    "preset": "Model sizes: paper | small | tiny.",
    "patch_res": f"Patch resolution r {note('default: the preset')}.",
    "gamma": "R1 weight γ.",
    "schedule": f"Patch scales: beta | uniform {note('default: the preset')}.",
    "hyper": f"Hypernetwork-modulated D (off: the standard D) {note('default: the preset')}.",
    "camera_cond": f"Condition D on the camera's Fourier-encoded yaw and pitch (the method's FFHQ/Cats setting) "
                   f"{note('default: the preset, off')}.",
    "mirror": "Mirror reals on the fly (for shards packed with --no-mirror).",
    "conditional": "Use class labels when there are several.",
    "reuse_fakes": "D judges G's step's fakes (detached) instead of fresh ones from the updated G (the reference); "
                   "saves a third of the rendering.",
    "shared_patches": "Cut real patches at the fakes' (s, δ) instead of drawing them independently (the reference).",
    "fake_poses": "Cameras of the fakes: sphere (uniform, the dataset's distribution) | data (the reals' cameras).",
    "seed": "Seed of weights, latents, patches and the data stream.",
    "device": f"{DEVICE_CHOICES}.",
    "workers": "Data loader processes per rank.",
    "shuffle_buffer": "Samples in each loader's shuffle buffer.",
    "lr": "Adam learning rate of G and D.",
    "precision": "reference (G fp32, D's 4 highest-resolution blocks fp16 on CUDA, fp32 on the CPU) | fp32 | "
                 "bf16 (D under bf16 autocast on CUDA) | tf32 (fp32 with TF32 allowed).",
    "r1_interval": "Apply R1 every this many steps (lazy regularisation).",
    "ema_kimg": f"Half-life of G_ema in kimg {note('default: batch × 10/32, 20 at batch 64, as the reference')}.",
    "ema_rampup": "G_ema's half-life is at most this × images seen.",
    "blur_sigma": "Blur σ in pixels on real and fake patches at the start.",
    "blur_kimg": "The blur fades to 0 over this many kimg.",
    "augment": "Adaptive discriminator augmentation.",
    "ada_target": "ADA's target r_t of sign(D(reals)).",
    "ada_kimg": "ADA speed: kimg for p to change by 1.",
    "tick_kimg": "A stats.jsonl line every this many kimg.",
    "snapshot_kimg": "Checkpoint every this many kimg.",
    "sample_kimg": "Sample grid every this many kimg.",
    "fid_kimg": "FID every this many kimg (0: off; needs --inception).",
    "fid_num": "Generated images per FID during training (2048: the fid2k protocol).",
    "inception": "FID Inception weights file.",
    "resume": "latest (this run's last checkpoint) or a checkpoint file.",
}
"""The help of each flag; every TrainOptions field has one (a test checks it)."""
DRY_RUN_HELP = ("Print the resolved config, write the run's config.json (plus parameter counts, forward GFLOPs per "
                "sample of G and D, and the memory a GPU needs at the chosen --batch-gpu) and stop before training.")
"""``--dry-run`` is a flag of the command, not a training option (it is not saved with the run)."""

FLAGS: dict[str, tuple[str, ...]] = {
    "augment": ("--ada/--no-ada",),
    "conditional": ("--conditional/--unconditional",),
    "hyper": ("--hyper/--no-hyper",),
    "camera_cond": ("--camera-cond/--no-camera-cond",),
}
"""Flag names that differ from the field's own."""


@app.command()
@with_options(TrainOptions, HELP, flags=FLAGS, extra={"inception": {"envvar": "PGRF_INCEPTION"}})
def train(dry_run: Annotated[bool, typer.Option("--dry-run", help=DRY_RUN_HELP)] = False, **values: Any) -> None:
    """Train the patch-wise tri-plane GAN on shards (one process, or every rank of torchrun)."""
    require("train", "pgrf train")
    from pgrf.train import loop

    options = TrainOptions(**values)
    if dry_run:
        folder, config, written = loop.dry_run(options)
        console.print_json(json.dumps(config))
        where = f"→ {escape(str(folder / 'config.json'))}" if written else "(resumed run: its config.json is kept)"
        errors.print(f"dry run: nothing trained {where}")
        return
    with interruptible("the last checkpoint is kept; run the same command with --resume latest to continue"):
        folder = loop.train(options, reporter)
    console.print(f"run → {escape(str(folder))} (checkpoints/latest.pt, samples/, stats.jsonl)")

