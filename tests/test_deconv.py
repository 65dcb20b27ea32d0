"""The deconvnet (zfbook.deconv) against independent implementations and hand-worked cases.

References: (1) autograd with a custom ReLU whose backward is ReLU of the gradient, written
here independently of the library, with the backward pass seeded by the activation's value
(as the deconvnet is); (2) Captum's ``NeuronDeconvolution``, which seeds with 1, multiplied
by the value: the same thing for the non-negative activations of rectified layers. Contrast normalisation, which the deconvnet passes
through unchanged, is made to pass its gradient unchanged in the references.
"""
import copy
import functools
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from zfbook import deconv
from zfbook.models import build

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


# ------------------------------------------------------------------ independent references
class _DeconvReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.relu(x)

    @staticmethod
    def backward(ctx, g):
        return torch.relu(g)


class _RefReLU(nn.Module):
    def forward(self, x):
        return _DeconvReLUFn.apply(x)


class _StraightThrough(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return x + (self.m(x) - x).detach()


def _swap(model, relu=True):
    m = copy.deepcopy(model).eval()
    for name, mod in list(m.named_modules()):
        new = None
        if relu and isinstance(mod, nn.ReLU):
            new = _RefReLU()
        elif isinstance(mod, nn.LocalResponseNorm):
            new = _StraightThrough(mod)
        if new is not None:
            parent, _, child = name.rpartition(".")
            setattr(m.get_submodule(parent), child, new)
    return m


def _unit(out, c, loc):
    o = out[0, c]
    if o.dim() == 0:
        return o
    if loc is None:
        return o.flatten()[o.flatten().argmax()]
    return o[loc[0], loc[1]]


def reference(model, images, module_name, features, locations=None, one=False):
    """Modified-backward gradient × activation, one image at a time, by plain autograd
    (``one``: the backward pass seeded with 1, the bare modified-backward gradient)."""
    m = _swap(model)
    outs = []
    h = m.get_submodule(module_name).register_forward_hook(lambda _m, _i, o: outs.append(o))
    res = []
    try:
        for i in range(images.shape[0]):
            outs.clear()
            x = images[i:i + 1].clone().requires_grad_(True)
            m(x)
            a = _unit(outs[0], features[i], None if locations is None else locations[i])
            seed = torch.ones_like(a) if one else a.detach()
            (g,) = torch.autograd.grad(a, x, grad_outputs=seed)
            res.append(g)
    finally:
        h.remove()
    return torch.cat(res)


def captum_reference(model, images, module_name, features, locations):
    """Captum's NeuronDeconvolution (ReLU modules hooked), × the activation."""
    from captum.attr import NeuronDeconvolution
    m = _swap(model, relu=False)
    layer = m.get_submodule(module_name)
    nd = NeuronDeconvolution(m, layer)
    res = []
    for i in range(images.shape[0]):
        sel = (features[i],) if locations is None else (features[i], *locations[i])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = nd.attribute(images[i:i + 1].clone(), neuron_selector=tuple(int(s) for s in sel))
        outs = []
        h = layer.register_forward_hook(lambda _m, _i, o: outs.append(o.detach().clone()))
        with torch.no_grad():
            m(images[i:i + 1].clone())
        h.remove()
        res.append(g * outs[0][(0, *sel)])
    return torch.cat(res)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


# ------------------------------------------------------------------ small test networks
def _init(net, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p[0].numel()) ** 0.5))
    return net.eval()


def net_pools(seed=0):
    """Stride-2 convs, overlapping 3×3/2 pools (padded, and ceil mode), fc layers."""
    return _init(nn.Sequential(
        nn.Conv2d(3, 6, 5, stride=2, padding=1),   # 0
        nn.ReLU(inplace=True),                    # 1
        nn.MaxPool2d(3, 2, padding=1),            # 2
        nn.Conv2d(6, 8, 3, stride=2),             # 3
        nn.ReLU(),                                # 4
        nn.MaxPool2d(3, 2, ceil_mode=True),       # 5
        nn.Conv2d(8, 8, 3, padding=1),            # 6
        nn.ReLU(),                                # 7
        nn.Flatten(),                             # 8
        nn.Dropout(0.5),                          # 9
        nn.Linear(8 * 2 * 2, 10),                 # 10
        nn.ReLU(),                                # 11
        nn.Linear(10, 4),                         # 12
    ), seed)


