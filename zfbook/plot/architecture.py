"""Figures of the architecture chapter (Fig. 6 b–e, Table 2's first rows): both networks'
layer-1 filters and layer-2 projections at the same pixel scale, the layer-1 spectra, the
shift responses, and the seeds' spread. Filters and projections are contrast-normalised
one by one, grey is zero (as in :mod:`zfbook.plot`)."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .images import mosaic, projection_rgb

__all__ = ["filters_pair", "projections_pair", "spectra", "shift_curves", "seeds", "curves",
           "gabor_r2", "gabor_examples", "NET_COLOURS"]

NET_COLOURS = {"alexnet-mini": "#d95f02", "zfnet-mini": "#1b9e77"}


def _pair(left, right, titles, px: float) -> Figure:
    """Two HWC images side by side at ``px`` inches per image pixel."""
    (h1, w1), (h2, w2) = left.shape[:2], right.shape[:2]
    width, height = (w1 + w2) * px + 0.3, max(h1, h2) * px + 0.3
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[w1, w2], wspace=0.3 / width * 2,
                                               left=0.01, right=0.99, bottom=0.01,
                                               top=1 - 0.3 / height))
    for ax, img, title in zip(axes, (left, right), titles):
        pad = np.full((max(h1, h2), img.shape[1], 3), 1.0, dtype=np.float32)
        pad[:img.shape[0]] = img
        ax.imshow(pad, interpolation="nearest")
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    return fig


def filters_pair(alexnet_weight, zfnet_weight, *, ncols: int = 8, px: float = 0.026) -> Figure:
    """Fig. 6 b, c: the layer-1 filters of both networks, each filter contrast-normalised on
    its own, drawn at the same size per filter tap (an 11 × 11 filter is drawn larger than
    a 7 × 7 one)."""
    tiles = [[projection_rgb(f) for f in w.detach().float().cpu()] for w in (alexnet_weight, zfnet_weight)]
    a, z = (mosaic(t, ncols, gap=1) for t in tiles)
    ka, kz = alexnet_weight.shape[-1], zfnet_weight.shape[-1]
    return _pair(a, z, (f"(b) alexnet-mini conv1, {ka}×{ka} / 4", f"(c) zfnet-mini conv1, {kz}×{kz} / 2"), px)


def projections_pair(alexnet_tiles, zfnet_tiles, *, ncols: int = 6, px: float = 0.011) -> Figure:
    """Fig. 6 d, e: layer-2 projections (one per map, cut to the receptive field) of both
    networks, at the same size per image pixel. Tiles of a network are padded to its
    largest receptive field (white)."""
    imgs = []
    for tiles in (alexnet_tiles, zfnet_tiles):
        side = max(max(t.shape[-2:]) for t in tiles)
        out = []
        for t in tiles:
            rgb = projection_rgb(t)
            canvas = np.ones((side, side, 3), dtype=np.float32)
            y, x = (side - rgb.shape[0]) // 2, (side - rgb.shape[1]) // 2
            canvas[y:y + rgb.shape[0], x:x + rgb.shape[1]] = rgb
            out.append(canvas)
        imgs.append(mosaic(out, ncols, gap=2))
    return _pair(imgs[0], imgs[1], ("(d) alexnet-mini conv2", "(e) zfnet-mini conv2"), px)


def spectra(named: dict, bands=((0, 1 / 6), (1 / 6, 1 / 3), (1 / 3, 0.5))) -> Figure:
    """Radially averaged power spectra of layer-1 filter banks: ``named`` maps a label to
    ``(freq, power)`` with ``power`` (filters, bins) from
    :func:`zfbook.architecture.radial_spectrum` (the bank's mean is drawn, with the middle
    half of the filters shaded). Labels containing "init" are dashed."""
    fig = Figure(figsize=(6.2, 2.8), layout="constrained")
    ax = fig.subplots()
    for (lo, hi), name in zip(bands, ("low", "mid", "high")):
        ax.axvspan(lo, hi, color="0.93" if name == "mid" else "white", zorder=0)
        ax.text((lo + hi) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=8, color="0.4")
    for label, (freq, power) in named.items():
        colour = next((c for k, c in NET_COLOURS.items() if label.startswith(k)), None)
        mean = power.mean(0).numpy()
        ls = "--" if "init" in label else "-"
        ax.plot(freq.numpy(), mean, ls, color=colour, lw=1.5, label=label)
        if "init" not in label:
            q = torch.quantile(power, torch.tensor([0.25, 0.75]), dim=0).numpy()
            ax.fill_between(freq.numpy(), q[0], q[1], color=colour, alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlim(0, 0.5)
    ax.set_xlabel("spatial frequency (cycles per input pixel)", fontsize=8)
    ax.set_ylabel("normalised power density", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    return fig


def shift_curves(named: dict, n_maps: int = 6) -> Figure:
    """Summed responses against the input shift, one panel per label: ``named`` maps a label
    to a (shifts, N, maps) tensor from :func:`zfbook.architecture.shift_responses`. Each
    line is one map's response summed over the images, divided by its mean over shifts;
    the ``n_maps`` strongest maps are drawn."""
    fig = Figure(figsize=(6.8, 2.3 if len(named) <= 4 else 4.2), layout="constrained")
    ncols = min(4, len(named))
    nrows = -(-len(named) // ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True)).ravel()
    for ax, (label, r) in zip(axes, named.items()):
        total = r.sum(1)                          # (shifts, maps)
        mean = total.mean(0)
        order = mean.abs().argsort(descending=True)[:n_maps]
        for m in order:
            ax.plot(range(total.shape[0]), (total[:, m] / mean[m]).numpy(), "o-", ms=2, lw=1)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("shift (pixels)", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(named):]:
        ax.axis("off")
    axes[0].set_ylabel("response / its mean", fontsize=8)
    return fig


def seeds(groups: dict, metric: str = "test_error_top1_10crop", label: str = "test top-1 error, 10 crops (%)") -> Figure:
    """One row per group (label → list of records): each seed's ``metric`` as a dot, the
    mean as a bar with ± one standard deviation."""
    fig = Figure(figsize=(6.0, 0.55 * len(groups) + 0.8), layout="constrained")
    ax = fig.subplots()
    names = list(groups)
    for i, name in enumerate(names):
        v = np.array([r[metric] for r in groups[name]])
        colour = next((c for k, c in NET_COLOURS.items() if name.startswith(k)), "0.3")
        ax.errorbar(v.mean(), i, xerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="|", ms=14,
                    color=colour, capsize=4, lw=1.5)
        ax.plot(v, np.full(len(v), i), "o", color=colour, ms=5, alpha=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(label, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def curves(groups: dict) -> Figure:
    """Learning curves from the records' histories: training loss and validation top-1 per
    epoch, one line per run, one colour per group (label → list of records)."""
    fig = Figure(figsize=(6.8, 2.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for gi, (name, recs) in enumerate(groups.items()):
        colour = next((c for k, c in NET_COLOURS.items() if name.startswith(k)), "0.3")
        for j, r in enumerate(recs):
            ep = [h["epoch"] for h in r["history"]]
            kw = dict(color=colour, lw=1, ls=styles[gi % len(styles)], alpha=0.85,
                      label=name if j == 0 else None)
            a.plot(ep, [h["train_loss"] for h in r["history"]], **kw)
            b.plot(ep, [h["val_top1"] for h in r["history"]], **kw)
    a.set_ylabel("training loss", fontsize=8)
    a.set_yscale("log")
    b.set_ylabel("validation top-1 (%)", fontsize=8)
    for ax in (a, b):
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    b.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def gabor_r2(named: dict, threshold: float = 0.85) -> Figure:
    """Fig. 6 c's claim as a number: each set's conv1 filters as dots at their best Gabor
    fit's R² (:mod:`zfbook.gabor`), the threshold as a line, and the share above it.
    ``named``: label → R² array, in the order to draw (the null and the control among them)."""
    fig = Figure(figsize=(6.4, 0.5 + 0.42 * len(named)))
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    for i, (label, r2) in enumerate(named.items()):
        r2 = np.asarray(r2, dtype=float)
        y = len(named) - 1 - i + rng.uniform(-0.18, 0.18, len(r2))
        colour = NET_COLOURS.get(label.split(" ")[0], "#666666")
        ax.scatter(np.clip(r2, 0, 1), y, s=10, color=colour, alpha=0.8, linewidths=0)
        ax.text(1.02, len(named) - 1 - i, f"{(r2 >= threshold).mean():.0%}", va="center", fontsize=8,
                transform=ax.get_yaxis_transform())
    ax.axvline(threshold, color="k", lw=0.8, ls="--")
    ax.set_yticks(range(len(named)), list(named)[::-1], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"R² of the best 2-D Gabor fit per conv1 filter (share ≥ {threshold} at the right)", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def gabor_examples(fits, n: int = 8, *, px: float = 0.1) -> Figure:
    """Filters beside their fitted Gabors (:func:`zfbook.gabor.layer_fits`): ``n`` kernels
    spread over the R² range, best first — the fitted kernel (luminance or colour-opponent)
    above, the Gabor below, each on its own symmetric grey scale, with its R²."""
    order = sorted(range(len(fits)), key=lambda i: -fits[i].r2)
    pick = [order[int(round(j))] for j in np.linspace(0, len(order) - 1, min(n, len(order)))]
    k = fits[0].kernel.shape[0]
    fig = Figure(figsize=(len(pick) * (k * px + 0.1), 2 * k * px + 0.6))
    axes = fig.subplots(2, len(pick), squeeze=False)
    for col, i in enumerate(pick):
        f = fits[i]
        lim = float(np.abs(f.kernel).max()) or 1.0
        for row, img in enumerate((f.kernel, f.fitted())):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(f"{f.r2:.2f}", fontsize=8)
    axes[0, 0].set_ylabel("filter", fontsize=8)
    axes[1, 0].set_ylabel("Gabor", fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig
