"""Independent training runs in several processes (``--jobs N``).

A small network trained on a CPU can use its cores poorly from one process. On the 2-core
machine the book is made on, two processes with one thread each finish the transfer
chapter's small scratch runs 1.25× sooner than one process with two threads
(``benchmarks/bench_jobs.py``; the whole transfer experiment took 41 min with ``--jobs 2``
and 51 min without); a full ``alexnet-mini`` epoch 1.36× sooner, a full ``zfnet-mini``
epoch no sooner (the architecture records). The runs of an experiment (the seeds and
variants of
``compare`` and ``ablate``, the scratch and finetune runs of ``transfer``) do not depend on
each other, so :func:`run_parallel` hands them to ``jobs`` spawned processes, each with its
share of the threads. The numbers of a run depend on its thread count on the CPU, so every
record says how many threads made it.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Iterator

import torch

__all__ = ["cores", "threads_per_job", "run_parallel", "check_jobs"]


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_jobs(jobs) -> int:
    """``--jobs``: a whole number ≥ 1 (one line naming the valid range otherwise)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be a whole number from 1 up (1: one process), got {jobs!r}")
    return jobs


def threads_per_job(jobs: int) -> int:
    """Each of ``jobs`` processes gets an equal share of the cores, at least one thread."""
    return max(1, cores() // check_jobs(jobs))


def _init(threads: int, initializer, initargs) -> None:
    torch.set_num_threads(threads)
    if initializer is not None:
        initializer(*initargs)


def run_parallel(fn: Callable, items: Iterable, jobs: int, *, initializer: Callable | None = None,
                 initargs: tuple = ()) -> Iterator[tuple]:
    """Yield ``(item, fn(item))`` as each finishes, ``fn`` running in ``jobs`` spawned processes
    (``fn``, the items and ``initializer(*initargs)``, run once per process, must be picklable).
    Items are started in the given order: put the longest first. An exception in one run, or
    Ctrl-C, cancels the runs not yet started and is raised here once the running ones end."""
    items = list(items)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(check_jobs(jobs), max(1, len(items))), mp_context=ctx,
                             initializer=_init, initargs=(threads_per_job(jobs), initializer, initargs)) as ex:
        pending = {ex.submit(fn, item): item for item in items}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    item = pending.pop(f)
                    yield item, f.result()
        finally:
            for f in pending:
                f.cancel()
