"""The figures and widgets of the occlusion, invariance and correspondence chapters
(Fig. 7, Fig. 5, Table 1 / Fig. 8): what they show is what the library computes."""
import io
import json
import re

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from zfbook import plot  # noqa: E402
from zfbook.correspondence import correspondence  # noqa: E402
from zfbook.data import Preprocess  # noqa: E402
from zfbook.invariance import invariance_sweep  # noqa: E402
from zfbook.occlusion import occlude, occlusion_maps  # noqa: E402
from zfbook.topk import top_activations  # noqa: E402
from zfbook.widgets import Occluder, invariance_explorer, occlusion_explorer  # noqa: E402
from zfbook.widgets.invariance import invariance_layers_explorer  # noqa: E402

CLASSES = [f"class{i}" for i in range(12)]


@pytest.fixture(scope="module")
def image():
    """A smooth random image at about unit scale (as the mini presets' inputs are)."""
    g = torch.Generator().manual_seed(3)
    low = torch.randn(1, 3, 7, 7, generator=g)
    up = torch.nn.functional.interpolate(low, size=(112, 112), mode="bilinear")[0]
    return up + 0.3 * torch.randn(3, 112, 112, generator=g)


def plain(model, image, top, left, size):
    with torch.no_grad():
        return torch.softmax(model(occlude(image, top, left, size)[None])[0], 0)


def decode(view: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(view)).convert("RGB"), dtype=np.int16)


# ---------------------------------------------------------------- the occluder's state
def test_occluder_corner_keeps_the_square_inside(mini, image):
    occ = Occluder(mini, image, 3)
    assert occ.corner(56, 56, 24) == (44, 44)          # centred
    assert occ.corner(0, 111, 24) == (0, 88)           # moved inside at the borders
    assert occ.corner(111, 0, 48) == (64, 0)


@pytest.mark.parametrize("y, x, size", [(56, 56, 24), (0, 0, 16), (111, 60, 48), (30, 100, 8)])
def test_occluder_at_equals_a_plain_forward_pass(mini, image, y, x, size):
    occ = Occluder(mini, image, 3)
    state = occ.at(y, x, size)
    p = plain(mini, image, state["top"], state["left"], size)
    assert (state["top"], state["left"]) == occ.corner(y, x, size)
    assert state["p_target"] == pytest.approx(float(p[3]), abs=1e-5)
    assert state["top_class"] == int(p.argmax())


def test_occluder_maps_agree_with_single_moves(mini, image):
    occ = Occluder(mini, image, 5, stride=8)
    m = occ.maps(24)
    assert occ.maps(24) is m                            # computed once per size
    for r, q in [(0, 0), (3, 5), (-1, -1)]:
        top, left = (int(v) for v in m.positions[r, q])
        state = occ.at(top + 12, left + 12, 24)
        assert (state["top"], state["left"]) == (top, left)
        assert state["p_target"] == pytest.approx(float(m.p_target[r, q]), abs=1e-5)


def test_caption_names_the_classes_and_the_probability(mini, image):
    occ = Occluder(mini, image, 7, classes=CLASSES)
    state = occ.at(40, 70, 20)
    text = occ.caption(state)
    assert f"P(true class: class7) = {state['p_target']:.2f}" in text
    assert f"unoccluded {occ.maps(20).p_target0:.2f}" in text
    assert text.endswith(f"predicted: class{state['top_class']}")


# ---------------------------------------------------------------- the occlusion widget
@pytest.fixture(scope="module")
def explorer(mini, image):
    return occlusion_explorer(mini, image, 2, classes=CLASSES, sizes=[16, 32],
                              static_sizes=[16, 32], centres=range(0, 112, 8),
                              static_centres=[24, 88], stride=8)


