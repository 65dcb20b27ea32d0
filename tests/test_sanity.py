"""Sanity checks (zfbook.sanity): randomisation, the methods' maps, the measures.

References are independent where possible: plain autograd for the gradient, Captum's
``Deconvolution`` (seeded with 1) for the deconvnet of a logit, full forward passes of
occluded images for occlusion, numpy ranks for Spearman, an untouched saved copy of the
model for randomisation.
"""
import copy
import warnings

import numpy as np
import pytest
import torch

from zfbook import deconv, sanity
from zfbook.models import LAYERS

PATCH, STRIDE = 56, 28          # 3 × 3 placements on the 112-pixel mini input: fast


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 3, 112, 112, generator=g)


def _changed(a: dict, b: dict) -> set:
    return {k for k in a if not torch.equal(a[k], b[k])}


def test_randomize_changes_exactly_the_named_layers(mini):
    saved = copy.deepcopy(mini.state_dict())
    for step in sanity.cascading_steps() + sanity.independent_steps():
        net = sanity.randomize(mini, step, seed=3)
        want = {f"{'features' if l.startswith('conv') else 'classifier'}.{l}.{p}"
                for l in step for p in ("weight", "bias")}
        # biases start at 0 in the untrained fixture, and are re-set to 0: unchanged
        want = {k for k in want if not (k.endswith("bias") and not saved[k].any())}
        assert _changed(saved, net.state_dict()) == want, step
    assert not _changed(saved, mini.state_dict())      # the model passed in is untouched


def test_randomize_uses_the_models_init_and_is_seeded(mini):
    a = sanity.randomize(mini, LAYERS, seed=5)
    b = sanity.randomize(mini, LAYERS, seed=5)
    c = sanity.randomize(mini, LAYERS, seed=6)
    assert not _changed(a.state_dict(), b.state_dict())
    assert _changed(a.state_dict(), c.state_dict())
    # the same layer gets the same weights whatever else is randomised
    one = sanity.randomize(mini, ["conv3"], seed=5)
    assert torch.equal(one.features.conv3.weight, a.features.conv3.weight)
    # mini presets: Kaiming normal (std sqrt(2 / fan_in)) below fc8, N(0, 0.01²) at fc8
    w = a.features.conv3.weight
    assert w.std().item() == pytest.approx((2 / w[0].numel()) ** 0.5, rel=0.05)
    assert a.classifier.fc8.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert not a.classifier.fc8.bias.any()


def test_step_zero_is_exactly_one_and_runs_repeat(mini, images):
    kw = dict(patch=PATCH, stride=STRIDE, seed=0)
    r1 = sanity.randomisation(mini, images[:1], **kw)
    r2 = sanity.randomisation(mini, images[:1], **kw)
    for m in sanity.METHODS:
        for s in sanity.MEASURES:
            assert (r1.scores[m][s][0] == 1.0).all(), (m, s)
            np.testing.assert_array_equal(r1.scores[m][s], r2.scores[m][s])
        for a, b in zip(r1.maps[m], r2.maps[m]):
            assert torch.equal(a, b)
        # the fully randomised network's map is not the trained one's
        assert not torch.equal(r1.maps[m][0], r1.maps[m][-1]), m
    assert r1.labels[0] == "trained" and r1.labels[-1] == "fc8…conv1"


def test_conv5_maps_ignore_the_layers_above(mini, images):
    r = sanity.randomisation(mini, images[:2], target="conv5", mode="independent",
                             methods=("deconvnet", "gradient"), measures=("spearman_abs",))
    for m in ("deconvnet", "gradient"):
        for k, step in enumerate(r.steps):
            same = torch.equal(r.maps[m][k], r.maps[m][0])
            assert same == (not step or step[0].startswith("fc")), (m, step)


def test_gradient_is_the_autograd_gradient(mini, images):
    classes = [1, 5, 7]
    x = images.clone().requires_grad_(True)
    logits = mini(x)
    (ref,) = torch.autograd.grad(logits[range(3), classes].sum(), x)
    got = sanity.explain(mini, images, "gradient", "fc8", classes)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-7)
    # conv5: the gradient of the strongest activation of the chosen map
    feats = [0, 3, 9]
    for i, f in enumerate(feats):
        xi = images[i:i + 1].clone().requires_grad_(True)
        act = mini.features[:14](xi)[0, f]            # up to relu5
        (g,) = torch.autograd.grad(act.flatten().max(), xi)
        got = sanity.explain(mini, images[i:i + 1], "gradient", "conv5", [f])
        torch.testing.assert_close(got, g, rtol=1e-5, atol=1e-7)


