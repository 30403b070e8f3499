"""FID detectors: pytorch-fid's state dict and NVIDIA's TorchScript export, told apart by content; protocols;
statistics keyed by the detector; ranks sharing the work give a single process's numbers."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pgrf.errors import PgrfError
from pgrf.evaluate import inception, metrics
from pgrf.evaluate.fid import FeatureAccumulator, combine, feature_stats, fid
from pgrf.evaluate.inception import FIDInceptionV3, NvidiaDetector, describe, load_detector
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from tests.helpers import CONFIG, REPO


class NvidiaLike(nn.Module):
    """The call signature of NVIDIA's detector (uint8 NCHW in, resize inside, 2048 features with
    return_features=True), random weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2048, 5, stride=4)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(img.to(torch.float32), size=(64, 64), mode="bilinear", align_corners=False) / 127.5 - 1
        features = torch.tanh(self.conv(x)).mean(dim=(2, 3))
        return features if return_features else self.fc(features)


@pytest.fixture(scope="module")
def torchscript(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector") / "inception-2015-12-05.pt"
    torch.jit.script(NvidiaLike()).save(str(path))
    return path


@pytest.fixture(scope="module")
def state_dict(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = FIDInceptionV3()
    path = tmp_path_factory.mktemp("detector") / "pt_inception.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, path)
    return path


def test_the_torchscript_detector_loads_through_the_same_path(torchscript: Path) -> None:
    detector = load_detector(torchscript)
    assert isinstance(detector, NvidiaDetector)
    images = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    features = detector(images)
    assert features.shape == (3, 2048) and features.dtype == torch.float32
    reference = torch.jit.load(str(torchscript))(images, return_features=True)
    assert torch.equal(features, reference)  # fed exactly as StyleGAN2-ADA's metric code feeds it
    assert torch.equal(detector(images.float() / 255), features)  # [0, 1] floats are quantised to the same uint8
    info = describe(detector)
    assert info.kind == "nvidia-torchscript" and info.sha256 == hashlib.sha256(torchscript.read_bytes()).hexdigest()


def test_the_state_dict_detector_still_loads_and_is_described(state_dict: Path) -> None:
    detector = load_detector(state_dict)
    assert isinstance(detector, FIDInceptionV3)
    assert describe(detector).kind == "pytorch-fid"
    assert describe(detector).sha256 == hashlib.sha256(state_dict.read_bytes()).hexdigest()
    assert describe(FIDInceptionV3()).kind == "module"


def test_a_file_of_neither_kind_is_one_line_naming_both(tmp_path: Path) -> None:
    noise = tmp_path / "random.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    other = tmp_path / "other.pt"
    torch.jit.script(nn.Linear(3, 3)).save(str(other))
    for path in (noise, other):
        with pytest.raises(PgrfError) as error:
            load_detector(path)
        message = str(error.value)
        assert "\n" not in message and str(path) in message
        assert inception.WEIGHTS_FILE in message and inception.TORCHSCRIPT_FILE in message


class FileMapping(NvidiaLike):
    """NVIDIA's signature, but its forward maps a local file into a tensor (shared: writes would reach the file)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        stolen = torch.from_file(self.target, True, 4, dtype=torch.uint8)
        stolen.fill_(0)
        x = F.interpolate(img.to(torch.float32), size=(64, 64), mode="bilinear", align_corners=False) / 127.5 - 1
        return torch.tanh(self.conv(x)).mean(dim=(2, 3)) + stolen.float().sum()


def test_a_detector_whose_code_reaches_files_is_refused_before_it_runs(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"keep")
    evil = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(FileMapping(str(secret))).save(str(evil))
    with pytest.raises(PgrfError) as error:
        load_detector(evil)
    message = str(error.value)
    assert "\n" not in message and str(evil) in message and "calls torch.from_file, an operator that reaches files" in message
    assert secret.read_bytes() == b"keep"
    torch.jit.load(str(evil))(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))  # what the check kept from running
    assert secret.read_bytes() == bytes(4)


def test_a_detector_calling_a_custom_operator_library_is_refused(tmp_path: Path, torchscript: Path) -> None:
    custom = tmp_path / "custom.pt"
    with zipfile.ZipFile(torchscript) as source, zipfile.ZipFile(custom, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if "/code/" in info.filename:
                data = data.replace(b"torch.tanh(", b"ops.mylib.tanh(")
            target.writestr(info, data)
    with pytest.raises(PgrfError, match=r"calls ops\.mylib\.tanh, a custom operator or class; not run"):
        load_detector(custom)


def _images(rng: np.random.Generator, n: int) -> torch.Tensor:
    """Blobs of random colour and place on grey: a small image distribution with structure."""
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.full((n, 32, 32, 3), 110.0)
    for i in range(n):
        cy, cx, radius = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(4, 10)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2] = rng.uniform(40, 200, 3)
    return torch.from_numpy(images.clip(0, 255).astype(np.uint8)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torchscript", "state_dict"])
def test_fid_sanity_with_either_detector(kind: str, torchscript: Path, state_dict: Path) -> None:
    detector = load_detector(torchscript if kind == "torchscript" else state_dict)
    images = _images(np.random.default_rng(1), 32)
    brighter = (images.float() * 1.3).clamp(0, 255).to(torch.uint8)
    with torch.no_grad():
        features, shifted = detector(images).double().numpy(), detector(brighter).double().numpy()
    halves = fid(feature_stats(features[:16]), feature_stats(features[16:]))
    moved = fid(feature_stats(features), feature_stats(shifted))
    assert halves < moved / 2, (halves, moved)
    whole = feature_stats(features)
    # 0 up to round-off: 32 samples leave ~2000 of the 2048 covariance eigenvalues at ~1e-16, whose square roots add up
    assert abs(fid(whole, whole)) < 1e-5 * np.trace(whole.cov)


def test_protocols_are_named_and_recorded() -> None:
    assert metrics.PROTOCOLS == {"fid50k_full": 50000, "fid2k": 2048}
    assert metrics.protocol_name(50000) == "fid50k_full" and metrics.protocol_name(2048) == "fid2k"
    assert metrics.protocol_name(100) == "fid100_custom"


def test_combined_partial_statistics_equal_the_whole() -> None:
    rng = np.random.default_rng(2)
    parts, whole = [], []
    for size in (5, 1, 9, 0, 4):
        batch = rng.normal(size=(size, 6)) * rng.uniform(0.5, 3) + rng.normal(size=6)
        accumulator = FeatureAccumulator(keep=7)
        accumulator.update(batch)
        parts.append(accumulator.partial())
        whole.append(batch)
    combined, reference = combine(parts, keep=7), feature_stats(np.concatenate(whole))
    np.testing.assert_allclose(combined.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(combined.cov, reference.cov, rtol=1e-10, atol=1e-12)
    assert combined.count == 19 and np.array_equal(combined.features, np.concatenate(whole)[:7].astype(np.float32))


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fidshards")
    renders = fake_renders(root / "renders", "plants", {f"m{i}_var1": 0.3 + 0.1 * i for i in range(4)}, views=3)
    from pgrf.config import load_config

    pack([renders], root / "shards", load_config(CONFIG), PackOptions(resolution=16, samples_per_shard=5))
    return root / "shards"


def test_cached_real_statistics_are_keyed_by_the_detector(shards: Path, torchscript: Path, state_dict: Path) -> None:
    script, table = load_detector(torchscript), load_detector(state_dict)
    first, path_a, cached_a = metrics.real_statistics(shards, script, "cpu")
    assert not cached_a and path_a is not None
    other, path_b, cached_b = metrics.real_statistics(shards, table, "cpu")
    assert not cached_b and path_b != path_a  # another detector: computed again, cached apart
    again, path_c, cached_c = metrics.real_statistics(shards, script, "cpu")
    assert cached_c and path_c == path_a and np.array_equal(again.mean, first.mean)
    with np.load(path_a) as data:
        key = str(data["key"])
    assert describe(script).sha256 in key and "nvidia-torchscript" in key


WORKER = """
import json, os, sys
import numpy as np
import torch
from pgrf.evaluate import metrics
from pgrf.evaluate.inception import load_detector
torch.distributed.init_process_group("gloo")
stats, _, _ = metrics.real_statistics(sys.argv[1], load_detector(sys.argv[2]), "cpu", batch=4, cache=False)
if torch.distributed.get_rank() == 0:
    np.savez(sys.argv[3], mean=stats.mean, cov=stats.cov, count=stats.count)
torch.distributed.destroy_process_group()
"""


def test_ranks_share_the_real_statistics_and_get_a_single_process_result(shards: Path, torchscript: Path,
                                                                          tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    processes = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "PYTHONPATH": str(REPO)}
        processes.append(subprocess.Popen([sys.executable, str(script), str(shards), str(torchscript),
                                           str(tmp_path / "ddp.npz")], env=env, cwd=REPO))
    assert all(p.wait(timeout=300) == 0 for p in processes)
    single, _, _ = metrics.real_statistics(shards, load_detector(torchscript), "cpu", batch=4, cache=False)
    with np.load(tmp_path / "ddp.npz") as ddp:
        assert int(ddp["count"]) == single.count == json.loads((shards / "dataset.json").read_text())["counts"]["samples"]
        np.testing.assert_allclose(ddp["mean"], single.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ddp["cov"], single.cov, rtol=1e-7, atol=1e-12)
