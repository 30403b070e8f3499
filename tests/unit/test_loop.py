"""The training loop: losses, schedules, EMA, resume bit-exactness, non-finite stops, DDP, the CLI."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pgrf import runtime
from pgrf.config import load_config
from pgrf.errors import PgrfError
from pgrf.evaluate.samples import render_samples
from pgrf.formats.fid_record import FidRecord
from pgrf.formats.schema import to_json
from pgrf.formats.stats_log import StatsLine, append_stats, read_stats
from pgrf.model.checkpoint import Checkpoint, load_checkpoint, load_generator
from pgrf.model.generator import density_noise_at
from pgrf.model.presets import preset
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.runtime import allow_tf32
from pgrf.train import loop, losses
from pgrf.train.options import TrainOptions
from pgrf.train.precision import allows_tf32, d_autocast, d_half
from tests.helpers import CONFIG, REPO, run_pgrf


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    renders = [fake_renders(root / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=6)]
    pack(renders, root / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=8))
    return root / "shards"


def _options(shards: Path, out: Path, **overrides: object) -> TrainOptions:
    values = {"shards": str(shards), "out": str(out), "name": "run", "preset": "tiny", "kimg": 0.016, "batch": 4,
              "workers": 0, "tick_kimg": 0.008, "snapshot_kimg": 0.008, "sample_kimg": 1.0, "r1_interval": 2,
              "blur_sigma": 2.0, "blur_kimg": 1.0, **overrides}
    return TrainOptions(**values)


def test_losses_match_hand_computation() -> None:
    real, fake = torch.tensor([[0.5], [-1.0]]), torch.tensor([[2.0], [0.0]])
    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    assert losses.generator_loss(fake).item() == pytest.approx((softplus(-2.0) + softplus(0.0)) / 2)
    expected = (softplus(2.0) + softplus(0.0)) / 2 + (softplus(-0.5) + softplus(1.0)) / 2
    assert losses.discriminator_loss(real, fake).item() == pytest.approx(expected)


def test_r1_is_the_squared_gradient_norm() -> None:
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    images = torch.randn(3, 1, 2, 2, requires_grad=True)
    logits = (images[:, 0] * weight).sum(dim=(1, 2)) + (images[:, 0] ** 2).sum(dim=(1, 2))
    expected = (weight + 2 * images[:, 0].detach()).square().sum(dim=(1, 2))
    assert torch.allclose(losses.r1_penalty(logits, images), expected)


def test_lazy_r1_folded_into_the_d_step_leaves_adam_uncompensated(shards: Path, tmp_path: Path) -> None:
    """R1 rides on the ordinary D step (no extra optimiser step), so StyleGAN2's lr × 16/17, β^(16/17) must not apply."""
    run = loop.build(_options(shards, tmp_path, r1_interval=16, gamma=0.05), runtime.setup("cpu"))
    for optimiser in (run.opt_G, run.opt_D):
        group = optimiser.param_groups[0]
        assert group["lr"] == 0.002 and group["betas"] == (0.0, 0.99)


