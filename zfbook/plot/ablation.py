"""Figures of the ablation chapter (Table 3): error against parameter count, the train-test
gap of every variant, and the variants' learning curves, ours beside the paper's."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..ablation import PAPER_TABLE3, errors

__all__ = ["COLOURS", "error_vs_params", "gaps", "mean_curve", "curves"]

#: one colour per variant: removals in warm colours, resizings in cool ones
COLOURS = {"baseline": "0.15", "no-fc7": "#fdae61", "no-fc6-fc7": "#f46d43",
           "no-conv3-conv4": "#d73027", "no-conv3-conv4-fc6-fc7": "#a50026",
           "fc-narrow": "#abd9e9", "fc-wide": "#74add1", "conv-wide": "#4575b4",
           "fc-wide-conv-wide": "#313695"}


def _style(ax, xlabel, ylabel):
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)


def error_vs_params(groups: dict, paper_params: dict) -> Figure:
    """Left: our test top-1 error (centre crop) against the parameter count, a dot per seed
    and a ring at the mean of each variant. Right: Table 3's validation top-1 error against
    the parameter count of the same variant of the full-size ZFNet (``paper_params``)."""
    fig = Figure(figsize=(6.8, 3.0), layout="constrained")
    a, b = fig.subplots(1, 2)
    for v, rs in groups.items():
        x, e = rs[0]["params"], [errors(r)["test"] for r in rs]
        a.plot([x] * len(e), e, "o", color=COLOURS[v], ms=3, alpha=0.7)
        a.plot(x, np.mean(e), "o", mfc="none", mec=COLOURS[v], ms=9, mew=1.5, label=v)
        b.plot(paper_params[v], PAPER_TABLE3[v][1], "s", color=COLOURS[v], ms=6)
    for ax, title in ((a, "ours: zfnet-mini variants, embedded test"),
                      (b, "paper: Table 3, ImageNet validation")):
        ax.set_xscale("log")
        ax.set_title(title, fontsize=8, loc="left")
        _style(ax, "parameters", "top-1 error (%)")
    fig.legend(*a.get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=7,
               frameon=False, handletextpad=0.2, columnspacing=0.8)
    return fig


def gaps(groups: dict) -> Figure:
    """Train against test top-1 error per variant, ours (mean over seeds, a dot per seed)
    and the paper's (train against validation): a long bar from train to test is a network
    that fits its training images far better than new ones."""
    names = list(groups)
    fig = Figure(figsize=(6.8, 0.32 * len(names) + 1.0), layout="constrained")
    a, b = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    for i, v in enumerate(names):
        tr = [errors(r)["train"] for r in groups[v]]
        te = [errors(r)["test"] for r in groups[v]]
        a.plot([np.mean(tr), np.mean(te)], [i, i], "-", color=COLOURS[v], lw=2)
        a.plot(tr, [i] * len(tr), "o", mfc="white", mec=COLOURS[v], ms=4)
        a.plot(te, [i] * len(te), "o", color=COLOURS[v], ms=4)
        ptr, pva = PAPER_TABLE3[v][:2]
        b.plot([ptr, pva], [i, i], "-", color=COLOURS[v], lw=2)
        b.plot([ptr], [i], "o", mfc="white", mec=COLOURS[v], ms=5)
        b.plot([pva], [i], "o", color=COLOURS[v], ms=5)
    a.set_yticks(y, names, fontsize=8)
    a.set_ylim(len(names) - 0.5, -0.5)
    _style(a, "top-1 error (%): ○ train, ● test", "")
    _style(b, "top-1 error (%): ○ train, ● validation", "")
    a.set_title("ours", fontsize=8, loc="left")
    b.set_title("paper (Table 3)", fontsize=8, loc="left")
    return fig


def mean_curve(histories, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epochs, mean, runs)``: per epoch, the mean of ``key`` over the histories that
    trained that epoch, and how many did. Runs stopped at their plateau (``stop_patience``)
    have histories of different lengths; after the first stops, the mean is over the runs
    still training, so it may step where one leaves."""
    by_epoch: dict[int, list[float]] = {}
    for history in histories:
        for h in history:
            by_epoch.setdefault(h["epoch"], []).append(h[key])
    epochs = sorted(by_epoch)
    return (np.array(epochs), np.array([np.mean(by_epoch[e]) for e in epochs]),
            np.array([len(by_epoch[e]) for e in epochs]))


def curves(groups: dict) -> Figure:
    """Per epoch, training error (left) and validation error (right) of every variant: the
    mean over the seeds still training (:func:`mean_curve`), and a dot where each run
    stopped (its last epoch's error)."""
    fig = Figure(figsize=(6.8, 2.8), layout="constrained")
    a, b = fig.subplots(1, 2, sharey=True)
    for v, rs in groups.items():
        for ax, key in ((a, "train_top1"), (b, "val_top1")):
            ep, top1, _ = mean_curve([r["history"] for r in rs], key)
            ax.plot(ep, 100.0 - top1, color=COLOURS[v], lw=1.2, label=v)
            ends = [r["history"][-1] for r in rs]
            ax.plot([h["epoch"] for h in ends], [100.0 - h[key] for h in ends], "o", ls="none",
                    color=COLOURS[v], ms=3)
    _style(a, "epoch", "training top-1 error (%)")
    _style(b, "epoch", "validation top-1 error (%)")
    fig.legend(*a.get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=7,
               frameon=False, handletextpad=0.3, columnspacing=0.8)
    return fig
