"""Figures of the chapter "Invariance" (Fig. 5): distances and P(true class) under
translation, scale and rotation."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..invariance import transform as _transform
from .images import mosaic

__all__ = ['fig5']


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