def test_tf32_is_off_unless_asked(shards: Path, tmp_path: Path) -> None:
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's own default for convolutions
    loop.train(_options(shards, tmp_path / "off"))
    assert TrainOptions(shards="x").precision == "reference"
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    loop.train(_options(shards, tmp_path / "on", precision="tf32"))
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    allow_tf32(False)
    with pytest.raises(PgrfError, match="--precision must be one of reference, fp32, bf16, tf32"):
        TrainOptions(shards="x", precision="fp16")


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")  # an autocast for CUDA built without one
def test_precisions_choose_ds_formats_by_device() -> None:
    """'reference': D's highest-resolution blocks in fp16 on CUDA only (fp32 on the CPU, as the reference);
    'bf16': D under bf16 autocast on CUDA only; TF32 only for 'tf32'."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert [d_half(p, cuda) for p in ("reference", "fp32", "bf16", "tf32")] == [torch.float16, None, None, None]
    assert all(d_half(p, cpu) is None for p in ("reference", "fp32", "bf16", "tf32"))
    assert [allows_tf32(p) for p in ("reference", "fp32", "bf16", "tf32")] == [False, False, False, True]
    autocast = d_autocast("bf16", cuda)
    assert isinstance(autocast, torch.autocast) and autocast.fast_dtype == torch.bfloat16
    assert not any(isinstance(d_autocast(p, d), torch.autocast)
                   for p, d in [("bf16", cpu), ("reference", cuda), ("fp32", cuda), ("tf32", cuda)])


def test_ema_update_and_ramp_up() -> None:
    model, ema = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.weight.fill_(3.0)
    losses.update_ema(ema, model, 0.25)
    assert torch.allclose(ema.weight, torch.full_like(ema.weight, 1.0 + 0.25 * 2.0))
    assert losses.ema_beta(64, 10**9, 10.0, 0.05) == pytest.approx(0.5 ** (64 / 10000))  # half-life 10 kimg
    assert losses.ema_beta(64, 1000, 10.0, 0.05) == pytest.approx(0.5 ** (64 / 50))  # ramp-up: 5 % of images seen


def test_schedules_at_given_kimg() -> None:
    assert losses.blur_sigma_at(0, 10, 200) == 10 and losses.blur_sigma_at(100, 10, 200) == 5 and losses.blur_sigma_at(300, 10, 200) == 0
    config = preset("paper")
    assert density_noise_at(0, config) == 1.0 and density_noise_at(2500, config) == 0.5 and density_noise_at(6000, config) == 0
    image = torch.zeros(1, 3, 9, 9)
    image[..., 4, 4] = 1.0
    blurred = losses.blur(image, 1.0)
    assert blurred.sum().item() == pytest.approx(3.0, abs=1e-5) and blurred[0, 0, 4, 4] < 0.4
    assert torch.equal(losses.blur(image, 0.0), image)


def test_blur_kernel_is_the_references() -> None:
    """An impulse comes out as the reference's separable kernel: taps |x| ≤ ⌊3σ⌋ weighted 2^(−(x/σ)²)."""
    sigma = 2.5
    image = torch.zeros(1, 1, 21, 21)
    image[..., 10, 10] = 1.0
    taps = torch.arange(-7, 8, dtype=torch.float32)
    kernel = 2.0 ** -(taps / sigma) ** 2
    kernel = kernel / kernel.sum()
    expected = torch.zeros(21, 21)
    expected[3:18, 3:18] = kernel[:, None] * kernel[None, :]
    assert torch.allclose(losses.blur(image, sigma)[0, 0], expected, atol=1e-7)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_resume_after_a_kill_continues_bit_exactly(shards: Path, tmp_path: Path) -> None:
    straight = loop.train(_options(shards, tmp_path / "straight"))
    loop.train(_options(shards, tmp_path / "resumed", kimg=0.008))
    resumed = loop.train(_options(shards, tmp_path / "resumed", resume="latest"))
    a, b = load_checkpoint(straight / "checkpoints"), load_checkpoint(resumed / "checkpoints")
    assert a.meta.progress.step == b.meta.progress.step == 4
    for name in ("G", "G_ema", "D"):
        for key, value in a.state[name].items():
            assert torch.equal(value, b.state[name][key]), f"{name}.{key} differs after resume"
    assert a.state["augment"] == b.state["augment"]
    lines = read_stats(resumed)
    assert all(isinstance(line, StatsLine) and line.r1 is not None for line in lines)  # R1 every 2 steps: in each tick
    assert [line.step for line in lines] == [2, 4] and all(math.isfinite(line.loss_D) for line in lines)


