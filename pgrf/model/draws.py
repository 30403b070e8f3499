"""The random numbers of one training step: drawn on the device for the whole batch, and sliced.

With gradient accumulation (``pgrf train --batch-gpu``) a step's batch goes through G and D in rounds of a few
samples. Every random draw inside them (synthesis noise, ray jitter, density noise, augmentation, D's dropout) goes
through a ``Draws``: its k-th draw of a step is made from a generator seeded by (step seed, k) for the whole batch,
then the round's rows are taken. So a sample gets the same numbers whatever the rounds (the step computes the
same function as one pass over the batch), and nothing is drawn on the host or copied to the device.
"""

from __future__ import annotations

import numpy as np
import torch


def step_seed(seed: int, rank: int, step: int, stream: str) -> int:
    """A 63-bit seed for one named stream (``"G"``, ``"D"``, …) of one rank at one step of a run seeded ``seed``."""
    return _mixed(seed, rank, step, *stream.encode())


def _mixed(*words: int) -> int:
    """A 63-bit seed mixed from non-negative ``words`` (numpy's SeedSequence: nearby words give unrelated seeds)."""
    return int(np.random.SeedSequence(words).generate_state(2, np.uint64)[0] >> np.uint64(1))


class Draws:
    """The draws of one stream of a step for ``batch`` samples, seen by the rows ``start:stop`` (a round).

    ``rand``/``randn`` take the shape of one sample and return (rows, *shape). The k-th call of every round must ask
    for the same shape: a round replays the step's sequence of draws."""

    def __init__(self, seed: int, batch: int, device: torch.device | str, start: int = 0, stop: int | None = None) -> None:
        self.seed, self.batch, self.device = seed, batch, torch.device(device)
        self.start, self.stop = start, batch if stop is None else stop
        self._calls = 0

    def rows(self, start: int, stop: int) -> Draws:
        """The same draws, seen by the samples ``start:stop`` of the batch (from the first draw on)."""
        return Draws(self.seed, self.batch, self.device, start, stop)

    @property
    def count(self) -> int:
        """Samples these rows cover."""
        return self.stop - self.start

    def rand(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """U[0, 1) numbers (rows, *shape)."""
        return self._draw(torch.rand, shape, dtype)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """N(0, 1) numbers (rows, *shape)."""
        return self._draw(torch.randn, shape, dtype)

    def _draw(self, kind: object, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        generator = None
        if self.device.type != "meta":  # meta tensors hold no numbers: nothing to seed
            generator = torch.Generator(self.device).manual_seed(_mixed(self.seed, self._calls))
        self._calls += 1
        whole = kind((self.batch, *shape), generator=generator, device=self.device, dtype=dtype)  # type: ignore[operator]
        return whole[self.start:self.stop]
