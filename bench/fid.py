"""Feature extraction speed of the two FID detectors pgrf accepts: seconds per 1,000 images.

Both detectors are the same InceptionV3 with random weights (no weights file is downloaded or shipped):
- ``pytorch-fid``: pgrf's FIDInceptionV3 loaded from a state-dict file (resize to 299² in PyTorch);
- ``nvidia-torchscript``: a TorchScript archive with NVIDIA's call signature (``detector(uint8 NCHW,
  return_features=True)``, resize inside the graph) made by scripting the same network — NVIDIA's file is
  not available here, so this times the loading path and the network, not NVIDIA's exact graph.

    .venv/bin/python bench/fid.py --images 128 --resolution 256 [--device cuda] [--json bench-fid.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import report
from torch import nn

from pgrf.evaluate.inception import INPUT_SIZE, FIDInceptionV3, load_detector


class ScriptedInception(nn.Module):
    """FIDInceptionV3 (traced: its blocks are not scriptable) behind NVIDIA's call signature, for ``torch.jit.script``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.jit.trace(FIDInceptionV3().eval(), torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE))

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.net(img.to(torch.float32) / 255)


def seconds_per_1k(detector: nn.Module, images: torch.Tensor, batch: int) -> float:
    with torch.no_grad():
        detector(images[:batch])  # warm-up (TorchScript profiles its first calls)
        start = time.perf_counter()
        for first in range(0, len(images), batch):
            detector(images[first:first + batch])
        if images.device.type == "cuda":
            torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(images) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, args.resolution, args.resolution), dtype=torch.uint8, device=args.device)
    figures: dict[str, float | int | str] = {"images": args.images, "resolution": args.resolution, "device": args.device,
                                             "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "pt_inception.pth"
        torch.save({k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}, state)
        script = Path(tmp) / "inception-2015-12-05.pt"
        torch.jit.script(ScriptedInception().eval()).save(str(script))
        for name, path in (("pytorch-fid", state), ("nvidia-torchscript", script)):
            figures[f"{name}_s_per_1k_images"] = seconds_per_1k(load_detector(path, args.device), images, args.batch)
    report("FID feature extraction", figures, args.json)


if __name__ == "__main__":
    main()