def test_a_run_reads_the_shards_dataset_json_once_and_its_index_once(shards: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of the card goes through Path.read_text (pgrf.formats.card), of the index through pyarrow's
    read_table; a run with a tick, a grid, an FID and a checkpoint, then its resume, reads each once."""
    import pyarrow.parquet as pq

    from pgrf.evaluate import metrics

    reads: list[str] = []
    read_text, read_table = Path.read_text, pq.read_table

    def counted_text(path: Path, *args: object, **kwargs: object) -> str:
        reads.append(path.name)
        return read_text(path, *args, **kwargs)

    def counted_table(path: object, *args: object, **kwargs: object) -> object:
        reads.append(Path(str(path)).name)
        return read_table(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted_text)
    monkeypatch.setattr(pq, "read_table", counted_table)
    monkeypatch.setattr(metrics, "inception_network", lambda inception, device: _Features())
    options = _options(shards, tmp_path, kimg=0.004, fid_kimg=0.004, fid_num=2, inception="unused.pth")
    run = loop.train(options)
    assert reads.count("dataset.json") == 1 and reads.count("index.parquet") == 1
    assert [type(line) for line in read_stats(run)] == [StatsLine, FidRecord]
    reads.clear()
    loop.train(replace(options, kimg=0.008, resume="latest"))
    assert reads.count("dataset.json") == 1 and reads.count("index.parquet") == 1


class _Features(nn.Module):
    """A small stand-in for the FID Inception: each channel's mean brightness."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mean(dim=(2, 3)) * self.scale


def test_stats_lines_keep_their_keys_and_a_bad_line_is_a_one_line_error(tmp_path: Path) -> None:
    line = StatsLine(kimg=0.008, step=2, loss_G=0.7, loss_D=1.3, grad_norm_G=0.1, grad_norm_D=0.2, ada_p=0.0, beta=0.5,
                     blur_sigma=2.0, images_per_s=10.0, s_per_kimg=100.0, peak_rss_mib=500.0)
    regularised = replace(line, r1=0.01, peak_gpu_mib=12.0)
    append_stats(tmp_path, line)
    append_stats(tmp_path, regularised)
    raw = [json.loads(text) for text in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert list(raw[0]) == ["time", "kimg", "step", "loss_G", "loss_D", "grad_norm_G", "grad_norm_D", "ada_p", "beta",
                            "blur_sigma", "images_per_s", "s_per_kimg", "peak_rss_mib"]  # no r1, no GPU: left out
    assert raw[1]["r1"] == 0.01 and raw[1]["peak_gpu_mib"] == 12.0 and raw[1]["loss_D"] == 1.3
    assert read_stats(tmp_path) == [line, regularised]
    with (tmp_path / "stats.jsonl").open("a") as handle:
        handle.write(json.dumps({**raw[0], "step": "two"}) + "\n")
    with pytest.raises(PgrfError, match=r"stats\.jsonl: line 3: field 'step' must be int; got str 'two'; fix or delete") as error:
        read_stats(tmp_path)
    assert "\n" not in str(error.value)


def _write_format_2(checkpoint: Checkpoint, path: Path) -> None:
    """Write ``checkpoint`` as pgrf wrote format 2: the metadata as top-level keys among the state, in that order."""
    meta, state = checkpoint.meta, checkpoint.state
    torch.save({"format": 2, "pgrf_version": meta.pgrf_version, "model_config": meta.model, "dataset": to_json(meta.dataset),
                "options": meta.options, "G": state["G"], "G_ema": state["G_ema"], "D": state["D"],
                "opt_G": state["opt_G"], "opt_D": state["opt_D"], "augment": state["augment"],
                "progress": asdict(meta.progress), "rng": state["rng"]}, path)


def test_a_format_2_checkpoint_loads_samples_and_resumes_bit_exactly(shards: Path, tmp_path: Path) -> None:
    straight = loop.train(_options(shards, tmp_path / "straight"))
    half = loop.train(_options(shards, tmp_path / "old", kimg=0.008))
    latest, snapshot = half / "checkpoints" / "latest.pt", half / "checkpoints" / "snapshot-000000.008kimg.pt"
    written = load_checkpoint(latest)
    assert torch.load(latest, weights_only=True)["format"] == 3 and written.meta.progress.step == 2
    _write_format_2(written, latest)
    old = load_checkpoint(latest)
    assert old.meta == written.meta and old.state.keys() == written.state.keys()  # the world size from the rng list
    assert old.model_config == written.model_config and old.model_config.c_dim == 2
    seeds = [0, 1, 2]
    generator, info = load_generator(latest)
    expected = render_samples(*load_generator(snapshot), seeds, 16)  # the same state, written as format 3
    np.testing.assert_array_equal(render_samples(generator, info, seeds, 16), expected)
    assert info == written.meta.dataset and not np.array_equal(expected[0], expected[1])
    resumed = loop.train(_options(shards, tmp_path / "old", resume="latest"))
    a, b = load_checkpoint(straight / "checkpoints"), load_checkpoint(resumed / "checkpoints")
    assert torch.load(resumed / "checkpoints" / "latest.pt", weights_only=True)["format"] == 3
    assert a.meta.progress == b.meta.progress and b.meta.progress.step == 4
    for name in ("G", "G_ema", "D"):
        for key, value in a.state[name].items():
            assert torch.equal(value, b.state[name][key]), f"{name}.{key} differs after resuming format 2"
    assert [line.step for line in read_stats(resumed)] == [2, 4]


def test_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(shards: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real_loss, calls = losses.generator_loss, []

    def poisoned(logits: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return real_loss(logits) * (math.nan if len(calls) == 3 else 1.0)

    monkeypatch.setattr(loop, "generator_loss", poisoned)
    with pytest.raises(PgrfError, match=r"non-finite loss_G.* at step 3 .*checkpoint"):
        loop.train(_options(shards, tmp_path, kimg=0.032))
    kept = load_checkpoint(tmp_path / "run" / "checkpoints")
    assert kept.meta.progress.step == 2
    assert all(torch.isfinite(v).all() for v in kept.state["G"].values() if v.is_floating_point())


@pytest.mark.slow
def test_train_cli_writes_a_run_and_refuses_bad_shards(shards: Path, tmp_path: Path) -> None:
    result = run_pgrf("train", "--shards", str(shards), "--out", str(tmp_path), "--name", "cli", "--preset", "tiny",
                      "--kimg", "0.008", "--batch", "4", "--workers", "1", "--tick-kimg", "0.004", "--sample-kimg", "0.008")
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "cli"
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["class_names"] == ["class0", "class1"] and config["model"]["c_dim"] == 2
    assert len(read_stats(run)) == 2 and list((run / "samples").glob("grid-*.png"))
    generator, info = load_generator(run / "checkpoints")
    assert info.resolution == 16 and info.radius == 3.5 and not generator.training
    again = run_pgrf("train", "--shards", str(shards), "--out", str(tmp_path), "--name", "cli", "--preset", "tiny")
    assert again.returncode == 2 and "already holds a run" in again.stderr
    odd = run_pgrf("train", "--shards", str(shards), "--preset", "small", "--batch", "6", "--out", str(tmp_path))
    assert odd.returncode == 2 and "multiples of the minibatch-stddev group (4)" in odd.stderr
    for bad, message in ((tmp_path / "none", "not a pgrf pack folder"), (tmp_path, "dataset.json: missing")):
        failed = run_pgrf("train", "--shards", str(bad), "--preset", "tiny")
        assert failed.returncode == 2 and message in failed.stderr and "Traceback" not in failed.stderr
    card = json.loads((shards / "dataset.json").read_text())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text(json.dumps(card))
    failed = run_pgrf("train", "--shards", str(broken), "--preset", "tiny")
    assert failed.returncode == 2 and "listed in" in failed.stderr and "but missing" in failed.stderr


DDP_SCRIPT = '''
import hashlib, json, sys
import torch
from pgrf import runtime
from pgrf.train import loop
from pgrf.train.options import TrainOptions
from pgrf.train.precision import allows_tf32, d_autocast, d_half
options = TrainOptions(**json.loads(sys.argv[1]))
context = runtime.setup("cpu")
run = loop.build(options, context)
batches = loop.batches_of(run)
for _ in range(3):
    loop.step(run, next(batches))
lines = []
for module in ("G", "D", "G_ema"):
    digest = hashlib.sha256()
    for value in getattr(run, module).state_dict().values():
        digest.update(value.detach().numpy().tobytes())
    lines.append(f"DIGEST {context.rank} {module} {digest.hexdigest()}\\n")
noise = {"global": torch.randn(16), "step": loop.StepDraws(run, 2)("G render").randn(8)}  # what each rank draws
for name, value in noise.items():
    lines.append(f"NOISE {context.rank} {name} {hashlib.sha256(value.numpy().tobytes()).hexdigest()}\\n")
with open(f"{options.out}/digests-{context.rank}.txt", "w") as handle:  # one file per rank: no interleaved output
    handle.writelines(lines)
runtime.teardown()
'''


@pytest.mark.slow
def test_ddp_on_cpu_keeps_two_ranks_in_sync(shards: Path, tmp_path: Path) -> None:
    options = {"shards": str(shards), "out": str(tmp_path), "preset": "tiny", "batch": 4, "workers": 0, "r1_interval": 2}
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = tmp_path / "ddp_steps.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
                             str(script), json.dumps(options)], capture_output=True, text=True, env=env, timeout=300)
    written = [line for rank in (0, 1) if (tmp_path / f"digests-{rank}.txt").exists()
               for line in (tmp_path / f"digests-{rank}.txt").read_text().splitlines()]
    digests = {tuple(line.split()[1:3]): line.split()[3] for line in written if line.startswith("DIGEST")}
    assert result.returncode == 0 and len(digests) == 6, result.stderr[-3000:]
    for module in ("G", "D", "G_ema"):
        assert digests["0", module] == digests["1", module], f"{module} differs between ranks"
    noise = {tuple(line.split()[1:3]): line.split()[3] for line in written if line.startswith("NOISE")}
    for name in ("global", "step"):  # but each rank draws its own noise, jitter and augmentation
        assert noise["0", name] != noise["1", name], f"both ranks draw the same {name} random numbers"
    assert hashlib.sha256(b"").hexdigest() not in digests.values()


KILLED_SCRIPT = '''
import json, sys
from pgrf.train.loop import train
from pgrf.train.options import TrainOptions
from pgrf.train.precision import allows_tf32, d_autocast, d_half
train(TrainOptions(**json.loads(sys.argv[1])))
'''


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(shards: Path, tmp_path: Path) -> None:
    script = tmp_path / "long_run.py"
    script.write_text(KILLED_SCRIPT)
    long = {**_options(shards, tmp_path / "killed", kimg=1.0).__dict__, "snapshot_kimg": 0.008}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(script), json.dumps(long)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "killed" / "run" / "checkpoints" / "latest.pt"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (latest.exists() and load_checkpoint(latest).meta.progress.step >= 4):
            time.sleep(0.2)
    finally:
        process.kill()  # SIGKILL: no cleanup, no final checkpoint
        process.wait()
    steps = load_checkpoint(latest).meta.progress.step
    assert steps >= 4 and steps % 2 == 0
    until = (steps + 2) * 4 / 1000
    resumed = loop.train(_options(shards, tmp_path / "killed", kimg=until, resume="latest", sample_kimg=1.0))
    straight = loop.train(_options(shards, tmp_path / "straight", kimg=until))
    a, b = load_checkpoint(straight / "checkpoints"), load_checkpoint(resumed / "checkpoints")
    assert a.meta.progress.step == b.meta.progress.step == steps + 2
    for name in ("G", "D"):
        assert all(torch.equal(value, b.state[name][key]) for key, value in a.state[name].items()), f"{name} differs"


@pytest.mark.slow
def test_fid_during_training_is_logged(tmp_path: Path) -> None:
    from pgrf.evaluate.inception import FIDInceptionV3

    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=2)]
    pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16, mirror=False))
    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(FIDInceptionV3().state_dict(), weights)
    run = loop.train(_options(tmp_path / "shards", tmp_path, kimg=0.004, fid_kimg=0.004, fid_num=4, inception=str(weights),
                              mirror=True))
    fids = [line for line in read_stats(run) if isinstance(line, FidRecord)]
    assert len(fids) == 1 and math.isfinite(fids[0].fid) and fids[0].num_fake == 4 and fids[0].kimg == 0.004
    assert fids[0].num_real == 8 and fids[0].real_mirrored  # --mirror: the 4 reals and their mirrored copies


