"""The command line: help without type names, defaults read from the dataclasses that own them, one device-name
check (logs that stay one line per message in files: tests/blender/test_cli_blender.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pgrf.cli import app
from pgrf.cli.train import DRY_RUN_HELP, HELP
from pgrf.config import load_config
from pgrf.devices import check_device_name
from pgrf.errors import PgrfError
from pgrf.pipeline.pack import PackOptions
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


def test_pack_flags_default_to_pack_options() -> None:
    params = _params("pack")
    for name in ("resolution", "mirror", "background", "samples_per_shard", "seed", "min_mean_alpha", "workers", "skip_bad"):
        assert params[name].default == getattr(PackOptions, name), name


@pytest.mark.parametrize("command", [("render",), ("train",), ("pack",), ("sample",), ("assets", "list"), ()])
def test_help_shows_no_type_names(command: tuple[str, ...]) -> None:
    text = _help(*command)
    for noise in ("<bool>", "<int>", "<float>", "<str>", "<path>", "list[", "INTEGER", "FLOAT", "TEXT"):
        assert noise not in text, noise


def test_render_help_shows_the_config_values() -> None:
    render = load_config(CONFIG).render
    text = _help("render")
    assert f"[config: {render.views}]" in text and f"[config: {render.resolution}]" in text
    assert "[default: the first category]" in _help("pack")


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
