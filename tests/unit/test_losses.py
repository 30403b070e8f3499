"""pgrf.train.losses' fused arithmetic: the one-call G EMA, Adam's per-device kernels and their state dicts; and runtime's cuDNN tuning."""

from __future__ import annotations

import copy

import torch
from torch import nn

from pgrf import runtime
from pgrf.model.generator import Generator
from pgrf.model.presets import preset
from pgrf.train.losses import adam, update_ema


def test_fused_ema_equals_the_per_parameter_formula_and_copies_buffers() -> None:
    torch.manual_seed(0)
    config = preset("tiny").with_dataset(32, 0)
    model, ema = Generator(config), Generator(config)
    with torch.no_grad():
        for param in ema.parameters():
            param.add_(torch.randn_like(param))
        for buffer in model.buffers():
            buffer.add_(1.0)
    beta = 0.9987
    pairs = list(zip(ema.parameters(), model.parameters()))
    per_parameter = [source.lerp(target, beta) for target, source in pairs]  # the formula of one call per parameter
    exact = [source.double() + beta * (target.double() - source.double()) for target, source in pairs]
    ulps = [4 * torch.finfo(torch.float32).eps * max(target.abs().max(), source.abs().max()).item() for target, source in pairs]
    update_ema(ema, model, beta)
    assert len(pairs) > 10
    for target, plain, wanted, ulp in zip(ema.parameters(), per_parameter, exact, ulps):  # round-off of the magnitudes
        torch.testing.assert_close(target.double(), wanted, rtol=0, atol=ulp)
        torch.testing.assert_close(target, plain, rtol=0, atol=ulp)
    for target, source in zip(ema.buffers(), model.buffers()):
        assert torch.equal(target, source)


def _trained(optimiser: torch.optim.Optimizer, layer: nn.Linear, steps: range) -> None:
    for index in steps:
        optimiser.zero_grad()
        layer(torch.full((2, 3), float(index + 1))).square().sum().backward()
        optimiser.step()


def test_adam_is_fused_on_cpu_and_cuda_and_resumes_an_unfused_optimisers_state() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    straight = copy.deepcopy(layer)
    _trained(adam(straight.parameters(), 0.01, (0.0, 0.99), torch.device("cpu")), straight, range(6))
    old = torch.optim.Adam(layer.parameters(), lr=0.01, betas=(0.0, 0.99), eps=1e-8, foreach=True)  # an older checkpoint's
    _trained(old, layer, range(2))
    second = adam(layer.parameters(), 0.01, (0.0, 0.99), torch.device("cpu"))
    second.load_state_dict(copy.deepcopy(old.state_dict()))
    assert second.param_groups[0]["fused"] and not second.param_groups[0]["foreach"]  # keeps its own kernel
    assert all(state["step"].dtype == torch.float32 for state in second.state.values())
    _trained(second, layer, range(2, 4))
    third = adam(layer.parameters(), 0.01, (0.0, 0.99), torch.device("cuda"))  # fused also runs on CPU tensors
    third.load_state_dict(copy.deepcopy(second.state_dict()))  # a CPU checkpoint resumed on CUDA
    assert third.param_groups[0]["fused"]
    _trained(third, layer, range(4, 6))
    assert float(third.state[layer.weight]["step"]) == 6
    for resumed, uninterrupted in zip(layer.parameters(), straight.parameters()):
        torch.testing.assert_close(resumed, uninterrupted)
    elsewhere = adam(nn.Linear(3, 2, device="meta").parameters(), 0.01, (0.0, 0.99), torch.device("meta"))
    assert elsewhere.param_groups[0]["foreach"] and not elsewhere.param_groups[0]["fused"]


def test_cuda_setup_lets_cudnn_pick_kernels(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    runtime.setup("cpu")
    assert not torch.backends.cudnn.benchmark
    runtime.tune_cudnn()
    assert torch.backends.cudnn.benchmark
