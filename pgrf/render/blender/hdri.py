"""The HDRI of the world light, decoded (not just found): ``bpy.data.images.load`` only checks that a file exists,
and an image Blender cannot decode renders magenta or black.

``check_hdri`` runs ``python -m pgrf.render.blender.hdri FILE`` (the render command's own process does not import
bpy), so an unreadable file stops the run before any worker starts; ``load_hdri`` is what each worker uses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pgrf.errors import PgrfError

if TYPE_CHECKING:
    import bpy

UNREADABLE = 3
"""The exit status of ``main`` for an image Blender cannot decode."""


def unreadable(image: Path) -> str:
    """The one-line error of an HDRI Blender cannot decode."""
    return (f"render.hdri: {image} does not decode as an image (not an HDR/EXR or other image Blender reads, or "
            "truncated); give a readable file, a studio light or none")


def load_hdri(image: Path) -> bpy.types.Image:
    """``image`` loaded and decoded into Blender, or a PgrfError naming it."""
    import bpy

    try:
        loaded = bpy.data.images.load(str(image), check_existing=True)
    except RuntimeError:
        raise PgrfError(f"render.hdri: cannot read {image}; give an existing .hdr/.exr file, a studio light or none") from None
    if loaded.size[0] == 0:  # asking for the size decodes the file; Blender reports 0×0 when it cannot
        raise PgrfError(unreadable(image))
    return loaded


def check_hdri(image: Path) -> None:
    """Decode ``image`` in a bpy subprocess, or raise the one-line PgrfError a worker would."""
    result = subprocess.run([sys.executable, "-m", "pgrf.render.blender.hdri", str(image)], capture_output=True, text=True)
    if result.returncode == UNREADABLE:
        raise PgrfError(unreadable(image))
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PgrfError(f"render.hdri: checking {image} in Blender failed: {tail[0]}")


def main(image: str) -> None:
    try:
        load_hdri(Path(image))
    except PgrfError:
        sys.exit(UNREADABLE)


if __name__ == "__main__":
    main(sys.argv[1])