def net_groups(seed=1):
    """Dilated and grouped convs, a dilated pool, an asymmetric kernel."""
    return _init(nn.Sequential(
        nn.Conv2d(3, 6, 3, dilation=2, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, dilation=2),
        nn.Conv2d(6, 6, (3, 2), stride=(2, 1), groups=3),
        nn.ReLU(),
        nn.Conv2d(6, 5, 1),
        nn.ReLU(),
    ), seed)


ODD = torch.Generator().manual_seed(7)
X_ODD = torch.randn(3, 3, 37, 41, generator=ODD)  # -> 18x20, 9x10, 4x4, 2x2, 2x2


@pytest.fixture(scope="module")
def mini_x():
    # pixels in the mini presets' units: ±128 × preset.input_scale (1/64), as the model sees them
    return torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 60 / 64


# ------------------------------------------------------------------ equality with references
@pytest.mark.parametrize("layer", ["1", "2", "4", "5", "7", "11", "12"])
def test_matches_modified_backward_small_net(layer):
    net = net_pools()
    feats = [1, 3, 0]
    p = deconv.project(net, X_ODD, layer, feats)
    r = reference(net, X_ODD, layer, feats)
    assert p.shape == X_ODD.shape
    assert r.abs().max() > 0
    assert rel(p, r) < 1e-5


@pytest.mark.parametrize("layer", ["1", "2", "4", "6"])
def test_matches_modified_backward_dilated_grouped(layer):
    net = net_groups()
    x = torch.randn(2, 3, 29, 23, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        act = net[:int(layer) + 1](x.clone())
    feats = act.flatten(2).amax(2).argmax(1).tolist()  # each image's most active map
    p = deconv.project(net, x, layer, feats)
    r = reference(net, x, layer, feats)
    assert r.abs().max() > 0
    assert rel(p, r) < 1e-5


@pytest.mark.parametrize("layer,module", [("conv1", "features.relu1"), ("conv2", "features.relu2"),
                                          ("conv3", "features.relu3"), ("conv5", "features.relu5"),
                                          ("fc6", "classifier.relu6"), ("fc8", "classifier.fc8")])
def test_matches_modified_backward_zfnet_mini(mini, mini_x, layer, module):
    from zfbook.models import activations
    with torch.no_grad():
        act = activations(mini, mini_x, [layer])[layer]
    feats = act.reshape(*act.shape[:2], -1).amax(2).argmax(1).tolist()  # each image's most active map
    p = deconv.project(mini, mini_x, layer, feats)
    r = reference(mini, mini_x, module, feats)
    assert r.abs().max() > 0
    assert rel(p, r) < 1e-5


def test_matches_captum_at_given_locations(mini, mini_x):
    locs = [(1, 4), (5, 0)]
    p = deconv.project(mini, mini_x, "conv5", [7, 11], locs)
    c = captum_reference(mini, mini_x, "features.relu5", [7, 11], locs)
    assert c.abs().max() > 0
    assert rel(p, c) < 1e-4


def test_matches_captum_small_net():
    net = net_pools()
    locs = [(0, 1), (2, 3), (1, 1)]
    p = deconv.project(net, X_ODD, "4", [0, 5, 7], locs)
    c = captum_reference(net, X_ODD, "4", [0, 5, 7], locs)
    assert c.abs().max() > 0
    assert rel(p, c) < 1e-4


def test_negative_seed_keeps_its_sign():
    """A conv output (before its ReLU) can be negative: the deconvnet is seeded with it as is,
    which the modified backward pass seeded with the value reproduces, but value × Captum's
    gradient (seeded with 1) does not: the rectifications keep the other half."""
    net = net_pools()
    with torch.no_grad():
        act = net[:4](X_ODD.clone())
    f, y, x = [int(i) for i in torch.nonzero(act[0] < -0.1)[0]]
    p = deconv.project(net, X_ODD[:1], "3", f, (y, x))
    assert rel(p, reference(net, X_ODD[:1], "3", [f], [(y, x)])) < 1e-5
    assert rel(p, captum_reference(net, X_ODD[:1], "3", [f], [(y, x)])) > 1e-2


@pytest.mark.parametrize("layer", ["conv2", "conv5", "fc6", "fc8"])
def test_seeded_with_one_is_divided_by_a_positive_activation(mini, mini_x, layer):
    from zfbook.models import activations
    with torch.no_grad():
        act = activations(mini, mini_x, [layer])[layer]
    strongest = act.reshape(*act.shape[:2], -1).amax(2)
    feats, values = strongest.argmax(1).tolist(), strongest.amax(1)
    assert (values > 0).all()
    one = deconv.project(mini, mini_x, layer, feats, seed_with="one")
    paper = deconv.project(mini, mini_x, layer, feats)
    assert paper.abs().max() > 0
    assert rel(one, paper / values[:, None, None, None]) < 1e-5


def test_seeded_with_one_of_a_negative_logit_is_not_a_rescaling(mini, mini_x):
    """A negative seed flips what the rectifications keep: seeded with 1, the picture is
    the modified backward pass seeded with 1, not the activation's picture divided by it."""
    with torch.no_grad():
        logits = mini(mini_x)
    classes = logits.argmin(1).tolist()
    values = logits[range(len(classes)), classes]
    assert (values < 0).all()
    one = deconv.project(mini, mini_x, "fc8", classes, seed_with="one")
    ref = reference(mini, mini_x, "classifier.fc8", classes, one=True)
    assert ref.abs().max() > 0
    assert rel(one, ref) < 1e-5
    paper = deconv.project(mini, mini_x, "fc8", classes)
    assert rel(one, paper / values[:, None, None, None]) > 1e-2
    with pytest.raises(ValueError, match="seed_with 'value'; choices are: activation, one"):
        deconv.project(mini, mini_x, "fc8", classes, seed_with="value")


def test_library_gradient_agrees(mini, mini_x):
    p = deconv.project(mini, mini_x, "conv4", [3, 9])
    g = deconv.gradient(mini, mini_x, "conv4", [3, 9])
    assert rel(p, g) < 1e-5
    # differentiating contrast normalisation instead of passing it gives something else
    b = deconv.gradient(mini, mini_x, "conv4", [3, 9], norm="backprop")
    assert rel(b, g) > 1e-2


def test_contrast_norm_is_passed_unchanged():
    """Removing an LRN from the down pass only (not the forward) changes nothing."""
    net = _init(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.LocalResponseNorm(3, alpha=1.0, k=1.0),
                              nn.Conv2d(4, 3, 3), nn.ReLU()), 5)
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        a = net[2](net[1](net[0](x)))
    manual = deconv.project(nn.Sequential(net[3], net[4]), a, "1", [1, 2])  # down to the LRN output
    with torch.no_grad():
        manual = torch.nn.grad.conv2d_input(x.shape, net[0].weight, manual.relu())
    assert rel(deconv.project(net, x, "4", [1, 2]), manual) < 1e-5


