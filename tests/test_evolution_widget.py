"""The widget of "How features evolve" (zfbook.widgets.evolution.evolution_explorer): layer
and epoch in one view, checked against the top-k searches and crops computed here."""
import matplotlib

matplotlib.use("Agg")
import pytest  # noqa: E402
import torch  # noqa: E402

from zfbook import deconv, evolution  # noqa: E402
from zfbook.models import activations, build  # noqa: E402
from zfbook.plot import evolution as evoplot  # noqa: E402
from zfbook.plot.images import image_rgb  # noqa: E402
from zfbook.widgets import Explorer  # noqa: E402
from zfbook.widgets.evolution import evolution_explorer  # noqa: E402

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="module")
def ev():
    models = {}
    for epoch, seed in ((1, 0), (3, 1)):   # two random "snapshots"
        torch.manual_seed(seed)
        models[epoch] = build("zfnet-mini", num_classes=12).eval()
    images = torch.randn(6, 3, 112, 112, generator=torch.Generator().manual_seed(3))
    return evolution.track(models, images, ["conv1", "conv5"], k=3)


@pytest.fixture
def captured(spy):
    return spy(evoplot, "strongest_view")


MAPS = {"conv1": [2, 5], "conv5": [0, 4, 7]}


def test_controls_and_grid(ev):
    e = evolution_explorer(ev, MAPS)
    assert isinstance(e, Explorer)
    assert [c.name for c in e.controls] == ["layer", "epoch"]
    assert list(e.controls[1].values) == [1, 3]
    assert e.n_static_views == 2 * 2


@pytest.mark.parametrize("layer", ["conv1", "conv5"])
@pytest.mark.parametrize("epoch", [1, 3])
def test_view_is_each_maps_strongest_projection_above_its_patch(ev, captured, layer, epoch):
    evolution_explorer(ev, MAPS).render(layer=layer, epoch=epoch)
    tiles, patches, labels, title = captured[-1]
    assert labels == [f"map {m}" for m in MAPS[layer]]
    assert title == f"{layer}, after epoch {epoch}"
    model = ev.models[epoch]
    for j, m in enumerate(MAPS[layer]):
        # from scratch: the image and location of map m's strongest activation
        with torch.no_grad():
            act = activations(model, ev.images, layer)[layer][:, m]
        a = act.flatten(1)
        i = int(a.amax(1).argmax())
        loc = divmod(int(a[i].argmax()), act.shape[-1])
        box = deconv.receptive_field(model, layer, loc)
        expected = deconv.crop(deconv.project(model, ev.images[i:i + 1], layer, m, [loc])[0], box)
        assert torch.allclose(tiles[j], expected, atol=1e-5 * float(expected.abs().max()) + 1e-12)
        rgb = torch.from_numpy(image_rgb(ev.images[i])).permute(2, 0, 1)
        assert torch.equal(patches[j], deconv.crop(rgb, box, fill=1.0))


def test_unknown_layer_names_the_tracked_ones(ev):
    with pytest.raises(ValueError, match=r"layers \['conv3'\] were not tracked; layers are conv1, conv5"):
        evolution_explorer(ev, {"conv3": [0]})
