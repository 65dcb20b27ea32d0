"""Figures of the chapter "Occlusion" (Fig. 7), and the pieces the occlusion widget and
``python -m zfbook occlude`` (:mod:`zfbook.plot.fig7_maps`) reuse: maps drawn in image
coordinates, the occluding square, the most-probable-class map and its colours."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from .. import deconv
from ..occlusion import occlude, occlusion_maps
from .images import image_rgb, mosaic, projection_rgb

__all__ = ['class_colours', 'placement_map', 'square_outline', 'class_map', 'fig7']


def class_colours(n: int) -> list:
    """``n`` distinct colours, one per class, the same in every figure (tab20, dark shades
    first): the legend of the most-probable-class maps (Fig. 7e)."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [tab20(order[i % 20]) for i in range(n)]


def _cell_edges(centres) -> np.ndarray:
    """Cell boundaries around sorted cell centres (midpoints; the ends mirrored)."""
    c = np.asarray(centres, dtype=float)
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def placement_map(ax, maps, values, *, shape=None, **kwargs):
    """Draw per-placement ``values`` (rows, cols) of :class:`~zfbook.occlusion.OcclusionMaps`
    in image coordinates: each placement is a cell centred on its square's centre, so the map
    lines up with the image (a margin of half a square stays blank). Returns the mesh."""
    pos = maps.positions.numpy()
    half = maps.patch / 2 - 0.5
    ys, xs = pos[:, 0, 0] + half, pos[0, :, 1] + half
    h, w = shape or maps.image_shape
    mesh = ax.pcolormesh(_cell_edges(xs), _cell_edges(ys), np.asarray(values, dtype=float),
                         shading="flat", **kwargs)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return mesh


def square_outline(ax, top, left, size, colour="white", lw=1.2, ls="-") -> Rectangle:
    """Outline the square of side ``size`` at (top, left) (pixel centres at integers)."""
    return ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, ec=colour, lw=lw,
                           ls=ls))


def class_map(ax, maps, classes, *, shape=None, legend: bool = True, fontsize: float = 8):
    """Fig. 7e: the most probable class at every placement, one colour per class, with a
    legend of the classes that occur."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    n = len(classes)
    colours = class_colours(n)
    placement_map(ax, maps, maps.top_class.numpy(), shape=shape, cmap=ListedColormap(colours),
                  norm=BoundaryNorm(np.arange(n + 1) - 0.5, n))
    if legend:
        present = sorted(set(maps.top_class.flatten().tolist()))
        handles = [Patch(fc=colours[c], label=str(classes[c])) for c in present]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5),
                  fontsize=fontsize, frameon=False, handlelength=1, borderaxespad=0)


def _framed(tile: np.ndarray, pad: int, colour: float) -> np.ndarray:
    return np.pad(tile, ((pad, pad), (pad, pad), (0, 0)), constant_values=colour)


def fig7(model: nn.Module, images: torch.Tensor, labels, top=None, dataset=None, *,
         patch: int = 24, stride: int = 4, layer: str = "conv5", classes=None,
         preprocess=None, maps=None, size: float = 1.6) -> Figure:
    """Fig. 7, one row per image: (a) the image with the grey square where it lowers P(true
    class) most, (b) the total activity of the strongest ``layer`` map of the unoccluded image
    as a function of the square's position, (c) that map projected down by the deconvnet
    from this image (black frame) and from the images of ``top`` that excite it most,
    (d) P(true class) and (e) the most probable class, both as functions of the position.

    ``images`` (N, C, H, W) are preprocessed, ``labels`` their true classes. ``top`` is the
    :class:`~zfbook.topk.TopK` of ``layer`` over the preprocessed ``dataset`` (for (c);
    without it (c) shows this image's projection only). ``maps``: the
    :func:`~zfbook.occlusion.occlusion_maps` of each image, if already computed.
    ``size`` is a panel's side in inches; the default makes the figure 9.6 in wide (a
    page's full width, with text of at least 8 pt).
    """
    labels = [int(v) for v in torch.as_tensor(labels).reshape(-1)]
    classes = list(classes if classes is not None else getattr(model, "classes", range(10**4)))
    if maps is None:
        maps = [occlusion_maps(model, x, y, patch, stride, layer=layer)
                for x, y in zip(images, labels)]
    n = len(maps)
    fig = Figure(figsize=(5 * size + 1.6, n * size + 0.35), layout="constrained")
    axes = fig.subplots(n, 5, squeeze=False)
    titles = ["(a) input image", "(b) activity of map {f}", "(c) map {f} projected",
              "(d) P(true class)", "(e) most probable class"]
    for i, (x, y, m) in enumerate(zip(images, labels, maps)):
        a, b, c, d, e = axes[i]
        for ax in (a, c):
            ax.set_xticks([])
            ax.set_yticks([])
        shape = tuple(x.shape[-2:])
        r, q = np.unravel_index(int(m.p_target.argmin()), tuple(m.p_target.shape))
        t, l = (int(v) for v in m.positions[r, q])
        a.imshow(image_rgb(occlude(x, t, l, m.patch), preprocess), interpolation="nearest")
        square_outline(a, t, l, m.patch)
        a.set_ylabel(f"true: {classes[y]}", fontsize=9)
        mesh = placement_map(b, m, m.activity.numpy(), shape=shape, cmap="inferno")
        fig.colorbar(mesh, ax=b, shrink=0.8).ax.tick_params(labelsize=8)
        own = deconv.project(model, x[None], m.layer, m.feature)[0]
        tiles = [_framed(projection_rgb(own), 3, 0.0)]
        if top is not None:
            if dataset is None:
                raise ValueError("pass the dataset the top-k search ran on with top")
            others = top.project(model, dataset, [m.feature])[0]
            tiles += [_framed(projection_rgb(p), 3, 1.0) for p in others]
        side = int(np.ceil(np.sqrt(len(tiles))))
        c.imshow(mosaic(tiles, side, gap=1), interpolation="nearest")
        mesh = placement_map(d, m, m.p_target.numpy(), shape=shape, cmap="turbo", vmin=0, vmax=1)
        fig.colorbar(mesh, ax=d, shrink=0.8).ax.tick_params(labelsize=8)
        class_map(e, m, classes, shape=shape)
        for ax, title in zip(axes[i], titles):
            ax.set_title(title.format(f=m.feature), fontsize=9)
    return fig
