"""Figures of the chapter "Correspondence" (Table 1, Fig. 8): the masked parts, and the
consistency Δ per part and layer beside the paper's."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from ..correspondence import PAPER_TABLE1, mask_square
from .images import image_rgb

__all__ = ['fig8', 'table1_figure']


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
