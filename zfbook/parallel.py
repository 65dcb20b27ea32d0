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

import contextlib
import multiprocessing
import os
import signal
import threading
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


_STOP = None   # in a worker: the parent's "start nothing more" event


def _init(threads: int, stop, initializer, initargs) -> None:
    global _STOP
    _STOP = stop
    torch.set_num_threads(threads)
    if initializer is not None:
        initializer(*initargs)


def _call(fn, item):
    """``fn(item)`` in a worker, which takes Ctrl-C only while it runs one: a worker that
    starts, waits or has just finished ignores it (and so never dies with a traceback, nor
    leaves the pool half broken). Ctrl-C comes back as a plain KeyboardInterrupt; a call the
    parent has stopped before it began does not run."""
    if _STOP is not None and _STOP.is_set():
        raise KeyboardInterrupt("not started")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return fn(item)
    except KeyboardInterrupt as e:
        raise KeyboardInterrupt(str(e)) from None  # e.g. train's Interrupted does not unpickle
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _workers_ignore_ctrl_c():
    """Processes started in this block begin with Ctrl-C ignored (``SIG_IGN`` survives exec):
    a worker still importing torch is not killed by it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def run_parallel(fn: Callable, items: Iterable, jobs: int, *, initializer: Callable | None = None,
                 initargs: tuple = ()) -> Iterator[tuple]:
    """Yield ``(item, fn(item))`` as each finishes, ``fn`` running in ``jobs`` spawned processes
    (``fn``, the items and ``initializer(*initargs)``, run once per process, must be picklable).
    Items are started in the given order, one as another ends: put the longest first.

    CPU tensors in ``initargs`` (a dataset, a model) reach the processes through shared memory:
    PyTorch's pickler moves each one's storage there *in place*, so a NumPy view of one taken
    before the call reads freed memory afterwards. Keep copies, not views (as
    :class:`zfbook.transfer._Cheap` keeps its labels).

    An exception in one run stops starting new ones and is raised here once the running ones
    end. Ctrl-C reaches the running ones (a run of :func:`zfbook.train.train` stops at once,
    keeping its last finished epoch) and is raised here once they have stopped; no other run
    starts, and the pool is shut down cleanly (no worker left behind, no leaked semaphores)."""
    todo = iter(list(items))
    jobs = check_jobs(jobs)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    ex = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init,
                             initargs=(threads_per_job(jobs), stop, initializer, initargs))
    running: dict = {}

    def start() -> None:
        for item in todo:
            with _workers_ignore_ctrl_c():
                running[ex.submit(_call, fn, item)] = item
            if len(running) >= jobs:
                return

    try:
        start()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                item = running.pop(f)
                result = f.result()
                yield item, result
            start()
    except BaseException:
        todo = iter(())
        stop.set()
        for p in list((getattr(ex, "_processes", None) or {}).values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if running and p.is_alive():  # only the parent may have seen Ctrl-C
                    os.kill(p.pid, signal.SIGINT)
        _shutdown(ex)
        raise
    _shutdown(ex)


def _shutdown(ex) -> None:
    """Wait for the running calls, then for the processes: a Ctrl-C meanwhile is held back
    until the pool is down."""
    from .checkpoint import deferred_interrupts
    with deferred_interrupts():
        ex.shutdown(wait=True, cancel_futures=True)
