"""Benchmark: the parts world's renderer beside the network it feeds (issue 23, "an epoch's
cost stays dominated by the network, not the renderer").

Measured in one run, on one process with ``--threads`` threads:

* **render** — ``zfbook.data.embedded._render_range`` on the first ``--images`` images of the
  ``parts`` training split (one process, as a worker of the cache's pool renders them);
* **train** — ``--steps`` steady-state steps of ``zfbook.train.train`` (``zfnet-mini``, batch
  32, the trainer's whole step: preprocessing, forward, backward, SGD, renormalisation) on
  cached images of the same split, timed per image (the first ``--warmup`` steps dropped).

It prints both per image and their ratio (render ÷ train), and what the ratio means for the
split: the training split is rendered once and cached, so over a recipe of E epochs the
renderer's share of the whole cost is render ÷ (render + E × train); and, were every epoch
rendered fresh instead, its share of each epoch. ``python benchmarks/bench_world.py``
"""
import argparse
import tempfile
import time
from unittest import mock

import torch
from bench_train import _StampedBar

from zfbook import train
from zfbook.data.embedded import FAMILIES, _render_range, embedded


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=train.RECIPES["zfnet-mini"]["epochs"],
                    help="the recipe's length, for the share over a whole run")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    t = time.perf_counter()
    _render_range("parts", "train", 0, 0, args.images)
    render = (time.perf_counter() - t) / args.images

    data = embedded("train", "parts", 0)
    val = embedded("val", "parts", 0)
    _StampedBar.stamps = []   # the trainer's own batches, stamped as bench_train stamps them
    with tempfile.TemporaryDirectory() as d, mock.patch.object(train, "tqdm", _StampedBar):
        cfg = train.Config(preset="zfnet-mini", epochs=1, anneal=(), batch_size=32, device="cpu", snapshots=())
        train.train(cfg, d, data=(data, val), progress=False, stop_after_steps=args.warmup + args.steps + 1)
    stamps = _StampedBar.stamps
    steps = stamps[args.warmup:args.warmup + args.steps + 1]
    step = (steps[-1] - steps[0]) / (len(steps) - 1)
    per_image = step / 32
    n = len(data.labels)
    print(f"classes {len(FAMILIES['parts'])}, training images {n}, threads {args.threads}")
    print(f"render: {1000 * render:.2f} ms/image   train: {1000 * per_image:.2f} ms/image "
          f"({1000 * step:.0f} ms/step of 32)")
    print(f"render ÷ train, per image: {render / per_image:.3f}")
    print(f"rendered once and cached, over {args.epochs} epochs: the renderer's share of the run "
          f"{render / (render + args.epochs * per_image):.3f}")
    print(f"rendered fresh every epoch: the renderer's share of an epoch {render / (render + per_image):.3f}")


if __name__ == "__main__":
    main()
