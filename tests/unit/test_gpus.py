"""The GPUs of a render run (pgrf.render.gpus): counted from CUDA_VISIBLE_DEVICES or ``nvidia-smi -L`` without bpy,
and each worker's share, as the variables it is started with."""

from __future__ import annotations

import pytest

from pgrf.render import gpus

UUIDS = ["GPU-6f1d3c2a-0b5e-4c1d-9a8e-1f2b3c4d5e6f", "GPU-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
         "GPU-11223344-5566-4778-899a-abbccddeeff0", "GPU-ffeeddcc-bbaa-4998-8776-655443322110"]
LISTING = "".join(f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: {uuid})\n" for i, uuid in enumerate(UUIDS))
"""What ``nvidia-smi -L`` prints on a 4-GPU node."""
MIG_LISTING = (f"GPU 0: NVIDIA A100-SXM4-40GB (UUID: {UUIDS[0]})\n"
               "  MIG 3g.20gb     Device  0: (UUID: MIG-5c2b1a0f-9e8d-5c7b-a6f5-e4d3c2b1a0f9)\n"
               f"GPU 1: NVIDIA A100-SXM4-40GB (UUID: {UUIDS[1]})\n")


def test_nvidia_smi_listing_gives_the_gpu_indices() -> None:
    assert gpus.parse_nvidia_smi(LISTING) == [str(i) for i in range(len(UUIDS))]
    assert gpus.parse_nvidia_smi(MIG_LISTING) == ["0", "1"]  # MIG lines are no GPUs of their own
    assert gpus.parse_nvidia_smi("") == []


def test_a_missing_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert gpus.nvidia_smi_listing() == ""
    assert gpus.worker_environments("auto", 2, {}) == [{}, {}]


def test_workers_over_the_gpus_of_nvidia_smi_take_one_each_round_robin() -> None:
    environments = gpus.worker_environments("optix", 6, {}, LISTING)
    assert [e[gpus.VISIBLE] for e in environments] == ["0", "1", "2", "3", "0", "1"]
    assert all(e[gpus.ORDER] == gpus.PCI_ORDER for e in environments)  # nvidia-smi's numbers are CUDA's


def test_a_device_order_the_user_set_is_kept() -> None:
    environments = gpus.worker_environments("cuda", 2, {gpus.ORDER: "FASTEST_FIRST"}, LISTING[:LISTING.index("GPU 2")])
    assert environments == [{gpus.VISIBLE: "0"}, {gpus.VISIBLE: "1"}]


def test_the_users_visible_devices_are_shared_out() -> None:
    environ = {gpus.VISIBLE: f"2, 3,{UUIDS[0]}"}
    environments = gpus.worker_environments("auto", 4, environ, LISTING)  # nvidia-smi is not asked
    assert environments == [{gpus.VISIBLE: v} for v in ("2", "3", UUIDS[0], "2")]


def test_fewer_workers_than_gpus_split_them_into_neighbours() -> None:
    assert gpus.worker_environments("auto", 1, {gpus.VISIBLE: "0,1,2,3"}) == [{gpus.VISIBLE: "0,1,2,3"}]
    assert gpus.worker_environments("auto", 3, {gpus.VISIBLE: "0,1,2,3"}) == [{gpus.VISIBLE: v} for v in ("0", "1", "2,3")]


@pytest.mark.parametrize("value", ["", "-1", "-1,0"])
def test_visible_devices_that_hide_every_gpu_set_nothing(value: str) -> None:
    assert gpus.visible_entries(value) == []
    assert gpus.worker_environments("cuda", 2, {gpus.VISIBLE: value}, LISTING) == [{}, {}]


def test_an_invalid_entry_hides_the_ones_after_it() -> None:
    assert gpus.visible_entries("1,-1,0") == ["1"]


def test_cpu_renders_leave_the_environment_alone() -> None:
    assert gpus.worker_environments("cpu", 3, {}, LISTING) == [{}, {}, {}]
    assert gpus.worker_environments("cpu", 2, {gpus.VISIBLE: "0,1"}, LISTING) == [{}, {}]
