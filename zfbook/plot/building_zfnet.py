"""Figures of the chapter "Building ZFNet" (Fig. 3): where a first conv layer looks."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .images import _rgb_array

__all__ = ['conv_sampling']


def conv_sampling(image, convs, origin=(0, 0), window: int = 40, margin: int = 4,
                  size: float = 3.2) -> Figure:
    """Where a first conv layer looks (Fig. 3 vs AlexNet's conv1).

    For each ``(title, nn.Conv2d)`` in ``convs``: a ``window``×``window`` crop of ``image``
    (top-left corner ``origin``, in image pixels), a dot at the centre
    of every output unit's receptive field, and the fields of two neighbouring units
    outlined (``margin`` pixels inside the window): they overlap by kernel − stride pixels.
    """
    img = _rgb_array(image)
    oy, ox = origin
    fig = Figure(figsize=(size * len(convs), size + 0.3), layout="constrained")
    axes = fig.subplots(1, len(convs), squeeze=False)[0]
    for ax, (title, conv) in zip(axes, convs):
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        ax.imshow(img[oy:oy + window, ox:ox + window], interpolation="nearest",
                  extent=(ox - 0.5, ox + window - 0.5, oy + window - 0.5, oy - 0.5))
        centres = -p + s * np.arange(max(img.shape[:2])) + (k - 1) / 2
        yy, xx = np.meshgrid(centres, centres, indexing="ij")
        inside = (yy >= oy) & (yy < oy + window) & (xx >= ox) & (xx < ox + window)
        ax.plot(xx[inside], yy[inside], ".", color="red", ms=3)
        # the first unit whose field starts ``margin`` pixels inside the window, and its neighbour
        uy, ux = (-(-(o + margin + p) // s) for o in (oy, ox))
        for j, colour in ((0, "yellow"), (1, "cyan")):
            top, left = -p + s * uy, -p + s * (ux + j)
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), k, k, fill=False, ec=colour, lw=1.5))
        ax.set_xlim(ox - 0.5, ox + window - 0.5)
        ax.set_ylim(oy + window - 0.5, oy - 0.5)
        ax.set_title(f"{title}: {k}×{k} / stride {s}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
