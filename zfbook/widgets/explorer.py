"""The :class:`Explorer`: controls plus a ``render`` function, shown as a live ipywidgets
view and as self-contained static HTML (every view precomputed, a few lines of inline
JavaScript). How to use it: the docstring of :mod:`zfbook.widgets`."""
from __future__ import annotations

import base64
import html
import io
import itertools
import json
from typing import Any, Callable

import numpy as np

from .controls import Control, _same

__all__ = ["WIDGET_VIEW_MIMETYPE", "Explorer"]

WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