def test_occlusion_explorer_static_grid(explorer):
    page = explorer.static_html()
    views = json.loads(re.search(r'class="zfbook-explorer-views">(.*?)</script>', page, re.S)
                       .group(1))
    assert len(views) == 2 * 2 * 2 == explorer.n_static_views
    assert all(v.startswith("data:image/jpeg;base64,") for v in views)
    assert len(set(views)) == len(views)                # every placement looks different
    assert sum(map(len, views)) <= explorer.max_bytes
    for name in ("y", "x", "size"):
        assert f'data-name="{name}"' in page
    # live, the sliders reach every value
    assert [len(c.values) for c in explorer.controls] == [14, 14, 2]


def test_occlusion_view_shows_the_grey_square_where_the_sliders_put_it(explorer, image):
    """Moving x moves the square: the view's left panel changes only around the two squares."""
    a = decode(explorer.view(y=24, x=24, size=32)[1])
    b = decode(explorer.view(y=24, x=88, size=32)[1])
    assert a.shape == b.shape
    diff = np.abs(a - b).sum(2) > 60
    ys, xs = np.nonzero(diff[:, : a.shape[1] // 3])     # the occluded image is on the left
    assert len(ys) > 100
    # the changes lie in the upper part of the image (the squares' rows, y = 8…40 of 112)
    rows = np.nonzero(diff[:, : a.shape[1] // 3].any(1))[0]
    img_rows = np.nonzero((np.abs(a[:, : a.shape[1] // 3] - 255).sum(2) > 30).any(1))[0]
    top, height = img_rows.min(), img_rows.max() - img_rows.min()
    inner = rows[(rows > top + 0.02 * height) & (rows < img_rows.max() - 0.02 * height)]
    assert inner.max() < top + 0.5 * height             # nothing changes in the lower half


def test_occlusion_view_is_cached_and_deterministic(mini, image, explorer):
    again = occlusion_explorer(mini, image, 2, classes=CLASSES, sizes=[16, 32],
                               static_sizes=[16, 32], centres=range(0, 112, 8),
                               static_centres=[24, 88], stride=8)
    assert again.view(y=88, x=24, size=16) == explorer.view(y=88, x=24, size=16)
    assert explorer.occluder.target == 2


# ---------------------------------------------------------------- the invariance widget
@pytest.fixture(scope="module")
def sweep_setup(mini):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 128, 128), generator=g, dtype=torch.uint8)
    prep = Preprocess(torch.full((3, 128, 128), 120.0), crop=112, scale=1 / 64)
    sweep = invariance_sweep(mini, images, [1, 4], "rotation", values=[0.0, 30.0, 60.0, 90.0],
                             preprocess=prep)
    return images, prep, sweep


def test_invariance_explorer_one_view_per_value(sweep_setup):
    images, prep, sweep = sweep_setup
    e = invariance_explorer(sweep, images, prep, classes=CLASSES, static=[0.0, 90.0])
    assert e.n_static_views == 2
    assert list(e.controls[0].labels) == ["0°", "30°", "60°", "90°"]
    views = [decode(e.view(value=v)[1]) for v in sweep.values]
    for a, b in zip(views, views[1:]):
        assert np.abs(a - b).max() > 50                 # the images rotate, the marker moves


def test_invariance_layers_explorer_links_transformation_amount_and_layer(mini, sweep_setup):
    images, prep, rot = sweep_setup
    layers = ("conv1", "conv3", "fc7")
    sweeps = {n: invariance_sweep(mini, images, [1, 4], n, values=v, preprocess=prep,
                                  layers=layers)
              for n, v in (("translation", [-10.0, 0.0, 10.0]), ("rotation", [0.0, 45.0, 90.0]))}
    e = invariance_layers_explorer(sweeps, images, prep, classes=CLASSES)
    assert [c.name for c in e.controls] == ["transformation", "step"]
    assert e.n_static_views == 2 * 3
    views = {(t, k): decode(e.view(transformation=t, step=k)[1])
             for t in sweeps for k in range(3)}
    for t in sweeps:
        assert np.abs(views[t, 0] - views[t, 2]).max() > 50    # images and lines move
    assert np.abs(views["translation", 2] - views["rotation", 2]).max() > 50
    # the identity (translation 0, rotation 0) moves no layer: distance 0 everywhere, up to
    # float32 rounding (the batch it runs in may pick other CPU kernels); 10 px moves them all
    for t, j in (("translation", 1), ("rotation", 0)):
        assert all(float(sweeps[t].distance[l][:, j].abs().max()) < 1e-5 for l in layers)
    assert all(float(sweeps["translation"].distance[l][:, 2].min()) > 1e-2 for l in layers)
    with pytest.raises(ValueError, match="other layers"):
        invariance_layers_explorer({"translation": sweeps["translation"], "rotation": rot},
                                   images, prep)
    with pytest.raises(ValueError, match="not swept"):
        invariance_layers_explorer(sweeps, images, prep,
                                   values={"translation": [0.0, 5.0, 10.0],
                                           "rotation": [0.0, 45.0, 90.0]})


# ---------------------------------------------------------------- the figures
def test_placement_map_centres_cells_on_the_squares(mini, image):
    import matplotlib.pyplot as plt

    m = occlusion_maps(mini, image, 0, 24, 8, layer=None)
    fig, ax = plt.subplots()
    mesh = plot.placement_map(ax, m, m.p_target.numpy())
    xy = mesh.get_coordinates()                          # (rows+1, cols+1, 2) cell corners
    centre = (xy[:-1, :-1] + xy[1:, 1:]) / 2
    expect = m.positions.numpy()[..., ::-1] + 24 / 2 - 0.5   # (x, y) of each square's centre
    np.testing.assert_allclose(centre, expect)
    assert np.allclose(mesh.get_array().reshape(m.p_target.shape), m.p_target.numpy())
    plt.close(fig)


def test_class_colours_are_distinct():
    colours = plot.class_colours(12)
    assert len(set(colours)) == 12


def test_fig7_panels(mini, image):
    images = torch.stack([image, image.flip(-1)])
    top = top_activations(mini, images, "conv5", k=3, progress=False)
    maps = [occlusion_maps(mini, x, c, 24, 8) for x, c in zip(images, [1, 2])]
    fig = plot.fig7(mini, images, [1, 2], top, images, classes=CLASSES, maps=maps)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles.count("(a) input image") == 2
    assert f"(b) activity of map {maps[0].feature}" in titles
    assert f"(c) map {maps[1].feature} projected" in titles
    # panel (a) shows the square where P(true class) is lowest, in the fill colour
    a = fig.axes[0].get_images()[0].get_array()
    r, q = np.unravel_index(int(maps[0].p_target.argmin()), tuple(maps[0].p_target.shape))
    t, l = (int(v) for v in maps[0].positions[r, q])
    square = a[t:t + 24, l:l + 24]
    assert np.ptp(square.reshape(-1, 3), axis=0).max() == 0   # one flat grey


def test_fig8_masks_each_part(mini):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, 112, 112, generator=g)
    kps = torch.tensor([[[40.0, 40.0], [40.0, 70.0], [60.0, 56.0]]]).expand(3, 3, 2)
    table = correspondence(mini, images, kps, ["left_eye", "right_eye", "nose"], size=10,
                           draws=2)
    fig = plot.fig8(images, table)
    assert len(fig.axes) == 4 * 3                        # 3 parts + random, 3 images
    # the nose row: the square around (60, 56) is flat in every image
    for j in range(3):
        shown = fig.axes[2 * 3 + j].get_images()[0].get_array()
        assert np.ptp(shown[55:65, 51:61].reshape(-1, 3), axis=0).max() == 0
    bars = plot.table1_figure(table)
    assert [ax.get_title() for ax in bars.axes] == ["Δ at conv5", "Δ at fc7"]
