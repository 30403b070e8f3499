"""The GPUs of a render run, counted without bpy (the orchestrator never imports it), and each worker's share.

The GPUs are the entries of ``CUDA_VISIBLE_DEVICES`` when it is set, else the indices ``nvidia-smi -L`` lists (no
``nvidia-smi``, or one that fails: no GPUs). Each worker process is started with ``CUDA_VISIBLE_DEVICES`` naming its
share, so Blender in it sees only those cards.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping

from pgrf.config import Device

VISIBLE = "CUDA_VISIBLE_DEVICES"
ORDER = "CUDA_DEVICE_ORDER"
PCI_ORDER = "PCI_BUS_ID"
"""nvidia-smi numbers GPUs by PCI bus; CUDA does too with this order (its default, FASTEST_FIRST, may not)."""
SMI_TIMEOUT_S = 30.0
_SMI_GPU = re.compile(r"^GPU (\d+):", re.MULTILINE)


def nvidia_smi_listing() -> str:
    """The output of ``nvidia-smi -L``; '' where it is missing, fails or hangs."""
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout if result.returncode == 0 else ""


def parse_nvidia_smi(listing: str) -> list[str]:
    """The GPU indices of an ``nvidia-smi -L`` listing (lines ``GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)``)."""
    return _SMI_GPU.findall(listing)


def visible_entries(value: str) -> list[str]:
    """The devices a ``CUDA_VISIBLE_DEVICES`` value names; CUDA ignores an entry like ``-1`` and every one after it."""
    entries = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry or entry.startswith("-"):
            break
        entries.append(entry)
    return entries


def worker_environments(device: Device, workers: int, environ: Mapping[str, str],
                        listing: str | None = None) -> list[dict[str, str]]:
    """The variables each of ``workers`` render workers is started with (``{}``: it inherits the environment as is),
    in an orchestrator whose environment is ``environ``; ``listing``: that of ``nvidia-smi -L`` (None: run it).

    ``--device cpu``, or no GPU found: nothing is set. Otherwise with at least as many workers as GPUs each worker
    gets one GPU, round-robin (worker i the GPU i mod G); with fewer, the GPUs are split into ``workers`` runs of
    neighbours (one worker renders on them all, as Cycles does with every card enabled)."""
    if device == "cpu":
        return [{} for _ in range(workers)]
    extra: dict[str, str] = {}
    if VISIBLE in environ:
        gpus = visible_entries(environ[VISIBLE])
    else:
        gpus = parse_nvidia_smi(nvidia_smi_listing() if listing is None else listing)
        if ORDER not in environ:
            extra[ORDER] = PCI_ORDER
    if not gpus:
        return [{} for _ in range(workers)]
    if workers >= len(gpus):
        shares = [[gpus[i % len(gpus)]] for i in range(workers)]
    else:
        shares = [gpus[len(gpus) * i // workers:len(gpus) * (i + 1) // workers] for i in range(workers)]
    return [{VISIBLE: ",".join(share), **extra} for share in shares]
