"""What a sanity check costs per image on zfnet-mini: one map per method, one similarity.

For each method of :data:`zfbook.sanity.METHODS` and each target (``fc8``: the predicted
class's logit; ``conv5``: the most active map), :func:`zfbook.sanity.explain` runs on a
batch of ``--images`` embedded test images (after one warm-up); the seconds per image are
the batch's median time over ``--repeats`` divided by its size. Times are the process's
CPU seconds on one thread (``time.process_time``): on a machine shared with other jobs
the wall time measures the load; on an idle core the two agree. Then the seconds per pair
of one :func:`zfbook.sanity.similarity` per measure. No baseline library runs these
checks; the check before timing is that a map compared with itself gives exactly 1.

From these it predicts how long :func:`~zfbook.sanity.seeded_randomisation` (fc8, all
three measures) and its :func:`~zfbook.sanity.null` take on ``--chapter`` images: with
S seeds and K randomised steps, ``1 + S × K`` maps per image and method (the trained
network's once) and ``S × K + 1`` similarities per measure (the null's derangement adds
one per image). The prediction is checked against one measured run (3 seeds, the steps
fc8, fc8…fc6 and all layers) on the timed images. The table: K = 3 chosen steps or all
8, with and without occlusion, and how many images fit in ``--budget`` seconds; then the
data-randomisation test (2 maps and 1 similarity per image and method; a randomised copy
stands in for the shuffled-label network, which costs the same).

Run: ``python benchmarks/bench_sanity_cost.py [--images 16] [--patch 24 --stride 12]
[--repeats 3]`` (under a minute on 2 CPU cores).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import zfbook
from zfbook import sanity
from zfbook.data import embedded
from zfbook.models import LAYERS

CHOSEN = (1, 3, 8)             # cascading steps fc8, fc8…fc6 and the whole network


def _median_time(f, repeats: int) -> float:
    """Median CPU seconds of this process (one thread: what an idle core's wall time is)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        f()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--patch", type=int, default=24)
    ap.add_argument("--stride", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=float, default=60.0, help="seconds for the last table")
    ap.add_argument("--chapter", type=int, default=50, help="images in the last table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = zfbook.pretrained("zfnet-mini")
    test = embedded("test")
    step = max(1, len(test.images) // args.images)
    x = model.preprocess.center(test.images[::step][:args.images])
    n = len(x)
    print(f"zfnet-mini, {n} embedded test images, occlusion {args.patch} px / stride "
          f"{args.stride}, one thread; CPU seconds, median of {args.repeats}")

    per_map, maps = {}, {}
    for target in sanity.TARGETS:
        for m in sanity.METHODS:
            kw = dict(patch=args.patch, stride=args.stride)
            maps[m, target] = sanity.explain(model, x, m, target, **kw)     # warm-up
            per_map[m, target] = _median_time(
                lambda: sanity.explain(model, x, m, target, **kw), args.repeats) / n
    per_sim = {}
    a, b = maps["gradient", "fc8"][0], maps["gradient", "fc8"][1]
    for s in sanity.MEASURES:
        assert sanity.similarity(a, a.clone(), s) == 1.0, s
        sanity.similarity(a, b, s)                                         # warm-up, imports
        per_sim[s] = _median_time(lambda: [sanity.similarity(a, b, s) for _ in range(20)],
                                  args.repeats) / 20
    sim = sum(per_sim.values())

    print(f"\n{'method':16} {'fc8 s/image':>12} {'conv5 s/image':>14}")
    for m in sanity.METHODS:
        print(f"{m:16} {per_map[m, 'fc8']:12.4f} {per_map[m, 'conv5']:14.4f}")
    print("similarity per pair: " + ", ".join(f"{s} {t * 1e3:.2f} ms"
                                             for s, t in per_sim.items()))

    def predict(images: int, seeds: int, steps: int, methods) -> float:
        """Seconds of seeded_randomisation (fc8, all measures) plus its null."""
        maps_per_image = 1 + seeds * steps
        return images * (sum(per_map[m, "fc8"] for m in methods) * maps_per_image
                         + len(methods) * sim * (seeds * steps + 1))

    four = sanity.METHODS
    three = tuple(m for m in four if m != "occlusion")
    kw = dict(patch=args.patch, stride=args.stride)
    t0 = time.process_time()
    r = sanity.seeded_randomisation(model, x, seeds=(0, 1, 2), steps=CHOSEN, **kw)
    sanity.null(r)
    measured = time.process_time() - t0
    shuffled = sanity.randomize(model, LAYERS, seed=0)      # a stand-in: the cost is the same
    t0 = time.process_time()
    sanity.data_randomisation(model, shuffled, x, **kw)
    data = (time.process_time() - t0) / n
    print(f"\ncheck, {n} images, 3 seeds, steps fc8, fc8…fc6, all, with the null: measured "
          f"{measured:.1f} s, predicted {predict(n, 3, len(CHOSEN), four):.1f} s")

    print(f"\ncascading randomisation (fc8, three measures) and its null, "
          f"{args.chapter} images: seconds")
    print(f"{'seeds':>5} {'steps':>5} {'4 methods':>10} {'no occlusion':>13} "
          f"{'images in ' + format(args.budget, '.0f') + ' s':>15}")
    for seeds in (1, 3, 5):
        for steps in (len(CHOSEN), 8):
            print(f"{seeds:5} {steps:5} {predict(args.chapter, seeds, steps, four):10.1f} "
                  f"{predict(args.chapter, seeds, steps, three):13.1f} "
                  f"{int(args.budget / predict(1, seeds, steps, four)):15d}")
    print(f"data randomisation, 4 methods: {data:.3f} s/image, {args.chapter * data:.1f} s "
          f"for {args.chapter} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
