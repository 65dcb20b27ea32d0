"""The whole cascading-randomisation analysis (Adebayo et al.) on zfnet-mini, timed.

Four methods (deconvnet, gradient, guided_backprop, occlusion with the incremental
sweep), the trained network and 8 cascading steps (fc8 down to conv1), a handful of
embedded test images, the fc8 logit of each image's predicted class, all three
similarity measures: :func:`zfbook.sanity.randomisation` end to end, after the imports
and one small warm-up. Prints the wall time, its ratio to 60 s, and each method's share.
There is no baseline library that runs this analysis; the check before timing is that the
trained network's maps compare to themselves with similarity exactly 1.

Run: ``python benchmarks/bench_sanity.py [--images 5] [--patch 16 --stride 8]
[--target fc8|conv5] [--threads 1]`` (about a minute on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import zfbook
from zfbook import sanity
from zfbook.data import embedded


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--target", default="fc8", choices=sanity.TARGETS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = zfbook.pretrained("zfnet-mini")
    test = embedded("test")
    idx = [13 * i for i in range(args.images)]           # different classes (i mod 12)
    x = model.preprocess.center(test.images[idx])
    kw = dict(target=args.target, patch=args.patch, stride=args.stride, seed=0)
    sanity.randomisation(model, x[:1], methods=sanity.METHODS, **kw)   # warm-up, imports
    t0 = time.perf_counter()
    r = sanity.randomisation(model, x, **kw)
    wall = time.perf_counter() - t0
    for m in sanity.METHODS:
        for s in sanity.MEASURES:
            assert (r.scores[m][s][0] == 1.0).all(), (m, s)
    print(f"cascading randomisation, zfnet-mini, {args.images} images, target {args.target}, "
          f"occlusion {args.patch} px / stride {args.stride}, {torch.get_num_threads()} "
          f"thread(s)")
    print(f"{'method':16} {'seconds':>8} {'share':>6}   spearman_abs per step")
    for m in sanity.METHODS:
        curve = " ".join(f"{v:.2f}" for v in r.mean(m))
        print(f"{m:16} {r.seconds[m]:8.1f} {r.seconds[m] / wall:6.0%}   {curve}")
    print(f"total wall time {wall:.1f} s = {wall / 60:.2f} x 60 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
