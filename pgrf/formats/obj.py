"""Wavefront OBJ files as pgrf checks them before Blender imports them: the ``.mtl`` libraries they name and the
texture maps those list, which Blender's OBJ importer reads by itself.

A library or map that leads out of the OBJ's folder (``..``, absolute, a drive, a link out) is refused, so an OBJ
cannot pull a local image into a render.
"""

from __future__ import annotations

from pathlib import Path

from pgrf import paths
from pgrf.errors import PgrfError

MAP_KEYWORDS = frozenset({
    "map_ka", "map_kd", "map_ks", "map_ns", "map_d", "map_ke", "map_bump", "bump", "map_refl", "refl", "disp", "decal",
    "norm", "map_pr", "map_pm", "map_ps", "map_pc", "map_pcr", "map_aniso", "map_anisor",
})
"""``.mtl`` statements naming a texture file (lower case), as Blender's importer and the MTL spec know them."""
OPTION_VALUES = {"-blendu": 1, "-blendv": 1, "-boost": 1, "-bm": 1, "-cc": 1, "-clamp": 1, "-imfchan": 1,
                 "-texres": 1, "-type": 1, "-mm": 2, "-o": 3, "-s": 3, "-t": 3}
"""Options that may precede a map's file name, with how many values each takes."""
FIX = "keep the .mtl and its textures in the OBJ's folder and name them relatively"


def material_libraries(path: Path) -> list[Path]:
    """The ``.mtl`` files ``path`` names (``mtllib``), each confined to the OBJ's folder."""
    libraries = []
    with path.open("rb") as handle:
        for raw in handle:
            if raw.startswith(b"mtllib"):
                keyword, _, rest = raw.decode("utf-8", errors="replace").strip().partition(" ")
                if keyword == "mtllib" and rest.strip():
                    libraries.append(paths.inside(path.parent, rest.strip(), f"{path}: mtllib", FIX, "the OBJ's folder"))
    return libraries


def texture_maps(library: Path) -> list[Path]:
    """The texture files a ``.mtl`` names, each confined to the library's folder."""
    maps = []
    for line in library.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.split()
        if words and words[0].lower() in MAP_KEYWORDS and len(words) > 1:
            name = _file_name(words[1:])
            if name:
                maps.append(paths.inside(library.parent, name, f"{library}: {words[0]}", FIX, "the OBJ's folder"))
    return maps


def check(path: Path) -> None:
    """Refuse an OBJ whose material libraries or texture maps lead out of its folder (a PgrfError naming the line)."""
    try:
        for library in material_libraries(path):
            if library.is_file():
                texture_maps(library)
    except OSError as error:
        raise PgrfError(f"{path}: cannot read it ({error.strerror})") from None


def problem(path: Path) -> str | None:
    """Why an OBJ cannot be rendered as it is, or None; the caller names the file."""
    try:
        check(path)
    except PgrfError as error:
        return str(error).removeprefix(f"{path}: ")
    return None


def _file_name(words: list[str]) -> str:
    """The file name of a map statement's arguments: what follows its options (it may hold spaces). An option's
    values beyond its first are taken only while they are numbers (``-o 0.5 tex.png`` gives ``tex.png``)."""
    index = 0
    while index < len(words) and words[index].lower() in OPTION_VALUES:
        count = OPTION_VALUES[words[index].lower()]
        index += 2
        while count > 1 and index < len(words) and _number(words[index]):
            index, count = index + 1, count - 1
    return " ".join(words[index:])


def _number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
