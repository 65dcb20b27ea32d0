"""Figures of the sanity checks (:mod:`zfbook.sanity`): the randomisation grid, the
similarity curves, neuron selectivity and the reconstruction check.

Every map is shown as its absolute value summed over colour channels, scaled to its own
maximum (black 0, white the maximum), the form Adebayo et al. compare.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import sanity

__all__ = ["abs_map", "grid", "curves", "selectivity_bars", "reconstruction", "view"]

_NAMES = {"deconvnet": "deconvnet", "gradient": "gradient",
          "guided_backprop": "guided backprop", "occlusion": "occlusion"}
_COLOURS = {"deconvnet": "C3", "gradient": "C0", "guided_backprop": "C2", "occlusion": "C1"}


def abs_map(m) -> np.ndarray:
    """|map| summed over channels, scaled to [0, 1] by its maximum (all 0 if it is 0)."""
    v = sanity._view(m, True)
    top = v.max()
    return v / top if top > 0 else v


def _image(x, preprocess):
    if preprocess is not None:
        return preprocess.display(x)
    from .images import image_rgb
    return image_rgb(x)


def grid(result: sanity.Randomisation, images: torch.Tensor, preprocess=None, image: int = 0,
         size: float = 1.05) -> Figure:
    """Methods (rows) × randomisation steps (columns) for one image; the image first."""
    methods = list(result.maps)
    n = len(result.steps)
    fig = Figure(figsize=(size * (n + 1), size * len(methods) + 0.5), layout="constrained")
    axes = fig.subplots(len(methods), n + 1, squeeze=False)
    for r, m in enumerate(methods):
        axes[r, 0].imshow(_image(images[image], preprocess))
        axes[r, 0].set_ylabel(_NAMES[m].replace(" ", "\n"), fontsize=9)
        for k in range(n):
            axes[r, k + 1].imshow(abs_map(result.maps[m][k][image]), cmap="gray", vmin=0, vmax=1)
    labels = ["image", "trained"] + [f"→ {st[-1]}" if result.mode == "cascading" else st[0]
                                     for st in result.steps[1:]]
    for k, label in enumerate(labels):
        axes[0, k].set_title(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def curves(result: sanity.Randomisation, measures=("spearman_abs", "spearman", "ssim"),
           size: float = 3.0) -> Figure:
    """Similarity to the trained network's map at every step: mean ± std over images."""
    titles = {"spearman_abs": "Spearman, |map|", "spearman": "Spearman, signed map",
              "ssim": "SSIM, |map|"}
    fig = Figure(figsize=(size * len(measures) + 0.6, size), layout="constrained")
    axes = fig.subplots(1, len(measures), sharey=True, squeeze=False)[0]
    steps = np.arange(len(result.steps))
    for ax, s in zip(axes, measures):
        for i, m in enumerate(result.maps):
            ax.errorbar(steps + 0.06 * (i - 1.5), result.mean(m, s), result.std(m, s),
                        label=_NAMES[m], color=_COLOURS[m], marker="o", ms=3, capsize=2, lw=1.2)
        ax.axhline(0, color="0.6", lw=0.8)
        ticks = ["none"] + [st[-1] if result.mode == "cascading" else st[0]
                            for st in result.steps[1:]]
        ax.set_xticks(steps, ticks, fontsize=8, rotation=60)
        ax.set_title(titles[s], fontsize=10)
        ax.set_xlabel("randomised from fc8 down to" if result.mode == "cascading"
                      else "randomised layer", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("similarity to the trained map")
    axes[0].set_ylim(-0.45, 1.05)
    axes[-1].legend(fontsize=8, loc="lower left")
    for ax in axes:
        ax.tick_params(axis="y", labelsize=8)
    return fig


def selectivity_bars(table: dict, size: float = 3.2) -> Figure:
    """``table[method][target]`` = per-image mean pairwise similarities; bars: mean ± std."""
    targets = ["conv5", "fc8"]
    titles = {"conv5": "different conv5 maps, same image",
              "fc8": "different classes (fc8), same image"}
    fig = Figure(figsize=(2 * size + 0.4, size * 0.9), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, t in zip(axes, targets):
        methods = [m for m in table if t in table[m]]
        vals = [np.asarray(table[m][t], float) for m in methods]
        ax.bar(range(len(methods)), [np.nanmean(v) for v in vals],
               yerr=[np.nanstd(v) for v in vals], capsize=3,
               color=[_COLOURS[m] for m in methods])
        ax.set_xticks(range(len(methods)), [_NAMES[m].replace(" ", "\n") for m in methods],
                      fontsize=8)
        ax.set_title(titles[t], fontsize=9)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean pairwise Spearman, |map|")
    axes[0].set_ylim(-0.1, 1.0)
    return fig


def reconstruction(images: torch.Tensor, panels: dict, preprocess=None, image: int = 0,
                   size: float = 1.6) -> Figure:
    """One image, its edge map, then ``panels`` (title → maps (N, …)) of that image."""
    n = 2 + len(panels)
    fig = Figure(figsize=(size * n, size + 0.45), layout="constrained")
    axes = fig.subplots(1, n)
    axes[0].imshow(_image(images[image], preprocess))
    axes[0].set_title("image", fontsize=8)
    edges = sanity.edge_map(images[image])
    axes[1].imshow(edges / edges.max(), cmap="gray")
    axes[1].set_title("edges (Sobel)", fontsize=8)
    for ax, (title, maps) in zip(axes[2:], panels.items()):
        ax.imshow(abs_map(maps[image]), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    for ax in axes:
        ax.axis("off")
    return fig


def view(result: sanity.Randomisation, images: torch.Tensor, method: str, step: int,
         preprocess=None, image: int = 0, size: float = 2.2) -> Figure:
    """The widget's view: the image, the trained map and the map at ``step``."""
    fig = Figure(figsize=(3 * size, size + 0.35), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].imshow(_image(images[image], preprocess))
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(abs_map(result.maps[method][0][image]), cmap="gray", vmin=0, vmax=1)
    axes[1].set_title(f"{_NAMES[method]}, trained", fontsize=9)
    axes[2].imshow(abs_map(result.maps[method][step][image]), cmap="gray", vmin=0, vmax=1)
    rho = result.scores[method]["spearman_abs"][step, image]
    axes[2].set_title(f"randomised: {result.labels[step]}\nSpearman {rho:.2f}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig
