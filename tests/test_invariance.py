"""Invariance sweeps (Fig. 5): the transforms, the distance, and the sweep."""
import math

import pytest
import torch

from zfbook.data import Preprocess
from zfbook.invariance import (TRANSFORMS, feature_distance, invariance_sweep, paper_values,
                               transform)
from zfbook.models import activations, build


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = build("zfnet-mini", num_classes=12).eval()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 128, 128), generator=g, dtype=torch.uint8)
    preprocess = Preprocess(torch.full((3, 128, 128), 120.0), crop=112)
    return model, images, torch.tensor([0, 5, 11]), preprocess


def test_paper_values_scaled_to_the_crop():
    assert paper_values("translation", 224) == [float(v) for v in range(-60, 61, 10)]
    assert paper_values("translation", 112) == [float(v) for v in range(-30, 31, 5)]
    assert paper_values("scale") == pytest.approx([1.0 + 0.1 * i for i in range(9)])
    assert paper_values("rotation") == [float(a) for a in range(0, 360, 10)]
    with pytest.raises(ValueError, match="unknown transform 'shear'; transforms are: "
                                         "translation, scale, rotation"):
        paper_values("shear")


def test_translation_moves_the_image_down():
    g = torch.Generator().manual_seed(1)
    img = torch.randint(0, 256, (3, 20, 20), generator=g, dtype=torch.uint8)
    out = transform(img, "translation", 4, fill=[7, 8, 9])
    assert torch.equal(out[:, 4:], img[:, :-4])
    assert (out[:, :4] == torch.tensor([7, 8, 9], dtype=torch.uint8)[:, None, None]).all()
    up = transform(img, "translation", -3, fill=0)
    assert torch.equal(up[:, :-3], img[:, 3:])


def test_rotation_and_scale():
    g = torch.Generator().manual_seed(2)
    img = torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
    for name in TRANSFORMS:
        identity = {"translation": 0, "scale": 1.0, "rotation": 0}[name]
        assert torch.equal(transform(img, name, identity), img)
    half = transform(img, "rotation", 180)
    assert (half.int() - img.flip(-1, -2).int()).abs().max() <= 1
    quarter = transform(img, "rotation", 90)
    assert (quarter.int() - torch.rot90(img, 1, (-2, -1)).int()).abs().max() <= 1
    # zooming in by 2 about the centre: a constant image stays constant, edges grow apart
    flat = torch.full((3, 16, 16), 50, dtype=torch.uint8)
    assert torch.equal(transform(flat, "scale", 2.0, fill=0), flat)
    bar = torch.zeros(1, 16, 16, dtype=torch.uint8)
    bar[:, :, 7:9] = 255
    wide = transform(bar, "scale", 2.0)
    assert (wide[0, 8] > 0).sum() > (bar[0, 8] > 0).sum()
    with pytest.raises(ValueError, match="scale must be positive"):
        transform(img, "scale", 0.0)


def test_feature_distance():
    a = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    d = feature_distance(a, b)
    assert d[0] == pytest.approx(1.0) and d[1] == 0 and d[2] == 0 and math.isinf(d[3])
    x = torch.randn(5, 2, 3, 3)
    y = x + 0.1 * torch.randn(5, 2, 3, 3)
    ref = (x - y).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    torch.testing.assert_close(feature_distance(x, y), ref.double())


def test_sweep_shapes_and_identity(setup):
    model, images, labels, pre = setup
    s = invariance_sweep(model, images, labels, "rotation", values=[0, 45, 90], preprocess=pre)
    assert s.values == [0, 45, 90]
    for layer in ("conv1", "fc7"):
        assert s.distance[layer].shape == (3, 3)
        # the untransformed image: 0 up to float rounding (another batch composition)
        assert (s.distance[layer][:, 0] < 1e-5).all()
        assert (s.distance[layer][:, 1:] > 1e-3).all()
    with torch.no_grad():
        p = torch.softmax(model(pre.center(images)).double(), 1)
    torch.testing.assert_close(s.p_true[:, 0], p[torch.arange(3), labels], rtol=1e-5, atol=1e-7)
    assert ((s.p_true >= 0) & (s.p_true <= 1)).all()
    assert s.top_class.shape == (3, 3)


def test_sweep_distance_by_hand(setup):
    model, images, labels, pre = setup
    fill = pre.mean.mean((1, 2)).round()
    s = invariance_sweep(model, images, labels, "translation", preprocess=pre)
    assert s.values == paper_values("translation", 112)
    j = s.values.index(15.0)
    moved = transform(images[1:2], "translation", 15.0, fill)
    with torch.no_grad():
        f0 = activations(model, pre.center(images[1:2]), ["fc7"])["fc7"]
        f1 = activations(model, pre.center(moved), ["fc7"])["fc7"]
    ref = float((f0 - f1).norm() / f0.norm())
    assert float(s.distance["fc7"][1, j]) == pytest.approx(ref, rel=1e-4)


def test_sweep_errors(setup):
    model, images, labels, pre = setup
    with pytest.raises(ValueError, match="must be uint8"):
        invariance_sweep(model, images.float(), labels, "scale", preprocess=pre)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        invariance_sweep(model, images, labels[:2], "scale", preprocess=pre)
    with pytest.raises(ValueError, match="pass preprocess"):
        invariance_sweep(build("zfnet-mini", 12), images, labels, "scale")
    with pytest.raises(ValueError, match="unknown transform"):
        invariance_sweep(model, images, labels, "flip", preprocess=pre)
