"""Benchmark: the trainer (zfbook.train.train) vs a bare PyTorch loop, issue #2 budgets.

Throughput. Both train zfnet-mini (12 classes) with batch 128 on the same in-memory uint8
images (the first images of the embedded training split) with the same preprocessing:

* **bare loop** (the baseline) — per step exactly: index a batch of the uint8 tensor in a
  seeded random order, ``Preprocess.random`` (mean subtraction, ×1/64, random 112×112 crop,
  flip), forward, ``F.cross_entropy``, ``zero_grad(set_to_none=True)``, ``backward``,
  ``SGD.step`` (lr 0.01, momentum 0.9, weight decay 5e-4). Nothing else: no filter
  renormalisation, no accuracy counting, no NaN check, no progress bar.
* **trainer** — ``train.train(Config(preset="zfnet-mini", batch_size=128, device="cpu"),
  data=(train, val), progress=False, stop_after_steps=N)``: the same step plus everything the
  trainer adds (filter renormalisation after every step, top-1/top-5 counting, the loss sum,
  a NaN/inf check every 20 steps).

Agreement first: on a small set (2 steps, then the end-of-epoch checkpoint) the bare loop
*with* ``renormalize_filters`` added must reproduce the trainer's weights exactly, which shows
the two loops do the same computation on the same batches.

Timing: the time of the steady-state steps only. The trainer's steps are timed by stamping
each batch as its loop takes it (``zfbook.train.tqdm`` is wrapped for the run; with
``progress=False`` the bar is disabled anyway), so model building and the mean image are
not counted; the bare loop is stamped the same way. The first ``--warmup`` steps of every
run are dropped. The two alternate for ``--repeats`` rounds; the table gives medians and the best of
images/s, the median over rounds of the per-round ratio and the ratio of the best rates (the
least disturbed runs: on a shared machine, the more robust figure). On a machine shared with
other jobs use ``--threads 1``: with two threads on two busy cores every parallel op waits for
a descheduled thread, which measures the load rather than the loops.

Paired steps: the rounds above are tens of seconds apart, and this machine's speed drifts by
±20% over that time, more than the 3% the budget is about. So the script also runs one
trainer epoch in which, between every two trainer steps, one bare-loop step runs on its own
model (``--paired`` pairs): both sides of a pair see the same machine. The trainer's step is
timed from the moment it asks for its batch to the moment it asks for the next one, so its
batch indexing, renormalisation, accuracy counting and NaN checks all count. It prints the
median of the per-pair ratios and the ratio of the summed times.

GFLOP/s: training costs 3 × the forward multiply-adds (forward, and backward for the inputs
and the weights), 2 FLOPs each, per image (``zfbook.models.macs``), next to fp32 ``torch.mm``
of two 2048×2048 matrices measured in the same run (best of 5).

    .venv/bin/python benchmarks/bench_train.py [--steps N] [--warmup W] [--repeats R] [--threads T]
    .venv/bin/python benchmarks/bench_train.py --time-to-accuracy RUN_DIR [--target 90]

``--time-to-accuracy`` reads ``RUN_DIR/history.json`` (written by ``python -m zfbook train``)
and prints the cumulative training wall time at which validation top-1 first reached the
target, the budget "90% in 10 minutes". A history's seconds are per epoch (training and
validation), so the total excludes process start-up and the dataset's first generation;
if ``RUN_DIR/snapshots/epochE.pt`` exists for that epoch, its test top-1 is measured too.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import torch
import torch.nn.functional as F

from zfbook import models, train
from zfbook.checkpoint import load_checkpoint, model_from_checkpoint
from zfbook.data.preprocess import Preprocess, mean_image

PRESET, BATCH = "zfnet-mini", 128
BASELINE = "bare PyTorch loop (crop+flip, forward, cross-entropy, backward, SGD step)"


class _StampedBar:
    """Stands in for tqdm inside zfbook.train: records the time each batch is taken."""
    stamps: list = []

    def __init__(self, iterable, **_):
        self.iterable = iterable

    def __iter__(self):
        for item in self.iterable:
            _StampedBar.stamps.append(time.perf_counter())
            yield item

    def set_postfix(self, *a, **k):
        pass

    def close(self):
        pass


def _subset(d, n):
    return SimpleNamespace(images=d.images[:n].contiguous(), labels=d.labels[:n].contiguous(),
                           classes=list(d.classes))


def run_trainer(data, steps: int, out: Path) -> list[float]:
    """Stamps of each step of the trainer (``steps`` + 1 stamps: the last closes the last step)."""
    _StampedBar.stamps = []
    cfg = train.Config(preset=PRESET, batch_size=BATCH, device="cpu", snapshots=())
    with mock.patch.object(train, "tqdm", _StampedBar):
        train.train(cfg, out, data=data, progress=False, stop_after_steps=steps + 1)
    return list(_StampedBar.stamps)


def _bare_setup(train_set, seed: int):
    """The bare loop's model, preprocessing, optimiser and data order generator, seeded as the
    trainer seeds its own."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = models.build(PRESET, len(train_set.classes)).train()
    prep = Preprocess(mean_image(train_set.images), model.preset.crop, model.preset.input_scale)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return model, prep, opt, gen, (train_set.images, train_set.labels)


