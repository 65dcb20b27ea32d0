"""The occlusion chapter's measurement over the whole test split: the share of the drop of
P(true class) that falls inside the object mask (Section 4.2, Fig. 7d), beside the share of
the image the object covers (what a classifier indifferent to the square's position would
score).

The chapter computes it on 120 test images (10 per class) to stay within its time budget;
this script runs all 2,400 (about 7 minutes on one thread of a shared 2-core CPU) with the
same square (24 px of 112) and stride (8 px), on the shipped zfnet-mini, and prints the
overall and per-class means with standard errors. The drop is measured in each of
``--kinds`` (default: P(true) as in the chapter, and its log-odds, which still moves
where P rounds to 1), all from one sweep per image (``in_mask_shares(kind=(...))``).

Run: ``python benchmarks/occlusion_in_mask.py [--per-class N] [--patch 24] [--stride 8]
[--kinds probability,log_odds]``
"""
from __future__ import annotations

import argparse
import time

import torch

import zfbook
from zfbook.data import embedded
from zfbook.occlusion import in_mask_shares
from zfbook.occlusion.sweep import KINDS

#: how each kind of drop is named in the printout
QUANTITY = {"probability": "P(true)", "log_probability": "log P(true)",
            "log_odds": "log-odds of P(true)"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=200, help="test images per class (≤ 200)")
    ap.add_argument("--patch", type=int, default=24)
    ap.add_argument("--stride", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's choice)")
    ap.add_argument("--kinds", default="probability,log_odds",
                    help=f"comma-separated drops to measure, of: {', '.join(KINDS)}")
    args = ap.parse_args(argv)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        ap.error(f"unknown kind {bad[0] if bad else args.kinds!r}; kinds are: {', '.join(KINDS)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model = zfbook.pretrained("zfnet-mini")
    prep, classes = model.preprocess, model.classes
    test = embedded("test")
    n = args.per_class * len(classes)           # image i is of class i mod 12
    x, y = prep.center(test.images[:n]), test.labels[:n]
    o = (prep.size - prep.crop) // 2
    masks = test.masks[:n, o:o + prep.crop, o:o + prep.crop]
    start = time.perf_counter()
    by_kind, base = in_mask_shares(model, x, y, masks, args.patch, args.stride, kind=kinds)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        correct = torch.cat([model(b).argmax(1) for b in x.split(256)]) == y

    def stats(s):
        return f"{100 * s.mean():5.1f}% ± {100 * s.std() / max(len(s), 1) ** 0.5:.1f}%"

    print(f"zfnet-mini ({model.meta.get('epochs')} epochs), {n} test images, square "
          f"{args.patch} px, stride {args.stride}, one sweep per image for "
          f"{', '.join(kinds)}: {seconds:.0f} s")
    for kind, shares in by_kind.items():
        ok = ~shares.isnan()
        print(f"\n== the drop of {QUANTITY[kind]}")
        print(f"share of the drop inside the object:     {stats(shares[ok])}  "
              f"({int(ok.sum())} images whose {QUANTITY[kind]} drops somewhere)")
        print(f"share of the image the object covers:    {stats(base[ok])}")
        beat = int((shares[ok] > base[ok]).sum())
        print(f"images whose share beats their baseline: {beat} of {int(ok.sum())}")
        print(f"correctly classified only:               {stats(shares[ok & correct])} vs "
              f"{stats(base[ok & correct])}  ({int((ok & correct).sum())} images)")
        print(f"\n{'class':10s} {'share':>16s} {'baseline':>16s}")
        for c, name in enumerate(classes):
            k = ok & (y == c)
            print(f"{name:10s} {stats(shares[k]):>16s} {stats(base[k]):>16s}")


if __name__ == "__main__":
    main()
