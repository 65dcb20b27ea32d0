"""Benchmark: ``--jobs N`` (zfbook.parallel) — training throughput of N processes with
cores/N threads each against one process with all the cores.

Each process trains a fresh ``zfnet-mini`` (10 classes) for ``--steps`` SGD steps on random
112×112 batches (forward, cross-entropy, backward, step: the work of one training step of
``compare``/``ablate`` at batch 32 or of the transfer chapter's scratch/finetune arms at
batch 16) and reports the median step time after ``--warmup`` steps. Throughput is steps
per second summed over the processes running at once. Prints, per batch size, the ratio
N processes ÷ 1 process (above 1: ``--jobs N`` is faster). Run it alone on the machine.

    python benchmarks/bench_jobs.py [--jobs 2] [--steps 20]
"""
from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import torch
import torch.nn.functional as F


def steps(batch: int, threads: int, n: int, warmup: int) -> float:
    """Median seconds per training step in this process with ``threads`` threads."""
    from zfbook import models
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = models.build("zfnet-mini", 10).train()
    x, y = torch.randn(batch, 3, 112, 112), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for _ in range(warmup + n):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])


def main() -> None:
    from zfbook.parallel import cores, threads_per_job
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batches", default="32,16")
    a = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    print(f"{cores()} cores; 1 process x {cores()} threads vs {a.jobs} processes x "
          f"{threads_per_job(a.jobs)} threads; torch {torch.__version__}")
    for batch in map(int, a.batches.split(",")):
        with ProcessPoolExecutor(1, mp_context=ctx) as ex:
            one = ex.submit(steps, batch, cores(), a.steps, a.warmup).result()
        with ProcessPoolExecutor(a.jobs, mp_context=ctx) as ex:
            many = list(ex.map(steps, [batch] * a.jobs, [threads_per_job(a.jobs)] * a.jobs,
                               [a.steps] * a.jobs, [a.warmup] * a.jobs))
        rate_one, rate_many = 1 / one, sum(1 / t for t in many)
        print(f"batch {batch:3d}: 1 process {one * 1e3:5.0f} ms/step ({rate_one:.2f} steps/s); "
              f"{a.jobs} processes {', '.join(f'{t * 1e3:.0f}' for t in many)} ms/step "
              f"({rate_many:.2f} steps/s); ratio {rate_many / rate_one:.2f}x")


if __name__ == "__main__":
    main()
