"""pgrf.extras: the modules each extra installs match pyproject.toml, and a command whose half is missing
stops with one line naming the extra."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib

import pytest
from typer.testing import CliRunner

from pgrf import extras
from pgrf.cli import app
from tests.helpers import REPO

SHARED_PINS = {"numpy", "pyarrow"}
"""Base dependencies an extra only narrows (bpy needs numpy 1, and so a pyarrow built for it)."""


def _requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower() for spec in specs}


@pytest.mark.parametrize("extra", ["render", "train"])
def test_each_extra_installs_the_modules_it_is_checked_by(extra: extras.Extra) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["optional-dependencies"][extra]) - SHARED_PINS
    distributions = importlib.metadata.packages_distributions()
    installed = {module: {d.lower() for d in distributions.get(module, [])} for module in extras.MODULES[extra]}
    provided = {d for module, dists in installed.items() for d in dists}
    missing = [m for m, dists in installed.items() if not dists & declared and importlib.util.find_spec(m) is not None]
    assert missing == []  # every checked module comes from a distribution the extra lists
    assert declared <= provided | {d for d in declared if importlib.util.find_spec(d.replace("-", "_")) is None}
    assert _requirement_names(project["optional-dependencies"]["all"]) == {"pgrf"}
    assert "bpy" not in _requirement_names(project["dependencies"]) and "torch" not in _requirement_names(project["dependencies"])


@pytest.mark.parametrize(("command", "extra"), [(["render", "-c", "plants"], "render"),
                                                (["assets", "make-sample", "lib"], "render"),
                                                (["train", "--shards", "shards"], "train"),
                                                (["sample", "ckpt.pt"], "train"),
                                                (["mesh", "ckpt.pt"], "train")])
def test_a_missing_half_is_one_line_naming_its_extra(command: list[str], extra: str, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    hidden = set(extras.MODULES[extra][:1])
    real = importlib.util.find_spec
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    with pytest.raises(SystemExit) as stop:
        from pgrf.cli import main

        monkeypatch.setattr("sys.argv", ["pgrf", *command])
        main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f'pip install "pgrf[{extra}]"' in err, err
    assert f"pgrf {command[0]}" in err


def test_help_works_without_either_half(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras.importlib.util, "find_spec", lambda name, *a: None)
    for command in (["--help"], ["train", "--help"], ["render", "--help"]):
        assert CliRunner().invoke(app, command).exit_code == 0
