"""OBJ files checked before Blender imports them: the .mtl libraries and texture maps they name stay in their folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.assets.discovery import discover
from pgrf.config import Category
from pgrf.errors import PgrfError
from pgrf.formats import obj

CUBE = "".join(f"v {x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1)) + "usemtl skin\nf 1 2 4 3\nf 5 6 8 7\n"


def _obj(folder: Path, stem: str, mtl: str, library: str | None = None) -> Path:
    """``folder/stem.obj`` naming ``library`` (default ``stem.mtl``, written with the statements ``mtl``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.mtl").write_text(f"newmtl skin\nKd 0.8 0.8 0.8\n{mtl}\n")
    path = folder / f"{stem}.obj"
    path.write_text(f"# cube\nmtllib {library or stem + '.mtl'}\n{CUBE}")
    return path


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "secret.png").write_bytes(b"\x89PNG secret")
    return tmp_path / "private" / "secret.png"


@pytest.mark.parametrize("statement", ["map_Kd ../../private/secret.png", "map_Kd -o 0.5 {secret}",
                                       "map_Bump -bm 1.0 link.png", "map_Kd C:\\Users\\me\\secret.png"])
def test_an_obj_whose_maps_lead_out_of_its_folder_is_a_problem_and_is_refused(tmp_path: Path, secret: Path,
                                                                             statement: str) -> None:
    folder = tmp_path / "lib" / "props"
    (folder / "skin.png").parent.mkdir(parents=True)
    (folder / "skin.png").write_bytes(b"\x89PNG skin")
    (folder / "link.png").symlink_to(secret)
    _obj(folder, "good", "map_Kd -s 1 1 1 skin.png\nmap_Bump -bm 0.5 skin.png")
    bad = _obj(folder, "leaky", statement.format(secret=secret))
    catalog = discover(tmp_path / "lib", Category(name="props", source="folders"))
    assert [m.model_id for m in catalog.models] == ["props_good"]
    assert [p.path for p in catalog.problems] == [str(bad)]
    reason = catalog.problems[0].reason
    assert reason.startswith(f"{folder / 'leaky.mtl'}: map_") and "points outside the OBJ's folder" in reason
    with pytest.raises(PgrfError, match="points outside the OBJ's folder"):
        obj.check(bad)


def test_a_material_library_outside_the_folder_is_refused(tmp_path: Path, secret: Path) -> None:
    (secret.parent / "secret.mtl").write_text(f"newmtl skin\nmap_Kd {secret}\n")
    bad = _obj(tmp_path / "lib" / "props", "leaky", "", library="../../private/secret.mtl")
    assert obj.problem(bad) == ("mtllib '../../private/secret.mtl' points outside the OBJ's folder (it goes up with ..); "
                                f"{obj.FIX}")
