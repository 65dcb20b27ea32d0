"""Occlusion sweep (Fig. 7): zfbook's incremental inference vs Captum's ``Occlusion``.

Baseline: ``captum.attr.Occlusion`` on ``softmax(model(x))`` for P(target) alone, with
``perturbations_per_eval=64`` and the same square and stride (baselines 0 = the training
mean after mean subtraction). Ours: :func:`zfbook.occlusion.occlusion_maps`, which returns
all three maps of Fig. 7 (activity of the strongest conv5 map, P(target), top class) from
one sweep, by incremental inference. Also shown: ``method="batched"``, the plain batched
sweep of full forward passes (64 occluded images at a time).

First the two P(target) maps are checked to agree, once ours is converted to Captum's
averaged-difference form (:func:`zfbook.occlusion.attribution`). Then each method is timed
``--repeats`` times, interleaved, after one warm-up run each. The table gives each
method's median and minimum time, the speed-up (the median over repeats of the baseline's
time over the method's in the same repeat, robust to the load of a shared machine) and
the ratio of the minimum times.

The widget budget: one slider move (a new square position or size) on zfnet-mini: the
occluded image plus P(true class) and the predicted class, from a cached
:class:`~zfbook.occlusion.IncrementalForward`.

Run: ``python benchmarks/bench_occlusion.py`` (about 2 minutes on 2 CPU cores). Every
method runs on one thread by default (``--threads 0``: torch's own choice). On a machine
shared with other jobs, two threads on two busy cores make every parallel op wait for a
descheduled thread; that hurts the many short ops of the incremental sweep far more than
the few long ones of full passes, and the ratio then measures the load rather than the
methods. On an idle machine the two-thread ratio is about the same as the one-thread one.
Weights: the shipped zfnet-mini checkpoint when it exists, else random. There is no
trained full-size zfnet, so it gets random Kaiming-normal weights (which keep P(target)
varying, so the agreement check means something); the timings do not depend on the
weight values.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from zfbook.models import build
from zfbook.occlusion import IncrementalForward, attribution, occlude, occlusion_maps


BASELINE = "captum Occlusion (P only, 64/eval)"


def _model(name: str, num_classes: int) -> tuple[nn.Module, str]:
    if name == "zfnet-mini":
        try:
            from zfbook import pretrained
            return pretrained(name).eval(), "trained checkpoint"
        except Exception:  # no checkpoint yet: random weights
            pass
    torch.manual_seed(0)
    model = build(name, num_classes=num_classes).eval()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model, "random (Kaiming)"


def _image(size: int) -> torch.Tensor:
    """A smooth random test image in the paper's units (0…255 minus the mean)."""
    g = torch.Generator().manual_seed(1)
    low = torch.rand(1, 3, 8, 8, generator=g) * 255 - 128
    img = nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    return (img[0] + 20 * torch.randn(3, size, size, generator=g)).contiguous()


def _image_for(model: nn.Module) -> tuple[torch.Tensor, str]:
    """The test image for ``model``: with trained weights, the first cat of the embedded test
    split in the checkpoint's own preprocessing (P(cat) falls when its face is covered, so
    the agreement check compares maps that vary); else the synthetic image, in the preset's
    input units."""
    if hasattr(model, "preprocess"):
        from zfbook.data import embedded
        test = embedded("test")
        i = test.classes.index("cat")
        first = int((test.labels == i).nonzero()[0])
        return model.preprocess.center(test.images[first:first + 1])[0], f"embedded test image {first} (cat)"
    return _image(model.preset.crop) * model.preset.input_scale, "synthetic smooth image"


def _captum(model, image, target, patch, stride):
    from captum.attr import Occlusion
    occ = Occlusion(lambda x: torch.softmax(model(x), dim=1))
    with torch.no_grad():
        return occ.attribute(image[None], sliding_window_shapes=(image.shape[0], patch, patch),
                             strides=(image.shape[0], stride, stride), baselines=0.0,
                             target=target, perturbations_per_eval=64)[0]


