"""A render worker process: it imports bpy itself and renders the jobs sent to it over a pipe.

Blender's own output (C-level stdout/stderr) goes to ``.logs/<model_id>.log`` in the category folder,
so the orchestrator can quote its tail when a model fails. The worker ignores Ctrl-C (the parent
decides) and exits on its own when the parent dies, so ``kill -9`` of the parent leaves no orphans.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path

from pgrf.formats.renders import RenderRecord, Status
from pgrf.processes import exit_with_parent

LOG_DIR = ".logs"
TAIL_LINES = 20


def log_path(category_dir: Path, model_id: str) -> Path:
    return category_dir / LOG_DIR / f"{model_id}.log"


def output_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines Blender printed while rendering a model ('' if none)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(line for line in text[-lines:] if not line.startswith("Fra:"))


def _redirect_output(path: Path) -> None:
    """Point this process's stdout and stderr (the file descriptors, which Blender writes to) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def worker_main(conn: Connection, environment: dict[str, str]) -> None:
    """Set ``environment`` (e.g. the worker's CUDA_VISIBLE_DEVICES: bpy is not imported yet), then receive RenderJobs
    until None; answer ('start', None), then ('view', index) per view, then ('done', RenderRecord) or, for a setting no
    model can satisfy, ('fatal', reason)."""
    os.environ.update(environment)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()
    from pgrf.errors import PgrfError
    from pgrf.render.blender.importing import ImportFailed
    from pgrf.render.blender.model import render_model  # imports bpy

    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        _redirect_output(log_path(Path(job.category_dir), job.spec.model_id))
        conn.send(("start", None))
        failed = RenderRecord(job.spec.model_id, Status.FAILED, asset_id=job.spec.asset_id)
        try:
            record = render_model(job, on_view=lambda index: conn.send(("view", index)))
        except ImportFailed as exc:
            record = replace(failed, reason=str(exc))
        except PgrfError as exc:  # a setting no model can satisfy (device, HDRI): the run must stop
            conn.send(("fatal", str(exc)))
            continue
        except Exception as exc:  # anything else Blender raises: log it, keep the worker going
            traceback.print_exc()
            record = replace(failed, reason=f"{type(exc).__name__}: {exc}")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        conn.send(("done", replace(record, worker_peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