# ------------------------------------------------------------------ hand-checkable cases
def _tiny(weight):
    """relu -> 3x3/2 pool (pad 1, overlapping) -> 2x2 conv without bias, on a 1-channel 4x4."""
    net = nn.Sequential(nn.ReLU(), nn.MaxPool2d(3, 2, padding=1), nn.Conv2d(1, 1, 2, bias=False))
    with torch.no_grad():
        net[2].weight.copy_(torch.tensor(weight, dtype=torch.float32).view(1, 1, 2, 2))
    return net.eval()


def test_hand_all_switches_collide():
    # the centre-ish pixel (1, 1) is the max of all four overlapping windows
    x = torch.ones(1, 1, 4, 4)
    x[0, 0, 1, 1] = 9.0
    net = _tiny([[1.0, -2.0], [3.0, 4.0]])
    sw = deconv.switches(net, x, "2")["1"]
    assert sw.flatten().tolist() == [5, 5, 5, 5]           # flat index of (1, 1)
    # seed = 9 * (1 - 2 + 3 + 4) = 54; filter^T gives 54 * w at the 4 pooled positions;
    # unpooling sums them all at (1, 1): 54 * 6 = 324; ReLU keeps it.
    p = deconv.project(net, x, "2", 0)
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 1, 1] = 324.0
    assert torch.equal(p, expected)