def sweep(name: str, patch: int, stride: int, repeats: int, num_classes: int) -> dict:
    model, weights = _model(name, num_classes)
    size = model.preset.crop
    image, what = _image_for(model)
    weights = f"{weights}, {what}"
    with torch.no_grad():
        target = int(model(image[None]).argmax())
    # 1. agreement, before any timing
    ours = occlusion_maps(model, image, target, patch, stride)
    ref = _captum(model, image, target, patch, stride)
    if (size - patch) % stride:
        raise SystemExit("choose a stride that divides size − patch so both grids coincide")
    ours_attr = attribution(ours).float()
    err = float((ours_attr - ref[0]).abs().max())
    scale = float(ref.abs().max())
    same_channels = float((ref - ref[0]).abs().max())
    batched = occlusion_maps(model, image, target, patch, stride, method="batched")
    agree = {
        "max |ours − captum| (attribution)": err,
        "max |captum|": scale,
        "max |ours − batched| P(target)": float((ours.p_target - batched.p_target).abs().max()),
        "max |ours − batched| activity / max": float(
            (ours.activity - batched.activity).abs().max()
            / batched.activity.abs().max().clamp_min(1e-12)),
        "top-class mismatches vs batched": int((ours.top_class != batched.top_class).sum()),
    }
    # float32 through eight layers: agreement to ~1e-5 of the largest value is exact
    ok = (scale > 0 and err <= 1e-4 * scale + 1e-7 and same_channels == 0.0  # scale 0: nothing compared
          and agree["max |ours − batched| P(target)"] <= 1e-4
          and agree["max |ours − batched| activity / max"] <= 1e-4)
    # 2. timing, interleaved
    runs = {
        BASELINE: lambda: _captum(model, image, target, patch, stride),
        "zfbook batched (3 maps, 64/batch)": lambda: occlusion_maps(
            model, image, target, patch, stride, method="batched"),
        "zfbook incremental (3 maps)": lambda: occlusion_maps(model, image, target, patch, stride),
    }
    times = {k: [] for k in runs}
    order = list(runs)
    for rep in range(repeats):
        # rotate the order so that no method always runs first after a pause
        for k in order[rep % len(order):] + order[:rep % len(order)]:
            t = time.perf_counter()
            runs[k]()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = times[BASELINE]
    # speed-up per repeat (baseline and method timed within seconds of each other), so a
    # change of load on a shared machine affects both sides of each ratio alike
    paired = {k: statistics.median(b / t for b, t in zip(base, v)) for k, v in times.items()}
    engine = IncrementalForward(model, image)
    n = len(ours.positions.reshape(-1, 2))
    tops, lefts = ours.positions.reshape(-1, 2).T.numpy()
    return dict(name=name, weights=weights, size=size, patch=patch, stride=stride, placements=n,
                agree=agree, ok=ok, times=times, median=med, paired=paired,
                flops=engine.flops_fraction(tops, lefts, patch))


def widget_latency(moves: int = 60) -> dict:
    """One slider move on zfnet-mini: occluded image + P(true) + predicted class."""
    model, weights = _model("zfnet-mini", 12)
    image, what = _image_for(model)
    weights = f"{weights}, {what}"
    with torch.no_grad():
        true = int(model(image[None]).argmax())
    t = time.perf_counter()
    engine = IncrementalForward(model, image)
    setup = time.perf_counter() - t
    rng = np.random.default_rng(0)
    sizes = [8, 12, 16, 20, 24, 32, 40, 48]
    lat = []
    h = image.shape[-1]
    for i in range(moves):
        size = int(sizes[i % len(sizes)])
        y, x = (int(v) for v in rng.integers(0, h - size + 1, size=2))
        t = time.perf_counter()
        shown = occlude(image, y, x, size)
        logits, _ = engine.run([y], [x], size)
        p = torch.softmax(logits[0], 0)
        p_true, top = float(p[true]), int(p.argmax())
        lat.append(time.perf_counter() - t)
        assert shown.shape == image.shape and 0 <= p_true <= 1 and 0 <= top < 12
    # exactness of one move vs the plain forward
    with torch.no_grad():
        direct = torch.softmax(model(occlude(image, y, x, size)[None])[0], 0)
    return dict(weights=weights, setup=setup, first=lat[0], median=statistics.median(lat),
                p95=float(np.percentile(lat[1:], 95)), max=max(lat[1:]),
                exact=float((direct - p).abs().max()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed runs per method on zfnet (5× as many on zfnet-mini)")
    ap.add_argument("--skip-full", action="store_true", help="only zfnet-mini")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every method (default 1; 0 = torch's own choice)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    # (preset, patch, stride, classes, repeats): the mini runs take ~0.1 s, so repeat more
    configs = [("zfnet-mini", 16, 8, 12, 5 * args.repeats)]
    if not args.skip_full:
        configs.insert(0, ("zfnet", 32, 16, 1000, args.repeats))
    results = [sweep(name, patch, stride, reps, classes)
               for name, patch, stride, classes, reps in configs]
    for r in results:
        print(f"\n== {r['name']} at {r['size']}×{r['size']}, patch {r['patch']}, stride "
              f"{r['stride']}: {r['placements']} placements; weights: {r['weights']}")
        print("agreement (checked first):")
        for k, v in r["agree"].items():
            print(f"  {k:40s} {v:.3g}")
        print(f"  -> {'AGREE' if r['ok'] else 'DISAGREE'}")
        print(f"incremental FLOPs / full FLOPs: {r['flops']:.3f} (ceiling {1 / r['flops']:.1f}×)")
        print(f"{'method':38s} {'median s':>9s} {'min s':>8s} {'speed-up':>9s} {'of mins':>8s}")
        for k, v in r["median"].items():
            t_min = min(r["times"][k])
            print(f"{k:38s} {v:9.3f} {t_min:8.3f} {r['paired'][k]:8.2f}× "
                  f"{min(r['times'][BASELINE]) / t_min:7.2f}×")
        print("speed-up: median over repeats of (baseline time / method time) in that repeat")
    w = widget_latency()
    print(f"\n== widget: one slider move on zfnet-mini (weights: {w['weights']})")
    print(f"  setup (cache the unoccluded pass)  {1e3 * w['setup']:.1f} ms")
    print(f"  first move                         {1e3 * w['first']:.1f} ms")
    print(f"  median move                        {1e3 * w['median']:.1f} ms  (budget 100 ms)")
    print(f"  95th percentile after the first    {1e3 * w['p95']:.1f} ms")
    print(f"  slowest move after the first       {1e3 * w['max']:.1f} ms")
    print(f"  max |P − P(plain forward)|         {w['exact']:.2g}")
    if not all(r["ok"] for r in results):
        raise SystemExit("maps disagree with the reference")


if __name__ == "__main__":
    main()
