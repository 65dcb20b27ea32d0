"""Matplotlib figures of the paper.

Sections, in the order of the book: the deconvnet (Fig. 1, Fig. 2, the layer-1 filters of
Fig. 6 b/c), then occlusion (Fig. 7). Every function returns a ``Figure`` (or an array)
and never calls ``plt.show()``.

Display conventions: a projection (:func:`zfbook.deconv.project`) is shown contrast-
normalised on its own, scaled by its largest absolute value and centred at grey (zero is
grey, positive brighter), like the paper's figures; filters likewise, one by one.
"""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from . import deconv

__all__ = ["projection_rgb", "image_rgb", "mosaic", "feature_grid", "fig2", "layer1_filters",
           "deconvnet_diagram", "steps_figure"]


# ================================================================== the deconvnet
def projection_rgb(p: torch.Tensor) -> np.ndarray:
    """A projection (C, H, W) as an HWC image in [0, 1]: scaled by its max |value|, 0 at grey."""
    p = p.detach().float().cpu()
    scale = float(p.abs().max())
    q = p / (2 * scale) + 0.5 if scale > 0 else torch.full_like(p, 0.5)
    q = q.permute(1, 2, 0).numpy()
    return np.repeat(q, 3, axis=2) if q.shape[2] == 1 else q


