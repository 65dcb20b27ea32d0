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
"""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["Control", "slider", "dropdown", "Explorer"]

WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_KINDS = ("slider", "dropdown")


@dataclass(frozen=True)
class Control:
    """One control: a ``name`` (the keyword passed to ``render``) over ``values``.

    ``labels`` are what the reader sees; ``static`` are the indices into ``values``
    precomputed for the static book (all of them by default).
    """

    name: str
    kind: str
    values: tuple
    labels: tuple
    static: tuple
    label: str

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"control name must be a Python identifier (it is passed to "
                             f"render as a keyword), got {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"unknown control kind {self.kind!r}; kinds are {', '.join(_KINDS)}")
        if not self.values:
            raise ValueError(f"control {self.name!r} has no values")
        if len(self.labels) != len(self.values):
            raise ValueError(f"control {self.name!r}: {len(self.labels)} labels for "
                             f"{len(self.values)} values")
        if not self.static:
            raise ValueError(f"control {self.name!r}: static selects no values")


def _control(kind, name, values, labels, static, label) -> Control:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"control {name!r}: values must be a sequence such as a list or "
                        f"range, got {type(values).__name__}")
    values = tuple(values)
    labels = tuple(str(v) for v in values) if labels is None else tuple(str(x) for x in labels)
    if static is None:
        indices = tuple(range(len(values)))
    else:
        indices = []
        for v in static:
            matches = [i for i, w in enumerate(values) if _same(w, v)]
            if not matches:
                raise ValueError(f"control {name!r}: static value {v!r} is not one of its "
                                 f"values {list(labels)}")
            indices.append(matches[0])
        indices = tuple(indices)
    return Control(name, kind, values, labels, indices, name if label is None else str(label))


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays, whose == is elementwise
        return a is b


def slider(name: str, values: Sequence, labels: Sequence | None = None,
           static: Sequence | None = None, label: str | None = None) -> Control:
    """A slider over ``values`` (ordered: layers, feature maps, positions, epochs).

    ``static``: the subset of ``values`` precomputed for the static book (default: all).
    ``label``: the text shown next to the slider (default: ``name``).
    """
    return _control("slider", name, values, labels, static, label)


def dropdown(name: str, values: Sequence, labels: Sequence | None = None,
             static: Sequence | None = None, label: str | None = None) -> Control:
    """A drop-down menu over ``values`` (unordered choices: models, images, methods)."""
    return _control("dropdown", name, values, labels, static, label)


# ---------------------------------------------------------------------------------------
# Turning what render returns into a view
# ---------------------------------------------------------------------------------------

_IMAGE_FORMATS = ("png", "jpeg")


def _to_view(result: Any, dpi: int, image_format: str) -> tuple[str, Any]:
    """``(format, bytes)`` with format "png" or "jpeg", or ``("html", str)``.

    Figures and arrays are encoded as ``image_format``; bytes must already be PNG or JPEG.
    """
    if isinstance(result, (bytes, bytearray)):
        if bytes(result[:8]) == _PNG_SIGNATURE:
            return "png", bytes(result)
        if bytes(result[:3]) == b"\xff\xd8\xff":
            return "jpeg", bytes(result)
        raise ValueError("render returned bytes that are neither a PNG nor a JPEG image")
    if isinstance(result, str):
        return "html", result
    if hasattr(result, "savefig"):  # a matplotlib Figure
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        result.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        plt.close(result)  # or the inline backend would show it a second time
        if image_format == "png":
            return "png", buffer.getvalue()
        from PIL import Image

        buffer.seek(0)
        return image_format, _encode(np.asarray(Image.open(buffer).convert("RGBA")), image_format)
    if hasattr(result, "__array__") and hasattr(result, "ndim"):
        return image_format, _encode(result, image_format)
    raise TypeError(f"render must return a matplotlib Figure, PNG or JPEG bytes, an (H, W) "
                    f"or (H, W, 3) array, or an HTML string; got {type(result).__name__}")


def _encode(array, image_format: str) -> bytes:
    from PIL import Image

    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ValueError(f"render returned an array of shape {a.shape}; images are "
                         f"(H, W), (H, W, 3) or (H, W, 4)")
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    image = Image.fromarray(a)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        if image.mode == "RGBA":  # JPEG has no alpha: composite on white
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image, mask=image.split()[3])
            image = background
        image.save(buffer, format="jpeg", quality=85, optimize=True)
    else:
        image.save(buffer, format="png", optimize=True)
    return buffer.getvalue()


def _data_uri(image_format: str, data: bytes) -> str:
    return f"data:image/{image_format};base64," + base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------------------
# The static (kernel-free) HTML
# ---------------------------------------------------------------------------------------

# Defined once per page (every Explorer output carries the same idempotent definition).
# A control's position in the grid is its index; the view is views[sum(index * stride)].
_SCRIPT = """<script>
window.zfbookExplorer = window.zfbookExplorer || function (control) {
  var root = control.closest(".zfbook-explorer");
  if (!root.zfbookViews) {
    root.zfbookViews = JSON.parse(root.querySelector("script.zfbook-explorer-views").textContent);
  }
  var k = 0;
  root.querySelectorAll("[data-stride]").forEach(function (c) {
    var i = parseInt(c.value, 10);
    k += i * parseInt(c.dataset.stride, 10);
    var shown = c.parentNode.querySelector("output");
    if (shown) { shown.textContent = JSON.parse(c.dataset.labels)[i]; }
  });
  var view = root.querySelector(".zfbook-explorer-view");
  if (view.tagName === "IMG") { view.src = root.zfbookViews[k]; }
  else { view.innerHTML = root.zfbookViews[k]; }
};
</script>"""

_STYLE = ("<style>.zfbook-explorer-controls label{display:inline-flex;align-items:center;"
          "gap:.4em;margin:0 1.2em .3em 0;font-family:sans-serif;font-size:.9em}"
          ".zfbook-explorer-controls output{min-width:2.5em}"
          ".zfbook-explorer img{image-rendering:pixelated}</style>")


def _static_control_html(control: Control, stride: int) -> str:
    labels = [control.labels[i] for i in control.static]
    common = (f'data-name="{html.escape(control.name)}" data-stride="{stride}" '
              f'data-labels="{html.escape(json.dumps(labels))}"')
    text = html.escape(control.label)
    if control.kind == "slider":
        return (f'<label>{text} <input type="range" min="0" max="{len(labels) - 1}" step="1" '
                f'value="0" {common} oninput="zfbookExplorer(this)">'
                f"<output>{html.escape(labels[0])}</output></label>")
    options = "".join(f'<option value="{i}">{html.escape(x)}</option>'
                      for i, x in enumerate(labels))
    return (f"<label>{text} <select {common} onchange=\"zfbookExplorer(this)\">"
            f"{options}</select></label>")


# ---------------------------------------------------------------------------------------
# The Explorer
# ---------------------------------------------------------------------------------------

class Explorer:
    """Controls plus a ``render(**choice)`` function; live widget and static HTML in one.

    Args:
        render: called with one keyword per control (``render(layer="conv2", feature=3)``);
            returns a matplotlib Figure (closed after rendering), PNG bytes, an image
            array (H, W[, 3|4], uint8 or floats in [0, 1]) or an HTML string.
        *controls: made by :func:`slider` / :func:`dropdown`; names must be distinct.
        max_views: the largest static grid allowed (product of the ``static`` counts).
        max_bytes: the largest total size of the precomputed views, so that the committed
            notebooks and the book's pages stay small.
        dpi: resolution for Figures; keep figures small (about 3-6 inches wide).
        image_format: "png" (default: exact; best for plots and filters) or "jpeg"
            (several times smaller for photograph-like images: dataset images, patches).
        width: display width of image views in CSS pixels (default: the image's own);
            small images such as 128 x 128 dataset images read better enlarged.
        title: optional heading shown above the controls.
    """

    def __init__(self, render: Callable[..., Any], *controls: Control, max_views: int = 64,
                 max_bytes: int = 3_000_000, dpi: int = 72, image_format: str = "png",
                 width: int | None = None, title: str | None = None):
        if not callable(render):
            raise TypeError(f"render must be callable, got {type(render).__name__}")
        if not controls:
            raise ValueError("an Explorer needs at least one control (slider or dropdown)")
        if image_format not in _IMAGE_FORMATS:
            raise ValueError(f"unknown image_format {image_format!r}; formats are "
                             f"{', '.join(_IMAGE_FORMATS)}")
        for c in controls:
            if not isinstance(c, Control):
                raise TypeError(f"controls are made by zfbook.widgets.slider or dropdown, "
                                f"got {type(c).__name__}")
        names = [c.name for c in controls]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate control names: {', '.join(duplicates)}")
        counts = [len(c.static) for c in controls]
        n_views = 1
        for n in counts:
            n_views *= n
        if n_views > max_views:
            grid = " x ".join(f"{c.name} {len(c.static)}" for c in controls)
            raise ValueError(f"the static grid has {grid} = {n_views} views, more than "
                             f"max_views={max_views}; pass static=[...] to a control to "
                             f"precompute fewer values, or raise max_views")
        self.render = render
        self.controls = tuple(controls)
        self.max_views, self.max_bytes, self.dpi, self.title = max_views, max_bytes, dpi, title
        self.image_format, self.width = image_format, width
        self._cache: dict[tuple, tuple[str, Any]] = {}
        self._widget = None

    # -- views ----------------------------------------------------------------------------
    def view(self, **choice) -> tuple[str, Any]:
        """The view for one choice of every control: ``("png" | "jpeg", bytes)`` or
        ``("html", str)``; computed once, then cached."""
        missing = [c.name for c in self.controls if c.name not in choice]
        unknown = sorted(set(choice) - {c.name for c in self.controls})
        if missing or unknown:
            raise ValueError(f"a view needs exactly the controls "
                             f"{', '.join(c.name for c in self.controls)}; "
                             f"missing {missing}, unknown {unknown}")
        key = tuple(self._index(c, choice[c.name]) for c in self.controls)
        if key not in self._cache:
            self._cache[key] = _to_view(self.render(**choice), self.dpi, self.image_format)
        return self._cache[key]

    @staticmethod
    def _index(control: Control, value) -> int:
        for i, v in enumerate(control.values):
            if _same(v, value):
                return i
        raise ValueError(f"{value!r} is not a value of control {control.name!r}; "
                         f"values are {list(control.labels)}")

    def static_choices(self) -> list[dict]:
        """Every choice precomputed for the static book, in grid (row-major) order."""
        grids = [[c.values[i] for i in c.static] for c in self.controls]
        return [dict(zip((c.name for c in self.controls), combo))
                for combo in itertools.product(*grids)]

    # -- the static HTML ------------------------------------------------------------------
    def static_html(self) -> str:
        """Self-contained HTML: controls, every view inline, and the switching script."""
        views = [self.view(**choice) for choice in self.static_choices()]
        kinds = {kind == "html" for kind, _ in views}
        if len(kinds) > 1:
            raise TypeError("render returned images for some choices and HTML for others; "
                            "return one kind for every choice")
        is_html = kinds.pop()
        payload = [v if is_html else _data_uri(kind, v) for kind, v in views]
        size = sum(len(p) for p in payload)
        if size > self.max_bytes:
            raise ValueError(f"the {len(payload)} precomputed views take {size / 1e6:.1f} MB, "
                             f"more than max_bytes={self.max_bytes}; use smaller figures, a "
                             f"lower dpi or fewer static values")
        strides, stride = [], 1
        for c in reversed(self.controls):
            strides.append(stride)
            stride *= len(c.static)
        strides.reverse()
        controls = "".join(_static_control_html(c, s) for c, s in zip(self.controls, strides))
        if is_html:
            shown = f'<div class="zfbook-explorer-view">{payload[0]}</div>'
        else:
            size = f' style="width:{int(self.width)}px"' if self.width else ""
            shown = f'<img class="zfbook-explorer-view" alt="view"{size} src="{payload[0]}">'
        # "</" cannot appear inside a <script> element, so escape it in the JSON.
        views_json = json.dumps(payload).replace("</", "<\\/")
        title = f"<strong>{html.escape(self.title)}</strong>" if self.title else ""
        return (f'<div class="zfbook-explorer">{_STYLE}{title}'
                f'<div class="zfbook-explorer-controls">{controls}</div>{shown}'
                f'<script type="application/json" class="zfbook-explorer-views">'
                f"{views_json}</script>{_SCRIPT}</div>")

    # -- the live widget ------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets UI (built on first use); moving a control re-renders."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _build_widget(self):
        import ipywidgets as w

        inputs = []
        for c in self.controls:
            options = [(label, i) for i, label in enumerate(c.labels)]
            common = dict(options=options, value=c.static[0], description=c.label,
                          style={"description_width": "initial"})
            if c.kind == "slider":  # re-render on release, not on every pixel of a drag
                inputs.append(w.SelectionSlider(continuous_update=False, **common))
            else:
                inputs.append(w.Dropdown(**common))
        kind, first = self.view(**self._choice(inputs))
        if kind == "html":
            output = w.HTML(value=first)
        else:
            size = {"width": self.width} if self.width else {}
            output = w.Image(value=first, format=kind, **size)

        def update(_change=None):
            new_kind, value = self.view(**self._choice(inputs))
            if (new_kind == "html") != (kind == "html"):
                raise TypeError("render returned images for some choices and HTML for others")
            if new_kind != "html":
                output.format = new_kind
            output.value = value

        for i in inputs:
            i.observe(update, names="value")
        children = ([w.HTML(f"<strong>{html.escape(self.title)}</strong>")] if self.title else [])
        box = w.VBox(children + [w.HBox(inputs, layout=w.Layout(flex_flow="row wrap")), output])
        box.controls, box.output = inputs, output  # handles for tests and callers
        return box

    def _choice(self, inputs) -> dict:
        return {c.name: c.values[i.value] for c, i in zip(self.controls, inputs)}

    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        grid = ", ".join(f"{c.name}: {len(c.values)} values" for c in self.controls)
        return f"Explorer({grid}; {self.n_static_views} static views)"

    @property
    def n_static_views(self) -> int:
        n = 1
        for c in self.controls:
            n *= len(c.static)
        return n

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": repr(self), "text/html": self.static_html()}
        live = self.widget._repr_mimebundle_() or {}
        if WIDGET_VIEW_MIMETYPE in live:
            bundle[WIDGET_VIEW_MIMETYPE] = live[WIDGET_VIEW_MIMETYPE]
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle


# =======================================================================================
# The book's widgets. Each is a small function returning an Explorer built from the
# library's functions (deconv projections, occlusion maps, ...). Append new ones below,
# one per concept, with a docstring naming the chapter and the paper figure.
# =======================================================================================


def deconv_explorer(model, images, layers=None, *, preprocess=None, names=None,
                    static_maps=None, static_images=None, n_static_maps: int = 6,
                    width: int | None = 720, max_bytes: int = 3_000_000) -> Explorer:
    """Pick a layer, a feature map and an image; see the deconvnet projection of that map's
    strongest activation in the image beside the image and its patch (Section 2.1, Fig. 2).

    Chapter "What the features respond to". Each view is :func:`zfbook.plot.projection_view`:
    the image with the unit's receptive field, the projection, and both cut to the field.
    A map that does not fire on the image (all activations ≤ 0) is reported as silent.

    Args:
        model: a zfbook model (layers ``conv1``…) or any model :func:`zfbook.deconv.project`
            accepts (layers named by ``named_modules()``).
        images: preprocessed images (N, C, H, W), as the model takes them.
        layers: the layers offered (default ``conv1``…``conv5`` for zfbook models).
        preprocess: the images' :class:`~zfbook.data.Preprocess`, to show them in colour.
        names: optional N labels for the images (e.g. their classes).
        static_maps: the feature maps precomputed for the static book (the same for every
            layer, so each must exist in all of them); default: the ``n_static_maps`` maps
            that fire on the most (layer, static image) pairs, so that few precomputed views
            are blank. Live, the slider covers every map of the largest layer; past the end of
            a smaller layer the view says so.
        static_images: indices into ``images`` precomputed for the static book (default
            the first 4).
        width: display width in CSS pixels.

    The static views are computed in one batched :func:`~zfbook.deconv.project` call per
    layer; live, each new choice costs one forward and one (cropped) down pass.
    """
    import torch

    from .. import deconv, plot
    from ..models import ConvNet, activations

    if images.dim() != 4:
        raise ValueError(f"images must be a batch (N, C, H, W), got shape {tuple(images.shape)}")
    n = images.shape[0]
    if layers is None:
        if not isinstance(model, ConvNet):
            raise ValueError("layers is required for models other than zfbook's "
                             "(module names from named_modules())")
        layers = ("conv1", "conv2", "conv3", "conv4", "conv5")
    layers = [layers] if isinstance(layers, str) else list(layers)
    names = [str(i) for i in range(n)] if names is None else [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} images")
    static_images = list(range(min(4, n))) if static_images is None else \
        [int(i) for i in static_images]
    if any(not 0 <= i < n for i in static_images):
        raise ValueError(f"static_images must be between 0 and {n - 1}")
    model.eval()
    x = images[static_images]
    with torch.no_grad():
        acts = activations(model, x, layers)  # the static images, every layer
    n_maps = {}
    for l in layers:
        if acts[l].dim() != 4:
            raise ValueError(f"layer {l!r} has no feature maps (output {tuple(acts[l].shape)}); "
                             f"choose convolutional layers")
        n_maps[l] = acts[l].shape[1]
    fewest = min(n_maps.values())
    if static_maps is None:  # the maps that fire on the most (layer, static image) pairs
        fires = sum((acts[l][:, :fewest].flatten(2).amax(2) > 0).sum(0) for l in layers)
        order = sorted(range(fewest), key=lambda m: (-int(fires[m]), m))
        static_maps = sorted(order[:max(1, min(n_static_maps, fewest))])
    static_maps = [int(m) for m in static_maps]
    if any(not 0 <= m < fewest for m in static_maps):
        raise ValueError(f"static_maps must be between 0 and {fewest - 1}, the maps every "
                         f"layer has ({', '.join(f'{l}: {c}' for l, c in n_maps.items())})")
    shown = {i: plot.image_rgb(images[i], preprocess) for i in static_images}
    cache: dict[tuple, tuple] = {}  # (layer, map, image) -> (value, (y, x), projection or None)

    def remember(layer, i, acts, maps, proj):
        """acts (K, H, W) and proj (K, C, H, W): the maps ``maps`` of image ``i``."""
        for j, f in enumerate(maps):
            a = acts[j]
            flat = a.flatten()
            pos = int(flat.argmax())
            v = float(flat[pos])
            loc = (pos // a.shape[-1], pos % a.shape[-1])
            cache[layer, f, i] = (v, loc, proj[j] if v > 0 else None)

    with torch.no_grad():  # the static grid: one batched down pass per layer
        for layer in layers:
            proj = deconv.project(model, x, layer, [static_maps] * len(static_images))
            for r, i in enumerate(static_images):
                remember(layer, i, acts[layer][r][static_maps], static_maps, proj[r])

    def entry(layer, feature, image):
        key = (layer, feature, image)
        if key not in cache:  # live: one image, one map
            with torch.no_grad():
                a = activations(model, images[image:image + 1], layer)[layer][0]
                p = deconv.project(model, images[image:image + 1], layer, feature)
            remember(layer, image, a[[feature]], [feature], p)
        return cache[key]

    def render(layer, feature, image):
        if image not in shown:
            shown[image] = plot.image_rgb(images[image], preprocess)
        rgb = shown[image]
        what = f"image {names[image]}" if names[image] != str(image) else f"image {image}"
        if feature >= n_maps[layer]:
            return plot.projection_view(rgb, None, None, f"{layer} has {n_maps[layer]} maps "
                                                         f"(0 to {n_maps[layer] - 1}): no map {feature}")
        v, loc, proj = entry(layer, feature, image)
        if proj is None:
            return plot.projection_view(rgb, None, None, f"{layer} map {feature} is silent on "
                                                         f"{what}: its largest activation is {v:.3g}")
        box = deconv.receptive_field(model, layer, loc)
        side = box[2] - box[0]
        return plot.projection_view(rgb, proj, box, f"{layer} map {feature} on {what}: "
                                                    f"strongest activation {v:.3g} at {loc}, "
                                                    f"field {side}x{side} px")

    labels = [f"{i}: {names[i]}" if names[i] != str(i) else str(i) for i in range(n)]
    return Explorer(render, dropdown("layer", layers),
                    slider("feature", range(max(n_maps.values())), static=static_maps,
                           label="feature map"),
                    slider("image", range(n), static=static_images, labels=labels),
                    max_views=len(layers) * len(static_maps) * len(static_images),
                    max_bytes=max_bytes, image_format="jpeg", width=width,
                    title="The deconvnet, one activation at a time")


__all__ += ["deconv_explorer"]


# ---------------------------------------------------------------------------------------
# Occlusion (Fig. 7) and invariance (Fig. 5): the chapters "Occlusion" and "Invariance"
# ---------------------------------------------------------------------------------------
class _Blit:
    """A matplotlib figure drawn once; each view redraws only ``artists`` (made animated)
    over the saved background and encodes the canvas as JPEG (blitting: a view costs a few
    ms instead of a full draw of every axis)."""

    def __init__(self, fig, artists):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig, self.artists = fig, list(artists)
        for a in self.artists:
            a.set_animated(True)
        self.canvas = FigureCanvasAgg(fig)
        self.canvas.draw()                    # lays the figure out, without the artists
        fig.set_layout_engine(None)           # ... and keeps it that way
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def jpeg(self, quality: int = 75) -> bytes:
        from PIL import Image

        self.canvas.restore_region(self.background)
        for a in self.artists:
            self.fig.draw_artist(a)
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(self.canvas.buffer_rgba())[..., :3]).save(
            buffer, format="jpeg", quality=quality, optimize=True)
        return buffer.getvalue()
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
            figures[size] = (_Blit(fig, [shown, *squares, title, suptitle]), shown, squares,
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


def invariance_explorer(sweep, images, preprocess, *, classes=None, static=None,
                        **kwargs) -> Explorer:
    """The invariance widget (chapter "Invariance", Fig. 5): a slider over the values of one
    :class:`~zfbook.invariance.InvarianceSweep` shows the swept uint8 ``images``
    (N, C, R, R) transformed, as the network sees them (``preprocess``'s centre crop),
    above the three curves of Fig. 5 with the current value marked. ``static``: the values
    precomputed for the static book (default: all)."""
    from matplotlib.figure import Figure

    from .. import plot
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
    blit = _Blit(fig, [*shown, *titles, *markers, heading])

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


__all__ += ["Occluder", "occlusion_explorer", "invariance_explorer"]
