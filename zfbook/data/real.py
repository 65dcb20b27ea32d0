"""Real datasets through torchvision, for readers who are online (Sections 4–5).

``load(name, root)`` returns a :class:`RealDataset` of ``(image, label)`` pairs, by default
a uint8 (3, size, size) tensor prepared as in Section 3 (shortest side resized to ``size``,
centre crop; grayscale images become RGB). Where torchvision can download a dataset,
``download=True`` does it; otherwise, or offline, :class:`DatasetNotFound` says how to get
the data. On-disk layouts under ``root``:

================  ==========================================================================
``imagefolder``   ``root/<class>/<image>`` (or ``root/<split>/<class>/<image>`` with ``split``)
``imagenet``      ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (ILSVRC-2012,
                  validation images sorted into wnid folders); not downloadable
``imagenette``    ``root/imagenette2-160/train/<wnid>/*.JPEG`` (or ``-320``, or full-size
                  ``imagenette2``: the smallest whose images are at least ``size``)
``cifar10``       ``root/cifar-10-batches-py/data_batch_1`` … ``test_batch``
``caltech101``    ``root/caltech101/101_ObjectCategories/<class>/image_0001.jpg``
``caltech256``    ``root/caltech256/256_ObjectCategories/001.ak47/001_0001.jpg``
================  ==========================================================================

Caltech-101/256 have no official split: load them whole and split with
:func:`per_class_split`, the protocol of Tables 4–5 and Fig. 9.

An image that cannot be read (damaged, cut short, not an image, or more than
:data:`MAX_ASPECT` times longer than wide, which resizing would blow up) raises
:class:`ImageReadError` naming its file, also from a DataLoader worker. An image folder with
a symbolic link back to a folder above it is refused naming the link
(:func:`refuse_link_loops`), not walked forever. A failed download removes the folders it
created, so no empty root is left behind.
"""
from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torchvision
from torch.utils.data import Dataset
from torchvision import datasets as tvd
from torchvision.transforms import v2 as T

from .preprocess import resize_center

__all__ = ["DATASETS", "DatasetNotFound", "ImageReadError", "RealDataset", "load", "per_class_split",
           "MAX_ASPECT", "check_image_size", "refuse_link_loops"]

#: Names accepted by :func:`load`.
DATASETS = ("imagefolder", "imagenet", "imagenette", "cifar10", "caltech101", "caltech256")

#: Valid splits per dataset; the first is the default. ``None``: the whole dataset.
SPLITS = {"imagefolder": (None,), "imagenet": ("train", "val"), "imagenette": ("train", "val"),
          "cifar10": ("train", "test"), "caltech101": (None,), "caltech256": (None,)}

#: Seconds a socket may wait while downloading: an offline machine fails fast instead of hanging.
DOWNLOAD_TIMEOUT = 30.0

_IMAGENETTE = (("160px", 160, "imagenette2-160"), ("320px", 320, "imagenette2-320"),
               ("full", None, "imagenette2"))   # torchvision's ``size``, shortest side, folder
_URLS = {
    "imagenette": "https://s3.amazonaws.com/fast-ai-imageclas/{folder}.tgz",
    "cifar10": tvd.CIFAR10.url,
    "caltech101": "https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip",
    "caltech256": "https://data.caltech.edu/records/nyy15-4j048/files/256_ObjectCategories.tar",
}


class DatasetNotFound(RuntimeError):
    """A real dataset is not on disk, is damaged, or could not be downloaded.

    ``.name`` and ``.root`` say which; the message says how to get the data.
    """

    def __init__(self, name: str, root, problem: str, how: str):
        self.name, self.root = name, str(root)
        super().__init__(f"{name} {problem} (root='{root}'). To get it: {how}")


class ImageReadError(OSError):
    """An image of a real dataset could not be read; the message names the file."""


