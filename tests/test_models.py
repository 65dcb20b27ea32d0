"""Fig. 3 layer by layer, the baseline, the presets and the layer-name interface."""
import pytest
import torch
from torch import nn

from zfbook import models


def test_zfnet_fig3_sizes_at_224():
    shapes = dict(models.output_shapes(models.zfnet(), 224))
    assert shapes["conv1"] == (96, 110, 110)
    assert shapes["pool1"] == (96, 55, 55)
    assert shapes["conv2"] == (256, 26, 26)
    assert shapes["pool2"] == (256, 13, 13)
    assert shapes["conv3"] == (384, 13, 13)
    assert shapes["conv4"] == (384, 13, 13)
    assert shapes["conv5"] == (256, 13, 13)
    assert shapes["pool5"] == (256, 6, 6)
    assert shapes["fc6"] == (4096,) and shapes["fc7"] == (4096,) and shapes["fc8"] == (1000,)


def test_zfnet_kernels_strides_and_norm_after_pool():
    f = models.zfnet().features
    assert (f.conv1.kernel_size, f.conv1.stride) == ((7, 7), (2, 2))
    assert (f.conv2.kernel_size, f.conv2.stride) == ((5, 5), (2, 2))
    names = [n for n, _ in f.named_children()]
    assert names.index("norm1") == names.index("pool1") + 1
    assert names.index("norm2") == names.index("pool2") + 1
    assert (f.norm1.size, f.norm1.alpha, f.norm1.beta, f.norm1.k) == (5, 1e-4, 0.75, 2.0)
    # dense conv3-5: groups 1 (AlexNet split them over two GPUs)
    assert all(getattr(f, c).groups == 1 for c in ("conv3", "conv4", "conv5"))
    c = models.zfnet().classifier
    assert c.drop6.p == 0.5 and c.drop7.p == 0.5


def test_alexnet_baseline_conv1_and_sizes():
    m = models.alexnet(num_classes=10)
    assert (m.features.conv1.kernel_size, m.features.conv1.stride) == ((11, 11), (4, 4))
    shapes = dict(models.output_shapes(m, 224))
    assert shapes["conv1"] == (96, 55, 55) and shapes["pool5"] == (256, 6, 6) and shapes["fc8"] == (10,)


@pytest.mark.parametrize("name", ["zfnet-mini", "alexnet-mini"])
def test_mini_presets_keep_topology_and_conv5_room(name):
    m = models.build(name, 12)
    full = models.build(name.replace("-mini", ""), 12)
    for layer in ("conv1", "conv2"):
        a, b = getattr(m.features, layer), getattr(full.features, layer)
        assert (a.kernel_size, a.stride) == (b.kernel_size, b.stride)
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert len(convs) == 5 and len(linears) == 3
    shapes = dict(models.output_shapes(m))
    assert shapes["conv5"][1] >= 5 and 96 <= m.preset.crop <= 112
    assert m(torch.zeros(2, 3, m.preset.crop, m.preset.crop)).shape == (2, 12)


def test_paper_init_full_models():
    m = models.zfnet(10)
    w = m.features.conv3.weight
    assert abs(w.std().item() - 0.01) < 0.001 and m.features.conv3.bias.abs().max() == 0


def test_layer_names_are_rectified_outputs():
    m = models.build("zfnet-mini", 12).eval()
    x = torch.randn(3, 3, 112, 112) * 50
    acts = models.activations(m, x, models.LAYERS)
    assert list(acts) == list(models.LAYERS)
    for name in models.LAYERS[:-1]:
        assert acts[name].min() >= 0, name
    assert torch.allclose(acts["fc8"], m(x), atol=1e-5)
    assert acts["conv5"].shape == (3, 64, 6, 6)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="conv1, conv2.*fc8"):
        models.layer_module(models.build("zfnet-mini", 3), "conv9")
    with pytest.raises(ValueError, match="zfnet-mini"):
        models.build("resnet50")


