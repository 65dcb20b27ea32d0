"""Benchmark: the deconvnet (zfbook.deconv) and the top-k search (zfbook.topk), issue #4.

Baseline: Captum's ``NeuronDeconvolution`` (the "Deconvolution" attribution: the gradient with
ReLU's backward replaced by ReLU of the gradient), called one target at a time on the same
targets, times the activation's value (the deconvnet is seeded with the activation). Captum
differentiates contrast normalisation, which the deconvnet passes through unchanged (Section
2.1), so the baseline runs on a copy of the model whose LRN layers compute the same forward
but pass the gradient through (``x + (lrn(x) - x).detach()``). The agreement check comes
first: max over targets of max|ours - Captum| / max|Captum| must be ≤ 1e-4.

Workloads (zfnet-mini; the shipped checkpoint when it exists, else random weights):
  (a) all conv5 maps of one image, each at its strongest location (the widget, Fig. 7c);
  (b) the top-9 projections of every conv5 map over the embedded test set (Fig. 2);
  (c) the top-k search over the test set (conv1…conv5 at once) vs a plain forward pass.

    .venv/bin/python benchmarks/bench_deconv.py [--images N] [--repeats R] [--search-repeats R]
                                                [--baseline-repeats R]

Times are the best of R rounds, the contenders run in alternation (after a warm-up each).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import torch

from zfbook import deconv, topk
from zfbook.models import activations, build, layer_module

LAYER, MODULE = "conv5", "features.relu5"


def load_model():
    try:
        from zfbook import pretrained
        model = pretrained("zfnet-mini")
        return model.eval(), "pretrained zfnet-mini checkpoint", model.preprocess
    except Exception as e:  # no checkpoint yet
        torch.manual_seed(0)
        return build("zfnet-mini", num_classes=12).eval(), f"random-weight zfnet-mini ({type(e).__name__}: {e})", None


def load_images(preprocess, n):
    try:
        from zfbook.data import Preprocess, embedded, mean_image
        ds = embedded("test")
        raw = ds.images if n is None else ds.images[:n]
        pre = preprocess or Preprocess(mean_image(ds.images), 112)
        return pre.center(raw), f"embedded test set ({len(raw)} images)"
    except Exception as e:
        n = n or 2400
        g = torch.Generator().manual_seed(0)
        return torch.randn(n, 3, 112, 112, generator=g) * 60, \
            f"random tensor ({n} images; embedded test set unavailable: {type(e).__name__}: {e})"


def captum_baseline(model):
    from captum.attr import NeuronDeconvolution
    m = deconv.pass_norm(model).eval()  # LRN forward, identity backward, as the deconvnet does
    layer = m.get_submodule(MODULE)
    nd = NeuronDeconvolution(m, layer)

    def run(images, targets):
        """targets: (image index, map, y, x, value) → (S, C, H, W)"""
        out = torch.empty(len(targets), *images.shape[1:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s, (i, c, y, x, v) in enumerate(targets):
                g = nd.attribute(images[i:i + 1], neuron_selector=(c, y, x))
                out[s] = g[0] * v
        return out
    return run


def targets_of(act_img, maps):
    """(map, y, x, value) of each map's strongest activation in one image's (M, H, W)."""
    out = []
    for c in maps:
        flat = act_img[c].flatten()
        j = int(flat.argmax())
        out.append((c, j // act_img.shape[-1], j % act_img.shape[-1], float(flat[j])))
    return out


def agreement(ours, ref):
    worst = 0.0
    for a, b in zip(ours, ref):
        scale = float(b.abs().max())
        if scale == 0.0:
            if float(a.abs().max()) != 0.0:
                return float("inf")
            continue
        worst = max(worst, float((a - b).abs().max()) / scale)
    return worst


def interleaved(fns, rounds, warm_up=True):
    """Best-of-``rounds`` wall time of each function, run in alternation (after one warm-up
    each), so that load from other processes hits all of them alike."""
    for f in fns if warm_up else ():
        f()
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for j, f in enumerate(fns):
            t = time.perf_counter()
            f()
            best[j] = min(best[j], time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=None, help="use only the first N test images")
    ap.add_argument("--repeats", type=int, default=5, help="timing rounds for (a) (best of)")
    ap.add_argument("--search-repeats", type=int, default=7, help="timing rounds for (c) (best of)")
    ap.add_argument("--search-images", type=int, default=512,
                    help="images per timing round of (c); short rounds make best-of robust to load")
    ap.add_argument("--baseline-repeats", type=int, default=1,
                    help="timing rounds for (b), whose Captum side takes ~20 s per round")
    args = ap.parse_args()
    torch.manual_seed(0)
    model, model_desc, preprocess = load_model()
    images, data_desc = load_images(preprocess, args.images)
    print(f"model: {model_desc}\ndata: {data_desc}\ntorch threads: {torch.get_num_threads()}, "
          f"load average at start: {os.getloadavg()[0]:.1f} (other processes distort wall times)")
    baseline = captum_baseline(model)
    rows = []

    # ---- (a) all conv5 maps of one image
    with torch.no_grad():
        acts = activations(model, images[:8], LAYER)[LAYER]
    img = int(acts.flatten(1).amax(1).argmax())  # the image with the strongest conv5 activation
    maps = acts.shape[1]
    x1 = images[img:img + 1]
    with torch.no_grad():  # seeds from the same one-image forward that project() runs
        acts1 = activations(model, x1, LAYER)[LAYER]
    t_a = [(img, *t) for t in targets_of(acts1[0], range(maps))]
    ours_a = deconv.project(model, x1, LAYER, [list(range(maps))])[0]
    ref_a = baseline(images, t_a)
    err_a = agreement(ours_a, ref_a)
    print(f"(a) agreement with Captum over {maps} targets: max relative difference {err_a:.2e}")
    assert err_a <= 1e-4, "ours and Captum disagree"
    base_a, ours_a_t, dense_a_t = interleaved([
        lambda: baseline(images, t_a),
        lambda: deconv.project(model, x1, LAYER, [list(range(maps))]),
        lambda: deconv.project(model, x1, LAYER, [list(range(maps))], crop=False)], args.repeats)
    rows.append((f"(a) all {maps} conv5 maps, one image", base_a, ours_a_t, 4.0))
    rows.append((f"    same, down pass not cropped", base_a, dense_a_t, None))

    # ---- (c) top-k search vs a plain forward pass
    bs = 64

    sub = images[:args.search_images]

    @torch.no_grad()
    def plain_forward(stop=None):
        net = model if stop is None else model.features[:stop]
        for s in range(0, len(sub), bs):
            net(sub[s:s + bs])

    stop5 = list(model.features).index(layer_module(model, LAYER)) + 1  # up to relu5

    def search(data):
        return topk.top_activations(model, data, ["conv1", "conv2", "conv3", "conv4", "conv5"],
                                    k=9, batch_size=bs, progress=False)

    fwd_t, fwd5_t, search_t = interleaved([plain_forward, lambda: plain_forward(stop5),
                                           lambda: search(sub)], args.search_repeats)
    top = search(images)[LAYER]  # over the whole test set, for (b)

    # ---- (b) top-9 projections of every conv5 map over the test set
    t_b = [(int(top.index[c, r]), c, int(top.y[c, r]), int(top.x[c, r]), float(top.value[c, r]))
           for c in range(top.maps) for r in range(top.k)]
    ours_b = top.project(model, images).flatten(0, 1)
    ref_b = baseline(images, t_b)
    err_b = agreement(ours_b, ref_b)
    print(f"(b) agreement with Captum over {len(t_b)} targets: max relative difference {err_b:.2e}")
    assert err_b <= 1e-4, "ours and Captum disagree"
    # the agreement check above was the warm-up
    base_b, ours_b_t = interleaved([lambda: baseline(images, t_b), lambda: top.project(model, images)],
                                   args.baseline_repeats, warm_up=False)
    rows.append((f"(b) top-9 of every conv5 map ({len(t_b)} projections)", base_b, ours_b_t, 2.0))

    n = len(sub)
    print()
    print(f"{'workload':52s} {'baseline s':>11s} {'ours s':>9s} {'speed-up':>9s} {'target':>7s}")
    for name, b, o, target in rows:
        tgt = f"≥{target:.0f}×" if target else ""
        print(f"{name:52s} {b:11.3f} {o:9.3f} {b / o:8.1f}× {tgt:>7s}")
    print()
    print(f"(c) top-k search (conv1…conv5, k=9) vs plain forward, images/s (best of "
          f"{args.search_repeats} rounds of {n} images):")
    print(f"    plain forward, whole model:          {n / fwd_t:9.1f}")
    print(f"    plain forward, up to conv5 (relu5):  {n / fwd5_t:9.1f}")
    print(f"    top-k search:                        {n / search_t:9.1f}   "
          f"= {fwd_t / search_t:.2f}× the whole-model forward, "
          f"{fwd5_t / search_t:.2f}× the forward up to conv5 (target ≥0.8×)")
    print("\nbaseline for (a), (b): Captum NeuronDeconvolution, one target per call; "
          "for (c): the model's own forward in batches of 64 under torch.no_grad().")


if __name__ == "__main__":
    main()
