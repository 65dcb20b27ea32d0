"""Benchmark: ``--jobs N`` (zfbook.parallel) — the same training runs in N processes with
cores/N threads each, against one process with all the cores, one run after another.

Two workloads, each ``--runs`` identical runs (different seeds), timed end to end
(building the model, training, evaluating), the way the commands run them:

* **scratch** — the transfer chapter's scratch arm (``zfbook.transfer.scratch_arm``, the
  trainer at batch 16) on 60 images per class of the embedded transfer family for
  ``--epochs`` epochs of 600 images, then predicting the 400 test images;
* **steps** — bare SGD steps of ``zfnet-mini`` on a fixed random batch of 32 (forward,
  loss, backward, step; no data, no filter renormalisation, no evaluation): the upper
  bound of what sharing the cores can give.

Prints each workload's wall time both ways and the ratio one process ÷ N processes (above
1: ``--jobs N`` is faster). Run it alone on the machine.

    python benchmarks/bench_jobs.py [--jobs 2] [--runs 4] [--epochs 3]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

_DATA: dict = {}


def _scratch(seed: int) -> float:
    import zfbook.transfer as T
    if "tset" not in _DATA:
        tset = T.transfer_set("embedded-transfer")
        tr, te = tset.split(60, 0)
        _DATA.update(tset=tset, tr=tr, te=te)
    tset, tr, te = _DATA["tset"], _DATA["tr"], _DATA["te"]
    recipe = {**T.SCRATCH, "epochs": _DATA.get("epochs", 3), "anneal": ()}
    t0 = time.perf_counter()
    T.scratch_arm("zfnet-mini", tset.images(tr), tset.labels[tr], tset.classes, tset.images(te),
                  seed=seed, recipe=recipe)
    return time.perf_counter() - t0


def _steps(seed: int, n: int = 40) -> float:
    from zfbook import models
    torch.manual_seed(seed)
    model = models.build("zfnet-mini", 10).train()
    x, y = torch.randn(32, 3, 112, 112), torch.randint(0, 10, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    t0 = time.perf_counter()
    for _ in range(n):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def _set_epochs(epochs: int) -> None:
    _DATA["epochs"] = epochs


def main() -> None:
    from zfbook.parallel import cores, run_parallel, threads_per_job
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of 600 images per scratch run")
    a = ap.parse_args()
    print(f"{cores()} cores; {a.runs} runs: 1 process x {cores()} threads, one after another, vs "
          f"{a.jobs} processes x {threads_per_job(a.jobs)} threads; torch {torch.__version__}")
    for name, fn in (("scratch", _scratch), ("steps", _steps)):
        seeds = list(range(a.runs))
        t0 = time.perf_counter()
        for _ in run_parallel(fn, seeds, 1, initializer=_set_epochs, initargs=(a.epochs,)):
            pass
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in run_parallel(fn, seeds, a.jobs, initializer=_set_epochs, initargs=(a.epochs,)):
            pass
        many = time.perf_counter() - t0
        print(f"{name:8s}: 1 process {one:6.1f} s, {a.jobs} processes {many:6.1f} s; "
              f"ratio {one / many:.2f}x")


if __name__ == "__main__":
    main()
