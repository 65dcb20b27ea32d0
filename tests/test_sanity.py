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


def test_ranks_are_scipys_average_ranks_with_ties():
    from scipy.stats import rankdata
    rng = np.random.default_rng(0)
    ties = rng.integers(0, 4, size=(6, 5, 40)).astype(float)      # many ties per row
    np.testing.assert_array_equal(sanity.ranks(ties), rankdata(ties, axis=-1))
    floats = rng.normal(size=(3, 100))
    floats[0, :10] = floats[0, 10]                               # a run of 11 equal values
    floats[1, ::2] = -0.0                                        # -0 and 0 tie
    floats[1, 1::4] = 0.0
    np.testing.assert_array_equal(sanity.ranks(floats), rankdata(floats, axis=-1))
    np.testing.assert_array_equal(sanity.ranks(np.full((2, 9), 3.0)), np.full((2, 9), 5.0))
    holes = floats.copy()
    holes[2, 7] = np.nan                                         # that row is all NaN
    got = sanity.ranks(holes)
    assert np.isnan(got[2]).all() and not np.isnan(got[:2]).any()
    assert np.isnan(rankdata(holes[2])).all()


def test_spearman_of_rows_is_scipys_spearmanr():
    from scipy.stats import spearmanr
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, size=(30, 50)).astype(float)
    b = a + rng.integers(0, 6, size=(30, 50))                     # correlated, with ties
    want = [spearmanr(x, y).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(sanity.spearman(a, b), want, rtol=0, atol=1e-12)
    assert sanity.spearman(a[:1], -a[:1])[0] == pytest.approx(-1.0, abs=1e-12)
    b[3] = 2.0                                                   # a constant row: undefined
    assert np.isnan(sanity.spearman(a, b)[3]) and not np.isnan(np.delete(
        sanity.spearman(a, b), 3)).any()


def test_similarities_of_stacks_are_the_pairwise_similarities():
    from scipy.stats import spearmanr
    g = torch.Generator().manual_seed(2)
    a = torch.randn(5, 3, 12, 12, generator=g).round(decimals=1)  # ties in the sums
    b = a + torch.randn(5, 3, 12, 12, generator=g)
    b[1] = a[1]                                                   # identical: exactly 1
    b[2] = 0                                                      # silent: undefined
    for measure in sanity.MEASURES:
        got = sanity.similarities(a, b, measure)
        assert got.shape == (5,) and got[1] == 1.0, measure
        for i in range(5):
            one = sanity.similarity(a[i], b[i], measure)
            assert (np.isnan(got[i]) and np.isnan(one)) or got[i] == one, (measure, i)
    for measure, f in (("spearman", lambda t: t.sum(0)),
                       ("spearman_abs", lambda t: t.abs().sum(0))):
        want = [spearmanr(f(a[i].double()).numpy().ravel(),
                          f(b[i].double()).numpy().ravel()).statistic
                for i in (0, 3, 4)]
        np.testing.assert_allclose(sanity.similarities(a, b, measure)[[0, 3, 4]], want,
                                   rtol=0, atol=1e-12)
    assert np.isnan(sanity.similarities(a, b)[2])
    # the null ranks each map once for all its pairs: 15 pairs of 6 maps, as scipy pairs them
    c = torch.cat([a, b[:1]])
    n = sanity.null({"gradient": c}, measures=("spearman",), how="all")
    want = [spearmanr(c[i].double().sum(0).numpy().ravel(),
                      c[j].double().sum(0).numpy().ravel()).statistic for i, j in n.pairs]
    np.testing.assert_allclose(n.scores["gradient"]["spearman"], want, rtol=0, atol=1e-12)
    # occlusion's maps have no colour axis; a list of maps is stacked
    np.testing.assert_array_equal(sanity.similarities(list(a[:, 0]), list(b[:, 0])),
                                  [sanity.similarity(a[i, 0], b[i, 0]) for i in range(5)])
    with pytest.raises(ValueError, match="measures are: spearman_abs, spearman, ssim"):
        sanity.similarities(a, b, "pearson")


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


# ------------------------------------------------------------------ several seeds
def test_seeded_randomisation_is_the_single_seed_runs_pooled(mini, images):
    kw = dict(methods=("gradient", "occlusion"), patch=PATCH, stride=STRIDE)
    many = sanity.seeded_randomisation(mini, images[:2], seeds=(0, 1, 2), steps=(1, 3, 8),
                                       **kw)
    assert many.labels == ["trained", "fc8", "fc8…fc6", "fc8…conv1"]
    rows = [0, 1, 3, 8]
    for j, seed in enumerate(many.seeds):
        one = sanity.randomisation(mini, images[:2], seed=seed, **kw)
        for m in kw["methods"]:
            torch.testing.assert_close(many.trained[m], one.maps[m][0], rtol=0, atol=0)
            for s in sanity.MEASURES:
                np.testing.assert_array_equal(many.scores[m][s][:, j], one.scores[m][s][rows])
    assert sanity.null(many).n == 2                     # the trained maps, kept once
    tested = sanity.against_null(many, sanity.null(many), "ssim")
    assert [(r.method, r.step) for r in tested.rows] == [
        (m, s) for m in kw["methods"] for s in many.labels[1:]]
    v = many.scores["gradient"]["spearman_abs"]                      # (steps, seeds, images)
    assert v.shape == (4, 3, 2) and (v[0] == 1.0).all()
    assert not np.array_equal(v[-1, 0], v[-1, 1])       # other seeds, other random weights
    np.testing.assert_allclose(many.per_image("gradient"), v.mean(axis=1))
    np.testing.assert_allclose(many.per_seed("gradient"), v.mean(axis=2))
    np.testing.assert_allclose(many.mean("gradient"), v.reshape(4, -1).mean(axis=1))
    again = sanity.seeded_randomisation(mini, images[:2], seeds=(0, 1, 2), steps=(1, 3, 8),
                                        **kw)
    for m in kw["methods"]:
        for s in sanity.MEASURES:
            np.testing.assert_array_equal(again.scores[m][s], many.scores[m][s])


def test_seeded_randomisation_steps_and_refusals(mini, images):
    r = sanity.seeded_randomisation(mini, images[:1], seeds=(4,), mode="independent",
                                    steps=("conv1", ("fc8",), 1), methods=("gradient",),
                                    measures=("spearman",))
    assert r.steps == [(), ("conv1",), ("fc8",)]
    with pytest.raises(ValueError, match="independent steps are 0…8"):
        sanity.seeded_randomisation(mini, images[:1], mode="independent", steps=(9,))
    with pytest.raises(ValueError, match="layers are: conv1"):
        sanity.seeded_randomisation(mini, images[:1], steps=("conv6",))
    with pytest.raises(ValueError, match="different integers"):
        sanity.seeded_randomisation(mini, images[:1], seeds=(1, 1))


# ------------------------------------------------------------------ the null
def test_unrelated_pairs():
    d = sanity.unrelated_pairs(10, seed=3)
    assert (d[:, 0] == np.arange(10)).all() and sorted(d[:, 1]) == list(range(10))
    assert (d[:, 0] != d[:, 1]).all()
    np.testing.assert_array_equal(d, sanity.unrelated_pairs(10, seed=3))
    assert not np.array_equal(d, sanity.unrelated_pairs(10, seed=4))
    a = sanity.unrelated_pairs(5, "all")
    assert sorted(map(tuple, a)) == [(i, j) for i in range(5) for j in range(i + 1, 5)]
    with pytest.raises(ValueError, match="at least two images"):
        sanity.unrelated_pairs(1)
    with pytest.raises(ValueError, match="pairings are: derangement, all"):
        sanity.unrelated_pairs(4, "some")


def _squares(corners, seed: int, side: int = 28) -> torch.Tensor:
    """Noisy images (σ 0.1) of one bright square each, its top-left corner at ``corners``."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.randn(len(corners), 3, 112, 112, generator=g)
    for i, (r, c) in enumerate(corners):
        x[i, :, r:r + side, c:c + side] += 2.0
    return x


def test_null_of_identical_images_is_one(mini, images):
    same = images[:1].expand(4, -1, -1, -1).clone()
    maps = {m: sanity.explain(mini, same, m, "fc8", [3] * 4, patch=PATCH, stride=STRIDE)
            for m in ("gradient", "occlusion")}
    for how in sanity.PAIRINGS:
        n = sanity.null(maps, how=how)
        for m in maps:
            for s in sanity.MEASURES:
                assert (n.scores[m][s] == 1.0).all() and n.mean(m, s) == 1.0, (how, m, s)


def test_null_is_the_similarity_of_other_images_maps(mini, images):
    r = sanity.randomisation(mini, images, methods=("gradient",), measures=("ssim",))
    n = sanity.null(r, measures=("spearman_abs",), how="all")
    maps = r.maps["gradient"][0]
    from scipy.stats import rankdata
    for (i, j), got in zip(n.pairs, n.scores["gradient"]["spearman_abs"]):
        # average ranks for ties (scipy's): these maps hold tied values, which _ranks'
        # ordinal ranks break arbitrarily, moving the coefficient by ~1e-9
        x, y = (rankdata(maps[k].double().abs().sum(0).numpy().ravel()) for k in (i, j))
        assert got == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    v = n.scores["gradient"]["spearman_abs"]            # pairs (0, 1), (0, 2), (1, 2)
    np.testing.assert_allclose(n.per_image("gradient"),
                               [(v[0] + v[1]) / 2, (v[0] + v[2]) / 2, (v[1] + v[2]) / 2])
    # a derangement: each image is in two pairs, i → π(i) and π⁻¹(i) → i
    d = sanity.null({"gradient": maps}, measures=("spearman",), seed=2)
    v, (first, second) = d.scores["gradient"]["spearman"], d.pairs.T
    want = [(v[first == i][0] + v[second == i][0]) / 2 for i in range(3)]
    np.testing.assert_allclose(d.per_image("gradient", "spearman"), want)


def test_null_is_below_the_same_image_and_sees_centre_bias(mini):
    """Squares at six places: an image's map under other noise (the same image) is far
    more alike than another image's map; squares all at the centre raise the null."""
    corners = [(4, 4), (4, 80), (80, 4), (80, 80), (42, 10), (10, 42)]
    x, again = _squares(corners, seed=0), _squares(corners, seed=1)
    centred = _squares([(42, 42)] * 6, seed=0)
    kw = dict(patch=28, stride=14)
    for m in ("guided_backprop", "occlusion"):
        a, b, c = (sanity.explain(mini, v, m, "fc8", [0] * 6, **kw) for v in (x, again, centred))
        same = np.mean([sanity.similarity(a[i], b[i]) for i in range(6)])
        scattered = sanity.null({m: a}, how="all").mean(m)
        assert scattered < same - 0.15, (m, scattered, same)
        assert sanity.null({m: c}, how="all").mean(m) > scattered + 0.15, m


# ------------------------------------------------------------------ data randomisation
def test_data_randomisation_of_a_model_with_itself_is_one(mini, images):
    saved = copy.deepcopy(mini.state_dict())
    r = sanity.data_randomisation(mini, mini, images[:2], patch=PATCH, stride=STRIDE)
    assert r.mode == "data" and r.labels == ["trained", "shuffled labels"]
    for m in sanity.METHODS:
        for s in sanity.MEASURES:
            assert (r.scores[m][s] == 1.0).all(), (m, s)
    assert not _changed(saved, mini.state_dict())


def test_data_randomisation_against_autograd(mini, images):
    from zfbook.models import build
    torch.manual_seed(1)
    other = build("zfnet-mini", num_classes=12).eval()
    saved = copy.deepcopy(other.state_dict())
    classes = [2, 7, 9]
    r = sanity.data_randomisation(mini, other, images, methods=("gradient",),
                                  which=classes, measures=("spearman_abs",))
    want = []
    for i, c in enumerate(classes):
        grads = []
        for net in (mini, other):
            xi = images[i:i + 1].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(net(xi)[0, c], xi)
            grads.append(_ranks(g[0].double().abs().sum(0).numpy().ravel()))
        want.append(np.corrcoef(*grads)[0, 1])
    np.testing.assert_allclose(r.scores["gradient"]["spearman_abs"][1], want, atol=1e-6)
    assert (r.scores["gradient"]["spearman_abs"][1] < 0.99).all()
    assert not _changed(saved, other.state_dict())
    # conv5: each network's own strongest map, as the same index names unrelated units
    c5 = sanity.data_randomisation(mini, other, images[:2], target="conv5",
                                   methods=("deconvnet",), measures=("ssim",))
    own = sanity.top_features(other, images[:2])
    assert c5.which == sanity.top_features(mini, images[:2])
    assert torch.equal(c5.maps["deconvnet"][1],
                       sanity.explain(other, images[:2], "deconvnet", "conv5", own))


def test_data_randomisation_refuses_another_architecture(mini, images):
    from zfbook.models import build
    with pytest.raises(ValueError, match="same architecture.*12 classes vs zfnet-mini with 10"):
        sanity.data_randomisation(mini, build("zfnet-mini", num_classes=10), images[:1])


# ------------------------------------------------------------------ intervals over images
def test_intervals_over_images_and_against_the_null():
    from scipy import stats as st
    v = np.array([[1.0, 1.0, 1.0, 1.0], [0.2, 0.5, np.nan, 0.4]])
    r = sanity.Randomisation("cascading", "fc8", [(), ("fc8",)], [0] * 4,
                             {"gradient": []}, {"gradient": {"spearman_abs": v}})
    same, step = r.interval("gradient")
    assert (same.mean, same.low, same.high, same.n) == (1.0, 1.0, 1.0, 4)
    ok = v[1][~np.isnan(v[1])]
    assert step.n == 3 and step.mean == pytest.approx(ok.mean())
    for level, got in ((0.95, step), (0.9, r.interval("gradient", level=0.9)[1])):
        want = st.t.interval(level, 2, loc=ok.mean(), scale=st.sem(ok))
        assert (got.low, got.high) == pytest.approx(want)
    # seeds: the interval is over images, of each image's mean over the seeds
    s = np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], [[0.1, 0.3, 0.8], [0.3, 0.5, 0.6]]])
    many = sanity.SeededRandomisation("cascading", "fc8", [(), ("fc8",)], (0, 1), [0] * 3,
                                      {}, {"gradient": {"spearman_abs": s}})
    per = s[1].mean(axis=0)
    got = many.interval("gradient")[1]
    assert got.n == 3 and (got.low, got.high) == pytest.approx(
        st.t.interval(0.95, 2, loc=per.mean(), scale=st.sem(per)))
    # against the null: paired over images, NaN images left out
    n = sanity.Null(np.array([[0, 1], [1, 2], [2, 3], [3, 0]]), 4,
                    {"gradient": {"spearman_abs": np.array([0.1, 0.2, 0.0, 0.3])}})
    null_per_image = n.per_image("gradient")
    np.testing.assert_allclose(null_per_image, [0.2, 0.15, 0.1, 0.15])
    d = n.paired(v[1], "gradient")
    keep = ~np.isnan(v[1])
    want = st.ttest_rel(v[1][keep], null_per_image[keep])
    assert d.p == pytest.approx(want.pvalue) and d.diff == pytest.approx(
        (v[1][keep] - null_per_image[keep]).mean())
    with pytest.raises(ValueError, match="one similarity per image"):
        n.paired(v[1][:3], "gradient")


