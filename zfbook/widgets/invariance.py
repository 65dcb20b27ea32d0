"""The widgets of the chapter "Invariance" (Fig. 5): slide a translation, scale or rotation
and watch the images and the three curves of Fig. 5 (invariance_explorer), or pick a
transformation and its amount and see the distance at every layer (invariance_layers_explorer)."""
from __future__ import annotations

import numpy as np

from .blit import Blit
from .controls import dropdown, slider
from .explorer import Explorer

__all__ = ["invariance_explorer", "invariance_layers_explorer"]


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


def invariance_layers_explorer(sweeps: dict, images, preprocess, *, classes=None,
                               values: dict | None = None, **kwargs) -> Explorer:
    """Amount × layer (chapter "Invariance"): a drop-down picks a transformation, a slider
    its amount; the view shows the swept uint8 ``images`` (N, C, R, R) transformed, as the
    network sees them, each titled with its P(true class), and beneath them every image's
    distance from its untransformed features at each layer the sweeps measured (conv1 …
    fc7), in grey the mean over the images at every other amount of the same
    transformation: how a change of the input travels up the network, which Fig. 5's two
    layers cannot show.

    ``sweeps``: transformation → :class:`~zfbook.invariance.InvarianceSweep` of the same
    images and layers. ``values``: transformation → the amounts offered, the same number
    for each (default: nine of each sweep's values, or as many as the shortest sweep has,
    spread evenly over its range)."""
    from matplotlib.figure import Figure

    from ..invariance import transform

    units = {"translation": " px", "scale": "×", "rotation": "°"}
    names_t = list(sweeps)
    first = sweeps[names_t[0]]
    layers = list(first.distance)
    for name, sw in sweeps.items():
        if list(sw.distance) != layers or len(sw.labels) != len(images):
            raise ValueError(f"the sweep of {name!r} measured other layers or images than "
                             f"that of {names_t[0]!r}; every sweep needs the same")
    if values is None:
        k = min(9, *(len(sw.values) for sw in sweeps.values()))
        values = {n: [sw.values[int(i)] for i in np.linspace(0, len(sw.values) - 1, k).round()]
                  for n, sw in sweeps.items()}
    steps = {len(v) for v in values.values()}
    if len(steps) != 1 or set(values) != set(sweeps):
        raise ValueError("values needs one list per sweep, all of the same length")
    for n, vs in values.items():
        missing = [v for v in vs if v not in list(sweeps[n].values)]
        if missing:
            raise ValueError(f"{n} was not swept at {missing}")
    fill = preprocess.mean.mean(dim=(1, 2)).round()    # as invariance_sweep
    names = ([str(classes[int(y)]) for y in first.labels] if classes is not None
             else [f"image {i + 1}" for i in range(len(images))])
    dist = {n: np.stack([np.asarray(sw.distance[l], dtype=float) for l in layers], -1)
            for n, sw in sweeps.items()}                      # (N, T, layers)
    top = max(float(d.max()) for d in dist.values())

    fig = Figure(figsize=(6.8, 4.2), dpi=100, layout="constrained")  # drawn once, then updated
    upper, lower = fig.subfigures(2, 1, height_ratios=[1, 1.3])
    shown, titles = [], []
    for k, ax in enumerate(np.atleast_1d(upper.subplots(1, len(images)))):
        shown.append(ax.imshow(preprocess.display(preprocess.center(images[k])),
                               interpolation="nearest"))
        titles.append(ax.set_title(f"{names[k]}: P = 0.00", fontsize=8, color=f"C{k}"))
        ax.set_xticks([])
        ax.set_yticks([])
    ax = lower.subplots()
    x = np.arange(len(layers))
    context = [ax.plot(x, np.zeros(len(layers)), color="0.75", lw=0.8)[0]
               for _ in range(steps.pop() - 1)]
    lines = [ax.plot(x, np.zeros(len(layers)), color=f"C{k}", lw=1.5, marker="o", ms=3,
                     label=names[k])[0] for k in range(len(images))]
    ax.set_xticks(x, layers, fontsize=8)
    ax.set_ylim(0, top * 1.05)
    ax.set_ylabel("distance from\nthe original", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=len(images), loc="upper left", frameon=False)
    # a heading as long as any, so that the layout, computed once, leaves room for it
    heading = upper.suptitle("rotation 350° (grey: the mean at the other amounts)", fontsize=9)
    blit = Blit(fig, [*shown, *titles, *context, *lines, heading])

    def render(transformation, step):
        sw, vs = sweeps[transformation], values[transformation]
        value = vs[step]
        j = list(sw.values).index(value)
        for k, im in enumerate(images):
            shown[k].set_data(preprocess.display(preprocess.center(
                transform(im, sw.transform, value, fill))))
            titles[k].set_text(f"{names[k]}: P = {float(sw.p_true[k, j]):.2f}")
            lines[k].set_ydata(dist[transformation][k, j])
        others = [v for v in vs if v != value]
        for line, v in zip(context, others):
            line.set_ydata(dist[transformation][:, list(sw.values).index(v)].mean(0))
        unit = units.get(sw.transform, "")
        heading.set_text(f"{sw.transform} {value:g}{unit} (grey: the mean at the other "
                         f"amounts)")
        return blit.jpeg()

    n = len(next(iter(values.values())))
    return Explorer(render, dropdown("transformation", names_t),
                    slider("step", list(range(n)), labels=[str(i + 1) for i in range(n)],
                           label="amount, step"),
                    **{"image_format": "jpeg", **kwargs})
