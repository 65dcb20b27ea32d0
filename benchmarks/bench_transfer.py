"""Transfer budgets, measured in one run (Tables 4-5, 7; zfbook.transfer, zfbook.probes).

Prints each time and its ratio to the budget (< 1 is within it):
  (a) features of all 7 layers for both embedded families (transfer: train + test;
      main: val + test), one batched pass, no cache          budget 30 s
      beside the naive baseline: one forward pass per layer (models.activations each time),
      after checking that the two give the same numbers
  (b) the same features read back from the on-disk cache     budget 1 s
  (c) the frozen arm over shots 1,2,3,5,10,20,30,60 x 5 draws  budget 30 s
  (d) all probes: 7 layers x svm/softmax x 5 draws at 60 shots, per family  budget 60 s

Run it on an idle machine: python benchmarks/bench_transfer.py
"""
import tempfile
import time

import numpy as np
import torch

import zfbook.transfer as T
from zfbook import models


def main():
    model, sha, _ = T.resolve_checkpoint("zfnet-mini")
    sets = {f: T.transfer_set(f"embedded-{f}") for f in ("transfer", "main")}
    n_images = sum(len(s) for s in sets.values())

    # (a) one pass over all layers vs one pass per layer
    x = sets["transfer"].images(np.arange(200))
    ours = T.features(model, x, T.LAYERS, progress=False)
    for layer in T.LAYERS:
        ref = T.features(model, x, [layer], progress=False)[layer]
        assert torch.equal(ours[layer], ref), layer
    t0 = time.perf_counter()
    feats = {}
    for f, s in sets.items():
        feats[f] = {}
        for p in s.parts:
            feats[f][p.key] = T.features(model, p.images, T.LAYERS, progress=False)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f, s in sets.items():
        for p in s.parts:
            for layer in T.LAYERS:
                T.features(model, p.images, [layer], progress=False)
    t_naive = time.perf_counter() - t0

    # (b) cached: a fresh cache folder, filled once, then read back
    import os
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("ZFBOOK_CACHE")
        # the datasets are already in memory; only the feature cache moves to tmp
        os.environ["ZFBOOK_CACHE"] = tmp
        from zfbook.checkpoint import save_atomic
        for f, s in sets.items():
            for p in s.parts:
                for layer in T.LAYERS:
                    save_atomic(feats[f][p.key][layer], T.feature_cache_path(sha, p.key, layer, "max"))
        t0 = time.perf_counter()
        back = {f: s.features(model, sha, T.LAYERS, progress=False) for f, s in sets.items()}
        t_cached = time.perf_counter() - t0
        if old is None:
            del os.environ["ZFBOOK_CACHE"]
        else:
            os.environ["ZFBOOK_CACHE"] = old
    assert torch.equal(back["transfer"]["fc7"][:600], feats["transfer"][sets["transfer"].parts[0].key]["fc7"])

    # (c) frozen arm, (d) probes
    ts = sets["transfer"]
    y = ts.labels.numpy()
    fc7 = back["transfer"]["fc7"].numpy()
    t0 = time.perf_counter()
    for k in T.SHOTS:
        for d in range(5):
            tr, te = ts.split(k, d)
            T.frozen_arm(fc7[tr], y[tr], fc7[te], y[te])
    t_frozen = time.perf_counter() - t0
    t_probe = {}
    for f, s in sets.items():
        yy = s.labels.numpy()
        t0 = time.perf_counter()
        for layer in T.LAYERS:
            xx = back[f][layer].numpy()
            for c in ("svm", "softmax"):
                for d in range(5):
                    tr, te = s.split(60, d)
                    T.probe(c, xx[tr], yy[tr], xx[te], yy[te])
        t_probe[f] = time.perf_counter() - t0

    print(f"zfnet-mini, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'measure':58s} {'seconds':>8s} {'budget':>7s} {'ratio':>6s}")
    rows = [(f"(a) features, 7 layers, both families ({n_images} images), one pass", t_all, 30),
            ("    baseline: one forward pass per layer", t_naive, None),
            ("(b) the same from the on-disk cache", t_cached, 1),
            ("(c) frozen arm, 8 shots x 5 draws", t_frozen, 30),
            ("(d) probes, 7 layers x 2 classifiers x 5 draws, transfer", t_probe["transfer"], 60),
            ("    the same on the main family (val shots, test split)", t_probe["main"], 60)]
    for name, t, budget in rows:
        print(f"{name:58s} {t:8.2f} {budget if budget else '':>7} "
              f"{(f'{t / budget:.2f}' if budget else ''):>6}")
    print(f"one pass vs one pass per layer: {t_naive / t_all:.1f}x faster")


if __name__ == "__main__":
    main()