def test_renormalize_filters_caps_rms_only_above_radius():
    conv = nn.Conv2d(3, 4, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn_like(conv.weight))
        conv.weight[0].mul_(0.01)  # small filter: untouched
    small = conv.weight[0].clone()
    models.renormalize_filters(conv, 0.1)
    rms = conv.weight.pow(2).mean((1, 2, 3)).sqrt()
    assert torch.all(rms <= 0.1 + 1e-6)
    assert torch.allclose(rms[1:], torch.full((3,), 0.1), atol=1e-6)
    assert torch.equal(conv.weight[0], small)


# ---------------------------------------------------------------- Table 3's variants
def _expected_params(p, num_classes, arch="zfnet"):
    """Fig. 3's parameter count written out layer by layer from the preset's widths."""
    w1, w2, w3, w4, w5 = p.widths
    k1 = 7 if arch == "zfnet" else 11
    convs = [(3, w1, k1), (w1, w2, 5)]
    prev = w2
    for name, w in (("conv3", w3), ("conv4", w4), ("conv5", w5)):
        if name not in p.drop:
            convs.append((prev, w, 3))
            prev = w
    n = sum(i * o * k * k + o for i, o, k in convs)
    side = {"zfnet-mini": 2, "zfnet": 6}[p.base]  # pool5's side at the preset's crop
    width = w5 * side * side
    for name in ("fc6", "fc7"):
        if name not in p.drop:
            n += width * p.fc + p.fc
            width = p.fc
    return n + width * num_classes + num_classes


@pytest.mark.parametrize("base", ["zfnet-mini", "zfnet"])
@pytest.mark.parametrize("variant", list(models.VARIANTS))
def test_every_table3_variant_builds_with_its_layers_and_parameters(base, variant):
    m = models.build(f"{base}:{variant}", 12)
    p = m.preset
    assert p.base == base and (p.name == base if variant == "baseline" else p.name == f"{base}:{variant}")
    assert models.count_parameters(m) == _expected_params(p, 12)
    kept = models.layer_names(m)
    assert set(kept) == set(models.LAYERS) - set(p.drop)
    if base.endswith("mini"):
        x = torch.randn(2, 3, p.crop, p.crop)
        assert m(x).shape == (2, 12)
        acts = models.activations(m.eval(), x, kept)
        assert torch.allclose(acts["fc8"], m(x), atol=1e-5)
    for layer in p.drop:
        with pytest.raises(ValueError, match=f"has no {layer}.*conv1, conv2"):
            models.layer_module(m, layer)


def test_variant_sizes_follow_the_papers_ratios():
    wide = models.preset("zfnet:conv-wide")
    assert wide.widths == models.PRESETS["zfnet-wide"].widths == (96, 256, 512, 1024, 512)
    assert models.preset("zfnet:fc-wide").fc == 8192 and models.preset("zfnet:fc-narrow").fc == 2048
    assert models.preset("zfnet-mini:conv-wide").widths == (32, 64, 128, 256, 128)
    assert models.preset("zfnet-mini:fc-wide-conv-wide").fc == 2048
    assert models.preset("zfnet-mini:baseline") is models.PRESETS["zfnet-mini"]
    # removing layers drops their dropout too (Section 3: dropout belongs to layers 6 and 7)
    m = models.build("zfnet-mini:no-fc6-fc7", 12)
    assert not [mod for mod in m.modules() if isinstance(mod, nn.Dropout)]


def test_the_baseline_variant_is_the_preset_bit_for_bit():
    torch.manual_seed(3)
    a = models.build("zfnet-mini", 12).state_dict()
    torch.manual_seed(3)
    b = models.build("zfnet-mini:baseline", 12).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_variants_list_the_choices():
    with pytest.raises(ValueError, match="unknown variant 'no-fc8'; valid variants are: baseline, no-fc7"):
        models.build("zfnet-mini:no-fc8")
    with pytest.raises(ValueError, match="unknown preset 'zfnet-tiny'"):
        models.build("zfnet-tiny:no-fc7")
