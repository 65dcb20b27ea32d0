"""DDP on the CPU: 2 gloo processes (torchrun) vs one process, same global batch.

Both run ``zfbook.train.train`` on the same in-memory data (random uint8 images at the
zfnet-mini's 128 px, 12 classes) with the global batch 32. A worker times ``S1`` and ``S2``
training steps (fresh runs) and reports the difference, so start-up, the mean image and
process-group set-up are left out: steady-state images per second. The single process gets
all the threads (``--threads``, default 2); each of the 2 DDP processes gets threads / 2.
That the two compute the same step is ``tests/test_distributed.py``'s job (one DDP step equals
one single-process step to float tolerance). Prints the throughputs and their ratio
(wanted: ≥ 0.8; on 2 cores DDP cannot be faster).

    python benchmarks/bench_ddp.py [--threads 2] [--steps 4 24]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def worker(s1: int, s2: int, batch: int) -> None:
    import torch
    from zfbook import distributed, train as T
    from zfbook.data.embedded import CLASSES
    g = torch.Generator().manual_seed(0)
    n = batch * (s2 + 1)
    data = SimpleNamespace(images=torch.randint(0, 256, (n, 3, 128, 128), dtype=torch.uint8, generator=g),
                           labels=torch.arange(n) % 12, classes=list(CLASSES))
    val = SimpleNamespace(images=data.images[:8], labels=data.labels[:8], classes=list(CLASSES))
    times = []
    for steps in (s1, s2):
        with tempfile.TemporaryDirectory() as d:
            cfg = T.Config(preset="zfnet-mini", epochs=1, batch_size=batch, device="cpu", snapshots=(),
                           anneal=(), workers=0)
            if distributed.world().size > 1:
                distributed.init("cpu")
                torch.distributed.barrier()
            t0 = time.perf_counter()
            T.train(cfg, Path(d) / "run", data=(data, val), progress=False, stop_after_steps=steps)
            if distributed.world().size > 1:
                torch.distributed.barrier()
            times.append(time.perf_counter() - t0)
    if distributed.is_main():
        print(f"RESULT {batch * (s2 - s1) / (times[1] - times[0]):.3f}", flush=True)


def _run(cmd, threads) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return float(next(l for l in r.stdout.splitlines() if l.startswith("RESULT")).split()[1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, nargs=2, default=(4, 24))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--worker", action="store_true")
    a = p.parse_args()
    if a.worker:
        return worker(*a.steps, a.batch)
    me = [__file__, "--worker", "--steps", *map(str, a.steps), "--batch", str(a.batch)]
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    one = _run([sys.executable, *me], a.threads)
    two = _run([torchrun, "--standalone", "--nproc_per_node", "2", *me], max(1, a.threads // 2))
    print(f"zfnet-mini, global batch {a.batch}, steps {a.steps[0]}..{a.steps[1]}, {a.threads} threads in all")
    print(f"{'run':<34}{'images/s':>10}")
    print(f"{'1 process':<34}{one:>10.1f}")
    print(f"{'2 processes (torchrun, DDP, gloo)':<34}{two:>10.1f}")
    print(f"ratio DDP / single: {two / one:.2f}  (wanted >= 0.8)")


if __name__ == "__main__":
    main()
