"""Figures of the chapter "The data": dataset images in a grid, with their masks, boxes
and part keypoints; the world's image statistics beside photographs'."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .images import _rgb_array

__all__ = ['image_grid', 'image_statistics', 'per_image_measures']


def image_grid(images, titles=None, ncols: int = 6, *, masks=None, boxes=None, keypoints=None,
               keypoint_names=None, size: float = 1.5) -> Figure:
    """Dataset images in a grid, optionally with their object masks (outlined), bounding
    boxes ``(top, left, bottom, right)`` and part keypoints ``(y, x)`` (NaN: none).

    ``images``: uint8 (N, 3, H, W) tensors (an :class:`~zfbook.data.EmbeddedDataset`'s
    ``.images``) or a list of HWC arrays in [0, 1].
    """
    images = list(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(ncols * size, nrows * (size + (0.25 if titles is not None else 0))),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    markers = dict(zip(keypoint_names or (), ("o", "s", "^", "D", "v")))
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(_rgb_array(images[i]), interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        if masks is not None:
            ax.contour(np.asarray(masks[i], dtype=float), levels=[0.5], colors="yellow", linewidths=1)
        if boxes is not None:
            t, l, b, r = (float(v) for v in boxes[i])
            ax.add_patch(Rectangle((l - 0.5, t - 0.5), r - l, b - t, fill=False, ec="red", lw=1.2))
        if keypoints is not None:
            for j, (y, x) in enumerate(np.asarray(keypoints[i], dtype=float)):
                if not np.isnan(y):
                    marker = markers.get(keypoint_names[j], "o") if keypoint_names else "o"
                    ax.plot(x, y, marker, ms=5, mfc="none", mec="cyan", mew=1.5)
    if keypoints is not None and keypoint_names:
        handles = [Line2D([], [], ls="", marker=markers[k], mfc="none", mec="cyan", mew=1.5, label=k)
                   for k in keypoint_names]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return fig


def image_statistics(sets: dict, *, size: float = 2.25) -> Figure:
    """The data chapter's comparison of worlds with photographs: for each named set of uint8
    images (N, 3, H, W), its radially averaged amplitude spectrum (log-log, each curve
    divided by its value at the lowest frequency), its distribution of edge orientations,
    and its distribution of local RMS contrast (the share of patches in each of 33 bins,
    log-spaced from 0.001, where the flat patches are counted, to 2)
    (:mod:`zfbook.data.statistics`, every image of a set pooled)."""
    from ..data import statistics as S
    fig = Figure(figsize=(3 * size, size + 0.35), layout="constrained")
    a1, a2, a3 = fig.subplots(1, 3)
    for name, images in sets.items():
        f, amp = S.amplitude_spectrum(images)
        a1.loglog(f, amp / amp[0], label=name)
        h = S.orientation_histogram(images, bins=12)
        a2.plot(np.arange(12) * 15 + 7.5, h, marker="o", ms=3, label=name)
        c = S.local_contrast(images)
        a3.hist(np.clip(c, 1e-3, 1.99), bins=np.geomspace(1e-3, 2, 34), histtype="step",
                weights=np.full(len(c), 1 / len(c)), label=name)
    a1.set(xlabel="frequency (cycles/pixel)", ylabel="amplitude (relative)")
    a2.set(xlabel="edge orientation (°)", ylabel="share of edge energy",
           xticks=[0, 45, 90, 135, 180], ylim=(0, None))
    a3.set(xlabel="RMS contrast, 8×8 patches", ylabel="share of patches", xscale="log")
    for ax, title in zip((a1, a2, a3), ("amplitude spectrum", "edge orientations",
                                        "local contrast")):
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
    a1.legend(fontsize=8)
    return fig


def per_image_measures(sets: dict, measures: dict, *, size: float = 2.25) -> Figure:
    """One panel per measure (``measures``: name → axis label); in each, one dot per image
    of every named set (``sets``: set name → {measure name → per-image values}), spread
    sideways at random (seeded) so that they do not hide each other, and a bar at the
    set's mean."""
    fig = Figure(figsize=(len(measures) * size, size + 0.2), layout="constrained")
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    rng = np.random.default_rng(0)
    for ax, (key, label) in zip(axes, measures.items()):
        for i, (name, values) in enumerate(sets.items()):
            v = np.asarray(values[key], dtype=float)
            x = i + rng.uniform(-0.25, 0.25, len(v))
            ax.plot(x, v, "o", ms=3 if len(v) < 50 else 1.5, alpha=0.9 if len(v) < 50 else 0.35,
                    color=f"C{i}")
            ax.plot([i - 0.35, i + 0.35], [v.mean()] * 2, color="black", lw=1.5)
        ax.set_xticks(range(len(sets)), list(sets), fontsize=8)
        ax.set_xlim(-0.6, len(sets) - 0.4)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=8)
    return fig
