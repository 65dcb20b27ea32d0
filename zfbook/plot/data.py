"""Figures of the chapter "The data": dataset images in a grid, with their masks, boxes
and part keypoints."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .images import _rgb_array

__all__ = ['image_grid', 'image_statistics']


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


def image_statistics(sets: dict, *, size: float = 3.2) -> Figure:
    """The data chapter's comparison of worlds with photographs: for each named set of uint8
    images (N, 3, H, W), its radially averaged amplitude spectrum (log-log, with the fitted
    slope α in the legend), its distribution of edge orientations, and its distribution of
    local RMS contrast (:mod:`zfbook.data.statistics`)."""
    from ..data import statistics as S
    fig = Figure(figsize=(3 * size, size), layout="constrained")
    a1, a2, a3 = fig.subplots(1, 3)
    for name, images in sets.items():
        f, amp = S.amplitude_spectrum(images)
        a1.loglog(f, amp / amp[0], label=f"{name} (α = {S.spectral_slope(images):.2f})")
        h = S.orientation_histogram(images, bins=12)
        a2.plot(np.arange(12) * 15 + 7.5, h, marker="o", ms=3,
                label=f"{name} (H = {S.orientation_entropy(images):.3f})")
        c = S.local_contrast(images)
        a3.hist(c, bins=np.linspace(0, 1, 41), histtype="step", density=True, label=name)
    a1.set(xlabel="frequency (cycles/pixel)", ylabel="amplitude (relative)", title="amplitude spectrum")
    a2.set(xlabel="edge orientation (°)", ylabel="share of edge energy", title="edge orientations",
           xticks=[0, 45, 90, 135, 180], ylim=(0, None))
    a3.set(xlabel="RMS contrast of 8×8 patches", ylabel="density", title="local contrast")
    for ax in (a1, a2, a3):
        ax.legend(fontsize=7)
    return fig
