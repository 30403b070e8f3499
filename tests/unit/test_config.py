"""assets.toml loading and validation: one-line errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.config import load_config, with_overrides
from pgrf.errors import PgrfError
from tests.helpers import CONFIG, run_pgrf


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "assets.toml"
    path.write_text(text)
    return path


def test_shipped_config_is_valid() -> None:
    cfg = load_config(CONFIG)
    assert {"plants", "food", "sample-plants", "sample-food", "sample-models"} <= set(cfg.categories)
    assert cfg.categories["plants"].min_mean_alpha == 0.03
    assert cfg.render.views == 128 and cfg.render.radius == 3.5 and abs(cfg.render.fov - 0.785398) < 1e-5
    assert cfg.render.min_dim_product == 2.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[render]\nsampels = 3\n", "unknown key 'render.sampels'; did you mean 'samples'?"),
        ("[render]\nsamples = '32'\n", "key 'render.samples' must be int"),
        ("[render]\ndenoise = 1\n", "key 'render.denoise' must be bool"),
        ("[render]\ndevice = 'gpu'\n", "key 'render.device' must be one of"),
        ("[render]\nviews = 0\n", "key 'render.views' must be positive"),
        ("[render]\nradius = 1.0\n", "key 'render.radius' must exceed √3"),
        ("[categories.x]\nsource = 'zip'\n", "key 'categories.x.source' must be one of"),
        ("[categories.x]\nmin_mean_alpha = 2\n", "key 'categories.x.min_mean_alpha' must be in [0, 1]"),
        ("[categories.x]\nmatch = 'plant'\n", "key 'categories.x.match' must be a list"),
        ("librar = 'x'\n", "unknown key 'librar'; did you mean 'library'?"),
        ("render = 3\n", "key 'render' must be a table"),
        ("[render\n", "not valid TOML"),
    ],
)
def test_bad_config_is_a_one_line_error_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PgrfError) as error:
        load_config(path)
    message = str(error.value)
    assert expected in message
    assert str(path) in message and "\n" not in message


def test_library_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in_file").mkdir()
    (tmp_path / "from_env").mkdir()
    (tmp_path / "from_flag").mkdir()
    cfg = load_config(_write(tmp_path, "library = 'in_file'\n[categories.c]\n"))
    category = cfg.category("c")
    monkeypatch.delenv("PGRF_LIBRARY", raising=False)
    assert cfg.library_root(category) == tmp_path / "in_file"  # relative to the config file
    monkeypatch.setenv("PGRF_LIBRARY", str(tmp_path / "from_env"))
    assert cfg.library_root(category) == tmp_path / "from_env"
    assert cfg.library_root(category, str(tmp_path / "from_flag")) == tmp_path / "from_flag"


def test_missing_library_names_the_key_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGRF_LIBRARY", raising=False)
    cfg = load_config(_write(tmp_path, "library = 'nowhere'\n[categories.c]\n"))
    with pytest.raises(PgrfError, match=r"nowhere \(from library in .*assets.toml\) does not exist; pass --library PATH"):
        cfg.library_root(cfg.category("c"))
    with pytest.raises(PgrfError, match="no category 'd' \\(defined: c\\)"):
        cfg.category("d")


def test_cli_overrides_are_validated_like_the_file() -> None:
    settings = with_overrides(load_config(CONFIG).render, views=4, samples=None)
    assert settings.views == 4 and settings.samples == load_config(CONFIG).render.samples
    with pytest.raises(PgrfError, match="render.device"):
        with_overrides(settings, device="tpu")


def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "[render]\nsampels = 3\n")
    result = run_pgrf("assets", "list", "--category", "plants", "--config", str(path))
    assert result.returncode == 2
    assert "unknown key 'render.sampels'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_reports_missing_library(tmp_path: Path) -> None:
    result = run_pgrf("render", "--category", "plants", "--config", str(CONFIG), "--library", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "absent (from --library) does not exist" in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.stderr


def test_hdri_is_relative_to_the_config_and_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PgrfError, match="key 'render.hdri' names .*sky.hdr, which does not exist"):
        load_config(_write(tmp_path, "[render]\nhdri = 'sky.hdr'\n"))
    (tmp_path / "sky.hdr").write_bytes(b"#?RADIANCE\n")
    assert load_config(tmp_path / "assets.toml").render.hdri == str((tmp_path / "sky.hdr").resolve())


def test_cli_error_keeps_brackets_of_the_fix() -> None:
    result = run_pgrf("render", "--category", "nope", "--config", str(CONFIG))
    assert result.returncode == 2
    assert "no category 'nope'" in result.stderr and "add [categories.nope]" in result.stderr.replace("\n", " ")


def test_min_mean_alpha_override_then_category_then_zero() -> None:
    cfg = load_config(CONFIG)
    assert cfg.min_mean_alpha("plants", None) == 0.03
    assert cfg.min_mean_alpha("plants", 0.2) == 0.2
    assert cfg.min_mean_alpha("plants", 0.0) == 0.0
    assert cfg.min_mean_alpha("no-such-category", None) == 0.0
    assert cfg.min_mean_alpha("no-such-category", 0.1) == 0.1
