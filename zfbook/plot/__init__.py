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
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import nn

from .. import deconv

__all__ = ["projection_rgb", "image_rgb", "mosaic", "feature_grid", "fig2", "fig2_maps",
           "layer1_filters", "deconvnet_diagram", "steps_figure", "unpooling_figure",
           "projection_view", "image_grid",
           "conv_sampling"]


# ================================================================== the deconvnet
def projection_rgb(p: torch.Tensor, scale: float | None = None) -> np.ndarray:
    """A projection (C, H, W) as an HWC image in [0, 1]: scaled by its max |value| (or by
    ``scale``, to show several on one scale; values beyond it are clipped), 0 at grey."""
    p = p.detach().float().cpu()
    scale = float(p.abs().max()) if scale is None else float(scale)
    q = (p / (2 * scale) + 0.5).clamp(0, 1) if scale > 0 else torch.full_like(p, 0.5)
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
    fig = Figure(figsize=(6.8, 4.45))   # fits the book's column (6.8 in at 100 dpi)
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
    ax.text(5.0, 6.02, "one activation kept,\nall others set to 0", ha="center", fontsize=8)
    ax.text(7.6, 6.7, "convnet (up)", ha="center", fontsize=10, weight="bold")
    ax.text(2.4, 6.7, "deconvnet (down)", ha="center", fontsize=10, weight="bold")
    ax.text(5.0, -0.2, "contrast normalisation (layers 1, 2) is passed through unchanged; "
            "no biases on the way down", ha="center", fontsize=8, style="italic")
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


def unpooling_figure(x, signal, kernel: int = 3, stride: int = 2) -> Figure:
    """Fig. 1 (bottom) with numbers: max pooling records the switches, unpooling puts the
    signal from above back at them, and where overlapping windows chose the same input
    the values are summed (:func:`zfbook.deconv.unpool`).

    ``x`` is a small 2-D input (H, W); ``signal`` the (h, w) values coming down from the
    layer above, shaped like the pooled output. Four panels: the input with each window's
    winner ringed (a number per window that picked it), the pooled maxima, the signal, and
    the unpooled result.
    """
    import torch.nn.functional as F

    x = torch.as_tensor(x, dtype=torch.float32)
    signal = torch.as_tensor(signal, dtype=torch.float32)
    pooled, switches = F.max_pool2d(x[None, None], kernel, stride, return_indices=True)
    if pooled.shape[-2:] != signal.shape:
        raise ValueError(f"signal must be shaped like the pooled output {tuple(pooled.shape[-2:])}, "
                         f"got {tuple(signal.shape)}")
    unpooled = deconv.unpool(signal[None, None], switches, x.shape)[0, 0]
    chosen = torch.bincount(switches.flatten(), minlength=x.numel()).view(x.shape)
    panels = [("input: each window's maximum\nringed (×2: by two windows)", x, chosen),
              (f"max-pooled\n{kernel}×{kernel}/{stride}", pooled[0, 0], None),
              ("signal\ncoming down", signal, None),
              ("unpooled: values at the\nswitches, collisions summed", unpooled, chosen)]
    columns = sum(p[1].shape[1] for p in panels)
    fig = Figure(figsize=(min(6.8, 1.6 + 0.37 * columns), 2.8), layout="constrained")
    axes = fig.subplots(1, len(panels), width_ratios=[p[1].shape[1] for p in panels])
    for ax, (title, a, marks) in zip(axes, panels):
        a = a.numpy()
        ax.imshow(np.zeros_like(a), cmap="Greys", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(a):
            many = marks is not None and marks[i, j] > 1
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=11,
                    weight="bold" if many else "normal", color="#c0392b" if many else "black")
            if marks is not None and marks[i, j] > 0:
                ax.add_patch(_ring((j, i), many))
                if many:
                    ax.text(j + 0.47, i - 0.47, f"×{int(marks[i, j])}", fontsize=8,
                            color="#c0392b", ha="right", va="top")
        ax.set_xticks(np.arange(-0.5, a.shape[1]))
        ax.set_yticks(np.arange(-0.5, a.shape[0]))
        ax.grid(color="0.6", lw=0.8)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        ax.set_title(title, fontsize=8.5)
    return fig


