"""Figures of the chapter "The data": dataset images in a grid, with their masks, boxes
and part keypoints."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .images import _rgb_array

__all__ = ['image_grid']


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
