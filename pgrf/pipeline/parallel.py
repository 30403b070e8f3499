"""Work on many jobs in this process or in spawned worker processes, reporting their progress (import, review)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from pgrf.errors import PgrfError
from pgrf.processes import exit_with_parent
from pgrf.progress import Reporter

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(jobs: list[T], work: Callable[[T], R], workers: int, label: str, reporter: Reporter, kept: str,
                 count: Callable[[T], int] = lambda job: 1) -> Iterator[tuple[T, R]]:
    """Run ``work`` (a module-level function) on every job, in this process (one worker or one job) or in
    ``workers`` spawned processes (which exit when this one dies),
    reporting the task ``label`` advanced by ``count(job)``; yields (job, result) as
    jobs finish. On Ctrl-C or an error nothing new starts; a dead worker is a PgrfError saying ``kept`` (what stays
    done) and how to go on."""
    with reporter.task(label, total=sum(count(job) for job in jobs)) as advance:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                yield job, work(job)
                advance(count(job))
            return
        with ProcessPoolExecutor(min(workers, len(jobs)), multiprocessing.get_context("spawn"),
                                 initializer=exit_with_parent) as pool:
            pending: dict[Future, T] = {pool.submit(work, job): job for job in jobs}
            try:
                while pending:
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        job = pending.pop(future)
                        yield job, future.result()
                        advance(count(job))
            except BrokenProcessPool:
                raise PgrfError(f"a {label} worker process died (killed, or out of memory); {kept}, run the same "
                                "command again (with fewer --workers if memory is short)") from None
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
