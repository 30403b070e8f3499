"""assets.toml loading and validation: one-line errors that name the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgrf.config import CONFIG_ENV, STUDIO_LIGHTS, RenderSettings, hdri_file, load_config, shipped_config, with_overrides
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


@pytest.mark.parametrize("text", ["radius = nan", "radius = inf", "fov = nan", "world_strength = inf",
                                  "world_rotation = inf", "world_rotation = -inf", "min_dim_product = nan"])
def test_every_float_of_the_config_must_be_finite(tmp_path: Path, text: str) -> None:
    key = text.split()[0]
    path = _write(tmp_path, f"[render]\n{text}\n")
    with pytest.raises(PgrfError, match=rf"assets\.toml: key 'render\.{key}' must be a finite number; got") as error:
        load_config(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("key", ["radius", "fov", "world_strength", "world_rotation", "min_dim_product", "timeout"])
def test_cli_overrides_of_a_float_must_be_finite(key: str) -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(PgrfError, match=rf"command line: key 'render\.{key}' must be a finite number"):
            with_overrides(RenderSettings(), **{key: value})


def test_a_library_that_is_a_file_and_an_exclude_that_is_a_folder_say_what_they_are(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGRF_LIBRARY", raising=False)
    (tmp_path / "library.zip").write_bytes(b"PK")
    cfg = load_config(_write(tmp_path, "library = 'library.zip'\n[categories.c]\n"))
    with pytest.raises(PgrfError, match=r"library\.zip \(from library in .*\) is a file, not a folder; pass --library "
                                        r"PATH of the library's folder"):
        cfg.library_root(cfg.category("c"))
    (tmp_path / "rejected").mkdir()
    with pytest.raises(PgrfError, match=r"key 'categories\.c\.exclude' names .*rejected, which is a folder; give a file"):
        load_config(_write(tmp_path, "[categories.c]\nexclude = 'rejected'\n"))


def test_cli_overrides_are_validated_like_the_file() -> None:
    settings = with_overrides(load_config(CONFIG).render, views=4, samples=None)
    assert settings.views == 4 and settings.samples == load_config(CONFIG).render.samples
    with pytest.raises(PgrfError, match="render.device"):
        with_overrides(settings, device="tpu")


@pytest.mark.render
def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "[render]\nsampels = 3\n")
    result = run_pgrf("assets", "list", "--category", "plants", "--config", str(path))
    assert result.returncode == 2
    assert "unknown key 'render.sampels'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.render
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
    assert hdri_file(load_config(tmp_path / "assets.toml").render.hdri) == (tmp_path / "sky.hdr").resolve()


def test_the_shipped_look_is_the_studio_light_without_dither() -> None:
    render = load_config(CONFIG).render
    assert (render.hdri, render.world_strength, render.world_rotation, render.dither) == ("studio", 1.0, 0.0, 0.0)
    assert RenderSettings().hdri == "studio" and RenderSettings().dither == 0.0


@pytest.mark.render
@pytest.mark.parametrize("name", STUDIO_LIGHTS)
def test_studio_lights_are_found_in_the_bpy_wheel(tmp_path: Path, name: str) -> None:
    render = load_config(_write(tmp_path, f"[render]\nhdri = '{name}'\nworld_rotation = 90\n")).render
    assert render.hdri == name and render.world_rotation == 90.0
    image = hdri_file(render.hdri)
    assert image.name == f"{name}.exr" and image.is_file() and image.read_bytes()[:4] == b"\x76\x2f\x31\x01"  # OpenEXR
    assert "All HDRIs are licensed as CC0." in (image.parent / "license.txt").read_text()


@pytest.mark.parametrize("value", ["none", "None", "", "  "])
def test_none_or_empty_is_the_even_white_light(tmp_path: Path, value: str) -> None:
    render = load_config(_write(tmp_path, f"[render]\nhdri = '{value}'\n")).render
    assert render.hdri == "none" and hdri_file(render.hdri) is None


def test_a_bad_studio_light_name_lists_the_valid_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "[render]\nhdri = 'studoi'\n")
    with pytest.raises(PgrfError) as error:
        load_config(path)
    message = str(error.value)
    assert f"{path}: key 'render.hdri' is 'studoi', which is no studio light; valid names: " + ", ".join(STUDIO_LIGHTS) in message
    assert "none" in message and "\n" not in message


@pytest.mark.parametrize("text, expected", [
    ("[render]\nworld_rotation = 'left'\n", "key 'render.world_rotation' must be float"),
    ("[render]\ndither = -1\n", "key 'render.dither' must be 0 or more"),
    ("[render]\nworld_strength = -0.5\n", "key 'render.world_strength' must be 0 or more"),
])
def test_bad_lighting_values_are_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(PgrfError, match=expected):
        load_config(_write(tmp_path, text))


def test_hdri_flag_takes_names_files_relative_to_the_working_folder_and_none(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_config(CONFIG).render
    assert with_overrides(settings, hdri="forest").hdri == "forest"
    assert with_overrides(settings, hdri="none").hdri == "none"
    assert with_overrides(settings, hdri=None).hdri == "studio"
    (tmp_path / "sky.exr").write_bytes(b"v/1\x01")
    monkeypatch.chdir(tmp_path)
    assert with_overrides(settings, hdri="sky.exr").hdri == str(tmp_path / "sky.exr")
    with pytest.raises(PgrfError, match="command line: key 'render.hdri' is 'moon', which is no studio light; valid names: studio"):
        with_overrides(settings, hdri="moon")
    with pytest.raises(PgrfError, match="names .*missing.hdr, which does not exist"):
        with_overrides(settings, hdri="missing.hdr")


@pytest.mark.render
def test_cli_error_keeps_brackets_of_the_fix() -> None:
    result = run_pgrf("render", "--category", "nope", "--config", str(CONFIG))
    assert result.returncode == 2
    assert "no category 'nope'" in result.stderr and "add [categories.nope]" in result.stderr.replace("\n", " ")


@pytest.mark.render
def test_hdri_flag_with_a_bad_name_stops_render_with_one_line() -> None:
    result = run_pgrf("render", "--category", "plants", "--config", str(CONFIG), "--hdri", "moon")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "key 'render.hdri' is 'moon', which is no studio light; valid names: studio, city, courtyard" in message
    assert "Traceback" not in result.stderr


def test_without_a_config_file_the_shipped_default_applies_from_the_working_folder(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    cfg = load_config()
    assert cfg.shipped and cfg.path == shipped_config() and cfg.base == tmp_path
    assert cfg.categories.keys() == load_config(CONFIG).categories.keys() >= {"plants", "food", "sample-plants"}
    (tmp_path / "sample-library").mkdir()
    assert cfg.library_root(cfg.category("sample-plants")) == tmp_path / "sample-library"  # relative to the working folder
    given = load_config(CONFIG)  # the same file given by path: relative to its own folder
    assert not given.shipped and given.base == CONFIG.parent
    with pytest.raises(PgrfError, match=r"config file nope.toml \(from --config\) not found; .*pgrf config init"):
        load_config("nope.toml")
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "gone.toml"))
    with pytest.raises(PgrfError, match=r"gone.toml \(from \$PGRF_CONFIG\) not found"):
        load_config()


def test_config_init_writes_the_shipped_file_and_show_says_where_each_value_came_from(tmp_path: Path) -> None:
    assert run_pgrf("config", "init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "assets.toml").read_text() == shipped_config().read_text()
    again = run_pgrf("config", "init", cwd=tmp_path)
    assert again.returncode == 2 and "assets.toml exists; edit it, pass --force" in again.stderr
    (tmp_path / "assets.toml").write_text('[render]\nviews = 8\n[categories.mine]\nmin_mean_alpha = 0.2\n')
    shown = run_pgrf("config", "show", cwd=tmp_path)
    assert shown.returncode == 0 and "found as ./assets.toml" in shown.stdout
    rows = {key.strip(): (value.split("#")[0].strip(), value.split("#")[1].strip())
            for key, value in (line.split(" = ", 1) for line in shown.stdout.splitlines() if " = " in line)}
    assert rows["render.views"] == ("8", "assets.toml") and rows["render.samples"] == ("32", "built-in default")
    assert rows["categories.mine.min_mean_alpha"] == ("0.2", "assets.toml") and "categories.plants.match" not in rows
    assert rows["render.passes"] == ("[]", "built-in default") and rows["render.hdri"] == ('"studio"', "built-in default")
    (tmp_path / "assets.toml").unlink()
    shipped = run_pgrf("config", "show", cwd=tmp_path)
    assert "found as the default pgrf ships" in shipped.stdout and "categories.plants.min_mean_alpha" in shipped.stdout


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "x" * 256])
def test_a_category_name_that_is_not_one_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, f'[categories."{name}"]\nsource = "folders"\n')
    with pytest.raises(PgrfError, match=r"category .* cannot name a folder under the output folder") as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


@pytest.mark.render
def test_render_of_a_category_named_to_leave_the_output_folder_stops_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[categories."../../x"]\nsource = "folders"\nlibrary = "."\n')
    result = run_pgrf("render", "-c", "../../x", "--config", str(path), "--out", str(tmp_path / "a" / "renders"))
    assert result.returncode == 2 and "cannot name a folder" in result.stderr.replace("\n", " ")
    assert not (tmp_path / "x").exists() and not (tmp_path / "a").exists()
