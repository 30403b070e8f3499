"""A TorchScript archive (``torch.jit.save``), read as a zip before torch is let to run it.

The archive holds ``<name>/code/**/*.py`` (TorchScript source), ``data.pkl`` and ``constants.pkl`` (read by torch's
own unpickler, which builds TorchScript classes and tensors only, never Python globals) and the tensor records.
TorchScript runs in torch's interpreter, without Python, but a few of its operators reach the file system: an archive
whose code calls one of them, a custom operator library or custom C++ class is refused here, so a downloaded detector
can compute features and nothing else. The rule is a deny list of names (``FILE_OPERATOR``, ``OPERATOR_NAMESPACES``):
a network of tensor operators, as NVIDIA's FID Inception is, passes it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from pgrf.errors import PgrfError
from pgrf.limits import check_member

CALL = re.compile(r"\b(torch|ops)\.([A-Za-z_][\w.]*)")
"""A qualified name in TorchScript's serialized code: ``torch.conv2d``, ``ops.aten.cat``, ``torch.classes.ns.C``."""
FILE_OPERATOR = re.compile(r"file|save|load|open|pickle|exec|system|mmap|path", re.IGNORECASE)
"""Operator names that read or write files (``torch.from_file``: a tensor mapped onto any file, shared for writing)."""
OPERATOR_NAMESPACES = frozenset({"aten", "prim", "quantized"})
"""The namespaces of ``ops.NS.name`` built into torch; any other is a custom library's."""


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/`` and ``constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def check_torchscript(path: Path, fix: str) -> None:
    """Refuse, in one line naming the file, the member and the name (then ``fix``), a TorchScript archive whose code
    calls a file operator, a custom operator or a custom class."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/code/" not in info.filename or not info.filename.endswith(".py"):
                continue
            check_member(info, str(path))
            source = archive.read(info).decode("utf-8", errors="replace")
            for root, name in CALL.findall(source):
                first = name.split(".")[0]
                custom = (root == "ops" and first not in OPERATOR_NAMESPACES) or (root == "torch" and first == "classes")
                if custom or FILE_OPERATOR.search(name):
                    what = "a custom operator or class" if custom else "an operator that reaches files"
                    raise PgrfError(f"{path}: its TorchScript code ({info.filename}) calls {root}.{name}, {what}; "
                                    f"not run. {fix}")
