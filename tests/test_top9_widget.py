"""The linked top-9 widget of "What the features respond to" (zfbook.widgets.top9_explorer)
and its view (zfbook.plot.features.top_view): every view is checked against the image,
projection, receptive field and class probabilities computed here from scratch."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from zfbook import deconv, topk  # noqa: E402
from zfbook.plot import features as featplot  # noqa: E402
from zfbook.plot.images import image_rgb  # noqa: E402
from zfbook.widgets import Explorer  # noqa: E402
from zfbook.widgets.features import top9_explorer  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

CLASSES = [f"class {c}" for c in range(12)]
LAYERS = ["conv1", "conv5"]


@pytest.fixture(scope="module")
def images():
    return torch.randn(5, 3, 112, 112, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def tops(mini, images):
    # k = 9 over 5 images: ranks 6 to 9 are empty (index -1)
    return topk.top_activations(mini, images, LAYERS, k=9, progress=False)


@pytest.fixture
def captured(spy):
    return spy(featplot, "top_view")


MAPS = {"conv1": [3, 7], "conv5": [1, 5, 9]}
LABELS = torch.tensor([0, 4, 4, 11, 2])


def test_controls_and_static_grid(mini, images, tops):
    e = top9_explorer(mini, images, tops, MAPS, classes=CLASSES, labels=LABELS,
                      static_per_layer=1, static_ranks=(1, 3))
    assert isinstance(e, Explorer)
    assert [c.name for c in e.controls] == ["entry", "rank"]
    assert list(e.controls[0].labels) == ["conv1 map 3", "conv1 map 7", "conv5 map 1",
                                          "conv5 map 5", "conv5 map 9"]
    assert list(e.controls[1].values) == list(range(1, 10))   # live: all nine
    assert e.n_static_views == 2 * 2                          # the first map of each layer
    assert [c["entry"] for c in e.static_choices()] == [0, 0, 2, 2]
    assert e.image_format == "jpeg"


@pytest.mark.parametrize("entry, layer, m", [(1, "conv1", 7), (3, "conv5", 5)])
@pytest.mark.parametrize("rank", [1, 2])
def test_view_shows_the_activation_its_field_and_the_networks_verdict(
        mini, images, tops, captured, entry, layer, m, rank):
    e = top9_explorer(mini, images, tops, MAPS, classes=CLASSES, labels=LABELS)
    e.render(entry=entry, rank=rank)
    image, projection, box, probs, classes, true, caption = captured[-1]
    # from scratch: the image of that rank, its strongest location of map m
    maps = _activations(mini, images, layer)
    flat = maps[:, m].flatten(1)
    order = sorted(range(len(images)), key=lambda i: (-float(flat[i].max()), i))
    i = order[rank - 1]
    pos = int(flat[i].argmax())
    loc = divmod(pos, maps.shape[-1])
    assert int(tops[layer].index[m, rank - 1]) == i
    assert np.array_equal(image, image_rgb(images[i]))
    assert box == list(deconv.receptive_field(mini, layer, loc))
    expected = deconv.project(mini, images[i:i + 1], layer, m, [loc])[0]
    assert torch.allclose(projection, expected, atol=1e-5 * float(expected.abs().max()))
    with torch.no_grad():
        p = torch.softmax(mini(images[i:i + 1]), 1)[0]
    assert np.allclose(probs, p.numpy(), atol=1e-6)
    assert true == int(LABELS[i]) and classes == CLASSES
    assert f"{layer} map {m}" in caption and f"image {i}" in caption
    assert CLASSES[int(LABELS[i])] in caption


def _activations(model, images, layer):
    from zfbook.models import activations

    with torch.no_grad():
        return activations(model, images, layer)[layer]


def test_empty_rank_says_so(mini, images, tops, captured):
    e = top9_explorer(mini, images, tops, MAPS, classes=CLASSES, labels=LABELS)
    e.render(entry=0, rank=7)                                 # 5 images: no 7th
    *_, caption = captured[-1]
    assert captured[-1][1] is None
    assert "fired on fewer than 7 images" in caption


def test_maps_may_be_tensors(mini, images, tops):
    as_tensors = {layer: torch.tensor(ms) for layer, ms in MAPS.items()}
    e = top9_explorer(mini, images, tops, as_tensors, classes=CLASSES, labels=LABELS)
    assert e.controls[0].labels[1] == "conv1 map 7"
    e.render(entry=1, rank=1)


def test_given_projections_are_used(mini, images, tops, captured):
    given = {layer: torch.full_like(tops[layer].project(mini, images, MAPS[layer]), 0.25)
             for layer in LAYERS}
    e = top9_explorer(mini, images, tops, MAPS, classes=CLASSES, labels=LABELS,
                      projections=given)
    e.render(entry=4, rank=1)
    assert torch.equal(captured[-1][1], given["conv5"][2, 0])


def test_errors_name_the_valid_choices(mini, images, tops):
    with pytest.raises(ValueError, match="no top-k for layers \\['conv3'\\]; layers are conv1, conv5"):
        top9_explorer(mini, images, tops, {"conv3": [0]}, classes=CLASSES, labels=LABELS)
    with pytest.raises(ValueError, match="static_ranks must be between 1 and 9"):
        top9_explorer(mini, images, tops, MAPS, classes=CLASSES, labels=LABELS,
                      static_ranks=(0, 10))
    with pytest.raises(ValueError, match="offers no feature map"):
        top9_explorer(mini, images, tops, {"conv1": []}, classes=CLASSES, labels=LABELS)


def test_top_view_marks_the_true_class():
    image = np.zeros((20, 20, 3))
    fig = featplot.top_view(image, torch.ones(3, 20, 20), [2, 2, 9, 9], [0.1, 0.7, 0.2],
                            ["a", "b", "c"], true=2, caption="x")
    bars = fig.axes[3].patches
    assert [b.get_width() for b in bars] == pytest.approx([0.1, 0.7, 0.2])
    assert bars[2].get_facecolor() != bars[1].get_facecolor()
    assert bars[0].get_facecolor() == bars[1].get_facecolor()
    assert len(fig.axes[0].patches) == 1                      # the field, outlined
