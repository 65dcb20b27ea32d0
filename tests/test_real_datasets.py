"""Real-dataset loaders (zfbook.data.real) on tiny on-disk fixtures in the real formats.

Nothing here touches the network: download attempts go through a patched ``urlopen``.
"""
import hashlib
import pickle
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets as tvd
from torchvision.transforms import v2 as T

from zfbook.data import real
from zfbook.data.real import DATASETS, DatasetNotFound, load, per_class_split

S = 16  # output side used throughout: small and fast


def _image(path, color, size=(40, 30), mode="RGB"):
    """Write a solid-colour image (PNG or JPEG by suffix); ``color`` is an int for mode "L"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def _close(pixel, rgb, tol=6):  # JPEG is lossy on solid colours by a few levels
    return all(abs(int(p) - c) <= tol for p, c in zip(pixel, rgb))


def _check_items(ds, size=S):
    for i in range(len(ds)):
        x, y = ds[i]
        assert type(x) is torch.Tensor and x.dtype == torch.uint8 and x.shape == (3, size, size)
        assert isinstance(y, int) and y == int(ds.labels[i])
    assert ds.labels.dtype == torch.int64 and len(ds.labels) == len(ds)


# ---------------------------------------------------------------- ImageFolder / ImageNet

RED, BLUE = (220, 20, 20), (20, 20, 220)


@pytest.fixture
def tree(tmp_path):
    """root/<class>/<image>, mixed PNG/JPEG, non-square images."""
    root = tmp_path / "tree"
    _image(root / "cat" / "a.png", RED)
    _image(root / "cat" / "b.jpg", RED, size=(30, 50))
    _image(root / "dog" / "c.png", BLUE)
    return root


def test_imagefolder(tree):
    ds = load("imagefolder", tree, size=S)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1]
    _check_items(ds)
    for i, rgb in enumerate([RED, RED, BLUE]):
        assert _close(ds[i][0][:, S // 2, S // 2], rgb)
    batch, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch.shape == (3, 3, S, S) and labels.tolist() == [0, 0, 1]


def test_imagefolder_split_is_a_subfolder(tree):
    assert load("imagefolder", tree.parent, split="tree", size=S).classes == ["cat", "dog"]
    with pytest.raises(DatasetNotFound, match="nope"):
        load("imagefolder", tree, split="nope")


def test_imagenet_layout(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        for wnid in ("n01440764", "n01443537"):
            for k in range(n):
                _image(tmp_path / split / wnid / f"{wnid}_{k}.JPEG", RED)
    train, val = load("imagenet", tmp_path, size=S), load("imagenet", tmp_path, split="val", size=S)
    assert train.split == "train" and len(train) == 4 and len(val) == 2
    assert train.classes == val.classes == ["n01440764", "n01443537"]
    _check_items(val)


def test_custom_transform_gets_rgb(tmp_path):
    _image(tmp_path / "gray" / "a.png", 128, mode="L")
    seen = []

    def transform(img):
        seen.append(img.mode)
        return T.PILToTensor()(img.resize((8, 6)))

    x, _ = load("imagefolder", tmp_path, transform=transform)[0]
    assert seen == ["RGB"] and x.shape == (3, 6, 8)


# ---------------------------------------------------------------- CIFAR-10

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_batch(path, labels, rgb):
    """One batch in the real format: a Python-2-style pickle of a dict with str keys, ``data``
    an (N, 3072) uint8 array holding the R, then G, then B plane of each 32×32 image."""
    n = len(labels)
    planes = np.repeat(np.array(rgb, np.uint8), 1024)          # R×1024, G×1024, B×1024
    entry = {"batch_label": path.name, "labels": list(labels),
             "data": np.tile(planes, (n, 1)), "filenames": [f"img_{i}.png" for i in range(n)]}
    path.write_bytes(pickle.dumps(entry, protocol=2))


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    """cifar-10-batches-py with five 2-image training batches, a 2-image test batch, batches.meta."""
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for b in range(1, 6):
        _cifar_batch(base / f"data_batch_{b}", [2 * b - 2, 2 * b - 1], (200, 10, 50))
    _cifar_batch(base / "test_batch", [3, 7], (10, 200, 50))
    (base / "batches.meta").write_bytes(pickle.dumps(
        {"label_names": CIFAR_CLASSES, "num_cases_per_batch": 10000, "num_vis": 3072}, protocol=2))
    # torchvision refuses files whose md5 differs from the real archive's (class attributes
    # train_list / test_list / meta). Our fixture files are smaller, so point those lists at
    # the fixture's own md5s; everything else (reading, reshaping, labels) is torchvision's.
    md5 = lambda name: hashlib.md5((base / name).read_bytes()).hexdigest()  # noqa: E731
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{b}", md5(f"data_batch_{b}")] for b in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": md5("batches.meta")})
    return tmp_path


def test_cifar10(cifar):
    train, test = load("cifar10", cifar, size=S), load("cifar10", cifar, split="test", size=S)
    assert train.classes == CIFAR_CLASSES and len(train) == 10 and len(test) == 2
    assert train.labels.tolist() == list(range(10)) and test.labels.tolist() == [3, 7]
    _check_items(train)
    # channel planes land in the right channels (R, G, B), upsampled 32 → S exactly
    assert (train[0][0] == torch.tensor([200, 10, 50], dtype=torch.uint8)[:, None, None]).all()
    assert (test[1][0][:, 0, 0] == torch.tensor([10, 200, 50], dtype=torch.uint8)).all()


def test_cifar10_damaged_files_are_reported(cifar, monkeypatch):
    monkeypatch.undo()  # the real md5 lists: torchvision's integrity check rejects the fixture
    with pytest.raises(DatasetNotFound, match="could not be read") as err:
        load("cifar10", cifar)
    assert err.value.name == "cifar10" and "cifar-10-python.tar.gz" in str(err.value)


# ---------------------------------------------------------------- Caltech-101 / 256

def test_caltech101_gray_to_rgb(tmp_path):
    cats = tmp_path / "caltech101" / "101_ObjectCategories"
    # torchvision removes BACKGROUND_Google from the classes, so the real archive's folder is required
    _image(cats / "BACKGROUND_Google" / "image_0001.jpg", (90, 90, 90))
    _image(cats / "Faces" / "image_0001.jpg", RED)
    _image(cats / "Faces" / "image_0002.jpg", RED)
    _image(cats / "accordion" / "image_0001.jpg", 100, mode="L")   # Caltech has grayscale JPEGs
    ds = load("caltech101", tmp_path, size=S)
    assert ds.classes == ["Faces", "accordion"] and ds.labels.tolist() == [0, 0, 1]
    _check_items(ds)
    gray = ds[2][0]
    assert (gray[0] == gray[1]).all() and (gray[1] == gray[2]).all() and abs(int(gray[0, 0, 0]) - 100) <= 3
    assert _close(ds[0][0][:, 0, 0], RED)


def test_caltech256(tmp_path):
    cats = tmp_path / "caltech256" / "256_ObjectCategories"
    _image(cats / "001.ak47" / "001_0001.jpg", RED)
    _image(cats / "001.ak47" / "001_0002.jpg", RED)
    _image(cats / "002.american-flag" / "002_0001.jpg", 60, mode="L")
    ds = load("caltech256", tmp_path, size=S)
    assert ds.classes == ["ak47", "american-flag"] and ds.labels.tolist() == [0, 0, 1]
    _check_items(ds)
    assert (ds[2][0][0] == ds[2][0][2]).all()


def test_caltech_has_no_official_split(tmp_path):
    with pytest.raises(ValueError, match="per_class_split"):
        load("caltech101", tmp_path, split="train")


# ---------------------------------------------------------------- Imagenette

@pytest.mark.skipif(not hasattr(tvd, "Imagenette"), reason="torchvision < 0.17 has no Imagenette")
def test_imagenette(tmp_path):
    for split in ("train", "val"):
        _image(tmp_path / "imagenette2-160" / split / "n01440764" / "ILSVRC_1.JPEG", RED)
        _image(tmp_path / "imagenette2-160" / split / "n02102040" / "ILSVRC_2.JPEG", BLUE)
    ds = load("imagenette", tmp_path, split="val", size=S)
    assert ds.classes == ["tench", "English springer"] and ds.labels.tolist() == [0, 1]
    _check_items(ds)
    # 160-px images are too small for size=256: the 320-px variant is asked for, by name
    with pytest.raises(DatasetNotFound, match="imagenette2-320"):
        load("imagenette", tmp_path, size=256)


# ---------------------------------------------------------------- bad input

def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError) as err:
        load("cifar100", tmp_path)
    assert "cifar100" in str(err.value) and all(name in str(err.value) for name in DATASETS)


def test_unknown_split_lists_valid_splits(tmp_path):
    with pytest.raises(ValueError, match="splits are train, test"):
        load("cifar10", tmp_path, split="val")


@pytest.mark.parametrize("name", DATASETS)
def test_missing_data_offline(tmp_path, name):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFound) as err:
        load(name, root)
    msg = str(err.value)
    assert err.value.name == name and name in msg and str(root) in msg and "To get it" in msg
    assert ("download=True" in msg) == (name not in ("imagefolder", "imagenet"))
    assert not root.exists()  # nothing was created on disk


@pytest.mark.parametrize("name", ["imagenette", "cifar10", "caltech101", "caltech256"])
def test_download_offline_is_wrapped(tmp_path, monkeypatch, name):
    calls = []

    def offline(request, *args, **kwargs):
        url = getattr(request, "full_url", request)
        calls.append((url, socket.getdefaulttimeout()))
        raise urllib.error.URLError("[Errno -2] Name or service not known (test: offline)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    before = socket.getdefaulttimeout()
    with pytest.raises(DatasetNotFound, match="could not be downloaded") as err:
        load(name, tmp_path, download=True)
    assert calls, "the download path was not exercised"
    assert all(timeout == real.DOWNLOAD_TIMEOUT for _, timeout in calls)
    assert socket.getdefaulttimeout() == before
    assert isinstance(err.value.__cause__, urllib.error.URLError)
    assert name in str(err.value) and calls[0][0].split("/")[2] in str(err.value)  # names the host


def test_imagenet_cannot_be_downloaded(tmp_path):
    with pytest.raises(DatasetNotFound, match="image-net.org"):
        load("imagenet", tmp_path, download=True)


# ---------------------------------------------------------------- per_class_split

LABELS = [0] * 10 + [1] * 7 + [2] * 12


def test_per_class_split_counts_and_disjoint():
    train, test = per_class_split(LABELS, n_train=3, n_test=2, seed=0)
    labels = np.array(LABELS)
    assert np.bincount(labels[train]).tolist() == [3, 3, 3]
    assert np.bincount(labels[test]).tolist() == [2, 2, 2]
    assert not set(train) & set(test) and train == sorted(train)
    _, rest = per_class_split(LABELS, n_train=3, seed=0)
    assert np.bincount(labels[rest]).tolist() == [7, 4, 9]


def test_per_class_split_deterministic_and_nested():
    a = per_class_split(LABELS, 3, 2, seed=1)
    assert a == per_class_split(torch.tensor(LABELS), 3, 2, seed=1)
    assert a != per_class_split(LABELS, 3, 2, seed=2)
    assert set(per_class_split(LABELS, 3, seed=1)[0]) < set(per_class_split(LABELS, 5, seed=1)[0])


def test_per_class_split_on_a_dataset(tree):
    ds = load("imagefolder", tree, size=S)            # cat: 2 images, dog: 1
    with pytest.raises(ValueError, match="'dog' has 1 images"):
        per_class_split(ds, n_train=1)
    _image(tree / "dog" / "d.png", BLUE)
    ds = load("imagefolder", tree, size=S)
    train, test = per_class_split(ds, n_train=1, seed=0)
    assert sorted(train + test) == [0, 1, 2, 3] and ds.labels[train].tolist() == [0, 1]
