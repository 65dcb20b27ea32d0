"""Occlusion sweeps (Fig. 7): exactness of incremental inference, errors, pixel-space maps."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from torch import nn

from zfbook.models import activations, build
from zfbook.occlusion import (IncrementalForward, OcclusionMaps, attribution, drop_map,
                              in_mask_share, in_mask_shares, mask_share_baseline, occlude,
                              occlusion_maps,
                              pixel_average, placements)


@pytest.fixture(scope="module")
def mini():
    torch.manual_seed(0)
    return build("zfnet-mini", num_classes=12).eval()


def _image(size=112, seed=0, channels=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(channels, size, size, generator=g) * 60


def brute_force(model, image, target, patch, stride, fill=0.0, layer="conv5", feature=0):
    """The definition: a plain forward pass of every occluded image."""
    h, w = image.shape[-2:]
    rows, cols = placements(h, patch, stride), placements(w, patch, stride)
    xs = []
    for y in rows:
        for x in cols:
            xo = image.clone()
            xo[:, y:y + patch, x:x + patch] = fill
            xs.append(xo)
    with torch.no_grad():
        out = activations(model, torch.stack(xs), [layer, "fc8"])
    probs = torch.softmax(out["fc8"], 1)
    shape = (len(rows), len(cols))
    return (probs[:, target].reshape(shape), probs.argmax(1).reshape(shape),
            out[layer][:, feature].sum((1, 2)).reshape(shape))


def assert_maps_equal(maps, p, top, act):
    assert maps.p_target.shape == p.shape
    torch.testing.assert_close(maps.p_target, p, rtol=1e-4, atol=1e-6)
    scale = act.abs().max().clamp_min(1e-6)
    torch.testing.assert_close(maps.activity / scale, act / scale, rtol=0, atol=1e-5)
    # the top class may only differ where two classes tie to float rounding
    assert (maps.top_class == top).float().mean() >= 0.99


# ---------------------------------------------------------------- placements
def test_placements_add_the_edge_position():
    assert placements(112, 16, 8) == list(range(0, 97, 8))
    assert placements(10, 4, 4) == [0, 4, 6]          # 6 = 10 − 4: the edge
    assert placements(5, 5, 3) == [0]


@given(size=st.integers(1, 60), patch=st.integers(1, 60), stride=st.integers(1, 70))
def test_placements_reach_both_edges(size, patch, stride):
    if patch > size:
        with pytest.raises(ValueError, match="larger than the image"):
            placements(size, patch, stride)
        return
    pos = placements(size, patch, stride)
    covered = np.zeros(size, bool)
    for p in pos:
        assert 0 <= p <= size - patch
        covered[p:p + patch] = True
    assert covered[0] and covered[-1] and pos == sorted(set(pos))
    if stride <= patch:
        assert covered.all()


def test_occlude_changes_only_the_square():
    x = _image(20)
    y = occlude(x, 3, 5, 4, fill=7.0)
    assert (y[:, 3:7, 5:9] == 7).all()
    keep = torch.ones(20, 20, dtype=torch.bool)
    keep[3:7, 5:9] = False
    assert torch.equal(y[:, keep], x[:, keep])
    with pytest.raises(ValueError, match="valid corners"):
        occlude(x, 17, 0, 4)


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize("patch,stride", [(20, 7), (16, 8), (9, 30)])
def test_incremental_equals_brute_force_on_zfnet_mini(mini, patch, stride):
    """Patch larger than the stride, not dividing the image, edge positions included."""
    x = _image()
    maps = occlusion_maps(mini, x, target=4, patch=patch, stride=stride, feature=5)
    p, top, act = brute_force(mini, x, 4, patch, stride, feature=5)
    assert_maps_equal(maps, p, top, act)
    assert maps.positions[-1, -1].tolist() == [112 - patch, 112 - patch]


def test_batched_method_equals_incremental(mini):
    x = _image(seed=3)
    a = occlusion_maps(mini, x, 2, 24, 11, fill=torch.tensor([10.0, -5.0, 3.0]))
    b = occlusion_maps(mini, x, 2, 24, 11, fill=torch.tensor([10.0, -5.0, 3.0]), method="batched")
    torch.testing.assert_close(a.p_target, b.p_target, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(a.activity, b.activity, rtol=1e-4, atol=1e-4)
    assert a.feature == b.feature


def test_unoccluded_values_and_default_feature(mini):
    x = _image(seed=1)
    maps = occlusion_maps(mini, x, target=7, patch=32, stride=40)
    c5 = activations(mini, x[None], ["conv5"])["conv5"][0]
    assert maps.feature == int(c5.flatten(1).amax(1).argmax())     # strongest map
    assert maps.activity0 == pytest.approx(float(c5[maps.feature].sum().detach()), rel=1e-5)
    with torch.no_grad():
        probs = torch.softmax(mini(x[None])[0], 0)
    assert maps.p_target0 == pytest.approx(float(probs[7]), rel=1e-5)
    assert maps.top_class0 == int(probs.argmax())


def test_image_fill_and_fc_layer(mini):
    """A (C, H, W) fill puts that image's pixels in the square; fc layers are probed too."""
    x, fill = _image(seed=4), _image(seed=5)
    maps = occlusion_maps(mini, x, 1, 30, 25, fill=fill, layer="fc7", feature=3)
    rows = placements(112, 30, 25)
    with torch.no_grad():
        for a, y in enumerate(rows):
            for b, z in enumerate(rows):
                xo = x.clone()
                xo[:, y:y + 30, z:z + 30] = fill[:, y:y + 30, z:z + 30]
                out = activations(mini, xo[None], ["fc7", "fc8"])
                assert maps.activity[a, b] == pytest.approx(float(out["fc7"][0, 3]),
                                                            rel=1e-4, abs=1e-5)
                assert maps.p_target[a, b] == pytest.approx(
                    float(torch.softmax(out["fc8"][0], 0)[1]), rel=1e-4, abs=1e-6)


