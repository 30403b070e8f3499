"""The train half's runtime: the device a process computes on and its place among ``torchrun`` ranks.

One code path for one process and for ``torchrun`` (DDP over gloo on CPU, NCCL on GPUs).

Gradients are averaged by one all-reduce per optimiser step over a flattened buffer (as StyleGAN2-ADA
does) rather than through a DDP wrapper, because G's output passes through D several times per step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from pgrf.devices import check_device_name
from pgrf.errors import PgrfError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a one-line error otherwise."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PgrfError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise PgrfError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPUs are visible (cuda:0 …)")
    return device


def allow_tf32(enabled: bool) -> None:
    """Whether CUDA matmuls and cuDNN convolutions may use TF32. PyTorch lets cuDNN use it by default; pgrf turns it
    off unless asked (G in full precision, the FID Inception exact), as StyleGAN2-ADA's code does."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def tune_cudnn() -> None:
    """Let cuDNN time its kernels for each new input shape and keep the fastest (``cudnn.benchmark``). The choice
    may differ from run to run, the maths does not (the same convolutions, up to round-off); ``setup`` calls it
    for CUDA devices."""
    torch.backends.cudnn.benchmark = True


@dataclass(frozen=True)
class Context:
    """This process's rank, the world size and the device it computes on (one process on the CPU by default)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @staticmethod
    def current(device: torch.device | None = None) -> Context:
        """The rank and world size of the joined process group (0 and 1 outside torchrun), computing on ``device``."""
        chosen = device if device is not None else torch.device("cpu")
        if dist.is_available() and dist.is_initialized():
            return Context(dist.get_rank(), dist.get_world_size(), chosen)
        return Context(device=chosen)

    @property
    def main(self) -> bool:
        """Rank 0 writes every output."""
        return self.rank == 0


def setup(device: str) -> Context:
    """Join the process group when started by torchrun and pick the device (``auto`` = CUDA if present); on CUDA,
    cuDNN picks its kernels per shape (``tune_cudnn``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local if world > 1 else chosen.index or 0)
        torch.cuda.set_device(chosen)
        tune_cudnn()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", rank=rank, world_size=world)
    return Context(rank, world, chosen)


def teardown() -> None:
    """Leave the process group (if any), after every rank has reached this point: a gloo rank that tears down
    while its peer is still finishing its last collective can abort at exit ("terminate called without an
    active exception", seen once in CI on the 2-rank CPU test)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, context: Context) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if context.world > 1:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: nn.Module, context: Context) -> None:
    """Average the gradients of ``module`` over ranks (one all-reduce); missing gradients count as zero."""
    if context.world == 1:
        return
    params = [p for p in module.parameters() if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
    dist.all_reduce(flat)
    flat /= context.world
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()


def average_buffers(module: nn.Module, context: Context) -> None:
    """Average floating-point buffers (e.g. the tracked average w, updated from each rank's own batch)."""
    if context.world == 1:
        return
    for buffer in module.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer.data)
            buffer.data /= context.world


def all_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum a tensor over ranks (identity in one process)."""
    if context.world > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def gather_objects(value: Any, context: Context) -> list[Any]:
    """Every rank's ``value``, in rank order."""
    if context.world == 1:
        return [value]
    values: list[Any] = [None] * context.world
    dist.all_gather_object(values, value)
    return values