def run_bare(data, steps: int, renorm: bool = False, seed: int = 0):
    """The baseline loop; returns (stamps, model). Seeded exactly as the trainer is, so that
    with ``renorm=True`` it reproduces the trainer's weights."""
    model, prep, opt, gen, (images, labels) = _bare_setup(data[0], seed)
    order = torch.randperm(len(labels), generator=gen)
    stamps = []
    for i in range(0, min(len(labels), (steps + 1) * BATCH), BATCH):
        idx = order[i:i + BATCH]
        xb, yb = images[idx], labels[idx]
        stamps.append(time.perf_counter())
        if len(stamps) > steps:
            break
        loss = F.cross_entropy(model(prep.random(xb, gen)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if renorm:
            models.renormalize_filters(model)
    return stamps, model


class _PairedBar(_StampedBar):
    """Stands in for tqdm inside zfbook.train and runs one step of the bare loop between two
    steps of the trainer, so that each pair of steps is timed under the same machine load."""
    trainer: list = []
    bare: list = []
    bare_step = None

    def __iter__(self):
        start = time.perf_counter()
        for item in self.iterable:        # the trainer's batch indexing counts as its own
            yield item
            _PairedBar.trainer.append(time.perf_counter() - start)
            _PairedBar.bare.append(_PairedBar.bare_step())
            start = time.perf_counter()


def bare_stepper(data, seed: int = 1):
    """One step of the bare loop per call, on its own model; returns the step's seconds."""
    model, prep, opt, gen, (images, labels) = _bare_setup(data[0], seed)

    def step() -> float:
        t = time.perf_counter()
        idx = torch.randint(0, len(labels), (BATCH,), generator=gen)
        xb, yb = images[idx], labels[idx]
        loss = F.cross_entropy(model(prep.random(xb, gen)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t
    return step


def paired(data, steps: int, warmup: int, out: Path) -> tuple[list, list]:
    """(trainer seconds, bare seconds) of ``steps`` interleaved pairs after ``warmup`` pairs."""
    _PairedBar.trainer, _PairedBar.bare = [], []
    _PairedBar.bare_step = bare_stepper(data)
    cfg = train.Config(preset=PRESET, batch_size=BATCH, device="cpu", snapshots=())
    with mock.patch.object(train, "tqdm", _PairedBar):
        train.train(cfg, out, data=data, progress=False, stop_after_steps=steps + warmup)
    return _PairedBar.trainer[warmup:], _PairedBar.bare[warmup:]


def check_agreement(train_set, val_set, workdir: Path) -> float:
    """Max |trainer − bare loop with renorm| over all weights after one 2-step epoch."""
    data = (_subset(train_set, 2 * BATCH), _subset(val_set, 24))
    cfg = train.Config(preset=PRESET, batch_size=BATCH, device="cpu", epochs=1, snapshots=())
    train.train(cfg, workdir / "agree", data=data, progress=False)
    ours = load_checkpoint(workdir / "agree" / "last.pt")["model"]
    _, bare = run_bare(data, 2, renorm=True)
    return max((ours[k] - v).abs().max().item() for k, v in bare.state_dict().items()
               if v.is_floating_point())


def steady_rate(stamps: list[float], warmup: int) -> float:
    """Images per second over the steps after ``warmup``."""
    s = stamps[warmup:]
    return BATCH * (len(s) - 1) / (s[-1] - s[0])


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def throughput(args) -> None:
    from zfbook.data.embedded import embedded

    if args.threads:
        torch.set_num_threads(args.threads)
    train_set, val_set = embedded("train"), embedded("val")
    n = (max(args.steps, args.paired) + args.warmup + 2) * BATCH
    data = (_subset(train_set, n), _subset(val_set, BATCH))
    model = models.build(PRESET, len(train_set.classes))
    flop_per_image = 3 * 2 * models.macs(model)
    print(f"model: {PRESET} ({models.macs(model) / 1e6:.1f} M forward MACs per image), batch {BATCH}, "
          f"{n} in-memory uint8 images of the embedded training split")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"{args.steps} timed steps per run after {args.warmup} warm-up steps, {args.repeats} rounds")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        diff = check_agreement(train_set, val_set, tmp)
        print(f"agreement: trainer vs bare loop + renormalize_filters, 2 steps: max |Δweight| = {diff:.1e}"
              + ("  (identical)" if diff == 0 else ""))
        if diff > 1e-6:
            sys.exit("the two loops disagree; not timing them")
        run_bare(data, 2)                       # warm-up of both (allocator, oneDNN kernels)
        run_trainer(data, 2, tmp / "warm")
        rates = {"bare": [], "trainer": []}
        for r in range(args.repeats):
            order = ("bare", "trainer") if r % 2 == 0 else ("trainer", "bare")
            for who in order:
                total = args.steps + args.warmup
                stamps = run_bare(data, total)[0] if who == "bare" else run_trainer(data, total, tmp / f"r{r}")
                rates[who].append(steady_rate(stamps, args.warmup))
            print(f"  round {r + 1}: bare {rates['bare'][-1]:6.1f} img/s, trainer {rates['trainer'][-1]:6.1f} img/s")
        # paired steps: bare, trainer, bare, trainer… in one process, one epoch of the trainer
        pair_steps = min(args.paired, len(data[0].labels) // BATCH - args.warmup)
        t_tr, t_bare = paired(data, pair_steps, args.warmup, tmp / "paired")
    mm = matmul_gflops()
    pair = [b / t for t, b in zip(t_tr, t_bare)]
    ratios = [t / b for t, b in zip(rates["trainer"], rates["bare"])]
    bare, ours = statistics.median(rates["bare"]), statistics.median(rates["trainer"])
    print()
    print(f"{'loop':10} {'images/s median':>16} {'best':>7} {'ms/step':>8} {'training GFLOP/s':>17}")
    for name, rate in (("bare", bare), ("trainer", ours)):
        best = max(rates["bare" if name == "bare" else "trainer"])
        print(f"{name:10} {rate:16.1f} {best:7.1f} {1000 * BATCH / rate:8.1f} {rate * flop_per_image / 1e9:17.1f}")
    print(f"{'fp32 mm':10} {'':>16} {'':>7} {'':>8} {mm:17.1f}   (torch.mm 2048×2048, best of 5)")
    print()
    ratio = statistics.median(ratios)
    print(f"trainer / bare loop: {ratio:.3f}× (median of per-round ratios; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}); target ≥ 0.97 → "
          f"{'met' if ratio >= 0.97 else 'NOT met'}; ratio of the best rates "
          f"{max(rates['trainer']) / max(rates['bare']):.3f}×")
    p_med, p_sum = statistics.median(pair), sum(t_bare) / sum(t_tr)
    print(f"paired steps ({len(pair)} pairs, each a bare step right after a trainer step): trainer / bare "
          f"{p_med:.3f}× (median of per-pair ratios; quartiles {statistics.quantiles(pair, n=4)[0]:.3f}–"
          f"{statistics.quantiles(pair, n=4)[2]:.3f}), {p_sum:.3f}× of the summed times; target ≥ 0.97 → "
          f"{'met' if p_med >= 0.97 else 'NOT met'}")
    print(f"achieved training throughput: {100 * ours * flop_per_image / 1e9 / mm:.0f}% of the fp32 matmul rate")
    print(f"baseline: {BASELINE}")


def time_to_accuracy(run_dir: Path, target: float) -> None:
    hist_path = run_dir / "history.json"
    history = json.loads(hist_path.read_text())
    total = 0.0
    print(f"{hist_path}: {len(history)} epochs")
    print(f"{'epoch':>5} {'val top-1':>9} {'seconds':>8} {'cumulative':>10}")
    reached = None
    for h in history:
        total += h["seconds"]
        print(f"{h['epoch']:5d} {h['val_top1']:8.2f}% {h['seconds']:8.1f} {total:9.1f}s")
        if reached is None and h["val_top1"] >= target:
            reached = (h["epoch"], total)
    print()
    if reached is None:
        best = max(history, key=lambda h: h["val_top1"])
        print(f"val top-1 never reached {target:g}% (best {best['val_top1']:.2f}% at epoch {best['epoch']}, "
              f"after {total:.0f} s = {total / 60:.1f} min of training)")
        return
    epoch, seconds = reached
    print(f"val top-1 first reached {target:g}% after epoch {epoch}: {seconds:.0f} s = {seconds / 60:.1f} min "
          f"of training wall time ({'within' if seconds <= 600 else 'OVER'} the 10-minute budget)")
    snap = run_dir / "snapshots" / f"epoch{epoch}.pt"
    if snap.exists():
        from zfbook.data.embedded import embedded
        ckpt = load_checkpoint(snap)
        model = model_from_checkpoint(ckpt, str(snap))
        test = embedded("test", seed=ckpt.get("config", {}).get("seed", 0))
        acc = train.evaluate(model, test.images, test.labels, model.preprocess)
        print(f"test top-1 of the epoch-{epoch} snapshot (centre crop): {acc['top1']:.2f}%")
    else:
        print(f"(no snapshot of epoch {epoch} in {run_dir / 'snapshots'}; test top-1 not measured)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of every run")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    ap.add_argument("--paired", type=int, default=40, help="interleaved step pairs (trainer, bare)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--time-to-accuracy", type=Path, metavar="RUN_DIR",
                    help="instead: when did RUN_DIR/history.json first reach --target val top-1")
    ap.add_argument("--target", type=float, default=90.0)
    args = ap.parse_args()
    if args.time_to_accuracy:
        time_to_accuracy(args.time_to_accuracy, args.target)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
