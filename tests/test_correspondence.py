"""Correspondence analysis (Table 1): masking, the sign-change distance Δ, the table."""
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from zfbook.correspondence import (PAPER_TABLE1, PARTS, correspondence, correspondence_on, delta,
                                   mask_square, sign_distances)
from zfbook.models import build


@pytest.fixture(scope="module")
def mini():
    torch.manual_seed(0)
    return build("zfnet-mini", num_classes=12).eval()


def test_paper_table():
    """Table 1 of the paper (ECCV text): layer 5 and layer 7, mean ± std."""
    assert PARTS == ("right_eye", "left_eye", "nose")
    assert PAPER_TABLE1["right_eye"] == {"conv5": (0.067, 0.007), "fc7": (0.069, 0.015)}
    assert PAPER_TABLE1["left_eye"] == {"conv5": (0.069, 0.007), "fc7": (0.068, 0.013)}
    assert PAPER_TABLE1["nose"] == {"conv5": (0.079, 0.017), "fc7": (0.069, 0.011)}
    assert PAPER_TABLE1["random"] == {"conv5": (0.107, 0.017), "fc7": (0.073, 0.014)}


def test_sign_distances_by_hand():
    eps = torch.tensor([[1.0, -2.0, 0.0, 3.0],
                        [2.0, -1.0, 0.0, 5.0],      # same signs as row 0
                        [-1.0, 0.0, 0.0, 3.0]])     # differs from row 0 in 2 of 4
    d = sign_distances(eps)                          # pairs (0,1), (0,2), (1,2)
    torch.testing.assert_close(d, torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64))
    m, s = delta(eps)
    assert m == pytest.approx(1 / 3)
    assert s == pytest.approx(torch.tensor([0, .5, .5]).std(unbiased=False).item())
    with pytest.raises(ValueError, match="at least 2"):
        sign_distances(eps[:1])


@settings(max_examples=50, deadline=None)
@given(arrays("float32", st.tuples(st.integers(2, 6), st.integers(1, 30)),
              elements=st.sampled_from([-2.0, -0.5, 0.0, 0.0, 1.0, 3.0])))
def test_delta_is_in_unit_interval_and_zero_for_identical(eps):
    eps = torch.from_numpy(eps)
    m, s = delta(eps)
    assert 0.0 <= m <= 1.0 and 0.0 <= s <= 0.5
    same = eps[:1].expand(len(eps), -1) * 2.0         # same signs, other magnitudes
    assert delta(same) == (0.0, 0.0)
    assert delta(torch.cat([eps[:1], -eps[:1]]))[0] == pytest.approx(float((eps[0] != 0).double().mean()))


def test_mask_square_centres_and_clips():
    x = torch.ones(2, 3, 10, 10)
    out = mask_square(x, [[5, 5], [0.4, 9.0]], size=4, fill=0.0)
    assert (out[0, :, 3:7, 3:7] == 0).all() and out[0].sum() == 3 * (100 - 16)
    assert (out[1, :, 0:2, 7:10] == 0).all() and out[1].sum() == 3 * (100 - 6)   # clipped
    assert torch.equal(x, torch.ones(2, 3, 10, 10))                             # a copy
    with pytest.raises(ValueError, match="NaN"):
        mask_square(x, [[float("nan"), 1], [1, 1]], 3)
    with pytest.raises(ValueError, match="2 images but 1 centres"):
        mask_square(x, [[1, 1]], 3)


def test_identical_images_give_zero_for_parts(mini):
    """Copies of one image masked at the same keypoint change identically: Δ = 0. Random
    squares land elsewhere in each copy, so they do not."""
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, 112, 112, generator=g) * 50
    x = img.expand(5, -1, -1, -1).clone()
    kps = torch.tensor([[40.0, 35.0], [40.0, 77.0], [62.0, 56.0]]).expand(5, -1, -1)
    names = ("left_eye", "right_eye", "nose")
    table = correspondence(mini, x, kps, names, size=12, draws=3, seed=1)
    for part in PARTS:
        for layer in ("conv5", "fc7"):
            assert table.rows[part][layer] == (0.0, 0.0)
            assert len(table.pairs[part][layer]) == 10
    for layer in ("conv5", "fc7"):
        assert len(table.pairs["random"][layer]) == 30          # 3 draws × 10 pairs
        assert table.rows["random"][layer][0] > 0
    assert table.centres["random"].shape == (3, 5, 2)
    text = table.format()
    assert "0.107 ± 0.017" in text and "right eye" in text and "0.000 ± 0.000" in text


def test_random_squares_are_seeded_and_on_the_object(mini):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 112, 112, generator=g) * 50
    kps = torch.full((4, 3, 2), 56.0)
    masks = torch.zeros(4, 112, 112, dtype=torch.bool)
    masks[:, 20:40, 60:90] = True
    a = correspondence(mini, x, kps, ("left_eye", "right_eye", "nose"), masks=masks, seed=5)
    b = correspondence(mini, x, kps, ("left_eye", "right_eye", "nose"), masks=masks, seed=5)
    c = correspondence(mini, x, kps, ("left_eye", "right_eye", "nose"), masks=masks, seed=6)
    assert torch.equal(a.centres["random"], b.centres["random"]) and a.rows == b.rows
    assert not torch.equal(a.centres["random"], c.centres["random"])
    ys, xs = a.centres["random"][..., 0], a.centres["random"][..., 1]
    assert ((ys >= 20) & (ys < 40) & (xs >= 60) & (xs < 90)).all()
    for row in a.rows.values():
        for m, s in row.values():
            assert 0 <= m <= 1 and s >= 0