class _EmptyField(nn.Module):
    """A decoder with no density anywhere: every ray shows the background."""

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = features.shape[:-1]
        return torch.full((*shape, 3), 0.5), torch.full(shape, -100.0)


def test_g_composites_over_the_datasets_background(tmp_path: Path) -> None:
    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=6)]
    pack(renders, tmp_path / "black", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=8, background="black"))
    run = loop.build(_options(tmp_path / "black", tmp_path / "runs"), runtime.setup("cpu"))
    camera = torch.from_numpy(np.stack([np.eye(4)] * 2)).float()
    camera[:, 2, 3] = -3.5  # at (0, 0, -3.5) looking along +z at the origin
    intrinsics = torch.tensor([[[1.2, 0.0, 0.5], [0.0, 1.2, 0.5], [0.0, 0.0, 1.0]]] * 2)
    for generator in (run.G, run.G_ema):
        generator.decoder = _EmptyField()
        c = torch.eye(generator.config.c_dim)[:2] if generator.config.c_dim else None
        image = generator.render_image(torch.randn(2, generator.config.z_dim), c, camera, intrinsics, 8)
        assert torch.equal(image, torch.full_like(image, -1.0))  # black in [-1, 1], not white
    loop.train(_options(tmp_path / "black", tmp_path / "runs", name="black"))
    loaded, info = load_generator(tmp_path / "runs" / "black" / "checkpoints")
    assert info.background == "black" and loaded.background == 0.0


