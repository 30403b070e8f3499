"""Device names of the train half's ``--device`` flags: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

Checked here without torch, so options and flags are validated on any install; ``pgrf.runtime`` turns a name
into a device.
"""

from __future__ import annotations

import re

from pgrf.errors import PgrfError

DEVICE_CHOICES = "auto | cpu | cuda[:N]"


def check_device_name(name: str) -> None:
    """A one-line error unless ``name`` is auto, cpu, cuda or cuda:N (whether a GPU is there is not checked)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise PgrfError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
