"""The command line: help without type names, defaults read from the dataclasses that own them, one device-name
check (logs that stay one line per message in files: tests/blender/test_cli_blender.py)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pgrf.cli import app
from pgrf.cli.render import RENDER_HELP
from pgrf.cli.train import DRY_RUN_HELP, HELP
from pgrf.config import load_config
from pgrf.devices import check_device_name
from pgrf.errors import PgrfError
from pgrf.evaluate.options import FidOptions, MeshOptions, SampleOptions, VideoOptions
from pgrf.model.presets import PRESETS, Preset
from pgrf.pipeline.import_zip import ZipOptions
from pgrf.pipeline.options import ExportOptions, StatsOptions
from pgrf.pipeline.pack import PackOptions
from pgrf.pipeline.synthetic import fake_renders
from pgrf.render.options import RenderRun
from pgrf.review.page import ReviewOptions
from pgrf.runtime import resolve_device
from pgrf.train.options import TrainOptions
from tests.helpers import CONFIG, run_pgrf


def _params(*command: str) -> dict[str, typer.core.click.Parameter]:
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    for name in command:
        group = group.get_command(ctx, name)
    return {p.name: p for p in group.params}


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_train_option_is_a_flag_with_the_dataclass_default_and_help() -> None:
    params = _params("train")
    for field in dataclasses.fields(TrainOptions):
        assert field.name in params and HELP[field.name], field.name
        if field.default is not dataclasses.MISSING:
            assert params[field.name].default == field.default, field.name
    assert set(HELP) == {f.name for f in dataclasses.fields(TrainOptions)}
    assert "--ada" in params["augment"].opts and "--unconditional" in params["conditional"].secondary_opts
    assert set(params) == set(HELP) | {"dry_run"}  # the one flag that is not a training option
    assert params["dry_run"].opts == ["--dry-run"] and params["dry_run"].help == DRY_RUN_HELP and not params["dry_run"].default


@pytest.mark.parametrize(("command", "options", "left_out"), [
    (("pack",), PackOptions, set()), (("review",), ReviewOptions, set()), (("import", "zip"), ZipOptions, set()),
    (("render",), RenderRun, set()), (("train",), TrainOptions, set()), (("stats",), StatsOptions, set()),
    (("export",), ExportOptions, set()), (("fid",), FidOptions, set()), (("sample",), SampleOptions, set()),
    (("video",), VideoOptions, set()), (("mesh",), MeshOptions, set()),
    (("import", "zip"), PackOptions, {"mirror", "min_mean_alpha", "skip_bad"}),  # a zip is mirrored only when asked
])
def test_every_option_is_a_flag_with_the_dataclass_default(command: tuple[str, ...], options: type, left_out: set[str]) -> None:
    params = _params(*command)
    for field in dataclasses.fields(options):
        if field.name in left_out:
            continue
        if field.default is dataclasses.MISSING:
            assert params[field.name].required, (command, field.name)
        else:
            assert params[field.name].default == field.default, (command, field.name)
    if "mirror" in params and options is PackOptions:
        assert params["mirror"].default is (command != ("import", "zip"))


def test_an_enumerated_option_is_text_checked_in_one_line(tmp_path: Path) -> None:
    assert _params("import", "zip")["world"].type_descriptor.annotation is str  # a Literal field: no Typer choice box
    result = run_pgrf("import", "zip", str(tmp_path / "x.zip"), "--world", "up")
    assert result.returncode == 2 and result.stderr.strip().endswith("--world must be one of zup, yup; got 'up'")
    with pytest.raises(PgrfError, match="--fake-poses must be one of sphere, data; got 'grid'"):
        TrainOptions(shards="s", fake_poses="grid")  # type: ignore[arg-type]
    with pytest.raises(PgrfError, match="--preset must be one of paper, small, tiny"):
        TrainOptions(shards="s", preset="huge")  # type: ignore[arg-type]
    assert set(PRESETS) == set(typing.get_args(Preset))


def test_render_flags_override_the_config_only_when_given() -> None:
    params = _params("render")
    assert all(params[name].default is None for name in RENDER_HELP)
    assert params["passes"].type_descriptor.annotation is params["device"].type_descriptor.annotation is str


@pytest.mark.parametrize("command", [("render",), ("train",), ("pack",), ("sample",), ("assets", "list"), ()])
def test_help_shows_no_type_names(command: tuple[str, ...]) -> None:
    text = _help(*command)
    for noise in ("<bool>", "<int>", "<float>", "<str>", "<path>", "list[", "INTEGER", "FLOAT", "TEXT"):
        assert noise not in text, noise


def test_render_help_shows_the_config_values() -> None:
    render = load_config(CONFIG).render
    text = _help("render")
    assert f"[config: {render.views}]" in text and f"[config: {render.resolution}]" in text
    assert "[default: the first render folder]" in _help("pack")


def test_device_names() -> None:
    for name in ("auto", "cpu", "cuda", "cuda:1"):
        check_device_name(name)
    for name in ("gpu", "mps", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(PgrfError, match="unknown device"):
            check_device_name(name)
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(PgrfError, match="unknown device"):
        TrainOptions(shards="x", device="gpu")


def test_bad_train_device_is_one_line(tmp_path: Path) -> None:
    result = run_pgrf("train", "--shards", str(tmp_path), "--device", "gpu")
    assert result.returncode == 2 and result.stderr.strip() == "error: unknown device 'gpu'; use auto, cpu, cuda or cuda:N"


def test_every_command_after_render_runs_in_a_folder_without_assets_toml(tmp_path: Path) -> None:
    fake_renders(tmp_path / "renders", "plants", {"a_var1": 0.4, "b_var1": 0.5, "thin_var1": 0.01}, recorded_alpha=None)
    packed = run_pgrf("pack", "--out", "shards", "--resolution", "16", cwd=tmp_path)  # no RENDERS: ./renders' category
    assert packed.returncode == 0, packed.stderr
    assert "renders/plants records no filters" in " ".join(packed.stderr.split())  # older renders: announced defaults
    assert "filters removed 1 sparse" in packed.stdout  # the shipped plants' min_mean_alpha 0.03 left out thin_var1
    for command in (["stats", "shards"], ["stats", "renders"], ["verify", "shards"], ["export", "shards", "--out", "d.zip"],
                    ["review", "renders", "--out", "review"], ["import", "zip", "d.zip", "--out", "again"],
                    ["train", "--shards", "shards", "--dry-run", "--preset", "tiny", "--device", "cpu"]):
        result = run_pgrf(*command, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr[-600:])
    assert not (tmp_path / "assets.toml").exists() and (tmp_path / "runs" / "plants-tiny" / "config.json").is_file()


def test_pack_without_renders_names_the_categories_it_could_pack(tmp_path: Path) -> None:
    assert "no category folder in renders/" in run_pgrf("pack", cwd=tmp_path).stderr
    for category in ("food", "plants"):
        fake_renders(tmp_path / "renders", category, {f"{category}_var1": 0.4})
    result = run_pgrf("pack", "--out", "shards", cwd=tmp_path)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "renders/ holds 2 categories (food, plants); pack one" in message
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "shards").exists()