def test_hand_collision_summed_before_rectifying():
    # switches: window (0,0) and (1,0) -> (1,0) [collision]; (0,1) -> (0,3); (1,1) -> (3,2)
    x = torch.ones(1, 1, 4, 4)
    x[0, 0, 1, 0], x[0, 0, 0, 3], x[0, 0, 3, 2] = 9.0, 8.0, 7.0
    net = _tiny([[-1.0, 2.0], [3.0, 4.0]])
    assert deconv.switches(net, x, "2")["1"].flatten().tolist() == [4, 3, 4, 14]
    # seed: -9 + 2*8 + 3*9 + 4*7 = 62; filter^T: [[-62, 124], [186, 248]]
    # unpool: (1,0) = -62 + 186 = 124 (summed), (0,3) = 124, (3,2) = 248
    p = deconv.project(net, x, "2", 0)
    expected = torch.zeros(4, 4)
    expected[1, 0], expected[0, 3], expected[3, 2] = 124.0, 124.0, 248.0
    assert torch.equal(p[0, 0], expected)
    # the same numbers from the modified backward pass
    assert torch.allclose(reference(net, x, "2", [0]), p)


def test_unpool_sums_where_max_unpool_overwrites():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    sw = torch.full((1, 1, 2, 2), 3)  # all four chose input position 3
    out = deconv.unpool(x, sw, (2, 2))
    assert out.flatten().tolist() == [0.0, 0.0, 0.0, 10.0]
    assert F.max_unpool2d(x, sw, 1).flatten()[3].item() in (1.0, 2.0, 3.0, 4.0)


