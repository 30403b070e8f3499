"""Zipped assets are extracted once into a cache keyed by the zip, never into the library."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from pgrf import limits
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


def test_a_zip_inflating_beyond_the_limits_is_refused_before_anything_is_written(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("bomb/bomb.json", b"{}")
        with handle.open("bomb/bomb_Albedo.exr", "w") as member:  # 64 MiB of zeros: ~64 kB deflated
            for _ in range(64):
                member.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(PgrfError, match=r"bomb\.zip:bomb/bomb_Albedo\.exr: inflates \d+ bytes to 67108864, over 100x; "
                                        r"not read") as error:
        archives.extracted(bomb)
    assert "\n" not in str(error.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # no disk spent

    monkeypatch.setattr(limits, "MAX_ARCHIVE_BYTES", 3 << 20)  # members that compress as textures do, too many bytes
    many = _zip(tmp_path / "many.zip", {f"many/{i}.png": os.urandom(1 << 20) for i in range(4)})
    with pytest.raises(PgrfError, match=r"many\.zip: declares 4194304 bytes inflated, over the limit of 3145728; not extracted"):
        archives.extracted(many)
    monkeypatch.setattr(limits, "MAX_MEMBER_BYTES", 1 << 19)
    with pytest.raises(PgrfError, match=r"many\.zip:many/0\.png: declares 1048576 bytes inflated, over the limit of 524288"):
        archives.extracted(many)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_member_inflating_past_its_declared_size_is_not_extracted_past_it(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(archives.CACHE_ENV, str(tmp_path / "cache"))
    lying = _zip(tmp_path / "lying.zip", {"lying/lying.json": os.urandom(1 << 20)})
    data = bytearray(lying.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (1000).to_bytes(4, "little")  # the directory declares 1000 bytes inflated
    lying.write_bytes(bytes(data))
    with pytest.raises(PgrfError, match=r"lying\.zip: not a readable zip \(Bad CRC-32"):
        archives.extracted(lying)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
