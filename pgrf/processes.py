"""Worker processes that end with their parent: ``kill -9`` of a pgrf command leaves no orphans.

Render workers call ``exit_with_parent`` when they start; the process pools of pack, import and review pass it
as their ``initializer`` (or call it from theirs).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

POLL_S = 1.0


def exit_with_parent() -> None:
    """Start a daemon thread that ends this process (exit status 1) within ``POLL_S`` of its parent's death, also
    when the parent died before this was called (a multiprocessing child knows its parent's pid from the start)."""
    started_by = multiprocessing.parent_process()
    parent = started_by.pid if started_by is not None else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