def test_errors(mini):
    x = torch.zeros(3, 3, 112, 112)
    kps = torch.zeros(3, 2, 2)
    with pytest.raises(ValueError, match="unknown part 'nose'; parts are: left_eye, right_eye"):
        correspondence(mini, x, kps, ("left_eye", "right_eye"))
    with pytest.raises(ValueError, match="size must be between 1 and 112"):
        correspondence(mini, x, kps, ("left_eye", "right_eye"), parts=("left_eye",), size=0)
    with pytest.raises(ValueError, match="at least 2 aligned images"):
        correspondence(mini, x[:1], kps[:1], ("left_eye", "right_eye"), parts=("left_eye",))


def test_on_the_aligned_faces(mini):
    from zfbook.data import Preprocess, aligned
    ds = aligned(5)
    mini.preprocess = Preprocess(torch.full((3, 128, 128), 110.0), crop=112)
    try:
        table = correspondence_on(mini, ds, size=12, draws=2)
    finally:
        del mini.preprocess
    assert set(table.rows) == {"right_eye", "left_eye", "nose", "random"}
    assert table.n_images == 5
    # the masks follow the keypoints into the 112×112 centre crop (offset 8)
    torch.testing.assert_close(table.centres["nose"][0],
                               ds.keypoints[:, 2].double() - 8)


# ---------------------------------------------------------------- the same-location control
NAMES = ("left_eye", "right_eye", "nose")


def test_same_location_is_the_part_row_when_every_part_sits_on_one_pixel(mini):
    """Aligned keypoints: image i masked at image i + s's nose is masked at its own nose,
    so the control cannot differ from the part row, pair for pair."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 3, 112, 112, generator=g) * 50
    kps = torch.tensor([[40.0, 35.0], [40.0, 77.0], [62.0, 56.0]]).expand(4, -1, -1)
    plain = correspondence(mini, x, kps, NAMES, size=12, draws=2, seed=1)
    table = correspondence(mini, x, kps, NAMES, size=12, draws=2, seed=1, same_location=True)
    assert table.rows == plain.rows and plain.same_location is None
    for part in PARTS:
        assert table.same_location_centres[part].shape == (3, 4, 2)
        assert table.same_location_covers[part] == 1.0
        for layer in ("conv5", "fc7"):
            assert table.same_location[part][layer] == pytest.approx(table.rows[part][layer],
                                                                     rel=1e-12, abs=0)
            own = table.pairs[part][layer]
            torch.testing.assert_close(table.same_location_pairs[part][layer], own.repeat(3))
    assert "nose, same place" in table.format()
    assert "same place" not in plain.format()


def _blobs(centres, size=112):
    """Images of noise with a bright square 'part' (side 12) at each centre (y, x)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(len(centres), 3, size, size, generator=g) * 20
    for i, (y, xx) in enumerate(centres):
        x[i, :, y - 6:y + 6, xx - 6:xx + 6] = 200.0
    return x


def test_same_location_differs_when_the_parts_sit_elsewhere(mini):
    """Each image's part lies elsewhere: the control masks the other images' part
    locations, where this image has no part, and its Δ is not the part's. Checked against
    a direct computation of the first shift."""
    from zfbook.models import activations
    where = torch.tensor([[30, 30], [30, 80], [80, 30], [80, 80], [56, 56]])
    x = _blobs(where.tolist())
    kps = torch.stack([where.double()] * 3, 1)          # all three parts on the blob
    table = correspondence(mini, x, kps, NAMES, size=12, parts=("nose",), draws=1,
                           same_location=True)
    assert set(table.same_location) == {"nose"}
    torch.testing.assert_close(table.same_location_centres["nose"][0], where.double().roll(-1, 0))
    assert table.same_location_covers["nose"] == 0.0
    for layer in ("conv5", "fc7"):
        assert table.same_location["nose"][layer] != table.rows["nose"][layer]
        base = activations(mini, x, layer)[layer].reshape(5, -1)
        masked = activations(mini, mask_square(x, where.roll(-1, 0), 12), layer)[layer]
        want = sign_distances(base - masked.reshape(5, -1))
        torch.testing.assert_close(table.same_location_pairs["nose"][layer][:10], want)
        assert len(table.same_location_pairs["nose"][layer]) == 4 * 10


def test_same_location_covers_counts_squares_on_the_own_part():
    from zfbook.correspondence import _covers
    points = torch.tensor([[20.0, 20.0], [25.0, 20.0], [60.0, 60.0]])
    squares = points.roll(-1, 0)[None]  # image 0 masked at 25,20 (rows 19-30): its 20,20
    assert _covers(squares, points, 12) == pytest.approx(1 / 3)   # images 1 and 2: far
    assert _covers(squares, points, 4) == 0.0                     # rows 23-26 miss row 20


def test_same_location_on_the_aligned_faces(mini):
    from zfbook.data import Preprocess, aligned
    mini.preprocess = Preprocess(torch.full((3, 128, 128), 110.0), crop=112)
    try:
        table = correspondence_on(mini, aligned(3), size=12, draws=1, same_location=True)
    finally:
        del mini.preprocess
    assert set(table.same_location) == set(PARTS) and set(table.rows) == set(PARTS) | {"random"}
    assert all(table.same_location_covers[p] == 1.0 for p in PARTS)   # one pose: one pixel