@pytest.mark.slow
def test_train_on_a_truncated_only_shard_stops_with_one_line(tmp_path: Path) -> None:
    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=3)]
    pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16))
    (tar,) = sorted((tmp_path / "shards").glob("*.tar"))
    tar.write_bytes(tar.read_bytes()[:700])
    result = run_pgrf("train", "--shards", str(tmp_path / "shards"), "--out", str(tmp_path / "runs"), "--preset", "tiny",
                      "--batch", "4", "--workers", "2", "--device", "cpu", timeout=180)  # a hang fails on the timeout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: {tar}: nothing readable in ")


def _spied_step(run: loop.Run, batch: dict) -> tuple[list[dict], list[dict], list[bool]]:
    """One step recording G's calls (z, patch, grad mode, a weight, output), D's inputs and the mapping's mode."""
    g_calls, d_calls, mapping_modes = [], [], []
    g_forward, d_forward, m_forward = run.G.forward, run.D.forward, run.G.mapping.forward
    weight = next(run.G.synthesis.parameters())

    def g_spy(z, c, c2w, intrinsics, patch, **kwargs):
        out = g_forward(z, c, c2w, intrinsics, patch, **kwargs)
        g_calls.append({"z": z.clone(), "patch": patch.clone(), "grad": torch.is_grad_enabled(),
                        "weight": weight.detach().clone(), "out": out.detach().clone()})
        return out

    def d_spy(images, patch, *args, **kwargs):
        d_calls.append({"images": images.detach().clone(), "patch": patch.clone()})
        return d_forward(images, patch, *args, **kwargs)

    def m_spy(*args, **kwargs):
        update = kwargs.get("update_w_avg")
        mapping_modes.append(run.G.mapping.training if update is None else update)  # whether it updates the average w
        return m_forward(*args, **kwargs)

    run.G.forward, run.D.forward, run.G.mapping.forward = g_spy, d_spy, m_spy
    loop.step(run, batch)
    return g_calls, d_calls, mapping_modes


