"""The FID Inception network (InceptionV3 of TensorFlow's 2015-12-05 graph), in plain PyTorch.

Parameter names and shapes are those of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``
(torchvision's Inception3 layout, 1008-class fc, no aux head), so that file loads as is. The
FID-specific differences from torchvision's network are kept: the A, C and first E blocks
average-pool without counting the zero padding, and the last E block max-pools its pool branch.
Features are the 2048-d global average pool. Weights come only from a local file (argument or
``PGRF_INCEPTION``); nothing is downloaded.

Preprocessing follows pytorch-fid: images (uint8 in [0, 255] or float in [0, 1], NCHW RGB, any
size) are resized to 299x299 with ``F.interpolate(mode="bilinear", align_corners=False,
antialias=False)`` and scaled to [-1, 1]. (The original TensorFlow graph resizes differently, so
absolute values match pytorch-fid, not the TF code.)

The other accepted detector is NVIDIA's TorchScript export of the same TensorFlow graph
(``inception-2015-12-05.pt``, used by StyleGAN2-ADA's metrics and so by EpiGRAF's published FIDs): it
takes uint8 NCHW images at the dataset resolution, resizes inside the graph, and returns the 2048-d
pool features when called with ``return_features=True``. ``load_detector`` tells the two files apart
(a TorchScript archive holds ``code/`` and ``constants.pkl``; a state dict does not) and records which
file made the features (``DetectorInfo`` of pgrf.formats.fid_record: kind and sha256), so features of
different detectors are never mixed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pgrf.errors import PgrfError
from pgrf.formats.fid_record import DetectorInfo
from pgrf.formats.torchscript import check_torchscript, is_torchscript
from pgrf.pipeline.shards import sha256

INCEPTION_ENV = "PGRF_INCEPTION"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299
TORCHSCRIPT_FILE = "inception-2015-12-05.pt"
_HOW_TO_FIX = (f"pass --inception PATH or set {INCEPTION_ENV} to pytorch-fid's FID weights file {WEIGHTS_FILE} "
               "(a local copy: pgrf downloads nothing)")
_WHICH_FILES = (f"give pytorch-fid's FID Inception state dict {WEIGHTS_FILE} (from pytorch-fid's GitHub releases) or "
                f"NVIDIA's TorchScript detector {TORCHSCRIPT_FILE} (from the StyleGAN2-ADA metrics downloads), "
                f"as --inception FILE or {INCEPTION_ENV}; pgrf downloads nothing")


class NvidiaDetector(nn.Module):
    """NVIDIA's TorchScript FID Inception: uint8 NCHW RGB at any size → (N, 2048) pool features, called exactly
    as StyleGAN2-ADA's metric code calls it (``detector(images, return_features=True)``)."""

    def __init__(self, script: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.script = script
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8:  # [0, 1] floats, as FIDInceptionV3 accepts too
            images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return self.script(images, return_features=True).float()


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x)),
        ], dim=1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_avg_pool(x)),
        ], dim=1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, kernel_size=3, stride=2)],
                         dim=1)