# ------------------------------------------------------------------ every step against the null
def _holm(p):
    """Holm's adjusted p-values, written out: the k-th smallest of m times (m − k + 1),
    never below an earlier one, at most 1."""
    order = np.argsort(p)
    adjusted, running = np.empty(len(p)), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - k) * p[i]))
        adjusted[i] = running
    return adjusted


def test_against_null_finds_what_was_built_in():
    from scipy import stats as st
    rng = np.random.default_rng(0)
    n = 10
    null = sanity.Null(sanity.unrelated_pairs(n, seed=0), n,
                       {m: {"spearman_abs": rng.uniform(0.1, 0.3, n)}
                        for m in ("gradient", "deconvnet")})
    base = {m: null.per_image(m) for m in null.scores}
    noise = rng.normal(0, 0.05, n)
    even = np.repeat(rng.uniform(0.01, 0.05, n // 2), 2) * np.tile([1, -1], n // 2)
    scores = {"gradient": np.stack([np.ones(n), base["gradient"] + 0.5 + noise,
                                    base["gradient"] + even]),          # mean difference 0
              "deconvnet": np.stack([np.ones(n), base["deconvnet"] - 0.3 + noise,
                                     base["deconvnet"] + 0.2 - noise])}
    scores["deconvnet"][2, 3] = np.nan                                  # left out: n = 9
    r = sanity.Randomisation("cascading", "fc8", [(), ("fc8",), ("fc8", "fc7")], [0] * n,
                             {m: [] for m in scores},
                             {m: {"spearman_abs": v} for m, v in scores.items()})
    got = sanity.against_null(r, null)
    assert [(row.method, row.step) for row in got.rows] == [
        ("gradient", "fc8"), ("gradient", "fc8…fc7"), ("deconvnet", "fc8"),
        ("deconvnet", "fc8…fc7")]                                       # step 0 is not tested
    refs = []
    for row in got.rows:
        a, b = scores[row.method][row.step.count("fc")], base[row.method]
        ok = ~np.isnan(a)
        ref = st.ttest_rel(a[ok], b[ok])
        refs.append(ref.pvalue)
        ci = ref.confidence_interval(0.95)
        assert row.n == ok.sum() and row.test.p == pytest.approx(ref.pvalue, rel=1e-9)
        assert (row.test.low, row.test.high) == pytest.approx((ci.low, ci.high))
        assert (row.similarity, row.null) == pytest.approx((a[ok].mean(), b[ok].mean()))
    np.testing.assert_allclose([row.p_holm for row in got.rows], _holm(np.array(refs)))
    assert [row.verdict for row in got.rows] == [
        "above the null", "not distinguished", "below the null", "above the null"]
    assert got.row("gradient", "fc8…fc7").test.p == pytest.approx(1.0)
    shown = got.table(name="sanity-against-null")
    assert len(shown.rows) == 4 and shown.header[-2:] == ["p (Holm)", "verdict"]
    assert shown.rows[2][:3] == ["deconvnet", "fc8", "10"] and "Holm" in shown.caption
    assert ":name: sanity-against-null" in shown._repr_markdown_()
    # a level of 90%: narrower intervals, the same tests
    narrow = sanity.against_null(r, null, level=0.9).row("gradient", "fc8").test
    assert narrow.high - narrow.low < got.row("gradient", "fc8").test.high - \
        got.row("gradient", "fc8").test.low


def test_against_null_of_seeds_and_of_plain_arrays():
    from scipy import stats as st
    rng = np.random.default_rng(1)
    n = 6
    null = sanity.Null(sanity.unrelated_pairs(n, "all"), n,
                       {"occlusion": {"ssim": rng.uniform(0.2, 0.4, 15)}})
    base = null.per_image("occlusion", "ssim")
    x = base + rng.normal(0.1, 0.1, n)
    spread = rng.uniform(0, 0.2, n)
    seeded = np.stack([np.ones((2, n)), np.stack([x - spread, x + spread])])  # steps, seeds, images
    many = sanity.SeededRandomisation("independent", "fc8", [(), ("conv1",)], (0, 1), [0] * n,
                                      {}, {"occlusion": {"ssim": seeded}})
    row, = sanity.against_null(many, null, "ssim").rows
    assert row.step == "conv1"
    assert row.test.p == pytest.approx(st.ttest_rel(x, base).pvalue, rel=1e-9)  # seeds' mean
    assert row.p_holm == pytest.approx(row.test.p)                       # a family of one
    # a mapping method → (steps, images); a step identical to the null has no test and
    # stays out of Holm's family
    plain = {"occlusion": np.stack([base, x])}
    same, other = sanity.against_null(plain, null, "ssim").rows
    assert (same.step, other.step) == ("step 0", "step 1")
    assert np.isnan(same.test.p) and np.isnan(same.p_holm) and not same.rejected
    assert same.verdict == "not distinguished"
    assert other.p_holm == pytest.approx(other.test.p)
    picked = sanity.against_null(plain, null, "ssim", labels=["a", "b"], steps=[1])
    assert [row.step for row in picked.rows] == ["b"]
    shown = sanity.against_null(plain, null, "ssim").table()
    assert shown.rows[0][5:] == ["+0.00 [+0.00, +0.00]", "–", "not distinguished"]


def test_against_null_refusals():
    n = 4
    null = sanity.Null(sanity.unrelated_pairs(n), n,
                       {"gradient": {"spearman_abs": np.linspace(0.1, 0.4, n)}})
    ok = {"gradient": np.ones((2, n))}
    with pytest.raises(ValueError, match="null holds no 'spearman_abs' for method 'occlusion'"):
        sanity.against_null({**ok, "occlusion": np.ones((2, n))}, null)
    with pytest.raises(ValueError, match="measures are: spearman_abs, spearman, ssim"):
        sanity.against_null(ok, null, "pearson")
    with pytest.raises(ValueError, match="steps must be between 0 and 1"):
        sanity.against_null(ok, null, steps=[2])
    with pytest.raises(ValueError, match="3 images, the null 4"):
        sanity.against_null({"gradient": np.ones((2, 3))}, null)
    with pytest.raises(TypeError, match="Randomisation, a SeededRandomisation or a mapping"):
        sanity.against_null(np.ones((2, n)), null)
    with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
        sanity.against_null(ok, null, level=95)
