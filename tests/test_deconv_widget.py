"""The deconvnet widget (zfbook.widgets.deconv_explorer) and its view (zfbook.plot.projection_view)."""
import copy
import json
import re

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from zfbook import deconv, plot  # noqa: E402
from zfbook.models import activations  # noqa: E402
from zfbook.widgets import Explorer, deconv_explorer  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

LAYERS = ["conv2", "conv5"]


@pytest.fixture(scope="module")
def images():
    return torch.randn(5, 3, 112, 112, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def explorer(mini, images):
    return deconv_explorer(mini, images, LAYERS, static_maps=[3, 17], static_images=[0, 2, 4],
                           names=list("abcde"))


def expected_view(model, images, layer, feature, image):
    """The view computed from scratch: one forward, one projection, one receptive field."""
    with torch.no_grad():
        act = activations(model, images[image:image + 1], layer)[layer][0, feature]
    flat = act.flatten()
    pos = int(flat.argmax())
    loc = (pos // act.shape[-1], pos % act.shape[-1])
    proj = deconv.project(model, images[image:image + 1], layer, feature, [loc])[0]
    box = deconv.receptive_field(model, layer, loc)
    return plot.projection_view(plot.image_rgb(images[image]), proj, box), float(flat[pos]), box


def panels(view, side=112, gap=4, top=16):
    """The four panels of a projection_view, without caption and labels."""
    return [view[top:top + side, j * (side + gap):j * (side + gap) + side] for j in range(4)]


def close(a, b):
    """Equal up to float rounding of the batched vs single projections (1 level of 255)."""
    return np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_is_an_explorer_with_a_bounded_static_grid(explorer):
    assert isinstance(explorer, Explorer)
    assert [c.name for c in explorer.controls] == ["layer", "feature", "image"]
    assert explorer.n_static_views == 2 * 2 * 3
    assert explorer.image_format == "jpeg"
    # live, the feature slider reaches every map of the largest layer (conv2 has 64, conv5 64)
    assert len(explorer.controls[1].values) == 64
    assert [explorer.controls[1].values[i] for i in explorer.controls[1].static] == [3, 17]
    assert explorer.controls[2].labels == ("0: a", "1: b", "2: c", "3: d", "4: e")
    page = explorer.static_html()
    views = json.loads(re.search(r'class="zfbook-explorer-views">(.*?)</script>', page, re.S)
                       .group(1))
    assert len(views) == 12 and all(v.startswith("data:image/jpeg;base64,") for v in views)
    assert len(set(views)) == 12
    assert len(page) <= explorer.max_bytes + 20_000


@pytest.mark.parametrize("layer,feature,image", [("conv2", 3, 0), ("conv5", 17, 4), ("conv2", 17, 2)])
def test_static_views_are_the_projection_beside_image_and_patch(explorer, mini, images, layer,
                                                                feature, image):
    got = explorer.render(layer=layer, feature=feature, image=image)
    want, value, box = expected_view(mini, images, layer, feature, image)
    assert value > 0, "the case must fire to test the projection panels"
    assert got.shape == want.shape == (16 + 112 + 14, 4 * 112 + 3 * 4, 3)
    for g, w in zip(panels(got), panels(want)):
        assert close(g, w)
    # the projection panel is not blank, and the field is outlined in yellow on the image
    assert panels(got)[1].std() > 0
    t, l = max(box[0], 0), max(box[1], 0)
    assert tuple(panels(got)[0][t, l]) == (255, 215, 0)


def test_live_choice_outside_the_static_grid(explorer, mini, images):
    choice = dict(layer="conv5", feature=40, image=3)  # neither map 40 nor image 3 is static
    assert choice not in explorer.static_choices()
    got = explorer.render(**choice)
    want, value, _ = expected_view(mini, images, **choice)
    if value > 0:
        assert all(close(g, w) for g, w in zip(panels(got), panels(want)))
    # the live widget shows it when the sliders move there
    box = explorer.widget
    before = box.output.value
    box.controls[1].value = 40
    box.controls[2].value = 3
    box.controls[0].value = 1  # conv5
    assert box.output.format == "jpeg"
    assert box.output.value != before
    assert box.output.value == explorer.view(**choice)[1]


def test_silent_map_is_reported_with_grey_panels(mini, images):
    model = copy.deepcopy(mini)
    with torch.no_grad():
        model.features.conv5.bias[5] = -1e6  # map 5 of conv5 can never fire
    e = deconv_explorer(model, images, ["conv5"], static_maps=[5], static_images=[0])
    view = e.render(layer="conv5", feature=5, image=0)
    p = panels(view)
    for blank in p[1:]:
        assert (blank == 128).all()
    assert close(p[0], (plot.image_rgb(images[0]) * 255).round().astype(np.uint8))


def test_map_beyond_a_smaller_layer(mini, images):
    e = deconv_explorer(mini, images, ["conv1", "conv3"], static_maps=[0], static_images=[0])
    assert len(e.controls[1].values) == 96  # conv3's maps
    view = e.render(layer="conv1", feature=50, image=1)  # conv1 has 32
    assert all((p == 128).all() for p in panels(view)[1:])


def test_default_static_maps_are_the_most_active_of_every_layer(mini, images):
    e = deconv_explorer(mini, images[:2])
    layers = ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert list(e.controls[0].values) == layers
    statics = [e.controls[1].values[i] for i in e.controls[1].static]
    assert e.n_static_views == 5 * 6 * 2
    # brute force: count the (layer, image) pairs on which each of conv1's 32 maps fires
    with torch.no_grad():
        acts = activations(mini, images[:2], layers)
    fires = [sum(int((acts[l][i, m] > 0).any()) for l in layers for i in range(2)) for m in range(32)]
    best = sorted(range(32), key=lambda m: (-fires[m], m))[:6]
    assert statics == sorted(best) and all(m < 32 for m in statics)
    assert min(fires[m] for m in statics) >= max(fires[m] for m in range(32) if m not in statics)


def test_torchvision_alexnet_with_module_names():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None).eval()
    x = torch.randn(2, 3, 67, 67, generator=torch.Generator().manual_seed(2))
    e = deconv_explorer(net, x, ["features.1", "features.4"], static_maps=[0, 9],
                        static_images=[0])
    view = e.render(layer="features.4", feature=9, image=0)
    want, value, _ = expected_view(net, x, "features.4", 9, 0)
    assert all(close(g, w) for g, w in zip(panels(view, 67), panels(want, 67)))


def test_errors_name_the_valid_choices(mini, images):
    with pytest.raises(ValueError, match=r"between 0 and 31.*conv1: 32"):
        deconv_explorer(mini, images, ["conv1", "conv2"], static_maps=[40])
    with pytest.raises(ValueError, match="between 0 and 4"):
        deconv_explorer(mini, images, ["conv1"], static_images=[7])
    with pytest.raises(ValueError, match="fc6.*no feature maps"):
        deconv_explorer(mini, images, ["conv5", "fc6"])
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        deconv_explorer(mini, images, ["conv9"])
    with pytest.raises(ValueError, match="layers is required"):
        deconv_explorer(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3)), images)
    with pytest.raises(ValueError, match="2 names for 5 images"):
        deconv_explorer(mini, images, ["conv1"], names=["a", "b"])


