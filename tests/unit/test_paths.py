"""pgrf.paths: outside names refused when they leave their root, long names shortened stably."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.paths import Outside, folder_name, inside, short_name


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "/etc/passwd", "file:///etc/passwd", "C:/x.png",
                                  "..\\x.png", "\\\\server\\x.png", "", "x\0.png"])
def test_names_that_leave_the_root_are_refused_in_one_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(Outside, match=r"^model\.gltf: image .* points outside its folder .*; fix it$"):
        inside(tmp_path, name, "model.gltf: image", "fix it")


def test_a_link_out_of_the_root_is_refused_but_a_root_that_is_a_link_is_read(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "tex.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"s")
    (tmp_path / "real" / "leak.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "library").symlink_to(tmp_path / "real")
    assert inside(tmp_path / "library", "tex.png", "m", "f").read_bytes() == b"x"
    with pytest.raises(Outside, match="a link leads out of it"):
        inside(tmp_path / "library", "leak.png", "m", "f")


def test_long_names_are_shortened_the_same_way_every_time() -> None:
    long = "leaf_" * 100
    short = short_name(long)
    assert len(short.encode()) == 255 and short.startswith("leaf_leaf") and short == short_name(long)
    assert short_name(long + "x") != short and short_name("leaf") == "leaf"
    assert len(short_name("é" * 200, 100).encode()) <= 100


@pytest.mark.parametrize("name", ["../../x", "a/b", ".", "..", "x" * 256])
def test_category_names_must_be_one_folder(name: str) -> None:
    assert folder_name(name) is not None and folder_name("plants-2") is None


def test_an_archive_member_through_a_linked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "up").symlink_to(tmp_path)
    with pytest.raises(Outside, match="a link leads out of it"):
        inside(tmp_path / "root", "up/x.txt", "a.zip: member", "re-download it", "the archive")
    assert inside(tmp_path / "root", "new/x.txt", "a.zip: member", "f") == (tmp_path / "root" / "new" / "x.txt").resolve()