class InceptionE(nn.Module):
    """The E block; ``max_pool`` selects the FID graph's max-pooled pool branch (its last block)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(pooled),
        ], dim=1)


class FIDInceptionV3(nn.Module):
    """``model(images) -> (N, 2048)`` pool features; images uint8 [0, 255] or float [0, 1], NCHW RGB."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, 1008)  # unused by FID; part of the weight file
        self.eval()

    def forward(self, images: Tensor) -> Tensor:
        return self.features(preprocess(images))

    def features(self, x: Tensor) -> Tensor:
        """Pool features of already preprocessed input ((N, 3, 299, 299) in [-1, 1])."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))


def preprocess(images: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] NCHW RGB -> (N, 3, 299, 299) float in [-1, 1], as pytorch-fid does."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected NCHW RGB images, got shape {tuple(images.shape)}")
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=False)
    return 2 * x - 1


def describe(model: nn.Module) -> DetectorInfo:
    """The detector behind ``model``: set by ``load_detector``; for another module, the hash of its weights."""
    info = getattr(model, "detector_info", None)
    if isinstance(info, DetectorInfo):
        return info
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not name.endswith("num_batches_tracked"):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return DetectorInfo("module", digest.hexdigest())


def load_detector(path: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu") -> nn.Module:
    """The FID feature network of ``path`` (or ``PGRF_INCEPTION``): pytorch-fid's state dict or NVIDIA's
    TorchScript detector, told apart by the file's content; ``describe`` says which one and its sha256."""
    weights = resolve_weights(path)
    if weights is None:
        raise PgrfError(f"no Inception weights configured: {_HOW_TO_FIX}")
    if not weights.is_file():
        raise PgrfError(f"Inception weights not found: {weights}; {_HOW_TO_FIX}")
    if is_torchscript(weights):
        model: nn.Module = _load_torchscript(weights, device)
        kind = "nvidia-torchscript"
    else:
        model, kind = load_inception(weights, device), "pytorch-fid"
    model.detector_info = DetectorInfo(kind, sha256(weights))
    return model


def _load_torchscript(path: Path, device: torch.device | str) -> NvidiaDetector:
    """NVIDIA's detector from a TorchScript archive whose code passed ``check_torchscript`` (no file operators)."""
    check_torchscript(path, _WHICH_FILES)
    try:
        detector = NvidiaDetector(torch.jit.load(str(path), map_location="cpu"))
        with torch.no_grad():
            features = detector(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    except Exception as error:  # TorchScript raises many types for a module with another signature
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PgrfError(f"{path}: a TorchScript module, but not NVIDIA's FID detector ({first[:120]}); {_WHICH_FILES}") from None
    if tuple(features.shape) != (1, FEATURE_DIM):
        raise PgrfError(f"{path}: a TorchScript module giving features of shape {tuple(features.shape)}, "
                        f"not (N, {FEATURE_DIM}); {_WHICH_FILES}")
    return detector.requires_grad_(False).to(device)


def resolve_weights(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The weights path from the argument or ``PGRF_INCEPTION``; None when neither is given."""
    chosen = path if path is not None else os.environ.get(INCEPTION_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def load_inception(path: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu") -> FIDInceptionV3:
    """The FID Inception with weights from ``path`` (or ``PGRF_INCEPTION``), in eval mode, no grads.

    Raises a one-line PgrfError when no path is configured, the file is missing or unreadable, or
    its state dict does not have exactly the standard names and shapes.
    """
    weights = resolve_weights(path)
    if weights is None:
        raise PgrfError(f"no Inception weights configured: {_HOW_TO_FIX}")
    if not weights.is_file():
        raise PgrfError(f"Inception weights not found: {weights}; {_HOW_TO_FIX}")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; all mean "not a weights file"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PgrfError(f"cannot read Inception weights {weights} ({first[:120]}): {_WHICH_FILES}") from None
    with torch.device("meta"):  # shapes only; the file's tensors become the parameters
        model = FIDInceptionV3()
    problem = state_dict_mismatch(model, state)
    if problem:
        raise PgrfError(f"Inception weights {weights} are not the FID InceptionV3 ({problem}); {_HOW_TO_FIX}")
    counters = {k: torch.zeros((), dtype=torch.long) for k in model.state_dict() if k.endswith("num_batches_tracked")}
    model.load_state_dict({**counters, **{k: v.float() if v.is_floating_point() else v for k, v in state.items()}},
                          assign=True)
    return model.requires_grad_(False).to(device).eval()


def state_dict_mismatch(model: nn.Module, state: object) -> str:
    """'' when ``state`` has the model's names and shapes (BatchNorm counters optional), else what differs."""
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        return "not a state dict of tensors"
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = sorted(expected.keys() - given.keys())
    unexpected = sorted(given.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & given.keys() if expected[k] != given[k])
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            detail = f" {given[keys[0]]} != {expected[keys[0]]}" if label == "wrong shape" else ""
            parts.append(f"{label}: {keys[0]}{detail}{more}")
    return "; ".join(parts)
