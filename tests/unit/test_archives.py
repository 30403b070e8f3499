"""Zipped assets are extracted once into a cache keyed by the zip, never into the library."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from pgrf.assets import archives
from pgrf.errors import PgrfError


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return path


def test_a_zip_is_extracted_once_into_the_cache_and_again_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))
    library = tmp_path / "library"
    library.mkdir()
    archive = _zip(library / "abc.zip", {"abc/abc.json": b"{}", "abc/abc_LOD0.fbx": b"x"})
    folder = archives.extracted(archive)
    assert (folder / "abc" / "abc.json").read_bytes() == b"{}" and folder.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in library.iterdir()) == ["abc.zip"]  # the library is untouched
    (folder / "marker").write_text("kept")
    assert archives.extracted(archive) == folder and (folder / "marker").is_file()  # not extracted again
    _zip(archive, {"abc/abc.json": b'{"id": "abc"}'})
    os.utime(archive, ns=(1, 1))
    changed = archives.extracted(archive)
    assert changed != folder and (changed / "abc" / "abc.json").read_bytes() == b'{"id": "abc"}'


def test_a_bad_zip_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(PgrfError, match=r"broken\.zip: not a readable zip"):
        archives.extracted(tmp_path / "broken.zip")
    escaping = _zip(tmp_path / "evil.zip", {"../outside.txt": b"x"})
    with pytest.raises(PgrfError, match="points outside the archive"):
        archives.extracted(escaping)
    assert not list((tmp_path / "cache" / "archives").glob(".tmp-*"))


@pytest.mark.parametrize("members, file, inside", [(["x", "x/y"], "x", "x/y"), (["x/y/z", "x/y"], "x/y", "x/y/z"),
                                                   (["a/x", "a/x/"], "a/x", "a/x/")])
def test_a_zip_holding_a_file_and_a_member_inside_it_is_one_problem_of_discovery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, members: list[str], file: str, inside: str) -> None:
    from pgrf.assets.discovery import discover
    from pgrf.config import Category
    from tests.libraries.gltf_assets import write_fab_zip

    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))
    library = tmp_path / "fab"
    library.mkdir()
    write_fab_zip(library, "tbdpec3r", "Wild Grass", "high")
    clashing = write_fab_zip(library, "sfmhcbkr", "Fern", "high")
    with zipfile.ZipFile(clashing, "a") as handle:
        for name in members:
            handle.writestr(name, b"" if name.endswith("/") else b"x")
    catalog = discover(library, Category(name="plants", source="fab", types=["3dplant"], match=["plant"]))
    assert {m.asset_id for m in catalog.models} == {"tbdpec3r"}
    assert [(p.path, p.reason) for p in catalog.problems] == [
        (str(clashing), f"{clashing}: member {inside!r} lies inside {file!r}, which the zip also holds as a file; "
                        "re-download it")]