class RealDataset(Dataset):
    """A torchvision dataset with zfbook's interface.

    Items are ``(image, label)``; ``.classes`` are the class names, ``.labels`` an int64
    tensor with one label per item, ``.base`` the torchvision dataset underneath.
    """

    def __init__(self, name: str, root: Path, split: Optional[str], base: Dataset,
                 classes: Sequence[str], labels: Sequence[int]):
        self.name, self.root, self.split, self.base = name, root, split, base
        self.classes = list(classes)
        self.labels = torch.as_tensor(list(labels), dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        try:
            return self.base[index]
        except Exception as e:  # PIL: UnidentifiedImageError, "image file is truncated", SyntaxError ...
            text = " ".join(str(e).split()) or type(e).__name__
            raise ImageReadError(f"cannot read {self.file(index)} ({self.name}): {text}") from None

    def file(self, index: int) -> str:
        """The file of item ``index`` where the dataset has one file per image, else ``item N``."""
        samples = getattr(self.base, "samples", None) or getattr(self.base, "_samples", None)
        try:
            return str(samples[index][0])
        except (TypeError, IndexError, KeyError):
            return f"item {index}"

    def __repr__(self) -> str:
        return (f"RealDataset({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"classes={len(self.classes)}, root='{self.root}')")


#: The most elongated image accepted, as longer side / shorter side. Images are resized so
#: that the shorter side is the network's input side: a 1,000,000 × 1 strip (3 KB as a PNG)
#: would become 256 × 256,000,000 pixels (tens of GB), so it is refused before it is resized.
MAX_ASPECT = 100


def check_image_size(size) -> None:
    """Refuse an image of ``size`` (width, height) more elongated than :data:`MAX_ASPECT`
    (or with a side of 0 pixels): a one-line ValueError, before any pixel is resized."""
    w, h = size
    if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
        ratio = f"{max(w, h) / min(w, h):,.0f} times" if min(w, h) else "infinitely"
        raise ValueError(f"{w}×{h} pixels: one side {ratio} longer than the other, too elongated to "
                         "resize (the shorter side is scaled to the network's input side); zfbook "
                         f"accepts images up to {MAX_ASPECT}:1")


def _rgb(image):
    """PIL image → RGB (Caltech has grayscale images, ImageNet a few CMYK ones); an image too
    elongated to resize is refused (:func:`check_image_size`)."""
    check_image_size(image.size)
    return image.convert("RGB")


def _imagenette_folder(root: Path, size: int) -> tuple[str, str]:
    """The Imagenette variant to use: one already on disk, else the smallest whose side ≥ size."""
    fits = [(v, f) for v, side, f in _IMAGENETTE if side is None or side >= size]
    present = [(v, f) for v, f in fits if (root / f).is_dir()]
    return (present or fits)[0]


def _where(name: str, root: Path, split: Optional[str], size: int) -> tuple[Path, str, bool]:
    """(path that must exist, how to get the data, can torchvision download it)."""
    get = "pass download=True while online (it fetches {url}), or extract that archive so that {path} exists"
    if name == "imagefolder":
        path = root if split is None else root / split
        return path, f"put the images in one folder per class, {path}/<class>/<image>.jpg", False
    if name == "imagenet":
        return root / split, (
            "ImageNet (ILSVRC-2012) needs an account at https://image-net.org, so it is not downloaded "
            f"automatically. Extract it as class folders {root}/train/<wnid>/*.JPEG and "
            f"{root}/val/<wnid>/*.JPEG (sort the validation images into wnid folders, e.g. with "
            "valprep.sh from the PyTorch ImageNet example)"), False
    if name == "imagenette":
        _, folder = _imagenette_folder(root, size)
        path = root / folder / split
        return path, get.format(url=_URLS[name].format(folder=folder), path=f"{path}/<wnid>/*.JPEG"), True
    if name == "cifar10":
        path = root / tvd.CIFAR10.base_folder
        return path, get.format(url=_URLS[name], path=f"{path}/data_batch_1"), True
    if name == "caltech101":
        path = root / "caltech101" / "101_ObjectCategories"
        return path, get.format(url=_URLS[name], path=f"{path}/<class>/image_0001.jpg") + (
            " (the zip holds 101_ObjectCategories.tar.gz)"), True
    path = root / "caltech256" / "256_ObjectCategories"
    return path, get.format(url=_URLS[name], path=f"{path}/001.ak47/001_0001.jpg"), True


def refuse_link_loops(top) -> None:
    """Refuse a folder tree with a symbolic link back to a folder above it (``cat/up -> ..``).

    torchvision's ``ImageFolder`` walks its class folders following links (``os.walk`` with
    ``followlinks=True``), which never ends on such a loop. This walks the tree first, also
    following links, and keeps the real paths of the folders above each one: a link to one
    of them is refused in one line that names it. Links elsewhere (a class folder kept on
    another disk, say) are followed as before."""
    top = Path(top)
    stack = [(str(top), (os.path.realpath(top),))]
    while stack:
        folder, above = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: torchvision says so when it gets there
        for e in entries:
            try:
                if not e.is_dir():  # follows links
                    continue
            except OSError:
                continue
            real = os.path.realpath(e.path)
            if real in above:
                raise ValueError(f"{e.path} is a symbolic link to {real}, a folder that contains it: reading "
                                 f"{top} would never end; remove the link or point it elsewhere")
            stack.append((e.path, above + (real,)))


def _open(name: str, root: Path, split: Optional[str], size: int, transform, download: bool):
    """The torchvision dataset, its class names and its labels."""
    if name in ("imagefolder", "imagenet"):
        path = _where(name, root, split, size)[0]
        refuse_link_loops(path)
        ds = tvd.ImageFolder(path, transform=transform)
        return ds, ds.classes, ds.targets
    if name == "cifar10":
        ds = tvd.CIFAR10(root, train=split == "train", transform=transform, download=download)
        return ds, ds.classes, ds.targets
    if name == "caltech101":    # drops BACKGROUND_Google, as torchvision does
        ds = tvd.Caltech101(root, transform=transform, download=download)
        return ds, ds.categories, ds.y
    if name == "caltech256":    # "001.ak47" → "ak47"; 257.clutter is kept
        ds = tvd.Caltech256(root, transform=transform, download=download)
        return ds, [re.sub(r"^\d+\.", "", c) for c in ds.categories], ds.y
    if not hasattr(tvd, "Imagenette"):
        raise ValueError(f"imagenette needs torchvision>=0.17 (this is {torchvision.__version__}); "
                         f"or load('imagefolder', '{root}/imagenette2-320', split='train')")
    variant, _ = _imagenette_folder(root, size)
    ds = tvd.Imagenette(root, split=split, size=variant, download=download, transform=transform)
    return ds, [names[0] for names in ds.classes], [label for _, label in ds._samples]


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def load(name: str, root, split: Optional[str] = None, size: int = 256, download: bool = False,
         transform: Optional[Callable] = None) -> RealDataset:
    """A real dataset of ``(image, label)`` pairs, read with torchvision.

    Args:
        name: one of :data:`DATASETS`; layouts under ``root`` are in the module docstring.
        split: ``"train"`` (default) / ``"val"`` for imagenet and imagenette, ``"train"`` /
            ``"test"`` for cifar10; Caltech has none (use :func:`per_class_split`); for
            imagefolder, a sub-folder of ``root`` (default: ``root`` itself).
        size: images are resized (shortest side) to ``size`` and centre-cropped: uint8 (3, size, size).
        download: fetch the data if it is missing (imagenette, cifar10, caltech101, caltech256).
        transform: replaces the default resize-crop-to-tensor; it receives an RGB PIL image.

    Raises:
        ValueError: unknown name or split.
        DatasetNotFound: the data is missing and was not (or could not be) downloaded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; datasets are {', '.join(DATASETS)} "
                         "(the offline default is zfbook.data.embedded())")
    if split is None:
        split = SPLITS[name][0]
    elif name != "imagefolder" and split not in SPLITS[name]:
        if SPLITS[name] == (None,):
            raise ValueError(f"{name} has no official split; load it whole and use "
                             "per_class_split(dataset, n_train, n_test, seed)")
        raise ValueError(f"unknown split {split!r} for {name}; splits are {', '.join(SPLITS[name])}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")

    root = Path(root).expanduser()
    path, how, downloadable = _where(name, root, split, size)
    present = path.is_dir()
    if not present and not (download and downloadable):
        raise DatasetNotFound(name, root, f"not found: {path} does not exist", how)
    tf = T.Compose([_rgb, transform if transform is not None
                    else T.Compose([resize_center(size), T.PILToTensor()])])
    fetch = download and not present
    created = _first_missing(root) if fetch else None
    before = set(root.iterdir()) if fetch and created is None else None
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT) if download else contextlib.nullcontext():
            base, classes, labels = _open(name, root, split, size, tf, download)
    except (OSError, RuntimeError, http.client.HTTPException) as err:
        _undo_download(created, root, before)
        problem = (f"could not be downloaded (offline?): {type(err).__name__}: {err}" if fetch
                   else f"could not be read from {path} (missing or damaged files): {err}")
        raise DatasetNotFound(name, root, " ".join(problem.split()), how) from err
    except BaseException:
        _undo_download(created, root, before)
        raise
    return RealDataset(name, root, split, base, classes, labels)


def _undo_download(created, root: Path, before) -> None:
    """Remove what a failed download made: the folders it created, or the new entries (a
    partial archive, a half-extracted folder) of a root that existed before."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
    elif before is not None and root.is_dir():
        for p in set(root.iterdir()) - before:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _first_missing(root: Path):
    """The top-most folder of ``root`` that does not exist yet (None if ``root`` exists)."""
    top = None
    for p in [root, *root.parents]:
        if p.exists():
            break
        top = p
    return top


def per_class_split(labels, n_train: int, n_test: Optional[int] = None, seed: int = 0):
    """Indices for the transfer protocol of Tables 4–5: per class, ``n_train`` random
    training images and up to ``n_test`` of the rest for test (all of them if ``None``).

    The paper uses Caltech-101 with 15 or 30 per class and at most 50 test images per class,
    Caltech-256 with 15–60 per class (and down to 6 in Fig. 9); repeat with ``seed`` = 0, 1, …
    for folds. ``labels`` is a dataset with ``.labels`` or a sequence of class indices.
    With one seed the splits are nested: the training set for 15 is inside that for 30.

    Returns:
        ``(train, test)``: sorted, disjoint lists of indices, the same for the same seed.
    """
    classes = getattr(labels, "classes", None)
    labels = torch.as_tensor(getattr(labels, "labels", labels), dtype=torch.int64)
    if n_train < 1 or (n_test is not None and n_test < 1):
        raise ValueError(f"n_train and n_test must be at least 1, got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in torch.unique(labels).tolist():
        idx = rng.permutation(torch.nonzero(labels == c).flatten().numpy())
        if len(idx) <= n_train:
            cname = classes[c] if classes is not None else c
            raise ValueError(f"class {cname!r} has {len(idx)} images: n_train={n_train} leaves none "
                             "to test on")
        train += idx[:n_train].tolist()
        test += idx[n_train:None if n_test is None else n_train + n_test].tolist()
    return sorted(train), sorted(test)
