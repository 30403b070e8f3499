"""The Cycles device settings the scene configuration writes (pgrf.render.blender.scene), in bpy on a machine without
GPUs: the GPU cases get fake Cycles preferences listing the devices a pinned worker would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import pytest

from pgrf.config import RenderSettings
from pgrf.errors import PgrfError

pytestmark = pytest.mark.render

GPU = "NVIDIA H100 80GB HBM3"


@dataclass
class _Device:
    name: str
    type: str
    use: bool = True


@dataclass
class _Preferences:
    """Cycles' add-on preferences as a worker pinned to one GPU sees them: the CPU and that GPU under each backend
    Blender was built with; a backend this machine lacks is refused as Blender refuses it (TypeError)."""

    backends: tuple[str, ...]
    devices: list[_Device] = field(default_factory=list)
    refreshed: int = 0
    _type: str = "NONE"

    @property
    def compute_device_type(self) -> str:
        return self._type

    @compute_device_type.setter
    def compute_device_type(self, value: str) -> None:
        if value not in self.backends:
            raise TypeError(f"enum '{value}' not found")
        self._type = value

    def refresh_devices(self) -> None:
        self.refreshed += 1
        self.devices = [_Device("AMD EPYC", "CPU")] + [_Device(GPU, backend) for backend in self.backends]


@pytest.fixture
def scene() -> ModuleType:
    """pgrf's scene module (imports bpy) on a fresh scene."""
    from pgrf.render.blender import scene

    scene.reset()
    return scene


def _cycles():  # type: ignore[no-untyped-def]
    import bpy

    return bpy.context.scene.cycles


def test_a_pinned_gpu_renders_and_denoises_and_is_named(scene: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    prefs = _Preferences(("CUDA", "OPTIX"))
    assert scene._device("optix", prefs) == f"OPTIX: {GPU} (GPU 3)"
    assert _cycles().device == "GPU" and _cycles().denoising_use_gpu
    assert [(d.type, d.use) for d in prefs.devices] == [("CPU", False), ("CUDA", False), ("OPTIX", True)]


def test_auto_takes_cuda_where_optix_is_missing(scene: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    prefs = _Preferences(("CUDA",))
    assert scene._device("auto", prefs) == f"CUDA: {GPU}"
    assert _cycles().device == "GPU" and _cycles().denoising_use_gpu
    assert [d.use for d in prefs.devices if d.type == "CUDA"] == [True]


def test_auto_without_gpus_renders_and_denoises_on_the_cpu(scene: ModuleType) -> None:
    import bpy

    cycles = _cycles()
    cycles.denoising_use_gpu = True
    bpy.context.scene.render.threads_mode = "FIXED"
    bpy.context.scene.render.threads = 1
    description = scene._device("auto", _Preferences(()))
    assert (cycles.device, cycles.denoising_use_gpu) == ("CPU", False)
    assert description == "CPU: 1 thread"


def test_a_missing_gpu_stops_the_run_in_one_line(scene: ModuleType) -> None:
    with pytest.raises(PgrfError, match=r"^--device cuda: no CUDA device found; use --device auto or cpu$"):
        scene._device("cuda", _Preferences(("OPTIX",)))


def test_configure_names_the_cpu_threads_of_the_worker(scene: ModuleType) -> None:
    import bpy

    description = scene.configure(RenderSettings(device="cpu", hdri="none"), threads=3)
    assert description == "CPU: 3 threads"
    assert (bpy.context.scene.render.threads_mode, _cycles().device, _cycles().denoising_use_gpu) == ("FIXED", "CPU", False)
