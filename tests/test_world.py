"""The parts world (zfbook.data.world), its image statistics (zfbook.data.statistics) and
the Gabor share of a first layer (zfbook.gabor)."""
import hashlib
import importlib
import math

import numpy as np
import pytest
import torch

from zfbook import gabor
from zfbook.data import statistics as S
from zfbook.data import world
from zfbook.data.world.background import _leaf_radius


def _rng(i, family=2):
    return np.random.default_rng([0, family, 0, i])


# ------------------------------------------------------------------ the world
def test_every_class_renders_with_a_visible_object():
    for i, name in enumerate(world.CLASSES + world.TRANSFER_CLASSES):
        img, mask, kp = world.render(name, _rng(i))
        assert img.shape == (world.SIZE, world.SIZE, 3) and img.dtype == np.uint8
        assert mask.shape == img.shape[:2] and mask.sum() > 30, name
        assert np.isnan(kp).all() == (name not in world.FACE_CLASSES), name


def test_families_are_disjoint_and_large_enough():
    assert len(world.CLASSES) >= 20
    assert not set(world.CLASSES) & set(world.TRANSFER_CLASSES)


def test_unknown_class_names_the_choices():
    with pytest.raises(ValueError, match="unknown class 'zebra'; classes are: face, cat"):
        world.render("zebra", _rng(0))


def test_same_generator_same_bytes_and_pinned_digest():
    a = world.render("car", _rng(7))[0]
    b = world.render("car", _rng(7))[0]
    assert np.array_equal(a, b)
    # the renderer's bytes on any machine: geometry is quantised and per-pixel arithmetic
    # is IEEE-exact, so this digest changes only when the renderer does (then bump VERSION)
    h = hashlib.sha256()
    for i, name in enumerate(("face", "bus", "spider", "clock", "kite")):
        img, mask, _ = world.render(name, _rng(100 + i))
        h.update(img.tobytes())
        h.update(mask.tobytes())
    assert h.hexdigest()[:16] == PINNED_DIGEST


PINNED_DIGEST = "f5dfaac69f838732"   # world.VERSION 3


def test_keypoints_fall_on_the_eyes_and_left_is_the_image_left():
    for mirror in (False, True):
        pose = world.Pose(64.0, 64.0, 40.0, 0, mirror)
        img, mask, kp = world.render("face", _rng(3), pose, clutter=False)
        (ly, lx), (ry, rx), (ny, nx) = kp
        assert lx < rx
        assert abs(ly - ry) < 1e-9 and ny > ly
        # an eye is a light disc with a dark pupil: the keypoint lies on the object
        assert mask[int(ly), int(lx)] and mask[int(ry), int(rx)]


def test_pose_scale_range_is_three_fold_and_rotation_full_where_allowed():
    rng = np.random.default_rng(0)
    radii = [world.random_pose(rng, False).radius for _ in range(2000)]
    assert min(radii) >= 18 and max(radii) <= 56 and max(radii) / min(radii) > 2.9
    degs = [world.random_pose(rng, True).deg for _ in range(2000)]
    assert min(degs) < 20 and max(degs) > 340
    upright = [world.random_pose(rng, False).deg for _ in range(2000)]
    assert max(abs(d) for d in upright) <= 30


def test_anti_aliased_disc_covers_its_area():
    box, alpha = world.disc(64.3, 60.1, 10.0)
    assert abs(alpha.sum() - math.pi * 100) < 1.0   # coverage integrates to the area
    assert ((alpha > 0) & (alpha < 1)).any()         # and the edge is soft


def test_dead_leaves_radii_follow_the_power_law():
    rng = np.random.default_rng(1)
    r = np.array([_leaf_radius(rng) for _ in range(20000)])
    # density ∝ r^-3 on [2, 64]: P(r > x) = (x^-2 - 64^-2) / (2^-2 - 64^-2)
    for x in (3.0, 6.0, 12.0):
        expected = (x ** -2 - 64 ** -2) / (2 ** -2 - 64 ** -2)
        assert abs((r > x).mean() - expected) < 0.01


# ------------------------------------------------------------------ statistics
def _power_law_noise(n, alpha, seed=0):
    """Independent reference: white noise shaped to amplitude ∝ f^-alpha in the Fourier domain."""
    rng = np.random.default_rng(seed)
    f = np.sqrt(np.fft.fftfreq(128)[:, None] ** 2 + np.fft.fftfreq(128)[None, :] ** 2)
    f[0, 0] = 1.0
    out = []
    for _ in range(n):
        spec = np.fft.fft2(rng.normal(size=(128, 128))) * f ** -alpha
        img = np.real(np.fft.ifft2(spec))
        img = (img - img.mean()) / img.std() * 30 + 128
        out.append(np.clip(img, 0, 255))
    return np.stack(out)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_spectral_slope_recovers_the_exponent(alpha):
    assert abs(S.spectral_slope(_power_law_noise(8, alpha)) - alpha) < 0.15