def test_single_placement_matches_plain_forward(mini):
    """The widget's path: one square, any size."""
    x = _image(seed=6)
    engine = IncrementalForward(mini, x)
    for y, z, size in [(0, 0, 1), (50, 3, 13), (80, 80, 32), (0, 0, 112)]:
        logits, probe = engine.run([y], [z], size, fill=2.5)
        with torch.no_grad():
            ref = mini(occlude(x, y, z, size, fill=2.5)[None])[0]
            c5 = activations(mini, occlude(x, y, z, size, fill=2.5)[None], ["conv5"])["conv5"][0]
        torch.testing.assert_close(logits[0], ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(probe[0], c5.sum((1, 2)), rtol=1e-4, atol=1e-3)
    p = engine.probabilities(50, 3, 13, fill=2.5)
    assert p.sum() == pytest.approx(1.0) and p.shape == (12,)
    with pytest.raises(ValueError, match=r"valid corners are y in 0…96, x in 0…96"):
        engine.run([97], [0], 16)


def test_training_mode_is_restored(mini):
    mini.train()
    try:
        occlusion_maps(mini, _image(), 0, 56, 56)
        assert mini.training
    finally:
        mini.eval()


@st.composite
def chain_nets(draw):
    """A random chain of the supported modules and an image size it accepts."""
    size = draw(st.integers(8, 26))
    k1, d1 = draw(st.integers(1, 5)), draw(st.integers(1, 2))
    p1 = draw(st.integers(0, 2))
    pk = draw(st.integers(2, 3))
    pp = draw(st.integers(0, pk // 2))
    c1, c2 = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    k2 = draw(st.integers(1, 3))
    layers = [nn.Conv2d(3, c1, k1, stride=draw(st.integers(1, 3)), padding=p1, dilation=d1),
              nn.ReLU(inplace=True),
              nn.MaxPool2d(pk, draw(st.integers(1, 3)), padding=pp, ceil_mode=draw(st.booleans()))]
    if draw(st.booleans()):
        layers.append(nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=1.0))
    layers += [nn.Conv2d(c1, c2, k2, padding=draw(st.integers(0, k2 // 2))), nn.ReLU(inplace=True)]
    feats = nn.Sequential(*layers)
    try:
        with torch.no_grad():
            out = feats(torch.zeros(1, 3, size, size))
    except RuntimeError:       # output smaller than one pixel
        assume(False)
    net = nn.Sequential(feats, nn.Flatten(), nn.Dropout(0.5), nn.Linear(out[0].numel(), 6))
    return net.eval(), size


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net_size=chain_nets(), patch=st.integers(1, 12), stride=st.integers(1, 9),
       seed=st.integers(0, 1000))
def test_incremental_is_exact_on_random_chain_nets(net_size, patch, stride, seed):
    net, size = net_size
    assume(patch <= size)
    torch.manual_seed(seed)
    x = torch.randn(3, size, size)
    rows = placements(size, patch, stride)
    last = f"0.{len(net[0]) - 1}"           # the second conv's ReLU
    maps = occlusion_maps(net, x, target=seed % 6, patch=patch, stride=stride, fill=0.3,
                          layer=last, feature=0)
    xs = []
    for y in rows:
        for z in rows:
            xo = x.clone()
            xo[:, y:y + patch, z:z + patch] = 0.3
            xs.append(xo)
    with torch.no_grad():
        feats = net[0](torch.stack(xs))
        probs = torch.softmax(net(torch.stack(xs)), 1)
    shape = (len(rows), len(rows))
    torch.testing.assert_close(maps.p_target, probs[:, seed % 6].reshape(shape),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(maps.activity, feats[:, 0].sum((1, 2)).reshape(shape),
                               rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- errors
def test_clear_errors(mini):
    x = _image()
    with pytest.raises(ValueError, match=r"larger than the image.*1…112"):
        occlusion_maps(mini, x, 0, 113, 8)
    for stride in (0, -3):
        with pytest.raises(ValueError, match="stride must be a positive integer"):
            occlusion_maps(mini, x, 0, 16, stride)
    with pytest.raises(ValueError, match=r"target 12 is out of range; valid targets are 0…11"):
        occlusion_maps(mini, x, 12, 16, 8)
    with pytest.raises(ValueError, match="target -1 is out of range"):
        occlusion_maps(mini, x, -1, 16, 8)
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        occlusion_maps(mini, x, 0, 16, 8, layer="conv9")
    with pytest.raises(ValueError, match=r"feature 64 is out of range; conv5 has maps 0…63"):
        occlusion_maps(mini, x, 0, 16, 8, feature=64)
    with pytest.raises(ValueError, match="unknown method 'fast'; methods are: incremental, batched"):
        occlusion_maps(mini, x, 0, 16, 8, method="fast")
    with pytest.raises(ValueError, match="fill must be"):
        occlusion_maps(mini, x, 0, 16, 8, fill=torch.zeros(2))
    with pytest.raises(ValueError, match=r"one \(C, H, W\) tensor"):
        occlusion_maps(mini, x[None].expand(2, -1, -1, -1), 0, 16, 8)


def test_non_chain_model_is_refused():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return (self.a(x) + x).flatten(1)

    with pytest.raises(TypeError, match="chain model"):
        IncrementalForward(Skip(), torch.randn(3, 8, 8), probe=None)


# ---------------------------------------------------------------- pixel-space maps
def _maps(p, patch, stride, size, p0=1.0):
    rows = placements(size, patch, stride)
    grid = torch.tensor([[(r, c) for c in rows] for r in rows])
    p = torch.as_tensor(p, dtype=torch.float32).reshape(len(rows), len(rows))
    return OcclusionMaps(torch.zeros_like(p), p, torch.zeros_like(p, dtype=torch.long), grid,
                         patch, stride, 0, "conv5", 0, 0.0, p0, 0)


def test_pixel_average_by_hand():
    m = _maps([[1.0, 2.0], [3.0, 4.0]], patch=3, stride=2, size=5)   # corners 0, 2
    avg = pixel_average(m.p_target, m.positions, 3)
    assert avg[0, 0] == 1 and avg[0, 4] == 2 and avg[4, 0] == 3 and avg[4, 4] == 4
    assert avg[2, 2] == pytest.approx(2.5)          # covered by all four squares
    assert avg[0, 2] == pytest.approx(1.5)
    assert torch.isnan(pixel_average(m.p_target, m.positions, 3, shape=(6, 6))[5, 5])


def test_in_mask_share():
    size, patch, stride = 12, 4, 4
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[4:8, 4:8] = True
    # the probability drops only when the square sits on the object: share 1
    p = torch.ones(3, 3)
    p[1, 1] = 0.2
    assert in_mask_share(_maps(p, patch, stride, size), mask) == pytest.approx(1.0)
    # a uniform drop gives the baseline, the mask's area fraction
    m = _maps(torch.full((3, 3), 0.5), patch, stride, size)
    assert in_mask_share(m, mask) == pytest.approx(mask_share_baseline(m, mask))
    assert mask_share_baseline(m, mask) == pytest.approx(16 / 144)
    # rises are ignored; no drop at all is undefined
    q = torch.ones(3, 3) * 1.0
    q[0, 0] = 1.5
    assert math.isnan(in_mask_share(_maps(q, patch, stride, size), mask))
    assert drop_map(_maps(q, patch, stride, size)).max() == 0
    with pytest.raises(ValueError, match="mask must have the image's shape"):
        in_mask_share(m, mask[:-1])


def test_attribution_matches_captum(mini):
    captum = pytest.importorskip("captum.attr")
    x = _image(seed=2)
    maps = occlusion_maps(mini, x, 3, 16, 16)
    occ = captum.Occlusion(lambda inp: torch.softmax(mini(inp), 1))
    with torch.no_grad():
        ref = occ.attribute(x[None], sliding_window_shapes=(3, 16, 16), strides=(3, 16, 16),
                            baselines=0.0, target=3, perturbations_per_eval=64)[0]
    ours = attribution(maps).float()
    torch.testing.assert_close(ours, ref[0], rtol=1e-3,
                               atol=1e-6 + 1e-4 * float(ref.abs().max()))


def test_in_mask_shares_on_a_model_that_only_sees_the_object():
    """A net whose evidence is the sum of the pixels in region R: covering anything else
    changes nothing, so all the drop falls on squares that touch R."""
    size, patch, stride = 24, 4, 2
    region = torch.zeros(size, size, dtype=torch.bool)
    region[8:14, 10:16] = True
    conv = nn.Conv2d(3, 1, size)                      # one output: a weighted image sum
    with torch.no_grad():
        conv.weight.copy_(region.float().expand(1, 3, -1, -1) / 50.0)
        conv.bias.zero_()
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0], [0.0]]))
        head.bias.zero_()
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), head).eval()
    x = torch.full((3, size, size), 2.0)
    touching = torch.nn.functional.max_pool2d(region.float()[None], 2 * patch - 1, 1,
                                              patch - 1)[0].bool()   # R grown by patch − 1
    shares, baselines = in_mask_shares(net, torch.stack([x, x]), [0, 0],
                                       torch.stack([touching, region]), patch, stride)
    assert shares[0] == pytest.approx(1.0)
    assert baselines[1] == pytest.approx(36 / size ** 2)
    assert baselines[1] < shares[1] < 1.0
    with pytest.raises(ValueError, match="2 images, 1 labels and 2 masks"):
        in_mask_shares(net, torch.stack([x, x]), [0], torch.stack([region, region]), patch, stride)


def test_in_mask_shares_of_several_kinds_are_each_kinds_own(mini, spy):
    """A tuple of kinds sweeps each image once and gives every kind what it gives alone."""
    import zfbook.occlusion.statistics as statistics
    g = torch.Generator().manual_seed(5)
    x = torch.stack([_image(seed=s) for s in (3, 4, 5)])
    masks = torch.rand(3, 112, 112, generator=g) < 0.3
    labels = [1, 7, 10]
    calls = spy(statistics, "occlusion_maps")
    kinds = ("probability", "log_probability", "log_odds")
    many, base = in_mask_shares(mini, x, labels, masks, 40, 24, kind=kinds)
    assert len(calls) == 3 and list(many) == list(kinds)
    for k in kinds:
        alone, base_alone = in_mask_shares(mini, x, labels, masks, 40, 24, kind=k)
        assert isinstance(alone, torch.Tensor)
        torch.testing.assert_close(many[k], alone, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(base, base_alone, rtol=0, atol=0)
    assert not many["probability"].isnan().any()
    assert (many["probability"] != many["log_odds"]).all()       # the kinds do differ
    pair, _ = in_mask_shares(mini, x[:1], labels[:1], masks[:1], 40, 24,
                             kind=("log_odds", "probability"))
    assert list(pair) == ["log_odds", "probability"]
    for bad in ("logit", ("probability", "logit"), ()):
        with pytest.raises(ValueError, match="kinds are: probability, log_probability, "
                                             "log_odds"):
            in_mask_shares(mini, x, labels, masks, 40, 24, kind=bad)


def test_layer_none_skips_the_activity_map(mini):
    x = _image(seed=8)
    a = occlusion_maps(mini, x, 2, 40, 36, layer=None)
    b = occlusion_maps(mini, x, 2, 40, 36, layer=None, method="batched")
    assert a.activity is None and b.activity is None and a.feature is None
    torch.testing.assert_close(a.p_target, b.p_target, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------- log-probabilities
def test_log_probability_is_log_softmax_and_keeps_saturated_values_apart():
    from zfbook.occlusion.sweep import log_probability
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 12, generator=g) * 4
    for t in (0, 5, 11):
        torch.testing.assert_close(log_probability(z, t), torch.log_softmax(z.double(), 1)[:, t],
                                   rtol=1e-12, atol=1e-12)
    sure = torch.tensor([[40.0, 0.0, 1.0], [40.0, 0.0, 5.0], [0.0, 800.0, 0.0]])
    assert torch.equal(torch.softmax(sure, 1)[:2, 0], torch.ones(2))          # rounds to 1
    assert torch.log_softmax(sure.double(), 1)[0, 0] == 0.0                   # even in float64
    lp = log_probability(sure, 0)                  # the float64 reference: −log1p(Σ e^(z_j − z_t))
    want = -torch.log1p(torch.exp(sure[:2, 1:].double() - 40.0).sum(1))
    torch.testing.assert_close(lp[:2], want, rtol=1e-12, atol=0)
    assert lp[0] == pytest.approx(-(math.exp(-40) + math.exp(-39)), rel=1e-12)
    assert lp[1] < lp[0] < 0 and lp[2] == -800.0 and torch.isfinite(lp).all()


def test_maps_carry_log_probabilities(mini):
    x = _image(seed=2)
    for method in ("incremental", "batched"):
        maps = occlusion_maps(mini, x, 4, 30, 20, method=method)
        assert maps.log_p_target.dtype == torch.float64
        torch.testing.assert_close(maps.log_p_target.exp(), maps.p_target.double(),
                                   rtol=1e-4, atol=1e-7)
        assert maps.log_p_target0 == pytest.approx(math.log(maps.p_target0), rel=1e-5)
        p, p0 = maps.target_map()
        assert p is maps.p_target and p0 == maps.p_target0
        lo, lo0 = maps.target_map("log_odds")
        pd = maps.p_target.double()
        torch.testing.assert_close(lo, torch.log(pd / (1 - pd)), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="unknown kind 'logit'; kinds are: probability, "
                                         "log_probability, log_odds"):
        maps.target_map("logit")


def test_log_maps_are_not_flat_where_p_saturates(mini):
    """A classifier sure of its class: P(target) is 1.0 under every square, its log and
    its log-odds still move, and they are the log-softmax of the occluded images' logits."""
    sure = build("zfnet-mini", num_classes=12).eval()
    sure.load_state_dict(mini.state_dict())
    with torch.no_grad():
        sure.classifier.fc8.bias[3] += 60.0
    x = _image(seed=8)
    maps = occlusion_maps(sure, x, 3, 40, 24)
    assert torch.all(maps.p_target == 1.0) and maps.p_target0 == 1.0
    assert torch.isfinite(maps.log_p_target).all() and (maps.log_p_target < 0).all()
    assert maps.log_p_target.std() > 0 and maps.target_map("log_odds")[0].std() > 0.1
    rows = placements(112, 40, 24)
    with torch.no_grad():
        logits = sure(torch.stack([occlude(x, y, c, 40) for y in rows for c in rows])).double()
    want = -torch.log1p(torch.exp(torch.cat([logits[:, :3], logits[:, 4:]], 1)
                                  - logits[:, 3:4]).sum(1))
    torch.testing.assert_close(maps.log_p_target.reshape(-1), want, rtol=1e-4, atol=0)
    # the drop in log-odds finds the squares that matter; in probability there is none
    assert torch.nansum(drop_map(maps)) == 0
    assert torch.nansum(drop_map(maps, "log_odds")) > 0
    assert math.isnan(in_mask_share(maps, torch.ones(112, 112, dtype=torch.bool)))
    assert in_mask_share(maps, torch.ones(112, 112, dtype=torch.bool), "log_odds") == 1.0


def test_hand_made_maps_have_no_log_probabilities():
    m = _maps([[1.0, 0.5], [0.2, 1.0]], patch=3, stride=2, size=5)
    assert m.log_p_target is None and math.isnan(m.log_p_target0)
    torch.testing.assert_close(drop_map(m, "probability"), drop_map(m))
    with pytest.raises(ValueError, match="no log-probabilities"):
        drop_map(m, "log_probability")