def test_hand_stride_two_exact_size():
    """A 3x3 stride-2 conv on a 6x6 input: the transposed filter must give 6x6, not 5x5."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.arange(9.0).view(1, 1, 3, 3))
    x = torch.zeros(1, 1, 6, 6)
    x[0, 0, 2:5, 2:5] = 1.0  # unit (1, 1) sees rows/cols 2..4: value = sum(0..8) = 36
    p = deconv.project(net, x, "0", 0, (1, 1))
    expected = torch.zeros(6, 6)
    expected[2:5, 2:5] = 36.0 * torch.arange(9.0).view(3, 3)
    assert p.shape == (1, 1, 6, 6)
    assert torch.equal(p[0, 0], expected)


# ------------------------------------------------------------------ forms, batching, cropping
def test_feature_forms_agree(mini, mini_x):
    single = [deconv.project(mini, mini_x[i:i + 1], "conv3", f) for i, f in enumerate([4, 9])]
    as_list = deconv.project(mini, mini_x, "conv3", [4, 9])
    torch.testing.assert_close(as_list, torch.cat(single))
    as_int = deconv.project(mini, mini_x, "conv3", 4)
    torch.testing.assert_close(as_int[0], single[0][0])
    nested = deconv.project(mini, mini_x, "conv3", [[4, 1, 4], [9, 0, 2]])
    assert nested.shape == (2, 3, 3, 112, 112)
    torch.testing.assert_close(nested[:, 0], as_list)
    torch.testing.assert_close(nested[1, 0], single[1][0])
    torch.testing.assert_close(nested[0, 2], nested[0, 0])


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_nested_form_equals_single_projections(data):
    net = net_pools()
    n = data.draw(st.integers(1, 3))
    k = data.draw(st.integers(1, 4))
    layer, maps, (h, w) = data.draw(st.sampled_from([("1", 6, (18, 20)), ("4", 8, (4, 4)),
                                                     ("7", 8, (2, 2)), ("2", 6, (9, 10))]))
    feats = data.draw(st.lists(st.lists(st.integers(0, maps - 1), min_size=k, max_size=k),
                               min_size=n, max_size=n))
    given_loc = data.draw(st.booleans())
    locs = None
    if given_loc:
        locs = data.draw(st.lists(st.lists(st.tuples(st.integers(0, h - 1), st.integers(0, w - 1)),
                                           min_size=k, max_size=k), min_size=n, max_size=n))
    crop = data.draw(st.booleans())
    bs = data.draw(st.integers(1, 5))
    out = deconv.project(net, X_ODD[:n], layer, feats, locs, crop=crop, batch_size=bs)
    assert out.shape == (n, k, 3, 37, 41)
    for i in range(n):
        for j in range(k):
            one = deconv.project(net, X_ODD[i:i + 1], layer, feats[i][j],
                                 None if locs is None else locs[i][j], crop=False)
            torch.testing.assert_close(out[i, j], one[0], rtol=1e-5, atol=1e-6)


@functools.lru_cache(maxsize=1)
def _mini_model():
    torch.manual_seed(0)
    return build("zfnet-mini", num_classes=12).eval()


@settings(max_examples=20, deadline=None)
@given(y=st.integers(0, 53), x=st.integers(0, 53), f=st.integers(0, 63),
       layer=st.sampled_from(["conv1", "conv2", "conv3", "conv4"]))
def test_cropped_down_pass_equals_dense(y, x, f, layer):
    model = _mini_model()
    img = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(f)) * 60
    n = {"conv1": 32}.get(layer, 64)
    sizes = {"conv1": 54, "conv2": 12, "conv3": 6, "conv4": 6}
    loc = (y % sizes[layer], x % sizes[layer])
    a = deconv.project(model, img, layer, f % n, loc, crop=True)
    b = deconv.project(model, img, layer, f % n, loc, crop=False)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()) + 1e-12)


def test_index_form_and_shared_forward(mini, mini_x):
    idx = [1, 0, 1, 1]
    feats = [3, 3, 8, 3]
    out = deconv.project(mini, mini_x, "conv2", feats, index=idx, batch_size=3)
    assert out.shape == (4, 3, 112, 112)
    for s in range(4):
        one = deconv.project(mini, mini_x[idx[s]:idx[s] + 1], "conv2", feats[s])
        torch.testing.assert_close(out[s], one[0])
    torch.testing.assert_close(out[0], out[3])


def test_images_not_modified_by_inplace_relu():
    net = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(3, 2, 3), nn.ReLU(inplace=True)).eval()
    x = torch.randn(2, 3, 8, 8)
    before = x.clone()
    deconv.project(net, x, "2", 1)
    assert torch.equal(x, before)


def test_default_location_is_the_max(mini, mini_x):
    with torch.no_grad():
        act = mini.features[:14](mini_x.clone())  # relu5 output
    m = act[0, 6]
    y, x = divmod(int(m.argmax()), m.shape[1])
    torch.testing.assert_close(deconv.project(mini, mini_x[:1], "conv5", 6),
                               deconv.project(mini, mini_x[:1], "conv5", 6, (y, x)))


def test_steps(mini, mini_x):
    s = deconv.steps(mini, mini_x[0], "conv2", 5)
    assert [(t.name, t.op) for t in s] == [
        ("relu2", "seed"), ("relu2", "rectify"), ("conv2", "filter"), ("norm1", "pass"),
        ("pool1", "unpool"), ("relu1", "rectify"), ("conv1", "filter")]
    assert (s[0].output != 0).sum() == 1
    assert s[3].output.shape == (32, 27, 27) and s[4].output.shape == (32, 54, 54)
    assert bool((s[5].output >= 0).all()) and bool((s[4].output < 0).any())
    torch.testing.assert_close(s[-1].output, deconv.project(mini, mini_x[:1], "conv2", 5)[0])


def test_switches_are_max_pool_indices(mini, mini_x):
    sw = deconv.switches(mini, mini_x, "conv5")
    assert list(sw) == ["pool1", "pool2"]
    with torch.no_grad():
        a = mini.features[:2](mini_x.clone())
    _, ind = F.max_pool2d(a, 3, 2, 1, return_indices=True)
    assert torch.equal(sw["pool1"], ind)


# ------------------------------------------------------------------ torchvision models
def test_torchvision_alexnet():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = tv.models.alexnet(weights=None).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for layer, f in [("features.11", 17), ("features.12", 3), ("classifier.5", 100)]:
        p = deconv.project(net, x, layer, f)
        r = reference(net, x, layer, [f])
        assert r.abs().max() > 0
        assert rel(p, r) < 1e-4, layer


def test_torchvision_vgg11_conv_and_refused_avgpool():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = tv.models.vgg11(weights=None).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    p = deconv.project(net, x, "features.12", [3, 40])  # relu after conv5_1 (4x4 maps)
    r = reference(net, x, "features.12", [3, 40])
    assert rel(p, r) < 1e-4
    # at 64x64 the features are 2x2, so avgpool (to 7x7) is not an identity: fc refused
    with pytest.raises(ValueError, match="avgpool"):
        deconv.project(net, x, "classifier.0", 0)


# ------------------------------------------------------------------ errors
def test_unknown_layer_lists_valid_names(mini, mini_x):
    with pytest.raises(ValueError, match="conv9.*conv1.*conv5.*fc8"):
        deconv.project(mini, mini_x, "conv9", 0)
    net = net_pools()
    with pytest.raises(ValueError, match="'13'.*0, 1, 2"):
        deconv.project(net, X_ODD, "13", 0)


def test_batchnorm_refused_naming_module():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with pytest.raises(deconv.RefusedError, match=r"'1' \(BatchNorm2d\)"):
        deconv.project(net, torch.randn(1, 3, 8, 8), "2", 0)


def test_resnet_refused_naming_module():
    tv = pytest.importorskip("torchvision")
    net = tv.models.resnet18(weights=None).eval()
    with pytest.raises(deconv.RefusedError, match=r"'layer1.0.bn1' \(BatchNorm2d\)"):
        deconv.project(net, torch.randn(1, 3, 32, 32), "layer1.0.conv2", 0)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x)) + x)


class _FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3)
        self.conv2 = nn.Conv2d(3, 3, 3)

    def forward(self, x):
        return self.conv2(F.relu(self.conv1(x)))


class _Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3)
        self.act = nn.Sigmoid()
        self.conv2 = nn.Conv2d(3, 3, 3)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


@pytest.mark.parametrize("net,pattern", [
    (_Residual(), "residual addition"),
    (_FunctionalReLU(), "functional ReLU"),
    (_Sigmoid(), r"'act' \(Sigmoid\)"),
])
def test_non_chain_models_refused(net, pattern):
    with pytest.raises(deconv.RefusedError, match=pattern):
        deconv.project(net.eval(), torch.randn(1, 3, 8, 8), "conv2", 0)
    # the path below a refused operation is still fine
    assert deconv.project(net.eval(), torch.randn(1, 3, 8, 8), "conv1", 0).shape == (1, 3, 8, 8)


def test_bad_seeds(mini, mini_x):
    with pytest.raises(ValueError, match="64 feature maps"):
        deconv.project(mini, mini_x, "conv5", 64)
    with pytest.raises(ValueError, match="outside.*6×6"):
        deconv.project(mini, mini_x, "conv5", 0, (6, 0))
    with pytest.raises(ValueError, match="fully connected"):
        deconv.project(mini, mini_x, "fc6", 0, (0, 0))
    with pytest.raises(ValueError, match="3 entries but there are 2 images"):
        deconv.project(mini, mini_x, "conv5", [0, 1, 2])


# ------------------------------------------------------------------ receptive fields
def _linearised(model):
    """ReLU -> identity, max pool -> average pool of the same geometry: a linear network."""
    m = copy.deepcopy(model).eval()
    for name, mod in list(m.named_modules()):
        new = None
        if isinstance(mod, nn.ReLU) or isinstance(mod, nn.LocalResponseNorm):
            new = nn.Identity()
        elif isinstance(mod, nn.MaxPool2d):
            new = nn.AvgPool2d(mod.kernel_size, mod.stride, mod.padding, ceil_mode=mod.ceil_mode)
        if new is not None:
            parent, _, child = name.rpartition(".")
            setattr(m.get_submodule(parent), child, new)
    return m


def _support_box(model, module_name, size, c, y, x):
    m = _linearised(model)
    outs = []
    m.get_submodule(module_name).register_forward_hook(lambda _m, _i, o: outs.append(o))
    img = torch.randn(1, 3, size, size, requires_grad=True)
    try:
        m(img)
    except RuntimeError:
        pass  # the fc layers do not fit this input size; the hook has run
    (g,) = torch.autograd.grad(outs[0][0, c, y, x], img)
    nz = g[0].abs().sum(0).nonzero()
    return tuple(nz.min(0).values.tolist()) + tuple((nz.max(0).values + 1).tolist())


@pytest.mark.parametrize("layer,module,loc", [("conv1", "features.relu1", (10, 3)),
                                              ("conv2", "features.relu2", (9, 11)),
                                              ("conv5", "features.relu5", (7, 6))])
def test_receptive_field_is_gradient_support(mini, layer, module, loc):
    box = deconv.receptive_field(mini, layer, loc)
    assert box[0] >= 0 and box[1] >= 0  # the whole field inside a 240×240 input
    assert _support_box(mini, module, 240, 3, *loc) == box


def test_receptive_field_geometry(mini):
    assert deconv.receptive_field(mini, "conv1", (0, 0)) == (-1, -1, 6, 6)
    top, left, bottom, right = deconv.receptive_field(mini, "conv5", (2, 3))
    assert bottom - top == right - left == 139  # the 139-pixel field of zfnet-mini's conv5
    boxes = deconv.receptive_field(mini, "conv2", [[0, 0], [2, 3]])
    assert boxes.shape == (2, 4)
    assert tuple(boxes[1].tolist()) == deconv.receptive_field(mini, "conv2", (2, 3))
    with pytest.raises(ValueError, match="fully connected"):
        deconv.receptive_field(mini, "fc7", (0, 0))


def test_crop_pads_at_borders():
    img = torch.arange(2 * 5 * 5, dtype=torch.float32).view(2, 5, 5)
    patch = deconv.crop(img, (-1, 3, 2, 6), fill=-7)
    assert patch.shape == (2, 3, 3)
    assert (patch[:, 0] == -7).all() and (patch[:, :, 2] == -7).all()
    assert torch.equal(patch[:, 1:, :2], img[:, 0:2, 3:5])
    batch = deconv.crop(torch.stack([img, img + 100]), [(0, 0, 2, 2), (3, 3, 5, 5)])
    assert torch.equal(batch[1], img[:, 3:5, 3:5] + 100)


# ------------------------------------------------------------------ figures (zfbook.plot, deconv section)
def test_projection_rgb_centred_at_grey():
    from zfbook import plot
    p = torch.zeros(3, 4, 5)
    p[0, 1, 2], p[1, 3, 3] = 2.0, -1.0
    rgb = plot.projection_rgb(p)
    assert rgb.shape == (4, 5, 3)
    assert rgb[1, 2, 0] == 1.0 and rgb[3, 3, 1] == 0.25 and rgb[0, 0, 0] == 0.5
    assert (plot.projection_rgb(torch.zeros(1, 2, 2)) == 0.5).all()


def test_figures(mini, mini_x):
    from zfbook import plot, topk
    top = topk.top_activations(mini, mini_x, "conv2", k=2, progress=False)
    fig = plot.fig2(mini, mini_x, top, maps=[1, 4, 7], ncols=2)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 6  # a projection mosaic and a patch mosaic per map
    rf = deconv.receptive_field(mini, "conv2", (0, 0))
    side = rf[2] - rf[0]
    assert shown[0].images[0].get_array().shape[:2] == (side, 2 * side + 1)  # 2 tiles, 1 px gap
    filt = plot.layer1_filters(mini, zoom=2)
    arr = filt.axes[0].images[0].get_array()
    assert arr.shape == (6 * 14 + 5 * 2, 6 * 14 + 5 * 2, 3)  # 32 filters of 7x7, 6 per row
    s = deconv.steps(mini, mini_x[0], "conv2", 3)
    fig = plot.steps_figure(s, mini_x[0])
    assert len([ax for ax in fig.axes if ax.images]) == len(s) + 1
    assert plot.deconvnet_diagram().axes[0].texts


class _ViewFlatten(nn.Module):
    def __init__(self, batch_flatten=True):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 3 * 3, 5)
        self.batch_flatten = batch_flatten

    def forward(self, x):
        x = self.relu(self.conv(x))
        x = x.view(x.size(0), -1) if self.batch_flatten else x.view(-1)
        return self.fc(x)


def test_flatten_written_as_view():
    net = _init(_ViewFlatten(), 3)
    x = torch.randn(2, 3, 7, 7, generator=torch.Generator().manual_seed(0))
    assert rel(deconv.project(net, x, "fc", [1, 4]), reference(net, x, "fc", [1, 4])) < 1e-5
    with pytest.raises(deconv.RefusedError, match="'view'"):
        deconv.project(_ViewFlatten(batch_flatten=False).eval(), x[:1], "fc", 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        deconv.project(net, x[0], "fc", 0)


def test_pass_norm_keeps_the_forward_and_passes_the_gradient():
    lrn = nn.Sequential(nn.LocalResponseNorm(5, alpha=1e-1, beta=0.75, k=2.0))
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    passed = deconv.pass_norm(lrn)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in passed.children())
    torch.testing.assert_close(passed(x), lrn(x))
    (g,) = torch.autograd.grad(passed(x).sum(), x)
    torch.testing.assert_close(g, torch.ones_like(x))  # identity backward
    (g_lrn,) = torch.autograd.grad(lrn(x).sum(), x)
    assert not torch.allclose(g_lrn, torch.ones_like(x))  # the real LRN's gradient differs
