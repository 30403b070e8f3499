"""What a training step keeps in memory, counted without running it, and the ``--batch-gpu`` that fits a card.

The activations a step holds at its peak are the tensors autograd saves for backward: G's forward and D's view of
its fakes before G's backward, and D on reals (with R1's graph) and fakes before D's. ``saved_bytes`` counts them
while a step runs on the ``meta`` device (shapes only, no numbers, no memory), phase by phase. The count is an
upper bound of what a real step holds (views of one tensor are counted once each, nothing is freed early) and
leaves out the framework's own workspace (cuDNN, the allocator's slack): ``pick_batch_gpu`` keeps a margin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

MARGIN = 0.15
"""The share of a card's free memory ``pick_batch_gpu`` leaves to workspace, fragmentation and what is not counted."""
WORKSPACE = 2 * 2**30
"""Bytes kept free besides the margin (cuDNN's workspace, the CUDA context of kernels loaded later)."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes of a step: the activations one sample keeps at each phase's peak, and the weights' share."""

    g_phase: int
    """Per sample, saved before G's backward."""
    d_phase: int
    """Per sample, saved before D's backward (R1's graph included on its steps)."""
    weights: int
    """G, D, G_ema, their gradients and Adam's two moments."""

    @property
    def per_sample(self) -> int:
        """The heavier phase's bytes per sample."""
        return max(self.g_phase, self.d_phase)

    def per_gpu(self, batch_gpu: int) -> int:
        """What one process holds with rounds of ``batch_gpu`` samples."""
        return self.weights + batch_gpu * self.per_sample


def weight_bytes(G: nn.Module, D: nn.Module) -> int:
    """G and D with gradients and two Adam moments each (4 copies), plus G_ema (one more of G)."""
    size = [sum(p.numel() * p.element_size() for p in module.parameters()) for module in (G, D)]
    return 5 * size[0] + 4 * size[1]


@contextmanager
def saved_bytes() -> Iterator[list[int]]:
    """Count the bytes autograd saves for backward; the list gets one entry per ``backward`` called inside (what
    was saved since the previous one)."""
    phases: list[int] = []
    counted = [0]
    real_backward = torch.Tensor.backward

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        counted[0] += tensor.numel() * tensor.element_size()
        return tensor

    def backward(self: torch.Tensor, *args: object, **kwargs: object) -> None:
        phases.append(counted[0])
        counted[0] = 0
        real_backward(self, *args, **kwargs)

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            yield phases
    finally:
        torch.Tensor.backward = real_backward  # type: ignore[method-assign]


def pick_batch_gpu(per_rank: int, group: int, memory: StepMemory, free: int) -> int:
    """The largest round size that divides ``per_rank`` into multiples of the minibatch-stddev ``group`` and whose
    step fits ``free`` bytes less the margin; the smallest such size when none fits (the run may then fail)."""
    budget = free * (1 - MARGIN) - WORKSPACE - memory.weights
    sizes = [size for size in range(1, per_rank + 1) if per_rank % size == 0 and (size == per_rank or size % group == 0)]
    fitting = [size for size in sizes if size * memory.per_sample <= budget]
    return max(fitting) if fitting else min(sizes)


def count_step(run_step: Callable[[], object], samples: int) -> tuple[int, int]:
    """(G phase, D phase) bytes per sample saved by ``run_step``, a step over ``samples`` in one round."""
    with saved_bytes() as phases:
        run_step()
    g_phase, d_phase = phases[0], phases[-1]
    return g_phase // samples, d_phase // samples
