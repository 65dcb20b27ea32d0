"""The training data (:func:`zfbook.train.train`): the splits of the embedded or a real
dataset, the check of their classes, the subsets and labels a run may ask for
(:func:`per_class`, :func:`shuffle_labels`), the mean image, and each epoch's batches.

The embedded dataset is held in memory and batched by :class:`_Batches` in an order drawn
from the run's generator; a real dataset is read by a DataLoader (:class:`_Loader`) whose
order in epoch *e* comes from its own generator seeded with (seed, *e*), so neither the
number of workers nor a restart changes it. Under ``torchrun`` each of the W processes
takes its 1/W of every batch (the embedded data: one seeded global permutation, sliced per
rank; a real dataset: ``DistributedSampler``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from . import distributed, models
from .checkpoint import deferred_interrupts
from .checks import integer
from .data.embedded import WORLDS, embedded
from .data.preprocess import mean_image
from .resume import _few

if TYPE_CHECKING:
    from .train import Config

_VAL_SPLIT = {"imagenet": "val", "imagenette": "val", "imagefolder": "val", "cifar10": "test"}


def _load_data(cfg: Config):
    if cfg.dataset in WORLDS:
        family = WORLDS[cfg.dataset]
        return embedded("train", family, cfg.data_seed), embedded("val", family, cfg.data_seed)
    return tuple(real_split(cfg.dataset, cfg.data_root, split, cfg.preset, download=cfg.download)
                 for split in ("train", "val"))


def per_class(dataset, n: int):
    """The first ``n`` images of each class of ``dataset``, in its order (a class with fewer
    keeps all of its): the small training set a network can memorise, e.g. for the
    data-randomisation test (Adebayo et al. 2018, Section 4). The kept images keep their
    order and their labels; composes with :func:`shuffle_labels` (first this, then that)."""
    n = integer("train_per_class (--train-per-class)", n, 1)
    labels = torch.as_tensor(dataset.labels).to(torch.int64)
    keep = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        keep[(labels == c).nonzero()[:n, 0]] = True
    kept = keep.nonzero()[:, 0]
    return _view(dataset, kept, labels[kept])


def shuffle_labels(dataset, seed: int):
    """``dataset`` with its labels replaced by a seeded permutation of them (every class
    keeps its count; the images keep their order): the network of the data-randomisation
    test (Adebayo et al. 2018, Section 4; Zhang et al. 2017's random labels), which can only
    memorise. The permutation depends on ``seed`` alone, so a resumed run sees the same
    labels."""
    import numpy as np
    labels = torch.as_tensor(dataset.labels).to(torch.int64)
    perm = torch.from_numpy(np.random.default_rng([int(seed), 0x5EED1AB]).permutation(len(labels)))
    return _view(dataset, None, labels[perm].clone())


def _view(dataset, kept: torch.Tensor | None, labels: torch.Tensor):
    """``dataset`` restricted to the images ``kept`` (indices in order; None: all), with new
    ``labels``. An in-memory dataset (``.images``) is copied, each per-image tensor of it
    (images, masks, ...) indexed; any other is wrapped in a :class:`_View` (one level: a
    view of a view indexes the underlying dataset)."""
    import copy
    if hasattr(dataset, "images"):
        out = copy.copy(dataset)
        if kept is not None:
            n = len(dataset.labels)
            for name, value in vars(dataset).items():
                if isinstance(value, torch.Tensor) and value.dim() and len(value) == n:
                    setattr(out, name, value[kept])
        out.labels = labels
        return out
    if isinstance(dataset, _View):
        if kept is not None and dataset.kept is not None:
            kept = dataset.kept[kept]
        elif kept is None:
            kept = dataset.kept
        dataset = dataset.dataset
    return _View(dataset, kept, labels)


class _View:
    """A dataset of ``(image, label)`` items: the wrapped one's items ``kept`` (None: all),
    with ``labels`` in place of theirs; every other attribute (classes, root, the underlying
    files) is the wrapped dataset's. Picklable (DataLoader workers may pickle it)."""

    def __init__(self, dataset, kept: torch.Tensor | None, labels: torch.Tensor):
        self.dataset, self.kept, self.labels = dataset, kept, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.dataset[i if self.kept is None else int(self.kept[i])][0], self.labels[i]

    def __getattr__(self, name):
        if name in ("dataset", "kept", "labels"):   # while unpickling, before __init__'s attributes exist
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _split_name(data) -> str:
    name, split, root = (getattr(data, a, None) for a in ("name", "split", "root"))
    if name == "imagefolder":
        return str(Path(root) / split) if split else str(root)
    return f"{name}'s {split} split" if name else "the training data"


def check_classes(train_set, val_set) -> None:
    """Refuse training data of fewer than two classes, and a validation split whose classes
    are not the training split's, by name and in the same order (a label is a position in
    the class list: matched by position, a validation image of ``dog`` would be scored as
    whatever class is at ``dog``'s place in training)."""
    have = list(getattr(train_set, "classes", None) or [])
    n = len(have) or int(torch.unique(torch.as_tensor(train_set.labels)).numel())
    if n < 2:
        names = f" ({', '.join(map(str, have))})" if have else ""
        raise ValueError(f"{_split_name(train_set)} holds {n} class{'' if n == 1 else 'es'}{names}; a "
                         "classifier needs at least 2 (imagefolder: one folder per class)")
    val = list(getattr(val_set, "classes", None) or [])
    if have and val and val != have:
        only_t, only_v = [c for c in have if c not in val], [c for c in val if c not in have]
        diff = "; ".join(p for p in (f"only in training: {_few(only_t)}" if only_t else "",
                                     f"only in validation: {_few(only_v)}" if only_v else "") if p)
        raise ValueError(f"{_split_name(train_set)} and {_split_name(val_set)} hold different classes "
                         f"({diff or 'the same names in another order'}); the validation split needs the "
                         "training split's classes")


def real_split(dataset: str, root, split: str, preset: str, *, download: bool = False):
    """A real dataset's ``train`` split, or for any other ``split`` the one that serves as its
    validation split (CIFAR-10's ``test``, the others' ``val``; imagefolder: ``root/train`` and
    ``root/val``), resized to ``preset``'s input side. Training reads both; ``evaluate``
    reads the validation split in place of a test split."""
    from .data.real import load
    if not root:
        raise ValueError(f"dataset {dataset!r} needs --data-root (its folder)")
    name = "train" if split == "train" else _VAL_SPLIT[dataset]
    return load(dataset, Path(root), name, size=models.preset(preset).resize, download=download)


def _mean_of(dataset, n: int, batch_size: int, workers: int, progress: bool = True) -> torch.Tensor:
    """Per-pixel mean over ``dataset`` (all of it, or an evenly spaced ``n`` images of it)."""
    if hasattr(dataset, "images"):
        return mean_image(dataset.images)
    from torch.utils.data import Subset
    idx = torch.linspace(0, len(dataset) - 1, min(n, len(dataset))).long().tolist()
    total, count = None, 0
    loader = _Loader(Subset(dataset, idx), batch_size, torch.device("cpu"), workers)
    for x, _ in tqdm(loader, desc="mean image", leave=False, disable=not progress):
        s = x.double().sum(0)
        total = s if total is None else total + s
        count += len(x)
    return (total / count).float()


def _batches(dataset, batch_size, device, generator, workers, shuffle=True, seed=0,
             world: "distributed.World" = distributed.World()):
    """uint8 batches on ``device``: in memory for the embedded dataset (in an order drawn from
    ``generator``), else a DataLoader (in an order seeded by ``seed`` and the epoch). With
    several processes, this rank's share of every global batch of ``batch_size``."""
    if hasattr(dataset, "images"):
        return _Batches(dataset.images, dataset.labels, batch_size, device, generator, shuffle, world)
    return _Loader(dataset, batch_size // world.size, device, workers, shuffle=shuffle, seed=seed,
                   world=world)


class _Loader:
    """A DataLoader over a real dataset. With ``shuffle``, epoch *e*'s order is a permutation
    seeded with ``seed``·10⁶ + *e* (``DistributedSampler`` with one replica; call
    :meth:`set_epoch`), drawn from no other generator, so the order and the run's own RNG
    streams are the same whatever the workers and whether the run was resumed. Workers
    persist across epochs while shuffling (training). An error in a worker (a damaged
    image) is re-raised as one line."""

    def __init__(self, dataset, batch_size, device, workers, *, shuffle=False, seed=0,
                 world: "distributed.World" = distributed.World()):
        from torch.utils.data import DataLoader, DistributedSampler
        self.device, self.cuda = device, device.type == "cuda"
        self.world = world.size
        self.sampler = (DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=True,
                                           seed=seed * 10**6 % 2**63) if shuffle else None)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, num_workers=workers,
                                 generator=torch.Generator().manual_seed(seed), pin_memory=self.cuda,
                                 worker_init_fn=quiet_worker, persistent_workers=shuffle and workers > 0)

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def global_size(self, i: int, local: int) -> int:
        """The global batch's size (DistributedSampler gives every rank as many images)."""
        return local * self.world

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        try:
            # Ctrl-C while the workers start would leave a half-built iterator whose clean-up
            # prints a traceback when it is collected; the interrupt waits until they have started
            with deferred_interrupts():
                batches = iter(self.loader)
            for x, y in batches:
                yield x.to(self.device, non_blocking=self.cuda), y.to(self.device, non_blocking=self.cuda)
        except Exception as e:
            raise _worker_error(e) from None