def test_d_judges_fresh_fakes_of_the_updated_g_and_independent_real_patches(shards: Path, tmp_path: Path) -> None:
    options = _options(shards, tmp_path, augment=False, blur_sigma=0.0, fake_poses="sphere")
    run = loop.build(options, runtime.setup("cpu"))
    run.progress.images = 20_000  # past the tiny preset's 10 kimg anneal: patches of every scale
    g, d, modes = _spied_step(run, next(loop.batches_of(run)))
    assert len(g) == 2 and g[0]["grad"] and not g[1]["grad"]  # G's step, then D's fakes without a graph
    assert not torch.equal(g[0]["weight"], g[1]["weight"])  # rendered after G's update
    assert not torch.equal(g[0]["z"], g[1]["z"]) and not torch.equal(g[0]["patch"], g[1]["patch"])
    assert len(d) == 3  # G's view of its fakes; D's reals; D's fakes
    assert torch.equal(d[0]["images"], g[0]["out"]) and torch.equal(d[2]["images"], g[1]["out"])
    assert torch.equal(d[2]["patch"], g[1]["patch"]) and not torch.equal(d[1]["patch"], d[2]["patch"])
    assert modes == [False, True, False]  # the average w is tracked once per step, after G's rounds

    run.options = replace(options, reuse_fakes=True, shared_patches=True)
    g, d, modes = _spied_step(run, next(loop.batches_of(run)))
    assert len(g) == 1 and len(d) == 3 and modes == [False, True]
    assert torch.equal(d[2]["images"], g[0]["out"]) and torch.equal(d[1]["patch"], g[0]["patch"])


def test_g_ema_half_life_defaults_to_the_references_rule(shards: Path, tmp_path: Path) -> None:
    assert TrainOptions(shards="x").ema_half_life_kimg == 20.0  # batch 64, as EpiGRAF's Megascans runs
    assert TrainOptions(shards="x", batch=8).ema_half_life_kimg == 2.5
    assert TrainOptions(shards="x", ema_kimg=10.0).ema_half_life_kimg == 10.0
    run = loop.build(_options(shards, tmp_path, ema_rampup=None), runtime.setup("cpu"))
    before = _weights(run.G_ema)
    loop.step(run, next(loop.batches_of(run)))
    beta = 0.5 ** (4 / (4 * 10 / 32 * 1000))  # batch 4: half-life 1.25 kimg
    for key, value in run.G.state_dict().items():
        if value.is_floating_point() and "w_avg" not in key:
            assert torch.allclose(run.G_ema.state_dict()[key], value.lerp(before[key], beta), atol=1e-6), key


def test_old_checkpoints_resume_with_what_they_did(shards: Path, tmp_path: Path) -> None:
    options = _options(shards, tmp_path)
    old = {k: v for k, v in options.__dict__.items() if k not in ("reuse_fakes", "shared_patches", "precision")}
    resumed = loop.resumed_options(options, {**old, "antialias_patches": False})
    assert resumed.reuse_fakes and resumed.shared_patches
    assert resumed.precision == "bf16"  # runs from before --tf32 and --precision: D under bf16 autocast on CUDA
    assert loop.resumed_options(options, {**old, "tf32": False}).precision == "bf16"
    assert loop.resumed_options(options, {**old, "tf32": True}).precision == "tf32"
    assert loop.resumed_options(options, {**old, "precision": "fp32"}).precision == "fp32"
    with pytest.raises(PgrfError, match="trained with --antialias-patches"):
        loop.resumed_options(options, {**old, "antialias_patches": True})