def test_orientation_histogram_puts_stripes_in_their_bin():
    y, x = np.mgrid[0:128, 0:128]
    vertical_edges = 128 + 60 * np.sign(np.sin(2 * np.pi * x / 16.0))   # edges run vertically
    h = S.orientation_histogram(vertical_edges[None], bins=4)           # bins of 45°
    assert h.argmax() == 2 and h[2] > 0.9                               # 90° = vertical
    assert S.orientation_entropy(vertical_edges[None]) < 0.2
    assert S.orientation_entropy(_power_law_noise(4, 1.0)) > 0.97


def test_local_contrast_of_a_flat_image_is_zero_and_of_a_checkerboard_known():
    assert np.all(S.local_contrast(np.full((1, 64, 64), 100.0)) == 0)
    y, x = np.mgrid[0:64, 0:64]
    board = np.where((x + y) % 2 == 0, 50.0, 150.0)[None]
    assert np.allclose(S.local_contrast(board), 0.5)   # std 50 / mean 100


def _halves():
    """Independent reference: vertical stripes 4 px wide in columns 8…23, flat grey
    elsewhere, so the Sobel gradient is nonzero in columns 7…24 only; and the region of
    columns 0…27."""
    y, x = np.mgrid[0:64, 0:64]
    stripes = np.where((x - 8) // 4 % 2 == 0, 188.0, 68.0)
    img = np.where((x >= 8) & (x < 24), stripes, 128.0)
    left = np.broadcast_to(x < 28, (1, 64, 64))
    return img[None], left


def test_edge_share_finds_the_edges_where_they_are():
    img, left = _halves()
    assert S.edge_share(img, left)[0] == pytest.approx(1.0)
    assert S.edge_share(img, ~left)[0] == 0.0
    assert 0 < S.edge_share(img, np.broadcast_to(np.arange(64) < 16, (1, 64, 64)))[0] < 1
    both = np.concatenate([img, img[:, :, ::-1]])
    share = S.edge_share(both, np.concatenate([left, left[:, :, ::-1]]))
    assert share == pytest.approx([1.0, 1.0])
    assert np.isnan(S.edge_share(np.full((1, 8, 8), 9.0), np.ones((1, 8, 8), bool))[0])
    with pytest.raises(ValueError, match="region of the images' shape"):
        S.edge_share(img, left[:, :32])


def test_regions_select_orientations_and_patches():
    y, x = np.mgrid[0:64, 0:64]
    img = np.where(x < 32, 128 + 60 * np.sign(np.sin(2 * np.pi * x / 8.0 + 0.3)),
                   128 + 60 * np.sign(np.sin(2 * np.pi * y / 8.0 + 0.3)))[None]
    left = np.broadcast_to(x < 30, (1, 64, 64))
    assert S.orientation_histogram(img, 4, where=left)[2] > 0.99      # vertical edges
    assert S.orientation_histogram(img, 4, where=~left)[0] > 0.9      # horizontal edges
    assert S.orientation_entropy(img, where=left) < 0.2
    everywhere = np.ones((1, 64, 64), bool)
    assert np.array_equal(S.orientation_histogram(img, 4, where=everywhere),
                          S.orientation_histogram(img, 4))
    flat, _ = _halves()
    inside = np.broadcast_to(x >= 32, (1, 64, 64))
    c = S.local_contrast(flat, where=inside)
    assert len(c) == 4 * 8 and np.all(c == 0)     # the patches wholly on the flat half
    assert len(S.local_contrast(flat, where=np.broadcast_to(x >= 33, (1, 64, 64)))) == 3 * 8


def test_each_image_has_its_own_gradient():
    """Images of a batch do not leak into each other's gradients (scipy's n-D sobel would
    smooth across the batch axis); the reference is scipy's sobel on each 2-D image."""
    from scipy import ndimage
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (3, 16, 16))
    mag = S.gradient_magnitude(batch)
    for i, im in enumerate(batch):
        ref = np.hypot(ndimage.sobel(im, axis=1), ndimage.sobel(im, axis=0))
        assert np.allclose(mag[i, 1:-1, 1:-1], ref[1:-1, 1:-1])
        assert np.all(mag[i, 0] == 0) and np.all(mag[i, :, -1] == 0)
    h = S.orientation_histogram(batch)
    weights = mag.sum(axis=(1, 2))
    parts = sum(w * S.orientation_histogram(im[None]) for w, im in zip(weights, batch))
    assert np.allclose(h, parts / weights.sum())


def test_per_image_measures_each_image_alone():
    imgs = np.concatenate([_power_law_noise(2, 0.5), _power_law_noise(1, 1.5, seed=3)])
    m = S.per_image(imgs)
    assert list(m) == list(S.MEASURES)
    assert m["spectral_slope"][2] > m["spectral_slope"][0] + 0.5
    for i in range(3):
        assert m["spectral_slope"][i] == S.spectral_slope(imgs[i:i + 1])
        assert m["orientation_entropy"][i] == S.orientation_entropy(imgs[i:i + 1])
        assert m["median_local_contrast"][i] == np.median(S.local_contrast(imgs[i:i + 1]))


