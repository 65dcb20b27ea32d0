"""The widget of the chapter "Occlusion" (Fig. 7): slide a grey square over an image and
watch P(true class) and the predicted class."""
from __future__ import annotations

import numpy as np

from .blit import Blit
from .controls import slider
from .explorer import Explorer

__all__ = ["Occluder", "occlusion_explorer"]


class Occluder:
    """What the occlusion widget shows for one image: a grey square of side ``size``
    centred at ``(y, x)`` (moved inside the image at the borders), P(``target``) and the
    most probable class with it, and the full Fig. 7 maps for that square size.

    :meth:`at` runs one placement on the cached unoccluded activations
    (:meth:`zfbook.occlusion.IncrementalForward.probabilities`); :meth:`maps` sweeps the
    square over the image with ``stride`` (:func:`zfbook.occlusion.occlusion_maps`),
    once per size.
    """

    def __init__(self, model, image, target: int, *, stride: int = 4, fill=None, classes=None):
        from ..occlusion import IncrementalForward

        self.model, self.image, self.target = model, image, int(target)
        self.classes = list(classes if classes is not None else getattr(model, "classes", []))
        self.stride, self.fill = int(stride), fill
        self.engine = IncrementalForward(model, image, probe=None)
        self.height, self.width = (int(v) for v in image.shape[-2:])
        self._maps = {}

    def corner(self, y: int, x: int, size: int) -> tuple[int, int]:
        """Top-left corner of the square centred at (y, x), moved inside the image."""
        top = min(max(int(y) - int(size) // 2, 0), self.height - int(size))
        left = min(max(int(x) - int(size) // 2, 0), self.width - int(size))
        return top, left

    def at(self, y: int, x: int, size: int) -> dict:
        """``top``, ``left``, ``size``, ``p_target`` and ``top_class`` with the square at (y, x)."""
        top, left = self.corner(y, x, size)
        p = self.engine.probabilities(top, left, int(size), self.fill)
        return {"top": top, "left": left, "size": int(size), "p_target": float(p[self.target]),
                "top_class": int(p.argmax())}

    def name(self, c: int) -> str:
        return str(self.classes[c]) if c < len(self.classes) else str(c)

    def caption(self, state: dict) -> str:
        """The widget's headline for a state from :meth:`at`: P(true class), the prediction."""
        return (f"P(true class: {self.name(self.target)}) = {state['p_target']:.2f}   "
                f"(unoccluded {self.maps(state['size']).p_target0:.2f})   "
                f"predicted: {self.name(state['top_class'])}")

    def maps(self, size: int):
        """The :class:`~zfbook.occlusion.OcclusionMaps` for squares of side ``size`` (cached)."""
        from ..occlusion import occlusion_maps

        size = int(size)
        if size not in self._maps:
            self._maps[size] = occlusion_maps(self.model, self.image, self.target, size,
                                              self.stride, self.fill, layer=None)
        return self._maps[size]


def occlusion_explorer(model, image, target: int, *, classes=None, preprocess=None,
                       sizes=range(8, 49, 4), static_sizes=(16, 24, 32),
                       centres=None, static_centres=None, stride: int = 4, fill=None,
                       **kwargs) -> Explorer:
    """The occlusion widget (chapter "Occlusion", Fig. 7): sliders for the square's centre
    ``y``, ``x`` and its ``size`` show the occluded image, P(true class) and the predicted
    class, beside the full P(true class) and most-probable-class maps for that size
    (a white square marks the current placement).

    ``image`` is one preprocessed (C, H, W) tensor, ``target`` its true class. Live, each
    move runs the one placement incrementally (:class:`Occluder`); the static book
    precomputes ``static_centres`` × ``static_centres`` × ``static_sizes`` views (default
    4 × 4 × 3, about 1 MB). The returned Explorer carries its :class:`Occluder` as ``.occluder``.
    """
    from matplotlib.figure import Figure

    from .. import plot
    from ..occlusion import occlude

    preprocess = preprocess or getattr(model, "preprocess", None)
    occ = Occluder(model, image, target, stride=stride, fill=fill, classes=classes)
    name = occ.name
    side = min(occ.height, occ.width)
    if centres is None:
        centres = range(0, side, 4)
    if static_centres is None:
        wanted = np.linspace(side / 5, side - side / 5, 4)
        static_centres = sorted({min(centres, key=lambda c, w=w: abs(c - w)) for w in wanted})
    for s in static_sizes:   # the static views' maps in one go, before rendering
        occ.maps(s)

    figures = {}     # one figure per square size, drawn once; a move only updates it

    def figure(size):
        if size not in figures:
            m = occ.maps(size)
            fig = Figure(figsize=(7.6, 2.55), dpi=72, layout="constrained")
            a, d, e = fig.subplots(1, 3)
            shown = a.imshow(plot.image_rgb(image, preprocess), interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            mesh = plot.placement_map(d, m, m.p_target.numpy(), cmap="turbo", vmin=0, vmax=1)
            fig.colorbar(mesh, ax=d, shrink=0.85).ax.tick_params(labelsize=6)
            d.set_title(f"P({name(occ.target)}) for every position", fontsize=8)
            plot.class_map(e, m, [name(c) for c in range(occ.engine.num_classes)], fontsize=6)
            e.set_title("most probable class", fontsize=8)
            squares = [plot.square_outline(ax, 0, 0, size, colour=c)
                       for ax, c in ((a, "red"), (d, "white"), (e, "white"))]
            title = a.set_title("square", fontsize=8)
            suptitle = fig.suptitle("P(true class)", fontsize=9)
            figures[size] = (Blit(fig, [shown, *squares, title, suptitle]), shown, squares,
                             title, suptitle)
        return figures[size]

    def render(y, x, size):
        state = occ.at(y, x, size)
        blit, shown, squares, title, suptitle = figure(size)
        shown.set_data(plot.image_rgb(occlude(image, state["top"], state["left"], size, fill),
                                      preprocess))
        for sq in squares:
            sq.set_xy((state["left"] - 0.5, state["top"] - 0.5))
        title.set_text(f"square {size} px at ({state['top']}, {state['left']})")
        suptitle.set_text(occ.caption(state))
        return blit.jpeg()

    explorer = Explorer(render,
                        slider("y", list(centres), static=static_centres, label="square centre y"),
                        slider("x", list(centres), static=static_centres, label="square centre x"),
                        slider("size", list(sizes), static=static_sizes, label="square size"),
                        **{"image_format": "jpeg", **kwargs})
    explorer.occluder = occ
    return explorer
