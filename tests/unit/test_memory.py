"""A step's memory: saved tensors counted per backward, on meta as on a real step, and the round size that fits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pgrf import runtime
from pgrf.config import load_config
from pgrf.pipeline.pack import PackOptions, pack
from pgrf.pipeline.synthetic import fake_renders
from pgrf.train import loop
from pgrf.train.memory import StepMemory, count_step, pick_batch_gpu, saved_bytes
from pgrf.train.options import TrainOptions
from tests.helpers import CONFIG


def test_saved_bytes_counts_what_each_backward_needs() -> None:
    a, b = torch.randn(10, requires_grad=True), torch.randn(10, requires_grad=True)
    with saved_bytes() as phases:
        (a * b).sum().backward()  # mul keeps both factors: 2 × 10 float32
        (a.double().exp()).sum().backward()  # exp keeps its float64 output
    assert phases == [80, 80]
    assert torch.Tensor.backward.__name__ == "backward" and a.grad is not None


def test_the_meta_count_is_what_a_real_step_saves(tmp_path: Path) -> None:
    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=4)]
    pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16))
    options = TrainOptions(shards=str(tmp_path / "shards"), out=str(tmp_path), preset="tiny", workers=0, r1_interval=1)
    group = loop.build(options, runtime.setup("cpu")).config.mbstd_group
    run = loop.build(TrainOptions(**{**vars(options), "batch": group}), runtime.setup("cpu"))
    estimate = loop.step_memory(run)
    real = count_step(lambda: loop.step(run, next(loop.batches_of(run))), group)
    assert (estimate.g_phase, estimate.d_phase) == real and min(real) > 0


@pytest.mark.parametrize(("free_gib", "expected"), [(200, 64), (40, 16), (3, 4)])
def test_the_largest_round_that_fits_is_picked(free_gib: int, expected: int) -> None:
    memory = StepMemory(g_phase=2**30, d_phase=2**29, weights=2**30)  # 1 GiB a sample, 1 GiB of weights
    assert pick_batch_gpu(64, 4, memory, free_gib * 2**30) == expected  # 40 GiB: 0.85·40 − 2 − 1 = 31 → 16
    assert memory.per_gpu(16) == 17 * 2**30


def test_on_cuda_the_run_takes_the_round_that_fits_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from pgrf.progress import Reporter

    class Notes(Reporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def note(self, text: str, kind: str = "note") -> None:
            self.lines.append(text)

    renders = [fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.5, "b_var1": 0.6}, views=4)]
    pack(renders, tmp_path / "shards", load_config(CONFIG), PackOptions(resolution=16))
    run = loop.build(TrainOptions(shards=str(tmp_path / "shards"), out=str(tmp_path), preset="tiny", workers=0, batch=64),
                     runtime.setup("cpu"))
    run.context = replace(run.context, device=torch.device("cuda"))  # as the run sees a card; nothing runs on it
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 * 2**30, 80 * 2**30))
    notes = Notes()
    loop.fit_batch_gpu(run, StepMemory(g_phase=2**30, d_phase=2**29, weights=2**30), notes)
    assert run.options.batch_gpu == 16 and len(notes.lines) == 1 and notes.lines[0].startswith("--batch-gpu 16: about 17,408 MiB")
    run.options = replace(run.options, batch_gpu=8)
    loop.fit_batch_gpu(run, StepMemory(g_phase=2**30, d_phase=2**29, weights=2**30), notes)
    assert run.options.batch_gpu == 8 and len(notes.lines) == 1  # a given --batch-gpu is kept
