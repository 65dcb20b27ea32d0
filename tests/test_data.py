"""The embedded dataset and the paper's preprocessing (Section 3)."""
import numpy as np
import pytest
import torch

import importlib

emb = importlib.import_module("zfbook.data.embedded")  # the module (the package exports the function)
from zfbook.data import Preprocess, aligned, embedded, mean_image


@pytest.fixture(scope="module")
def small():
    return embedded("test", per_class=4, cache=False)


def test_same_seed_same_bytes_and_independent_of_size_and_workers(small):
    again = embedded("test", per_class=4, cache=False)
    assert small.sha256() == again.sha256()
    bigger = embedded("test", per_class=6, cache=False)
    assert torch.equal(bigger.images[:len(small)], small.images)
    serial = emb._generate("main", "test", 0, 4, workers=1)
    assert torch.equal(serial[0], small.images)
    other = embedded("test", per_class=4, seed=1, cache=False)
    assert not torch.equal(other.images, small.images)


def test_golden_digest_pins_the_renderer():
    # If this changes, the renderer changed: bump embedded._FORMAT and retrain the checkpoints.
    d = embedded("val", per_class=1, cache=False)
    assert d.sha256() == GOLDEN_VAL_1


GOLDEN_VAL_1 = "744a7cc888d089edfae59e9fb58b4bd15e90810be9c24b00ae3ad297bf9c4317"


def test_contents(small):
    assert small.images.dtype == torch.uint8 and small.images.shape == (48, 3, 128, 128)
    assert len(small.classes) >= 10 and sorted(set(small.labels.tolist())) == list(range(12))
    assert small.masks.shape == (48, 128, 128) and small.masks.dtype == torch.bool
    area = small.masks.float().mean((1, 2))
    assert torch.all(area > 0.03) and torch.all(area < 0.6)
    t, l, b, r = small.boxes.T
    assert torch.all((t < b) & (l < r))
    for i in range(len(small)):  # the box is tight around the mask
        ys, xs = torch.nonzero(small.masks[i], as_tuple=True)
        assert (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1) == tuple(small.boxes[i])
    has_kp = ~torch.isnan(small.keypoints).any(-1).any(-1)
    names = [small.classes[y] for y in small.labels[has_kp]]
    assert set(names) == {"face", "cat"}
    # keypoints sit on the object, inside the image
    for i in torch.nonzero(has_kp).flatten():
        for y, x in small.keypoints[i]:
            assert small.masks[i, int(y), int(x)]


def test_families_are_disjoint():
    assert not set(emb.CLASSES) & set(emb.TRANSFER_CLASSES)
    t = embedded("train", family="transfer", per_class=2, cache=False)
    assert t.classes == list(emb.TRANSFER_CLASSES) and len(t) == 20


def test_aligned_faces_share_pose():
    a = aligned(5)
    assert a.images.shape == (5, 3, 128, 128)
    assert torch.allclose(a.keypoints, a.keypoints[:1].expand_as(a.keypoints))
    assert torch.equal(a.masks, a.masks[:1].expand_as(a.masks))
    assert not torch.equal(a.images[0], a.images[1])


def test_aligned_faces_of_the_parts_world_move_by_the_jitter():
    """jitter: the same frontal pose, its centre moved by up to that many pixels, so a part no
    longer sits at the same pixels in every image (the correspondence test's same-location
    control needs that)."""
    import numpy as np
    still = aligned(4, name="dog", family="parts")
    moved = aligned(4, name="dog", family="parts", jitter=10)
    assert still.classes[int(still.labels[0])] == "dog" and still.family == "parts"
    # the dog's eyes are placed with some freedom: without jitter they stay within a few pixels
    spread = lambda d: float((d.keypoints - d.keypoints.mean(0)).abs().amax())
    assert spread(still) < 4 and spread(moved) > spread(still) + 3
    shift = moved.keypoints.mean(1) - still.keypoints.mean(1)   # each image's face centre moved
    assert float(shift.abs().max()) <= 10 + 4 and not np.isnan(moved.keypoints.numpy()).any()
    assert torch.equal(aligned(2).images, aligned(5).images[:2])   # the old world's, as before
    with pytest.raises(ValueError, match="from 0 to 32"):
        aligned(2, jitter=-1)
    with pytest.raises(ValueError, match="choose from"):
        aligned(2, name="car", family="parts")


def test_bad_names_list_choices():
    with pytest.raises(ValueError, match="train, val, test"):
        embedded("valid")
    with pytest.raises(ValueError, match="main, transfer"):
        embedded("train", family="imagenet")


def test_cache_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path))
    a = embedded("val", per_class=1)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    b = embedded("val", per_class=1)
    assert a.sha256() == b.sha256()
    next(tmp_path.glob("*.pt")).write_bytes(b"damaged")
    assert embedded("val", per_class=1).sha256() == a.sha256()


def test_linear_classifier_on_raw_pixels_does_poorly():
    """The convnet must learn shapes: a linear model on raw pixels stays far below 50%."""
    from sklearn.linear_model import LogisticRegression
    tr, te = embedded("train", per_class=60, cache=False), embedded("test", per_class=30, cache=False)
    f = lambda d: torch.nn.functional.avg_pool2d(d.images.float(), 4).flatten(1).numpy() / 255
    clf = LogisticRegression(max_iter=300, C=0.01).fit(f(tr), tr.labels.numpy())
    acc = (clf.predict(f(te)) == te.labels.numpy()).mean()
    assert acc < 0.5, acc


# -------------------------------------------------------------- preprocessing
def test_mean_image_is_per_pixel_mean():
    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    assert torch.allclose(mean_image(x, batch=3), x.float().mean(0), atol=1e-4)


def test_center_ten_crop_and_random():
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    mean = x.float().mean(0)
    p = Preprocess(mean, 12)
    c = p.center(x)
    assert c.shape == (2, 3, 12, 12)
    assert torch.allclose(c, (x.float() - mean)[..., 2:14, 2:14])
    ten = p.ten_crop(x)
    assert ten.shape == (2, 10, 3, 12, 12)
    assert torch.allclose(ten[:, 4], c) and torch.allclose(ten[:, 9], c.flip(-1))
    assert torch.allclose(ten[:, 0], (x.float() - mean)[..., :12, :12])
    assert torch.allclose(ten[:, 3], (x.float() - mean)[..., 4:, 4:])
    g = torch.Generator().manual_seed(0)
    r = p.random(x, g)
    # each random crop is one of the 25 × 2 possible crops of its image
    full = x.float() - mean
    for i in range(2):
        views = [full[i, :, t:t + 12, l:l + 12] for t in range(5) for l in range(5)]
        views += [v.flip(-1) for v in views]
        assert any(torch.equal(r[i], v) for v in views)
    assert torch.equal(p.random(x, torch.Generator().manual_seed(0)), r)


def test_preprocess_rejects_wrong_sizes():
    p = Preprocess(torch.zeros(3, 16, 16), 12)
    with pytest.raises(ValueError, match="16×16"):
        p.center(torch.zeros(1, 3, 20, 20))
    with pytest.raises(ValueError):
        Preprocess(torch.zeros(3, 16, 16), 20)


def test_display_undoes_mean():
    x = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    p = Preprocess(torch.full((3, 16, 16), 100.0), 12)
    img = p.display(p.center(x)[0])
    assert np.allclose(img, x[0, :, 2:14, 2:14].permute(1, 2, 0).numpy() / 255, atol=1e-6)
