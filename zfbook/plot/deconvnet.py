"""Figures of the chapter "The deconvnet" (Fig. 1): the deconvnet beside the convnet, its
down pass step by step, and unpooling with switches, in numbers."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .. import deconv
from .images import image_rgb, projection_rgb

__all__ = ['deconvnet_diagram', 'steps_figure', 'unpooling_figure']


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