def test_deconvnet_of_a_logit_is_seeded_with_one(mini, images):
    from captum.attr import Deconvolution
    classes = [0, 4, 11]
    got = sanity.explain(mini, images, "deconvnet", "fc8", classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Deconvolution(deconv.pass_norm(mini).eval()).attribute(images.clone(),
                                                                     target=classes)
    scale = ref.flatten(1).abs().amax(1).clamp_min(1e-12)[:, None, None, None]
    assert ((got - ref).abs() / scale).max() < 1e-4
    with torch.no_grad():
        logits = mini(images)[range(3), classes]
    assert (logits < 0).any() and (logits > 0).any()   # both signs are exercised
    for i, (c, v) in enumerate(zip(classes, logits.tolist())):
        if v > 0:   # the paper's seed (the value) differs only by the factor v
            p = deconv.project(mini, images[i:i + 1], "fc8", c)[0]
            torch.testing.assert_close(p / v, got[i], rtol=1e-4, atol=1e-6)


def test_occlusion_is_the_mean_logit_drop(mini, images):
    c = 2
    got = sanity.explain(mini, images[:1], "occlusion", "fc8", [c], patch=PATCH,
                         stride=STRIDE)[0].double()
    x = images[0]
    with torch.no_grad():
        base = mini(x[None])[0, c].item()
        total, count = np.zeros((112, 112)), np.zeros((112, 112))
        for y in (0, 28, 56):
            for x0 in (0, 28, 56):
                occ = x.clone()
                occ[:, y:y + PATCH, x0:x0 + PATCH] = 0
                total[y:y + PATCH, x0:x0 + PATCH] += base - mini(occ[None])[0, c].item()
                count[y:y + PATCH, x0:x0 + PATCH] += 1
    np.testing.assert_allclose(got.numpy(), total / count, rtol=1e-4, atol=1e-5)


def _ranks(v):
    r = np.empty(len(v))
    r[np.argsort(v)] = np.arange(len(v))
    return r


def test_spearman_against_numpy_ranks():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 9, 9, generator=g), torch.randn(3, 9, 9, generator=g)
    a = a + 0.5 * b
    for measure, f in (("spearman", lambda t: t.sum(0)), ("spearman_abs", lambda t: t.abs().sum(0))):
        x, y = _ranks(f(a).numpy().ravel()), _ranks(f(b).numpy().ravel())
        want = np.corrcoef(x, y)[0, 1]
        assert sanity.similarity(a, b, measure) == pytest.approx(want, abs=1e-12)


def test_measures_of_a_map_with_itself_and_constants():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 20, 20, generator=g)
    for s in sanity.MEASURES:
        assert sanity.similarity(a, a.clone(), s) == 1.0
    assert sanity.similarity(a, 3 * a, "ssim") == pytest.approx(1.0, abs=1e-12)
    assert sanity.similarity(a, -a, "spearman") == pytest.approx(-1.0)
    assert np.isnan(sanity.similarity(a, torch.zeros_like(a)))
    assert sanity.similarity(a, torch.randn(3, 20, 20, generator=g), "ssim") < 0.5


def test_selectivity_and_edges(mini, images):
    x = images[0]
    assert sanity.selectivity(mini, x, "deconvnet", "conv5", [4, 4]) == 1.0
    s = sanity.selectivity(mini, x, "gradient", "fc8", [0, 1, 2])
    assert -1 <= s < 1
    # occlusion: one sweep for all units gives what one sweep per unit gives
    one = sanity.selectivity(mini, x, "occlusion", "fc8", [0, 1, 2], patch=PATCH,
                             stride=STRIDE)
    maps = sanity.explain(mini, x.expand(3, -1, -1, -1), "occlusion", "fc8", [0, 1, 2],
                          patch=PATCH, stride=STRIDE)
    pairs = [sanity.similarity(maps[i], maps[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert one == pytest.approx(np.mean(pairs), abs=1e-6)   # ranks once = spearmanr
    edges = torch.stack([torch.from_numpy(sanity.edge_map(v)) for v in images])
    own, other = sanity.edge_correlation(edges, images)
    np.testing.assert_allclose(own, 1.0)
    assert (other < 1).all()


def test_refusals(mini, images):
    with pytest.raises(ValueError, match="methods are: deconvnet, gradient"):
        sanity.explain(mini, images, "lrp")
    with pytest.raises(ValueError, match="targets are: fc8, conv5"):
        sanity.explain(mini, images, "gradient", "conv4")
    with pytest.raises(ValueError, match="layers are: conv1"):
        sanity.randomize(mini, ["conv9"])
    with pytest.raises(ValueError, match="0…11"):
        sanity.explain(mini, images, "gradient", "fc8", [0, 1, 12])
    with pytest.raises(TypeError, match="ConvNet"):
        sanity.randomize(torch.nn.Sequential(torch.nn.Linear(2, 2)), ["fc8"])
