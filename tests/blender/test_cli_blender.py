"""The command line with Blender: `pgrf assets make-sample` (a Blender export) keeps its summary one line in a log file."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_pgrf


def test_summary_is_one_line_in_a_log_file(tmp_path: Path) -> None:
    target = tmp_path / ("a-long-folder-name-for-the-sample-library-" * 3) / "sample-library"
    result = run_pgrf("assets", "make-sample", str(target))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("wrote ")]
    assert len(lines) == 1 and lines[0].endswith(f" to {target}"), result.stdout
