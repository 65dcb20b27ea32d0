"""The widget mechanism: one output, a live ipywidgets view and a kernel-free HTML view."""
import base64
import html
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from zfbook.widgets import WIDGET_VIEW_MIMETYPE, Explorer, dropdown, slider  # noqa: E402


def square(colour, size):
    """A tiny distinct image per choice: a size x size block of one colour."""
    image = np.zeros((8, 8, 3), np.uint8)
    image[:size, :size, ["red", "green", "blue"].index(colour)] = 255
    return image


def explorer(**kwargs):
    return Explorer(square, dropdown("colour", ["red", "green", "blue"]),
                    slider("size", [2, 4, 6, 8], label="block size"), **kwargs)


def static_views(page: str) -> list:
    match = re.search(r'<script type="application/json" class="zfbook-explorer-views">(.*?)'
                      r"</script>", page, re.S)
    assert match, "the static HTML carries no views"
    return json.loads(match.group(1))


def decode(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix):])


def test_bundle_has_live_and_static_views():
    bundle = explorer()._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", WIDGET_VIEW_MIMETYPE}
    assert bundle[WIDGET_VIEW_MIMETYPE]["model_id"]
    assert bundle["text/plain"] == "Explorer(colour: 3 values, size: 4 values; 12 static views)"
    page = bundle["text/html"]
    assert "<script src" not in page and "http" not in page  # self-contained
    assert page.count('type="range"') == 1 and page.count("<select") == 1


def test_static_html_has_one_distinct_view_per_combination_in_grid_order():
    e = explorer()
    views = static_views(e.static_html())
    assert len(views) == 12 == len(e.static_choices())
    pngs = [decode(v) for v in views]
    assert len(set(pngs)) == 12
    # row-major: the last control varies fastest, as the JS strides assume
    assert [c["size"] for c in e.static_choices()[:4]] == [2, 4, 6, 8]
    for choice, png in zip(e.static_choices(), pngs):
        assert png == e.view(**choice)[1]
    # strides: colour moves 4 views, size moves 1
    assert 'data-name="colour" data-stride="4"' in e.static_html()
    assert 'data-name="size" data-stride="1"' in e.static_html()


def test_static_subset_and_labels():
    e = Explorer(square, dropdown("colour", ["red", "green", "blue"], labels=["R", "G", "B"]),
                 slider("size", [2, 4, 6, 8], static=[2, 8]))
    page = e.static_html()
    assert len(static_views(page)) == 6
    assert 'max="1"' in page  # the static slider has 2 positions
    assert html.escape(json.dumps(["R", "G", "B"])) in page
    # the live slider still covers every value
    assert len(e.widget.controls[1].options) == 4


def test_live_widget_recomputes_on_change():
    calls = []

    def render(colour, size):
        calls.append((colour, size))
        return square(colour, size)

    e = Explorer(render, dropdown("colour", ["red", "green", "blue"]), slider("size", [2, 4]))
    w = e.widget
    first = w.output.value
    assert calls == [("red", 2)]
    w.controls[1].value = 1  # index of size=4
    assert calls[-1] == ("red", 4)
    assert w.output.value != first
    assert w.output.value == e.view(colour="red", size=4)[1]
    w.controls[0].value = 2
    assert calls[-1] == ("blue", 4)


def test_figures_and_html_views():
    def figure(n):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot(range(n))
        return fig

    e = Explorer(figure, slider("n", [2, 3]), dpi=30)
    kind, png = e.view(n=2)
    assert kind == "png" and png.startswith(b"\x89PNG")
    assert plt.get_fignums() == []  # figures are closed after rendering

    h = Explorer(lambda n: f"<p>n is {n}</p>", slider("n", [1, 2]))
    page = h.static_html()
    assert static_views(page) == ["<p>n is 1</p>", "<p>n is 2</p>"]
    assert '<div class="zfbook-explorer-view"><p>n is 1</p></div>' in page
    assert h.widget.output.value == "<p>n is 1</p>"


def test_script_end_tag_in_html_views_is_escaped():
    e = Explorer(lambda n: "<script>x</script>", slider("n", [1]))
    payload = e.static_html().split('class="zfbook-explorer-views">')[1]
    assert payload.startswith('["<script>x<\\/script>"]</script>')


def test_grid_too_big_is_refused_with_advice():
    with pytest.raises(ValueError, match=r"colour 3 x size 4 = 12 views, more than max_views=10"):
        explorer(max_views=10)


def test_payload_too_big_is_refused():
    with pytest.raises(ValueError, match="max_bytes=100"):
        explorer(max_bytes=100).static_html()


@pytest.mark.parametrize("make, message", [
    (lambda: slider("not a name", [1]), "Python identifier"),
    (lambda: slider("n", []), "has no values"),
    (lambda: slider("n", "abc"), "values must be a sequence"),
    (lambda: slider("n", [1, 2], labels=["one"]), "1 labels for 2 values"),
    (lambda: slider("n", [1, 2], static=[3]),
     r"static value 3 is not one of its values \['1', '2'\]"),
    (lambda: Explorer(square), "at least one control"),
    (lambda: Explorer(square, ("colour", ["red"])), "made by zfbook.widgets.slider or dropdown"),
    (lambda: Explorer(square, slider("n", [1]), dropdown("n", [2])), "duplicate control names: n"),
    (lambda: Explorer("square", slider("n", [1])), "render must be callable"),
])
def test_bad_specs_give_clear_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_choices_and_results_give_clear_errors():
    e = explorer()
    with pytest.raises(ValueError, match=r"missing \['size'\], unknown \['colur'\]"):
        e.view(colour="red", colur="red")
    with pytest.raises(ValueError, match=r"5 is not a value of control 'size'"):
        e.view(colour="red", size=5)
    with pytest.raises(TypeError, match="render must return a matplotlib Figure"):
        Explorer(lambda n: 3.0, slider("n", [1])).view(n=1)
    with pytest.raises(ValueError, match="neither a PNG nor a JPEG"):
        Explorer(lambda n: b"GIF89a", slider("n", [1])).view(n=1)
    mixed = Explorer(lambda n: "<p/>" if n else square("red", 2), slider("n", [0, 1]))
    with pytest.raises(TypeError, match="one kind for every choice"):
        mixed.static_html()


def test_jpeg_views_are_smaller_for_noisy_images():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    png = Explorer(lambda i: noise, slider("i", [0]))
    jpeg = Explorer(lambda i: noise, slider("i", [0]), image_format="jpeg")
    assert png.view(i=0)[0] == "png" and jpeg.view(i=0)[0] == "jpeg"
    assert jpeg.view(i=0)[1][:3] == b"\xff\xd8\xff"
    assert len(jpeg.view(i=0)[1]) < len(png.view(i=0)[1]) / 2
    assert static_views(jpeg.static_html())[0].startswith("data:image/jpeg;base64,")
    assert jpeg.widget.output.format == "jpeg"
    wide = Explorer(lambda i: noise, slider("i", [0]), width=128)
    assert 'style="width:128px"' in wide.static_html() and wide.widget.output.width == "128"
    with pytest.raises(ValueError, match="unknown image_format 'gif'; formats are png, jpeg"):
        Explorer(lambda i: noise, slider("i", [0]), image_format="gif")
