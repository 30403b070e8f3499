"""One code path for one process and for ``torchrun`` (DDP over gloo on CPU, NCCL on GPUs).

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

from pgrf.model.device import resolve_device


@dataclass(frozen=True)
class Context:
    """This process's rank, the world size and the device it computes on."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 writes every output."""
        return self.rank == 0


def setup(device: str) -> Context:
    """Join the process group when started by torchrun and pick the device (``auto`` = CUDA if present)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        chosen = torch.device("cuda", local if world > 1 else chosen.index or 0)
        torch.cuda.set_device(chosen)
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