def image_rgb(x: torch.Tensor, preprocess=None) -> np.ndarray:
    """A preprocessed image (C, H, W) for viewing, HWC in [0, 1].

    With the :class:`~zfbook.data.Preprocess` it came from, the mean is added back; without
    it the image is min-max scaled.
    """
    if preprocess is not None:
        return preprocess.display(x)
    x = x.detach().float().cpu()
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else torch.full_like(x, 0.5)
    x = x.permute(1, 2, 0).numpy()
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def mosaic(tiles, ncols: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile equally sized HWC arrays row by row into one image, ``gap`` pixels apart."""
    tiles = list(tiles)
    h, w, c = tiles[0].shape
    nrows = -(-len(tiles) // ncols)
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, c), fill, dtype=np.float32)
    for i, t in enumerate(tiles):
        r, q = divmod(i, ncols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = t
    return out


def feature_grid(projections: np.ndarray | list, patches: np.ndarray | list, labels=None,
                 ncols: int = 4, tile: float = 1.1) -> Figure:
    """Fig. 2 layout: for every map, a square mosaic of its projections beside one of the
    image patches they come from.

    ``projections`` and ``patches``: per map, a list of HWC arrays (already display-ready,
    e.g. from :func:`projection_rgb` / :func:`image_rgb`); ``labels`` one title per map.
    """
    n = len(projections)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(2 * ncols * tile, nrows * tile + 0.3))
    axes = fig.subplots(nrows, 2 * ncols, squeeze=False,
                        gridspec_kw=dict(wspace=0.04, hspace=0.25, left=0.01, right=0.99,
                                         bottom=0.01, top=1 - 0.3 / (nrows * tile + 0.3)))
    for ax in axes.flat:
        ax.axis("off")
    for j in range(n):
        r, q = divmod(j, ncols)
        side = int(np.ceil(np.sqrt(len(projections[j]))))
        a, b = axes[r, 2 * q], axes[r, 2 * q + 1]
        a.imshow(mosaic(projections[j], side), interpolation="nearest")
        b.imshow(mosaic(patches[j], side), interpolation="nearest")
        if labels is not None:
            a.set_title(str(labels[j]), fontsize=8, loc="left")
    return fig


def fig2(model: nn.Module, images: torch.Tensor, top, maps=None, *, n_maps: int = 8, seed: int = 0,
         preprocess=None, ncols: int = 4, crop: bool = True) -> Figure:
    """Fig. 2 for one layer: the top-k projections of some feature maps beside their patches.

    ``top`` is the layer's :class:`~zfbook.topk.TopK` over ``images`` (the preprocessed images
    the search ran on). ``maps`` picks the feature maps, else ``n_maps`` are drawn at random
    (with ``seed``) among the maps that fired at all. With ``crop`` each projection and patch
    is cut to the activation's receptive field (padded in white beyond the image), as in the
    paper; otherwise whole images are shown.
    """
    if maps is None:
        alive = torch.nonzero(top.value[:, 0] > 0).flatten()
        pool = alive if len(alive) else torch.arange(top.maps)
        g = torch.Generator().manual_seed(seed)
        maps = pool[torch.randperm(len(pool), generator=g)[:n_maps]].sort().values
    maps = torch.as_tensor(maps, dtype=torch.long)
    proj = top.project(model, images, maps)  # (M, k, C, H, W)
    idx = top.index[maps]
    shown = idx.clamp(min=0).flatten().unique()
    rgb = {int(i): torch.from_numpy(image_rgb(images[i], preprocess)).permute(2, 0, 1) for i in shown}
    boxes = top.boxes(model, maps) if crop else None
    p_tiles, i_tiles = [], []
    for a in range(len(maps)):
        pt, it = [], []
        for r in range(top.k):
            i = int(idx[a, r])
            img = rgb[max(i, 0)] if i >= 0 else torch.ones_like(next(iter(rgb.values())))
            p = proj[a, r]
            if crop:
                p = deconv.crop(p, boxes[a, r])
                img = deconv.crop(img, boxes[a, r], fill=1.0)
            pt.append(projection_rgb(p))
            it.append(img.permute(1, 2, 0).numpy())
        p_tiles.append(pt)
        i_tiles.append(it)
    fig = feature_grid(p_tiles, i_tiles, [f"{top.layer} map {int(m)}" for m in maps], ncols)
    return fig


def _first_conv(model_or_weight) -> torch.Tensor:
    if isinstance(model_or_weight, torch.Tensor):
        return model_or_weight
    for m in model_or_weight.modules():
        if isinstance(m, nn.Conv2d):
            return m.weight
    raise ValueError("the model has no Conv2d layer")


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


def deconvnet_diagram() -> Figure:
    """Fig. 1 (top): a deconvnet layer (left) attached to a convnet layer (right).

    Going up the convnet: filter, rectify, max-pool (recording the switches). Going down the
    deconvnet: unpool with the switches, rectify, filter with the transposed filters.
    """
    fig = Figure(figsize=(7.5, 4.9))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.45, 7)
    ax.axis("off")
    conv = [(0.6, "layer below: pooled maps"), (1.9, "convolutional filtering {F}"),
            (3.2, "rectified linear function"), (4.5, "max pooling"), (5.8, "pooled maps")]
    dec = [(5.8, "layer above: reconstruction"), (4.5, "max unpooling"),
           (3.2, "rectified linear function"), (1.9, "convolutional filtering {F$^T$}"),
           (0.6, "reconstruction")]

    def box(x, y, text, colour):
        ax.add_patch(FancyBboxPatch((x - 1.55, y - 0.3), 3.1, 0.6, boxstyle="round,pad=0.05",
                                    fc=colour, ec="0.3", lw=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    def arrow(p, q, **kw):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=12, lw=1.2,
                                     color=kw.pop("color", "0.2"), **kw))

    for y, t in conv:
        box(7.6, y, t, "#dce9f5")
    for y, t in dec:
        box(2.4, y, t, "#f7e3d4")
    for (y0, _), (y1, _) in zip(conv, conv[1:]):
        arrow((7.6, y0 + 0.33), (7.6, y1 - 0.33))
    for (y0, _), (y1, _) in zip(dec, dec[1:]):
        arrow((2.4, y0 - 0.33), (2.4, y1 + 0.33))
    arrow((6.0, 4.5), (4.0, 4.5), color="#c0392b", connectionstyle="arc3,rad=0.0")
    ax.text(5.0, 4.72, "switches", ha="center", fontsize=9, color="#c0392b")
    arrow((6.0, 5.8), (4.0, 5.8), linestyle="--")
    ax.text(5.0, 6.02, "one activation kept,\nall others set to 0", ha="center", fontsize=7.5)
    ax.text(7.6, 6.7, "convnet (up)", ha="center", fontsize=10, weight="bold")
    ax.text(2.4, 6.7, "deconvnet (down)", ha="center", fontsize=10, weight="bold")
    ax.text(5.0, -0.2, "contrast normalisation (layers 1, 2) is passed through unchanged; "
            "no biases on the way down", ha="center", fontsize=7.5, style="italic")
    return fig


def _signal_rgb(t: torch.Tensor) -> np.ndarray:
    """An intermediate signal (C, H, W) as one map: the sum over channels, 0 at grey."""
    return projection_rgb(t.sum(0, keepdim=True))


def steps_figure(steps, image: torch.Tensor | None = None, preprocess=None, ncols: int = 4,
                 size: float = 1.9) -> Figure:
    """The down pass of :func:`zfbook.deconv.steps`, one panel per step.

    Feature-map signals are shown summed over their channels (grey = 0); the last panel is
    the projection in pixel space. ``image`` (C, H, W), if given, comes first.
    """
    panels = []
    if image is not None:
        panels.append(("input image", image_rgb(image, preprocess)))
    last = len(steps) - 1
    for j, s in enumerate(steps):
        t = s.output.detach().float().cpu()
        shape = "×".join(str(d) for d in t.shape)
        if t.dim() == 1:  # above a flatten: a vector, drawn as a strip
            side = int(np.ceil(np.sqrt(t.numel())))
            v = torch.zeros(side * side)
            v[:t.numel()] = t
            arr = projection_rgb(v.view(1, side, side))
        elif j == last:
            arr = projection_rgb(t)
        else:
            arr = _signal_rgb(t)
        title = f"{s.op} {s.name}\n{shape}" if j < last else f"{s.op} {s.name}: pixels\n{shape}"
        panels.append((title, arr))
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(ncols * size, nrows * (size + 0.35)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, arr) in zip(axes.flat, panels):
        ax.imshow(arr, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    return fig
