"""Top-k search over a dataset (zfbook.topk) against brute force."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zfbook import deconv, topk
from zfbook.models import activations

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="module")
def images():
    return torch.randn(23, 3, 112, 112, generator=torch.Generator().manual_seed(4)) * 60


def brute_force(model, images, layer, k):
    """Every image's strongest location per map, then a full sort (ties: lower index first)."""
    with torch.no_grad():
        act = activations(model, images, [layer])[layer]
    if act.dim() == 2:
        act = act[:, :, None, None]
    n, m, h, w = act.shape
    flat = act.flatten(2)
    v, arg = flat.max(2)  # (N, M): first maximum in row-major order
    res = []
    for j in range(m):
        order = sorted(range(n), key=lambda i: (-float(v[i, j]), i))[:k]
        res.append([(i, int(arg[i, j]) // w, int(arg[i, j]) % w, float(v[i, j])) for i in order])
    return res


def same(got, expected):
    """Same images and locations in the same order; values equal up to float rounding
    (a different batch size may round the convolutions differently)."""
    assert [[e[:3] for e in row] for row in got] == [[e[:3] for e in row] for row in expected]
    torch.testing.assert_close(torch.tensor([[e[3] for e in row] for row in got]),
                               torch.tensor([[e[3] for e in row] for row in expected]), rtol=1e-5, atol=1e-4)
    return True


def as_rows(t: topk.TopK):
    return [[(int(t.index[j, r]), int(t.y[j, r]), int(t.x[j, r]), float(t.value[j, r]))
             for r in range(t.k)] for j in range(t.maps)]


@pytest.mark.parametrize("layer,k,bs", [("conv1", 9, 5), ("conv5", 4, 8), ("fc6", 3, 23), ("conv3", 9, 1)])
def test_matches_brute_force(mini, images, layer, k, bs):
    got = topk.top_activations(mini, images, layer, k=k, batch_size=bs, progress=False)
    assert got.value.shape == (got.maps, k)
    assert same(as_rows(got), brute_force(mini, images, layer, k))


def test_several_layers_one_pass_and_loader(mini, images):
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images))), batch_size=6)
    got = topk.top_activations(mini, loader, ["conv2", "conv4"], progress=False)
    for layer in ("conv2", "conv4"):
        assert same(as_rows(got[layer]), brute_force(mini, images, layer, 9))


def test_one_entry_per_image_per_map(mini, images):
    got = topk.top_activations(mini, images, "conv1", progress=False)
    for row in got.index.tolist():
        assert len(set(row)) == len(row)


def test_fewer_images_than_k(mini, images):
    got = topk.top_activations(mini, images[:3], "conv5", k=5, progress=False)
    assert (got.index[:, 3:] == -1).all() and torch.isinf(got.value[:, 3:]).all()
    assert sorted(got.index[0, :3].tolist()) == [0, 1, 2]
    proj = got.project(mini, images[:3], maps=[0, 1])
    assert proj.shape == (2, 5, 3, 112, 112)
    assert (proj[:, 3:] == 0).all()


def test_transform_and_restores_mode(mini, images):
    mini.train()
    try:
        got = topk.top_activations(mini, images / 2, "conv1", k=3, transform=lambda x: x * 2,
                                   progress=False)
        assert mini.training
    finally:
        mini.eval()
    assert same(as_rows(got), brute_force(mini, images, "conv1", 3))


def test_save_load_roundtrip(tmp_path, mini, images):
    got = topk.top_activations(mini, images, ["conv1", "fc7"], k=4, progress=False)
    topk.save(got, tmp_path / "top.pt")
    back = topk.load(tmp_path / "top.pt")
    assert set(back) == {"conv1", "fc7"}
    for layer in back:
        for f in ("value", "index", "y", "x"):
            assert torch.equal(getattr(back[layer], f), getattr(got[layer], f))
    topk.save(got["conv1"], tmp_path / "one.pt")
    assert isinstance(topk.load(tmp_path / "one.pt"), topk.TopK)
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a top-k file"):
        topk.load(tmp_path / "other.pt")


def test_project_and_patches_match_single_calls(mini, images):
    got = topk.top_activations(mini, images, "conv2", k=3, progress=False)
    maps = [5, 0]
    proj = got.project(mini, images, maps=maps)
    patches = got.patches(mini, images, maps=maps)
    for a, j in enumerate(maps):
        for r in range(3):
            i, y, x = int(got.index[j, r]), int(got.y[j, r]), int(got.x[j, r])
            one = deconv.project(mini, images[i:i + 1], "conv2", j, (y, x))
            torch.testing.assert_close(proj[a, r], one[0])
            box = deconv.receptive_field(mini, "conv2", (y, x))
            torch.testing.assert_close(patches[a, r], deconv.crop(images[i], box))


def test_fc_projection(mini, images):
    got = topk.top_activations(mini, images, "fc7", k=2, progress=False)
    proj = got.project(mini, images, maps=[3])
    one = deconv.project(mini, images[int(got.index[3, 0])][None], "fc7", 3)
    torch.testing.assert_close(proj[0, 0], one[0])


def test_torchvision_style_names():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2)).eval()
    x = torch.randn(7, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    got = topk.top_activations(net, x, "1", k=2, progress=False)
    assert same(as_rows(got), brute_force(net, x, "1", 2))


def test_errors(mini, images):
    with pytest.raises(ValueError, match="conv1"):
        topk.top_activations(mini, images, "conv7", progress=False)
    with pytest.raises(ValueError, match="empty"):
        topk.top_activations(mini, images[:0], "conv1", progress=False)
    got = topk.top_activations(mini, images[:4], "conv1", k=2, progress=False)
    with pytest.raises(ValueError, match="maps must be between 0 and 31"):
        got.project(mini, images, maps=[32])