def _ring(xy, many: bool):
    from matplotlib.patches import Circle

    return Circle(xy, 0.38, fill=False, ec="#c0392b" if many else "#2c7fb8", lw=1.6)


def _resize(a: np.ndarray, side: int) -> np.ndarray:
    """An HWC float array in [0, 1] to side × side: nearest when enlarging, box when shrinking."""
    from PIL import Image

    if a.shape[:2] == (side, side):
        return a
    img = Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8))
    resample = Image.NEAREST if max(a.shape[:2]) <= side else Image.BOX
    return np.asarray(img.resize((side, side), resample), dtype=np.float32) / 255


def _cut(a: np.ndarray, box, fill: float) -> np.ndarray:
    """The ``box`` (top, left, bottom, right) of an HWC array, padded with ``fill`` outside."""
    t, l, b, r = (int(v) for v in box)
    h, w = a.shape[:2]
    out = np.full((b - t, r - l, a.shape[2]), fill, dtype=np.float32)
    y0, x0, y1, x1 = max(t, 0), max(l, 0), min(b, h), min(r, w)
    if y1 > y0 and x1 > x0:
        out[y0 - t:y1 - t, x0 - l:x1 - l] = a[y0:y1, x0:x1]
    return out


def projection_view(image: np.ndarray, projection: torch.Tensor | None, box=None,
                    caption: str = "", panel: int | None = None) -> np.ndarray:
    """One activation at a glance (the widget of "What the features respond to").

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


# ================================================================== the network and the data
def _rgb_array(image) -> np.ndarray:
    """A uint8 (3, H, W) tensor, a float (3, H, W) tensor in 0…255, or an HWC array in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        return (image.float() / 255.0).clamp(0, 1).permute(1, 2, 0).numpy()
    return np.asarray(image)


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


# ======================================================= occlusion, invariance, correspondence
# Fig. 7 (occlusion), Fig. 5 (invariance), Table 1 and Fig. 8 (correspondence).
from ..correspondence import PAPER_TABLE1, mask_square  # noqa: E402
from ..invariance import transform as _transform  # noqa: E402
from ..occlusion import occlude, occlusion_maps  # noqa: E402


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


