"""Figures of the chapter "Training" (Fig. 6): the layer-1 filters (Fig. 6 b/c), the
filters of runs with and without renormalisation (Fig. 6 a), and learning curves."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .images import _first_conv, mosaic, projection_rgb

__all__ = ['layer1_filters', 'filter_norms', 'learning_curves']


def layer1_filters(model_or_weight, ncols: int | None = None, title: str | None = None,
                   zoom: int = 4) -> Figure:
    """The layer-1 filters as RGB tiles (Fig. 6 b/c), each contrast-normalised on its own.

    Takes a model (its first ``Conv2d``) or a weight tensor (M, 3, k, k).
    """
    w = _first_conv(model_or_weight).detach().float().cpu()
    tiles = [np.kron(projection_rgb(f), np.ones((zoom, zoom, 1))) for f in w]
    ncols = ncols or int(np.ceil(np.sqrt(len(tiles))))
    img = mosaic(tiles, ncols, gap=2)
    h, wd = img.shape[:2]
    fig = Figure(figsize=(max(2.0, wd / 60), max(2.0, h / 60) + (0.3 if title else 0)))
    ax = fig.add_axes((0, 0, 1, 1 if not title else h / (h + 18)))
    ax.imshow(img, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    return fig


def filter_norms(runs: dict, radius: float = 0.1, ncols: int = 8, zoom: int = 4) -> Figure:
    """Fig. 6 a: the layer-1 filters of several runs (label → model or weight (M, 3, k, k)),
    all on one common scale, so a filter that grew shows bright and the rest fade to grey;
    under each, the filters' RMS in decreasing order with the renormalisation ``radius``."""
    weights = {k: _first_conv(v).detach().float().cpu() for k, v in runs.items()}
    scale = max(float(w.abs().max()) for w in weights.values())
    fig = Figure(figsize=(3.4 * len(weights), 4.0), layout="constrained")
    axes = fig.subplots(2, len(weights), squeeze=False, height_ratios=(1, 1))
    top = max(float(w.pow(2).mean((1, 2, 3)).sqrt().max()) for w in weights.values())
    for (label, w), (ax_f, ax_r) in zip(weights.items(), axes.T):
        tiles = [np.kron(projection_rgb(f, scale), np.ones((zoom, zoom, 1))) for f in w]
        ax_f.imshow(mosaic(tiles, ncols, gap=2), interpolation="nearest")
        ax_f.set_title(label, fontsize=9)
        ax_f.axis("off")
        rms = w.pow(2).mean((1, 2, 3)).sqrt().sort(descending=True).values.numpy()
        ax_r.bar(np.arange(len(rms)), rms, color=np.where(rms > radius * 1.0001, "C3", "C0"))
        ax_r.axhline(radius, color="k", ls="--", lw=1)
        ax_r.set(xlabel="filter (by RMS)", ylim=(0, 1.08 * max(top, radius)))
        ax_r.tick_params(labelsize=7)
    axes[1, 0].set_ylabel(f"RMS (dashed: radius {radius:g})", fontsize=8)
    return fig


def learning_curves(histories: dict) -> Figure:
    """Per-epoch training histories (label → list of :func:`zfbook.train.train` records):
    loss, top-1 and top-5 accuracy (train dashed, validation solid) and the learning rate."""
    fig = Figure(figsize=(6.8, 5.6), layout="constrained")   # fits the book's column
    axes = fig.subplot_mosaic([["loss", "acc"], ["lr", "lr"]],
                              height_ratios=[3, 1.7])
    ax_loss, ax_acc, ax_lr = axes["loss"], axes["acc"], axes["lr"]
    for i, (label, hist) in enumerate(histories.items()):
        ep = [h["epoch"] for h in hist]
        c = f"C{i}"
        ax_loss.plot(ep, [h["train_loss"] for h in hist], "--", color=c, label=f"{label} train")
        ax_loss.plot(ep, [h["val_loss"] for h in hist], "-", color=c, label=f"{label} val")
        for k, alpha in (("top1", 1.0), ("top5", 0.45)):
            ax_acc.plot(ep, [h[f"train_{k}"] for h in hist], "--", color=c, alpha=alpha)
            ax_acc.plot(ep, [h[f"val_{k}"] for h in hist], "-", color=c, alpha=alpha,
                        label=f"{label} val {k[:3]}-{k[3:]}")
        ax_lr.step(ep, [h["lr"] for h in hist], where="post", color=c, label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="%", title="accuracy (faint: top-5)", ylim=(0, 100))
    ax_lr.set(xlabel="epoch", title="learning rate", yscale="log")
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