def quiet_worker(worker_id: int) -> None:
    """A DataLoader worker's ``worker_init_fn``: Ctrl-C is the main process's to handle (it
    stops the workers), and a worker whose main process has gone while it was handing over a
    batch says nothing more (multiprocessing's fd-sharing thread reports the broken pipe
    through ``sys.excepthook``); the main process has already said, in one line, what
    happened."""
    import signal
    import sys
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    default = sys.excepthook

    def hook(kind, value, tb):
        if not issubclass(kind, ConnectionError):
            default(kind, value, tb)
    sys.excepthook = hook


def _worker_error(e: Exception) -> Exception:
    """A DataLoader worker's error arrives with the worker's whole traceback in its message;
    keep its last line (the error itself), in the same exception type where possible."""
    text = str(e)
    if "Original Traceback" not in text:
        return e
    last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
    name, sep, msg = last.partition(": ")
    msg = msg if sep and "." in name or name.endswith(("Error", "Exception")) else last
    try:
        return type(e)(msg)
    except TypeError:
        return RuntimeError(msg)


class _Batches:
    """In-memory uint8 batches in a seeded random order; on CUDA each batch is pinned and
    copied without blocking."""

    def __init__(self, images, labels, batch_size, device, generator=None, shuffle=True,
                 world: "distributed.World" = distributed.World()):
        self.images, self.labels, self.bs = images, labels, batch_size
        self.device, self.generator, self.shuffle = device, generator, shuffle
        self.world = world

    def global_size(self, i: int, local: int) -> int:
        """The size of global batch ``i`` (the last one may be short)."""
        return min(self.bs, len(self.labels) - i * self.bs)

    def __len__(self):
        return math.ceil(len(self.labels) / self.bs)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        cuda = self.device.type == "cuda"
        for i in range(0, n, self.bs):
            idx = order[i:i + self.bs]
            if self.world.size > 1:  # this rank's share of the global batch
                idx = torch.tensor_split(idx, self.world.size)[self.world.rank]
            x, y = self.images[idx], self.labels[idx]
            if cuda:
                x, y = x.pin_memory(), y.pin_memory()
            yield x.to(self.device, non_blocking=cuda), y.to(self.device, non_blocking=cuda)
