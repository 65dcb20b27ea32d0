"""Figures of the feature-evolution chapter (Fig. 4): the projection grid and the per-layer
convergence curves. Projections are contrast-normalised one by one, grey is zero (as in
:mod:`zfbook.plot.images`)."""
from __future__ import annotations

from matplotlib.figure import Figure

from .images import projection_rgb

__all__ = ["fig4", "convergence", "strongest_view", "LAYER_COLOURS"]

LAYER_COLOURS = {"conv1": "#1b9e77", "conv2": "#d95f02", "conv3": "#7570b3", "conv4": "#e7298a",
                 "conv5": "#66a61e", "fc6": "#a6761d", "fc7": "#666666", "fc8": "#e6ab02"}


def fig4(rows, epochs, *, tile: float = 0.68, label_width: float = 0.9) -> Figure:
    """Fig. 4's layout: one row per feature map, one column per epoch.

    ``rows``: a list of ``(label, tiles)`` with ``tiles`` one projection (C, h, w) per epoch
    (each map's strongest activation at that snapshot, e.g. from
    :meth:`zfbook.evolution.Evolution.project`); ``epochs`` the column titles.
    """
    nr, nc = len(rows), len(epochs)
    width, height = label_width + nc * tile, 0.25 + nr * tile
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(nr, nc, squeeze=False,
                        gridspec_kw=dict(left=label_width / width, right=0.995, bottom=0.005,
                                         top=1 - 0.25 / height, wspace=0.06, hspace=0.06))
    for r, (label, tiles) in enumerate(rows):
        for c in range(nc):
            ax = axes[r, c]
            ax.imshow(projection_rgb(tiles[c]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"epoch {epochs[c]}", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    return fig


def convergence(epochs, change: dict, overlap: dict, *, chance: float | None = None) -> Figure:
    """Two panels, one line per layer: relative weight change to the final weights, and the
    mean top-9 overlap with the final top-9, against the epoch."""
    fig = Figure(figsize=(6.8, 2.7), layout="constrained")
    a, b = fig.subplots(1, 2)
    for layer, v in change.items():
        a.plot(epochs, v, "o-", ms=3, lw=1.2, color=LAYER_COLOURS.get(layer), label=layer)
    for layer, v in overlap.items():
        b.plot(epochs, v, "o-", ms=3, lw=1.2, color=LAYER_COLOURS.get(layer), label=layer)
    if chance is not None:
        b.axhline(chance, color="k", ls=":", lw=1)
        b.text(epochs[-1], chance, "chance ", fontsize=8, va="bottom", ha="right")
    a.set_ylabel("‖W − W_final‖ / ‖W_final‖", fontsize=8)
    b.set_ylabel("top-9 overlap with final", fontsize=8)
    b.set_ylim(0, 1.05)
    for ax in (a, b):
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    a.legend(fontsize=8, ncol=2, frameon=False)
    return fig


def strongest_view(tiles, patches, labels, title: str = "", *, tile: float = 0.95) -> Figure:
    """One view of the epoch slider: each map's strongest projection (top row) above the
    image patch it comes from (bottom row). ``tiles`` and ``patches``: (C, h, w) tensors
    (patches already display-ready, values in [0, 1])."""
    n = len(tiles)
    fig = Figure(figsize=(n * tile + 0.2, 2 * tile + 0.45))
    axes = fig.subplots(2, n, squeeze=False,
                        gridspec_kw=dict(left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / (2 * tile + 0.45),
                                         wspace=0.08, hspace=0.08))
    for i in range(n):
        axes[0, i].imshow(projection_rgb(tiles[i]), interpolation="nearest")
        axes[1, i].imshow(patches[i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        axes[0, i].set_title(labels[i], fontsize=8)
        for ax in axes[:, i]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9, y=0.995)
    return fig
