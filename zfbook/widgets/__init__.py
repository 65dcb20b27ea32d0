"""Widgets that work in a live notebook *and* in the static HTML book.

Every widget of the book is an :class:`Explorer`: a few named controls (sliders or
drop-downs, each over a short list of values) and a function ``render(**choice)`` that
draws one view. Displayed in a notebook, an Explorer is **one** output carrying two
representations:

* ``application/vnd.jupyter.widget-view+json`` -- real ipywidgets controls. With a live
  kernel (Jupyter, Colab) moving a control calls ``render`` again.
* ``text/html`` -- the same controls as plain ``<input type=range>`` / ``<select>``
  elements, every view of the grid precomputed (PNG or JPEG, base64) and a few lines of
  inline JavaScript that swap the displayed view. No kernel, no external script: this is
  what the static book shows (``_config.yml`` tells myst-nb to prefer ``text/html``).

The number of precomputed views is the product of the controls' ``static`` values and is
bounded by ``max_views``; ``render`` is called once per view when the output is made (even
in a live kernel, since the saved notebook must carry them), so keep it to drawing: do the
heavy work for all static choices in one batched call beforehand. Views are cached.

Example (copy this)::

    import matplotlib.pyplot as plt
    from zfbook.widgets import Explorer, slider, dropdown

    def render(layer, feature):
        fig, ax = plt.subplots(figsize=(3, 3), layout="constrained")
        ax.imshow(maps[layer][feature], cmap="gray")
        ax.set_title(f"{layer}, map {feature}")
        ax.axis("off")
        return fig                      # a Figure, PNG bytes, an (H, W[, 3]) array or HTML

    Explorer(render,
             dropdown("layer", ["conv1", "conv2"]),
             slider("feature", range(96), static=range(0, 96, 12), label="feature map"))

Live, the slider covers all 96 maps; the static book precomputes 2 x 8 = 16 views.
Make the Explorer the last expression of its cell (or ``display`` it). For
photograph-like views (images, patches, projections) pass ``image_format="jpeg"``:
several times smaller than PNG. nbval compares the static HTML with the encoded images
masked (tests/nbval_sanitize.cfg); tests/test_browser.py shows how to test a chapter's
widget in headless Chromium.

Modules: :mod:`~zfbook.widgets.controls` (slider, dropdown), :mod:`~zfbook.widgets.explorer`
(the Explorer), and one module per chapter with widgets, named after its notebook:
``deconvnet`` (deconv_explorer), ``features`` (top9_explorer), ``evolution``
(evolution_explorer), ``occlusion`` (occlusion_explorer), ``invariance``
(invariance_explorer), ``transfer`` (transfer_explorer); ``blit`` makes redrawing fast.
"""
from __future__ import annotations

from .controls import Control, dropdown, slider
from .explorer import WIDGET_VIEW_MIMETYPE, Explorer
from .deconvnet import deconv_explorer
from .evolution import evolution_explorer
from .features import top9_explorer
from .invariance import invariance_explorer
from .occlusion import Occluder, occlusion_explorer

__all__ = ["Control", "slider", "dropdown", "Explorer", "WIDGET_VIEW_MIMETYPE",
           "deconv_explorer", "top9_explorer", "evolution_explorer", "Occluder",
           "occlusion_explorer", "invariance_explorer"]