def fig5(sweeps, images=None, preprocess=None, classes=None, *, example: int = 0,
         n_examples: int = 5, shown=None, size: float = 2.0) -> Figure:
    """Fig. 5: one block per :class:`~zfbook.invariance.InvarianceSweep` (translation,
    scale, rotation), stacked. Each block: image ``example`` of the uint8 ``images``
    (N, C, R, R) at ``n_examples`` values of the transform (evenly spread, or
    ``shown[transform]``, a list of swept values), as the network sees it (the centre
    crop of ``preprocess``), above three panels: the normalised distance to the
    untransformed features at conv1 and at fc7, and P(true class). One curve per image
    (legend: its class). ``size`` is a panel's width in inches: the default fits a
    6.8-in page column; pass one sweep per call for one figure per transform."""
    sweeps = list(sweeps.values()) if isinstance(sweeps, dict) else list(sweeps)
    strip = images is not None
    block = size * (1.85 if strip else 1.1)
    fig = Figure(figsize=(3 * size + 0.8, len(sweeps) * block + 0.35),
                 layout="constrained")
    units = {"translation": "vertical shift (px)", "scale": "scale",
             "rotation": "rotation (°)"}
    lines = []
    for sub, s in zip(fig.subfigures(len(sweeps), 1, squeeze=False)[:, 0], sweeps):
        unit = units.get(s.transform, s.transform)
        if strip:
            if preprocess is None:
                raise ValueError("pass the model's preprocess with images")
            top, sub = sub.subfigures(2, 1, height_ratios=[0.8, 1.05])
            fill = preprocess.mean.mean(dim=(1, 2)).round()   # as invariance_sweep
            if shown and s.transform in shown:
                idx = [list(s.values).index(v) for v in shown[s.transform]]
            else:
                idx = np.unique(np.linspace(0, len(s.values) - 1, n_examples)
                                .round().astype(int))
            crops = [preprocess.display(preprocess.center(
                _transform(images[example], s.transform, s.values[j], fill)))
                for j in idx]
            ax = top.subplots()
            ax.imshow(mosaic(crops, len(crops), gap=6), interpolation="nearest")
            ax.set_xticks([(j + 0.5) * (crops[0].shape[1] + 6) for j in range(len(idx))],
                          [f"{s.values[j]:g}" for j in idx], fontsize=8)
            ax.set_yticks([])
            ax.set_xlabel(unit, fontsize=9)
        panels = [(s.distance["conv1"], "conv1: distance"),
                  (s.distance["fc7"], "fc7: distance"), (s.p_true, "P(true class)")]
        row = sub.subplots(1, 3)
        for ax, (values, title) in zip(row, panels):
            lines = ax.plot(s.values, np.asarray(values, dtype=float).T, lw=1.2,
                            marker=".", ms=3)
            ax.set_title(f"{s.transform}: {title}", fontsize=9)
            ax.set_xlabel(unit, fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        row[-1].set_ylim(-0.03, 1.03)
    if classes is not None and lines:
        names = [str(classes[int(y)]) for y in sweeps[0].labels]
        fig.legend(lines, names, loc="outside lower center", ncols=len(names), fontsize=9)
    return fig


def fig8(images: torch.Tensor, table, preprocess=None, *, draw: int = 0,
         size: float = 1.25) -> Figure:
    """Fig. 8: the preprocessed aligned ``images`` (N, C, H, W) with each part of a
    :class:`~zfbook.correspondence.CorrespondenceTable` masked (one row per part), and one
    draw of the random squares in the last row."""
    parts = list(table.centres)
    n = len(images)
    fig = Figure(figsize=(n * size + 0.4, len(parts) * size + 0.2), layout="constrained")
    axes = fig.subplots(len(parts), n, squeeze=False)
    for row, part in zip(axes, parts):
        centres = table.centres[part][draw if part == "random" else 0]
        masked = mask_square(images, centres, table.size)
        for j, ax in enumerate(row):
            ax.imshow(image_rgb(masked[j], preprocess), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_ylabel(part.replace("_", " "), fontsize=9)
    for j in range(n):
        axes[0, j].set_title(f"image {j + 1}", fontsize=9)
    return fig


def table1_figure(table, paper=PAPER_TABLE1, size: float = 2.6) -> Figure:
    """Table 1 as bars: Δ (mean ± std over image pairs) per masked part, ours beside the
    paper's, one panel per layer. Lower means the part is masked more consistently."""
    layers = list(table.layers)
    parts = list(table.rows)
    fig = Figure(figsize=(len(layers) * size + 0.3, size), layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    x = np.arange(len(parts))
    for ax, layer in zip(axes, layers):
        ours = np.array([table.rows[p][layer] for p in parts])
        ref = np.array([paper.get(p, {}).get(layer, (np.nan, np.nan)) for p in parts])
        ax.bar(x - 0.2, ours[:, 0], 0.4, yerr=ours[:, 1], label="ours", color="C0", capsize=2)
        ax.bar(x + 0.2, ref[:, 0], 0.4, yerr=ref[:, 1], label="paper", color="C7", capsize=2)
        ax.set_xticks(x, [p.replace("_", " ") for p in parts], fontsize=8)
        ax.set_title(f"Δ at {layer}", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    return fig


__all__ += ["class_colours", "placement_map", "square_outline", "class_map", "fig7", "fig5", "fig8",
            "table1_figure"]


# ================================================================== training
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


__all__ += ["filter_norms", "learning_curves"]
