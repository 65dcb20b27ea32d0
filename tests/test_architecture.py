"""zfbook.architecture (Fig. 6): dead filters, the layer-1 spectrum, aliasing measures,
each against an independent reference or a case built to come out one way or the other."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zfbook
from zfbook import architecture as A
from zfbook.data import embedded
from zfbook.models import build


@pytest.fixture(scope="module")
def trained():
    return zfbook.pretrained("zfnet-mini")


@pytest.fixture(scope="module")
def images():
    return embedded("test", per_class=6, cache=False).images  # 72 uint8 images, 128 × 128


def _kill(model, layer, maps):
    conv = getattr(model.features, layer)
    with torch.no_grad():
        conv.weight[maps] = 0
        conv.bias[maps] = -1.0  # never fires


def test_filter_energy_matches_a_direct_convolution(trained, images):
    x = trained.preprocess.center(images[:16])
    c = trained.features.conv1
    ref = F.relu(F.conv2d(x, c.weight, c.bias, c.stride, c.padding)).double()
    ref = ref.pow(2).mean((0, 2, 3)).sqrt()
    assert torch.allclose(A.filter_energy(trained, "conv1", x).double(), ref, rtol=1e-5)


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_killing_filters_raises_the_dead_count_by_exactly_that_many(trained, images, layer):
    model = zfbook.pretrained("zfnet-mini")
    x = model.preprocess.center(images)
    before = set(A.dead_filters(model, layer, x).tolist())
    alive = [m for m in range(getattr(model.features, layer).out_channels) if m not in before]
    victims = alive[1:4]
    _kill(model, layer, victims)
    after = set(A.dead_filters(model, layer, x).tolist())
    assert len(after) == len(before) + 3 and after == before | set(victims)
    # by weight norm: the zeroed filters and only they (trained filters sit near the radius)
    assert set(A.dead_filters(model, layer, by="weight").tolist()) == set(victims)


def test_a_random_layer1_has_no_dead_filter(images):
    torch.manual_seed(0)
    net = build("zfnet-mini", 12).eval()
    x = zfbook.pretrained("zfnet-mini").preprocess.center(images)
    assert A.dead_filters(net, "conv1", x).numel() == 0
    with pytest.raises(ValueError, match="conv1"):
        A.dead_filters(net, "fc6", x)
    with pytest.raises(ValueError, match="activation"):
        A.dead_filters(net, "conv1", x, by="norm")


def _reference_radial(w, size, bins):
    w = w.double().numpy()
    p = np.abs(np.fft.fft2(w, s=(size, size))) ** 2
    p = p.sum(1)
    p /= p.sum((1, 2), keepdims=True)
    f = np.fft.fftfreq(size)
    r = np.hypot(f[:, None], f[None, :])
    out = np.zeros((w.shape[0], bins))
    width = 0.5 / bins
    for b in range(bins):
        m = (r >= b * width) & ((r < (b + 1) * width) | ((b == bins - 1) & (r <= 0.5)))
        out[:, b] = p[:, m].mean(1)
    return out


def test_radial_spectrum_matches_numpy():
    torch.manual_seed(1)
    w = torch.randn(5, 3, 7, 7)
    freq, power = A.radial_spectrum(w, size=32, bins=8)
    assert freq.shape == (8,) and freq[0] == pytest.approx(1 / 32)
    np.testing.assert_allclose(power.numpy(), _reference_radial(w, 32, 8), rtol=1e-5)


def _box(n, k):
    return torch.ones(n, 3, k, k)


def _checker(n, k):
    i = torch.arange(k)
    return ((-1.0) ** (i[:, None] + i[None, :])).expand(n, 3, k, k).clone()


def test_bands_and_the_mid_frequency_gap():
    torch.manual_seed(2)
    low = A.frequency_bands(_box(8, 7))
    high = A.frequency_bands(_checker(8, 7))
    assert low["share"][0] > 0.8 and high["share"][2] > 0.8
    assert sum(low["share"]) == pytest.approx(1.0)
    # white noise: a flat spectrum, no gap
    noise = A.frequency_bands(torch.randn(512, 3, 11, 11))
    assert abs(noise["gap"]) < 0.05
    # half smooth, half checkerboard: extremely low and high, little in between (Fig. 6 b)
    mixed = A.frequency_bands(torch.cat([_box(8, 11), _checker(8, 11)]))
    assert mixed["gap"] > 0.5
    # a bank of mid-frequency gratings: a bump, i.e. a negative gap
    x = torch.arange(11.0)
    grating = torch.cos(2 * math.pi * 0.25 * x)[None, :].expand(11, 11)
    mid = A.frequency_bands(grating.expand(4, 3, 11, 11))
    assert mid["gap"] < 0 and mid["centroid"].mean() == pytest.approx(0.25, abs=0.06)


def test_shift_responses_match_a_direct_reference(trained, images):
    imgs = images[:6]
    got = A.shift_responses(trained, "conv1", imgs, shifts=4)
    prep, c = trained.preprocess, trained.features.conv1
    margin = prep.size - prep.crop
    start = (margin - 3) // 2
    t = torch.zeros(prep.size)
    i = torch.arange(prep.size, dtype=torch.float32)
    lo, hi = start + 4 + 3, start + prep.crop - 4
    for j in range(prep.size):
        if lo <= j < hi:
            t[j] = min(1.0, 0.5 - 0.5 * math.cos(math.pi * (j - lo) / 8), 0.5 - 0.5 * math.cos(math.pi * (hi - j) / 8))
    win = t[:, None] * t[None, :]
    blank = F.relu(F.conv2d(torch.zeros(1, 3, prep.crop, prep.crop), c.weight, c.bias, c.stride, c.padding))
    for d in range(4):
        top, left = start + 3, start + 3 - d
        x = ((imgs.float() - prep.mean) * prep.scale * win)[..., top:top + prep.crop, left:left + prep.crop]
        a = F.relu(F.conv2d(x, c.weight, c.bias, c.stride, c.padding)) - blank
        assert torch.allclose(got[d].float(), a.double().sum((2, 3)).float(), rtol=1e-4, atol=1e-3)


def test_a_nyquist_filter_aliases_more_than_a_smooth_one(images):
    torch.manual_seed(0)
    net = build("zfnet-mini", 12).eval()
    net.preprocess = zfbook.pretrained("zfnet-mini").preprocess
    c = net.features.conv1
    with torch.no_grad():
        c.bias.zero_()
        c.weight.copy_(_box(32, 7) / 49)
    smooth = A.shift_variation(net, "conv1", images[:24])
    with torch.no_grad():
        c.weight.copy_(_checker(32, 7) / 49)
    nyquist = A.shift_variation(net, "conv1", images[:24])
    assert nyquist > 3 * smooth
    with pytest.raises(ValueError, match="shifts"):
        A.shift_variation(net, "conv1", images[:2], shifts=40)


def test_grid_energy_sees_a_grid_and_not_a_smooth_image():
    torch.manual_seed(3)
    smooth = F.avg_pool2d(torch.randn(4, 3, 120, 120), 9, 1, 4)[..., :112, :112]
    assert 0.3 < A.grid_energy(smooth, 4) < 3
    grid = smooth.clone()
    grid[..., ::4, ::4] += 2.0
    assert A.grid_energy(grid, 4) > 20
    with pytest.raises(ValueError, match="stride"):
        A.grid_energy(smooth, 5)


def test_total_stride():
    zf, ax = build("zfnet-mini", 12), build("alexnet-mini", 12)
    assert (A.total_stride(zf, "conv1"), A.total_stride(ax, "conv1")) == (2, 4)
    assert A.total_stride(zf, "conv2") == A.total_stride(ax, "conv2") == 8
