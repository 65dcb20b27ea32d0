"""Figures of the chapter "What the features respond to" (Fig. 2): the top-k projections
of feature maps beside their image patches, class purity by layer, one of a map's
strongest activations with the network's verdict (the view of its widget), and one
activation at a glance (the view of the deconvnet chapter's browser)."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .. import deconv
from .images import _cut, _resize, image_rgb, mosaic, projection_rgb

__all__ = ['feature_grid', 'fig2_maps', 'fig2', 'projection_view', 'purity_by_layer', 'top_view']


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
    gap = 0.15  # between two maps, as a fraction of a mosaic: wider than within a map
    ratios = ([1, 1, gap] * ncols)[:-1]
    fig = Figure(figsize=(sum(ratios) * tile, nrows * (tile + 0.22) + 0.1))
    grid = fig.subplots(nrows, len(ratios), squeeze=False,
                        gridspec_kw=dict(width_ratios=ratios, wspace=0.04, hspace=0.22 / tile,
                                         left=0.005, right=0.995, bottom=0.005,
                                         top=1 - 0.25 / (nrows * (tile + 0.22) + 0.1)))
    for ax in grid.flat:
        ax.axis("off")
    axes = np.delete(grid, np.s_[2::3], axis=1)  # drop the spacer columns
    for j in range(n):
        r, q = divmod(j, ncols)
        side = int(np.ceil(np.sqrt(len(projections[j]))))
        a, b = axes[r, 2 * q], axes[r, 2 * q + 1]
        a.imshow(mosaic(projections[j], side), interpolation="nearest")
        b.imshow(mosaic(patches[j], side), interpolation="nearest")
        if labels is not None:
            a.set_title(str(labels[j]), fontsize=8, loc="left")
    return fig


def fig2_maps(top, n_maps: int = 8, seed: int = 0) -> torch.Tensor:
    """The feature maps :func:`fig2` shows by default: ``n_maps`` drawn at random (with
    ``seed``) among the maps of ``top`` (a :class:`~zfbook.topk.TopK`) that fired at all,
    in increasing order."""
    alive = torch.nonzero(top.value[:, 0] > 0).flatten()
    pool = alive if len(alive) else torch.arange(top.maps)
    g = torch.Generator().manual_seed(seed)
    return pool[torch.randperm(len(pool), generator=g)[:n_maps]].sort().values


def fig2(model: nn.Module, images: torch.Tensor, top, maps=None, *, n_maps: int = 8, seed: int = 0,
         preprocess=None, ncols: int = 4, crop: bool = True, projections=None,
         tile: float = 1.1) -> Figure:
    """Fig. 2 for one layer: the top-k projections of some feature maps beside their patches.

    ``top`` is the layer's :class:`~zfbook.topk.TopK` over ``images`` (the preprocessed images
    the search ran on). ``maps`` picks the feature maps, else ``n_maps`` are drawn at random
    (with ``seed``) among the maps that fired at all (:func:`fig2_maps`). With ``crop`` each
    projection and patch is cut to the activation's receptive field (padded in white beyond
    the image), as in the paper; otherwise whole images are shown. ``projections``, if
    given, are ``top.project(model, images, maps)`` computed beforehand (to reuse them).
    ``tile`` is the side in inches of each 3 × 3 mosaic (larger for large receptive fields).
    """
    if maps is None:
        maps = fig2_maps(top, n_maps, seed)
    maps = torch.as_tensor(maps, dtype=torch.long)
    proj = top.project(model, images, maps) if projections is None else projections
    if proj.shape[:2] != (len(maps), top.k):
        raise ValueError(f"projections must be ({len(maps)}, {top.k}, C, H, W), "
                         f"got {tuple(proj.shape)}")
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
    fig = feature_grid(p_tiles, i_tiles, [f"{top.layer} map {int(m)}" for m in maps], ncols, tile)
    return fig


def projection_view(image: np.ndarray, projection: torch.Tensor | None, box=None,
                    caption: str = "", panel: int | None = None) -> np.ndarray:
    """One activation at a glance (the deconvnet browser of the chapter "The deconvnet").

    Four panels side by side: the image with the unit's receptive field ``box`` (top, left,
    bottom, right) outlined, the deconvnet ``projection`` (C, H, W) of the whole image
    (grey = 0), then the image patch and the projection cut to the box and enlarged to
    ``panel`` pixels, as in Fig. 2 (white beyond the image). ``image`` is display-ready
    (HWC in [0, 1], e.g. from :func:`image_rgb`). ``projection=None`` (a map that does
    not fire) leaves the last three panels grey. ``caption`` is written above (the
    built-in bitmap font has ASCII only: write "x", not "×").
    Returns an HWC uint8 array.
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = image.shape[:2]
    panel = panel or max(h, w)
    blank = np.full((panel, panel, 3), 0.5, np.float32)
    if projection is None:
        proj = blank if (h, w) == (panel, panel) else np.full((h, w, 3), 0.5, np.float32)
        tiles = [image, proj, blank, blank]
    else:
        proj = projection_rgb(projection)
        tiles = [image, proj]
        if box is not None:
            tiles += [_resize(_cut(image, box, 1.0), panel), _resize(_cut(proj, box, 0.5), panel)]
        else:
            tiles += [blank, blank]
    tiles = [_resize(np.asarray(t, np.float32), panel) for t in tiles]
    gap, top, bottom = 4, 16, 14
    strip = mosaic(tiles, len(tiles), gap=gap)
    canvas = np.ones((top + panel + bottom, strip.shape[1], 3), np.float32)
    canvas[top:top + panel] = strip
    img = Image.fromarray((canvas * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    draw.text((2, 1), caption, fill=(0, 0, 0), font=font)
    names = ("image", "projection", "patch", "projection, cut")
    for j, name in enumerate(names):
        draw.text((j * (panel + gap) + 2, top + panel + 1), name, fill=(80, 80, 80), font=font)
    if box is not None and projection is not None:
        s = panel / max(h, w)
        t, l, b, r = (int(v) for v in box)
        t, l = max(t, 0) * s, max(l, 0) * s
        b, r = min(b, h) * s - 1, min(r, w) * s - 1
        for j in (0, 1):  # outline the field on the image and on the projection
            x0 = j * (panel + gap)
            draw.rectangle((x0 + l, top + t, x0 + r, top + b), outline=(255, 215, 0), width=1)
    return np.asarray(img)


def purity_by_layer(purity: dict, chance: float, paper: dict | None = None) -> Figure:
    """Class purity by layer: for each layer, the share of the most common class among a
    map's k strongest images, averaged over the maps that fire on k images (``purity``,
    layer -> value), against ``chance``, the same for k random images. ``paper`` (layer ->
    a few words) writes the paper's account of each layer (Fig. 2) under its name."""
    layers = list(purity)
    xs = list(range(len(layers)))
    fig = Figure(figsize=(6.8, 2.7), layout="constrained")
    ax = fig.subplots()
    values = [purity[layer] for layer in layers]
    ax.plot(xs, values, "o-", color="C0", label="zfnet-mini: the 9 strongest images of a map")
    for x, v in zip(xs, values):
        ax.annotate(f"{v:.2f}", (x, v), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=8)
    ax.axhline(chance, ls="--", lw=1, color="grey", label=f"9 random images ({chance:.2f})")
    ticks = [f"{layer}\n{paper[layer]}" if paper and layer in paper else layer
             for layer in layers]
    ax.set_xticks(xs, ticks, fontsize=8)
    ax.set_xlim(-0.4, len(layers) - 0.6)
    ax.set_ylim(0, 1)
    ax.set_ylabel("class purity", fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def top_view(image: np.ndarray, projection: torch.Tensor | None, box, probabilities,
             classes, true: int, caption: str = "") -> Figure:
    """One of a map's strongest activations, linked (the top-9 widget of "What the features
    respond to"): the image with the unit's receptive field ``box`` (top, left, bottom,
    right) outlined, the image patch and the deconvnet ``projection`` (C, H, W) cut to the
    field, and the network's class ``probabilities`` for the image, its ``true`` class in
    another colour. ``image`` is display-ready (HWC in [0, 1]); ``projection=None`` (no
    activation) leaves the patch panels blank."""
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(6.8, 2.3), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw=dict(width_ratios=[1, 1, 1, 1.5]))
    h, w = image.shape[:2]
    axes[0].imshow(image, interpolation="nearest")
    if projection is not None:
        t, l, b, r = (int(v) for v in box)
        axes[0].add_patch(Rectangle((max(l, 0) - 0.5, max(t, 0) - 0.5),
                                    min(r, w) - max(l, 0), min(b, h) - max(t, 0),
                                    fill=False, edgecolor="gold", lw=1.5))
        axes[1].imshow(_cut(image, box, 1.0), interpolation="nearest")
        axes[2].imshow(_cut(projection_rgb(projection), box, 0.5), interpolation="nearest")
    for ax, title in zip(axes[:3], ("image, field", "patch", "projection")):
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    p = np.asarray(probabilities, dtype=float)
    colours = ["C1" if c == true else "C0" for c in range(len(p))]
    axes[3].barh(range(len(p)), p, color=colours)
    axes[3].set_yticks(range(len(p)), [str(c) for c in classes], fontsize=8)
    axes[3].invert_yaxis()
    axes[3].set_xlim(0, 1)
    axes[3].tick_params(axis="x", labelsize=8)
    axes[3].set_title("class probabilities", fontsize=8)
    for side in ("top", "right"):
        axes[3].spines[side].set_visible(False)
    if caption:
        fig.suptitle(caption, fontsize=9)
    return fig