def test_projection_view_layout():
    image = np.zeros((10, 10, 3), np.float32)
    proj = torch.zeros(3, 10, 10)
    proj[:, 4, 4] = 1.0
    view = plot.projection_view(image, proj, (2, 2, 7, 7), "x", panel=20)
    assert view.dtype == np.uint8 and view.shape == (16 + 20 + 14, 4 * 20 + 3 * 4, 3)
    p = panels(view, 20)
    assert (p[1][8:10, 8:10] == 255).all()          # the projection's peak, enlarged ×2
    assert tuple(p[0][4, 4]) == (255, 215, 0)       # the field's corner (2, 2) ×2
    assert (p[3][8:12, 8:12] == 255).all()          # cut to the 5×5 field (peak at 2, 2), ×4
    assert (p[2] == 0).all()                        # the black image patch, enlarged
    edge = plot.projection_view(image, proj, (-3, -3, 2, 2), panel=20)
    assert (panels(edge, 20)[2][:8, :8] == 255).all()  # beyond the image: white


def test_fig2_reuses_given_projections(mini, images):
    from zfbook import topk
    top = topk.top_activations(mini, images, "conv2", k=2, progress=False)
    maps = plot.fig2_maps(top, n_maps=3, seed=1)
    assert len(maps) == 3 and (top.value[maps, 0] > 0).all() and (maps.diff() > 0).all()
    proj = top.project(mini, images, maps)
    a = plot.fig2(mini, images, top, maps, projections=proj)
    b = plot.fig2(mini, images, top, n_maps=3, seed=1)
    for x, y in zip([ax for ax in a.axes if ax.images], [ax for ax in b.axes if ax.images]):
        assert np.allclose(x.images[0].get_array(), y.images[0].get_array(), atol=1e-5)
    with pytest.raises(ValueError, match=r"projections must be \(3, 2, C, H, W\)"):
        plot.fig2(mini, images, top, maps, projections=proj[:2])


def test_projection_rgb_on_a_common_scale():
    p = torch.zeros(1, 2, 2)
    p[0, 0, 0], p[0, 1, 1] = 1.0, -4.0
    own = plot.projection_rgb(p)                 # scaled by its own max |value|, 4
    assert own[0, 0, 0] == 0.625 and own[1, 1, 0] == 0.0
    common = plot.projection_rgb(p, scale=2.0)   # one scale for several; beyond it, clipped
    assert common[0, 0, 0] == 0.75 and common[1, 1, 0] == 0.0 and common[0, 1, 0] == 0.5


def test_unpooling_figure_sums_collisions():
    x = [[1, 2, 0, 1, 3], [0, 5, 1, 0, 2], [2, 1, 4, 1, 0], [1, 0, 1, 8, 1], [3, 1, 0, 2, 2]]
    fig = plot.unpooling_figure(x, [[1, 2], [3, 4]])
    unpooled = fig.axes[-1]
    # numbers are drawn at (column, row); the shared switch (2, 2) gets 2 + 3
    at = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
          for t in unpooled.texts if not t.get_text().startswith("×")}
    assert at[2, 2] == "5" and at[1, 1] == "1" and at[3, 3] == "4" and at[0, 0] == "0"
    assert any(t.get_text() == "×2" for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match=r"shaped like the pooled output \(2, 2\)"):
        plot.unpooling_figure(x, [[1, 2, 3]])
