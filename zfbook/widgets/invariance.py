"""The widget of the chapter "Invariance" (Fig. 5): slide a translation, scale or rotation
and watch the images and the three curves of Fig. 5."""
from __future__ import annotations

import numpy as np

from .blit import Blit
from .controls import slider
from .explorer import Explorer

__all__ = ["invariance_explorer"]


def invariance_explorer(sweep, images, preprocess, *, classes=None, static=None,
                        **kwargs) -> Explorer:
    """The invariance widget (chapter "Invariance", Fig. 5): a slider over the values of one
    :class:`~zfbook.invariance.InvarianceSweep` shows the swept uint8 ``images``
    (N, C, R, R) transformed, as the network sees them (``preprocess``'s centre crop),
    above the three curves of Fig. 5 with the current value marked. ``static``: the values
    precomputed for the static book (default: all)."""
    from matplotlib.figure import Figure

    from ..invariance import transform

    units = {"translation": " px", "scale": "×", "rotation": "°"}
    unit = units.get(sweep.transform, "")
    fill = preprocess.mean.mean(dim=(1, 2)).round()    # as invariance_sweep
    names = ([str(classes[int(y)]) for y in sweep.labels] if classes is not None
             else [f"image {i + 1}" for i in range(len(images))])
    dist = {k: np.asarray(v, dtype=float) for k, v in sweep.distance.items()}
    p_true = np.asarray(sweep.p_true, dtype=float)

    def crops(value):
        return [preprocess.display(preprocess.center(transform(im, sweep.transform, value, fill)))
                for im in images]

    fig = Figure(figsize=(7.6, 3.7), dpi=72, layout="constrained")   # drawn once, then updated
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.25])
    shown, titles = [], []
    for k, (ax, crop) in enumerate(zip(np.atleast_1d(top.subplots(1, len(images))),
                                       crops(sweep.values[0]))):
        shown.append(ax.imshow(crop, interpolation="nearest"))
        titles.append(ax.set_title(f"{names[k]}: P = 0.00", fontsize=7, color=f"C{k}"))
        ax.set_xticks([])
        ax.set_yticks([])
    panels = [(dist["conv1"], "conv1 distance"), (dist["fc7"], "fc7 distance"),
              (p_true, "P(true class)")]
    markers = []
    for ax, (values, title) in zip(bottom.subplots(1, 3), panels):
        ax.plot(sweep.values, values.T, lw=1, marker=".", ms=2)
        markers.append(ax.axvline(sweep.values[0], color="k", lw=1, ls="--"))
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
        if title.startswith("P"):
            ax.set_ylim(-0.03, 1.03)
    heading = top.suptitle(f"{sweep.transform} {sweep.values[0]:g}{unit}", fontsize=9)
    blit = Blit(fig, [*shown, *titles, *markers, heading])

    def render(value):
        j = list(sweep.values).index(value)
        for k, (image, crop) in enumerate(zip(shown, crops(value))):
            image.set_data(crop)
            titles[k].set_text(f"{names[k]}: P = {p_true[k, j]:.2f}")
        for line in markers:
            line.set_xdata([value, value])
        heading.set_text(f"{sweep.transform} {value:g}{unit}")
        return blit.jpeg()

    return Explorer(render, slider("value", list(sweep.values),
                                   labels=[f"{v:g}{unit}" for v in sweep.values],
                                   static=static, label=sweep.transform),
                    **{"image_format": "jpeg", **kwargs})