def test_grow_dilates_by_a_square():
    m = np.zeros((2, 9, 9), bool)
    m[0, 4, 4] = True
    g = S.grow(m, 2)
    assert g[0].sum() == 25 and g[0, 2:7, 2:7].all() and not g[1].any()
    assert np.array_equal(S.grow(torch.from_numpy(m), 0), m)
    with pytest.raises(ValueError, match="whole number"):
        S.grow(m, -1)


def test_photographs_are_offline_and_sized():
    p = S.photographs(64)
    assert p.shape == (len(S.PHOTOGRAPHS), 3, 64, 64) and p.dtype == torch.uint8


# ------------------------------------------------------------------ the Gabor share
def test_fit_recovers_a_noise_free_gabor():
    params = [3.3, 2.8, 1.4, 2.0, 0.6, 0.22, 0.9, 1.0, 0.05]
    r2, p = gabor.fit(gabor.gabor(params, 7))
    assert r2 > 0.999
    assert np.allclose(gabor.gabor(p, 7), gabor.gabor(params, 7), atol=1e-3)


def test_a_blob_is_a_gabor_of_frequency_zero():
    blob = gabor.gabor([3.0, 3.0, 1.5, 1.5, 0.0, 0.0, 0.0, 1.0, 0.0], 7)
    assert gabor.fit(blob)[0] > 0.999


def test_controls_separate_noise_from_gabors():
    bank = gabor.gabor_bank(8, seed=1)
    noise = torch.randn(8, 3, 7, 7, generator=torch.Generator().manual_seed(1))
    assert gabor.gabor_share(bank) >= 0.75
    assert gabor.gabor_share(noise) <= 0.25
    assert np.median(gabor.layer_r2(bank)) > np.median(gabor.layer_r2(noise)) + 0.3


def test_colour_opponent_kernel_is_found():
    g = gabor.gabor([3.0, 3.0, 1.5, 1.5, 0.3, 0.2, 0.0, 1.0, 0.0], 7)
    red_green = np.stack([g, -g, np.zeros_like(g)])   # sums to zero: only the opponent kernel sees it
    assert gabor.filter_r2(red_green) > 0.99
    assert gabor.fit(red_green.sum(0))[0] == 0.0
    best = gabor.filter_fit(red_green)
    assert best.which == "colour" and best.r2 == gabor.filter_r2(red_green)
    resid = ((best.fitted() - best.kernel) ** 2).sum() / ((best.kernel - best.kernel.mean()) ** 2).sum()
    assert 1 - resid == pytest.approx(best.r2)   # the drawn fit is the one scored
    assert gabor.filter_fit(np.stack([g, g, g])).which == "luminance"


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="square 2-D kernel"):
        gabor.fit(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"\(filters, colours, k, k\)"):
        gabor.layer_r2(torch.zeros(3, 7, 7))


# ------------------------------------------------------------------ the dataset name
def test_train_and_evaluate_reach_the_parts_world(tmp_path, monkeypatch, capsys):
    """``--dataset parts`` trains on the parts world's family and ``evaluate`` reads its
    test split (tiny splits: the first images of a split are the same whatever its size)."""
    from zfbook import loaders, train
    from zfbook.cli import main
    E = importlib.import_module("zfbook.data.embedded")   # the package shadows it with the function
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(E.SPLITS, "parts", {"train": 2, "val": 1, "test": 1})
    seen = []
    real = E.embedded

    def spy(split="train", family="main", seed=0, **kw):
        seen.append((split, family))
        return real(split, family, seed, **kw)
    monkeypatch.setattr(loaders, "embedded", spy)  # what train reads its data with
    monkeypatch.setattr(E, "embedded", spy)
    cfg = train.Config(dataset="parts", epochs=1, batch_size=8, snapshots=(), device="cpu")
    train.train(cfg, tmp_path / "run", progress=False)
    assert seen == [("train", "parts"), ("val", "parts")]
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--device", "cpu"]) == 0
    assert seen[2:] == [("test", "parts")]
    with pytest.raises(ValueError, match="embedded, parts, imagenet"):
        train.Config(dataset="partz")


def test_gabor_figures_draw_what_was_fitted():
    from zfbook.plot import architecture as plot_arch
    bank = gabor.gabor_bank(6, seed=2)
    fits = gabor.layer_fits(bank)
    r2 = np.array([f.r2 for f in fits])
    fig = plot_arch.gabor_r2({"zfnet-mini": r2, "untrained (null)": r2 * 0.5})
    ax = fig.axes[0]
    dots = ax.collections[0].get_offsets()
    assert np.allclose(np.sort(dots[:, 0]), np.sort(np.clip(r2, 0, 1)))
    assert [t.get_text() for t in ax.texts] == [f"{(r2 >= 0.85).mean():.0%}", f"{(r2 * 0.5 >= 0.85).mean():.0%}"]
    fig = plot_arch.gabor_examples(fits, n=3)
    shown = [a.images[0].get_array() for a in fig.axes]
    best = max(fits, key=lambda f: f.r2)
    assert np.allclose(shown[0], best.kernel) and np.allclose(shown[3], best.fitted())