def test_dry_run_writes_the_config_of_a_real_run_with_sizes_and_flops(shards: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from pgrf import cli

    monkeypatch.setattr(sys, "argv", ["pgrf", "train", "--shards", str(shards), "--out", str(tmp_path / "dry"), "--name", "run",
                                      "--preset", "tiny", "--batch", "4", "--device", "cpu", "--dry-run"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code in (0, None)
    printed = json.loads(capsys.readouterr().out)
    folder = tmp_path / "dry" / "run"
    written = json.loads((folder / "config.json").read_text())
    assert printed == written and not (folder / "checkpoints").exists() and not (folder / "stats.jsonl").exists()
    run = loop.build(_options(shards, tmp_path), runtime.setup("cpu"))
    assert written["parameters"] == {"G": sum(p.numel() for p in run.G.parameters()),
                                     "D": sum(p.numel() for p in run.D.parameters())}
    assert written["gflops_per_sample"]["G"] > 0 and written["gflops_per_sample"]["D"] > 0
    memory = written["memory_mib"]
    assert memory["batch_gpu"] == 4 and memory["weights"] >= 0 and memory["per_sample"]["G_step"] >= 0
    estimate = loop.step_memory(run)
    assert memory["per_gpu"] == round(estimate.per_gpu(4) / 2**20)
    real = loop.train(_options(shards, tmp_path / "real", kimg=0.004, batch=4, workers=2, tick_kimg=4.0, snapshot_kimg=200.0,
                               sample_kimg=200.0, r1_interval=16, blur_sigma=10.0, blur_kimg=200.0, device="cpu"))
    expected = json.loads((real / "config.json").read_text())
    for config in (expected, written):
        config["options"]["out"] = config["options"]["kimg"] = None
    assert {k: v for k, v in written.items() if k not in ("parameters", "gflops_per_sample", "memory_mib")} == expected


def test_forward_flops_scale_with_the_patch_resolution() -> None:
    from pgrf.formats.card import CameraModel
    from pgrf.model.discriminator import Discriminator
    from pgrf.model.generator import Generator
    from pgrf.train.cost import forward_gflops

    flops = {}
    for r in (16, 32, 64):
        config = preset("tiny").with_dataset(64, 0).override(patch_resolution=r)
        flops[r] = forward_gflops(Generator(config), Discriminator(config), CameraModel(radius=3.5, fov=0.5))
    # G: a fixed cost (mapping, tri-planes) plus the decoder at every ray sample, so linear in the pixel count r²
    assert flops[64]["G"] - flops[32]["G"] == pytest.approx(4 * (flops[32]["G"] - flops[16]["G"]), rel=1e-6)
    assert flops[32]["G"] - flops[16]["G"] > 0
    # D: every layer's work grows at most with the pixel count (×4 per doubling); the 4×4 head does not grow
    for small, large in ((16, 32), (32, 64)):
        assert 1.2 < flops[large]["D"] / flops[small]["D"] <= 4.0


def test_model_flags_override_the_preset(shards: Path, tmp_path: Path) -> None:
    """--camera-cond and --no-hyper reach the networks: D then needs (yaw, pitch) and ignores the patch."""
    default = loop.build(_options(shards, tmp_path / "a"), runtime.setup("cpu"))
    assert not default.D.config.camera_cond and default.D.config.hyper
    run = loop.build(_options(shards, tmp_path / "b", camera_cond=True, hyper=False), runtime.setup("cpu"))
    assert run.D.config.camera_cond and not run.D.config.hyper
    config = run.D.config
    img = torch.randn(2, 3, config.patch_resolution, config.patch_resolution)
    c = torch.eye(config.c_dim)[:2] if config.c_dim else None
    with pytest.raises(ValueError, match="yaw, pitch"):
        run.D.eval()(img, torch.tensor([[1.0, 0.0, 0.0]] * 2), c)


def test_training_on_a_card_whose_resolution_disagrees_with_the_images_is_a_one_line_error(shards: Path,
                                                                                          tmp_path: Path) -> None:
    folder = tmp_path / "lying"
    shutil.copytree(shards, folder)
    card = json.loads((folder / "dataset.json").read_text())
    card["resolution"] = 32  # the images are 16x16
    (folder / "dataset.json").write_text(json.dumps(card))
    with pytest.warns(UserWarning, match="skipping corrupt sample"), pytest.raises(PgrfError) as error:
        loop.train(_options(folder, tmp_path / "out"))
    assert "image is 16x16, the card's resolution is 32x32" in str(error.value) and "\n" not in str(error.value)


def test_a_whole_step_runs_on_the_meta_device(shards: Path, tmp_path: Path) -> None:
    """Every tensor of a step (R1, ADA's update, accumulation) on one device: a step that mixed in a host tensor, or
    read a number back, fails here as it would on CUDA (meta tensors hold no numbers)."""
    options = _options(shards, tmp_path, r1_interval=1, batch=8, batch_gpu=4, camera_cond=True)
    run = loop.build(options, runtime.Context(device=torch.device("meta")))
    run.progress.step = loop.ADA_INTERVAL_STEPS - 1  # this step adjusts ADA's p
    read: list[torch.Tensor] = []
    batch = loop.empty_batch(8, run.config.resolution, torch.device("meta"))
    losses = loop.step(run, batch, read=lambda t: read.append(t) or [0.0] * t.numel())
    assert run.progress.step == loop.ADA_INTERVAL_STEPS and set(losses) == {"loss_G", "loss_D", "r1", "grad_norm_G", "grad_norm_D"}
    assert len(read) == 1 and read[0].device.type == "meta" and read[0].shape == (5,)
    assert run.ada.p_tensor.device.type == "meta" and next(run.G_ema.parameters()).device.type == "meta"


def test_a_step_waits_for_the_device_once(shards: Path, tmp_path: Path) -> None:
    """Outside ticks a step reads back one thing, its losses (R1, ADA's observation and update included)."""
    from tests.helpers import HostSyncs

    run = loop.build(_options(shards, tmp_path, r1_interval=1), runtime.setup("cpu"))
    batches = loop.batches_of(run)
    for step in (loop.ADA_INTERVAL_STEPS - 1, loop.ADA_INTERVAL_STEPS):
        run.progress.step = step
        run.ada.p_tensor = torch.tensor(0.5, dtype=torch.float64)
        batch = next(batches)
        with HostSyncs() as syncs:
            loop.step(run, batch)
        assert syncs.seen == ["tolist"], syncs.seen


def _grads_of_one_step(run: loop.Run, batch: dict) -> tuple[dict[str, float], list[torch.Tensor]]:
    """The losses and every G and D gradient of one step, taken just before each optimiser step."""
    grads: list[torch.Tensor] = []
    for optimiser, module in ((run.opt_G, run.G), (run.opt_D, run.D)):
        real = optimiser.step

        def recording(*args, real=real, module=module, **kwargs):
            grads.extend(p.grad.clone() for p in module.parameters() if p.grad is not None)
            return real(*args, **kwargs)

        optimiser.step = recording
    return loop.step(run, batch), grads


@pytest.mark.parametrize("reuse_fakes", [False, True])
def test_batch_gpu_rounds_give_the_gradients_of_one_pass(shards: Path, tmp_path: Path, reuse_fakes: bool) -> None:
    """Batch 8 as 2 × 4 (R1 on, ADA at p = 0.5, minibatch-stddev groups, camera dropout): the same losses and gradients
    to round-off, and the same tracked average w, because every random number is drawn for the whole batch."""
    results = []
    for batch_gpu in (None, 4):
        options = _options(shards, tmp_path, batch=8, batch_gpu=batch_gpu, r1_interval=1, camera_cond=True,
                           reuse_fakes=reuse_fakes)
        run = loop.build(options, runtime.setup("cpu"))
        run.ada.p_tensor = torch.tensor(0.5, dtype=torch.float64)
        run.progress.images = 2_000
        batch = next(loop.batches_of(run))
        results.append((*_grads_of_one_step(run, batch), run.G.mapping.w_avg.clone()))
    (losses_1, grads_1, w_1), (losses_2, grads_2, w_2) = results
    assert losses_1 == pytest.approx(losses_2, rel=1e-5, abs=1e-7) and losses_1["r1"] > 0
    assert len(grads_1) == len(grads_2) > 0
    for one, two in zip(grads_1, grads_2):
        torch.testing.assert_close(two, one, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(w_2, w_1, rtol=1e-5, atol=1e-7)
    assert run.config.mbstd_group <= 4


def test_batch_gpu_is_a_run_setting_and_checked(shards: Path, tmp_path: Path) -> None:
    saved = asdict(_options(shards, tmp_path, batch=8))
    assert loop.resumed_options(_options(shards, tmp_path, batch=8, batch_gpu=2), saved).batch_gpu == 2
    with pytest.raises(PgrfError, match=r"--batch-gpu 3 must divide the per-process batch \(8\)"):
        loop.build(_options(shards, tmp_path, batch=8, batch_gpu=3), runtime.setup("cpu"))
    with pytest.raises(PgrfError, match="must be positive"):
        _options(shards, tmp_path, batch_gpu=0)
