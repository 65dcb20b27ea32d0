"""The training loop: the paper's recipe (Section 3), on a CPU laptop or a GPU.

Recipe: SGD, batch 128, learning rate 0.01, momentum 0.9; dropout 0.5 on fc6 and fc7; the
learning rate ×0.1 when the validation error plateaus (the paper anneals "by hand"; we use
``ReduceLROnPlateau``); filter renormalisation (RMS ≤ 0.1) after every step. Where the paper
is silent: weight decay 5e-4 (AlexNet's value), plateau patience 3 epochs.

Each epoch ends with an atomic checkpoint holding the model, optimiser, scheduler, AMP scaler,
RNG states, mean image and history, so ``resume=True`` continues exactly: on the CPU a run
killed mid-epoch and resumed ends bit-identical to an uninterrupted one, whatever the number
of DataLoader workers (a real dataset's order in epoch *e* comes from its own generator seeded
with (seed, *e*), so neither workers nor a restart change it; the random crops and flips come
from the run's generator, saved in every checkpoint).

The run folder is protected (:mod:`zfbook.outputs`): it is never the current folder, the
repository, ``data/`` or the data root; a run holds it with a lock file for its whole
length, so a second run into it is refused; a new run refuses a folder that is not empty
(``force=True`` removes the old run's files first, and only those); temporary files of a
killed run are removed, also on ``resume``; ``resume=True`` refuses a checkpoint of a
different run (preset, dataset, data root and classes, seeds, recipe; ``force=True``
continues anyway), and every number is checked before any data is read. Ctrl-C raises
:class:`Interrupted`, which says where the run stopped and where ``resume`` continues.

Under ``torchrun`` (:mod:`zfbook.distributed`) the same loop trains with
``DistributedDataParallel``: ``batch_size`` stays the global batch and each of the W
processes takes its 1/W of every batch (the embedded data: one seeded global permutation,
sliced per rank; a real dataset: ``DistributedSampler``); each rank's loss is weighted so
that the averaged gradient is the gradient of the global batch's mean loss, the same step as
one process would take. Parameters stay identical on every rank, so filter renormalisation
agrees; the NaN check and the epoch's metrics are all-reduced; validation is sharded and
all-reduced; random crops and flips come from a per-rank generator seeded by (seed, rank,
epoch). Only rank 0 writes files. The checkpoint records ``world_size`` and the global batch
(so does each history record of a run with more than one process); ``resume`` refuses another
world size unless forced. A single process runs exactly as before.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed, models, outputs
from .checkpoint import (FORMAT, CheckpointError, deferred_interrupts, load_checkpoint, load_state,
                         save_atomic, write_text_atomic)
from .checks import integer, number
from .data.embedded import WORLDS, embedded
from .data.preprocess import Preprocess, mean_image

__all__ = ["Config", "RECIPES", "PAPER_RECIPE", "MINI_RECIPE", "real_split", "train", "evaluate",
           "resolve_device", "default_workers", "available_cores", "plateaued", "check_classes",
           "check_run_folder", "check_same_run", "NonFiniteLoss",
           "Interrupted", "DEVICES", "DATASETS", "RUN_FILES"]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: training data: the embedded dataset, or a real one with a train and a validation split
DATASETS = ("embedded", "parts", "imagenet", "imagenette", "imagefolder", "cifar10")
_VAL_SPLIT = {"imagenet": "val", "imagenette": "val", "imagefolder": "val", "cifar10": "test"}
SNAPSHOTS = (1, 2, 5, 10, 20, 30, 40, 64)
#: the files a run writes into its folder (besides ``snapshots/epoch{E}.pt``)
RUN_FILES = ("last.pt", "history.json")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`train`. ``epoch``/``step``: where it stopped (``None`` before the
    first step); ``resume_epoch``: the epoch ``resume=True`` starts from (the last checkpoint's
    epoch + 1); ``out``: the run folder."""

    def __init__(self, epoch, step, resume_epoch, out):
        self.epoch, self.step, self.resume_epoch, self.out = epoch, step, resume_epoch, out
        where = f"at epoch {epoch} step {step}" if epoch is not None else "before training started"
        kept = (f"the checkpoint of epoch {resume_epoch - 1} is kept in {Path(out) / 'last.pt'}"
                if resume_epoch > 1 else "no checkpoint had been written yet")
        super().__init__(f"interrupted {where}; {kept}")


#: the largest seed (torch's generators take 64 bits)
SEED_MAX = 2**64 - 1
#: the largest learning rate or weight decay (float32's range, rounded down)
FLOAT32_MAX = 3.4e38

#: The paper's recipe (Section 3): batch 128, learning rate 0.01, 70 epochs on ImageNet.
PAPER_RECIPE = {"epochs": 70, "batch_size": 128, "lr": 0.01, "anneal": ()}
#: The CPU recipe of the mini presets (see :data:`RECIPES`).
MINI_RECIPE = {"epochs": 20, "batch_size": 32, "lr": 0.01, "anneal": (16,)}
#: Each preset's recipe: what ``Config`` fields left at ``None`` become. The full-size models
#: take the paper's. The CPU-scale minis keep its optimiser, momentum, dropout, weight decay
#: and renormalisation, and change only the batch, the learning rate, the length and one fixed
#: anneal (the paper anneals "by hand"), chosen by measured runs so that the CLI's default
#: reaches 90% test top-1 on the embedded dataset within 10 minutes on a 2-core CPU.
RECIPES = {
    "zfnet": PAPER_RECIPE, "alexnet": PAPER_RECIPE, "zfnet-wide": PAPER_RECIPE,
    "zfnet-mini": MINI_RECIPE, "alexnet-mini": MINI_RECIPE,
}


def available_cores() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """DataLoader workers by default: the CPU cores this process may use, at most 4."""
    return min(4, available_cores())


@dataclass
class Config:
    """Hyper-parameters of a run (Section 3). ``epochs``, ``batch_size``, ``lr`` and ``anneal``
    left at ``None`` take the preset's recipe (:data:`RECIPES`): the paper's for the full-size
    models, a shorter one for the minis. Every value is checked here, before any data is read;
    a bad one is a one-line ``ValueError`` naming the valid range."""
    preset: str = "zfnet-mini"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    dropout: float = 0.5
    renorm: bool = True
    radius: float = 0.1
    patience: int = 3
    anneal: tuple | None = None  # epochs after which the learning rate is ×0.1 ("by hand")
    # after the last ``anneal`` epoch, stop once the validation top-1 has not improved for this
    # many epochs (``epochs`` is then the most); None: train all ``epochs``
    stop_patience: int | None = None
    seed: int = 0
    data_seed: int | None = None  # the embedded dataset's seed; None: the same as ``seed``
    device: str = "auto"
    dataset: str = "embedded"
    snapshots: tuple = SNAPSHOTS
    amp: bool = True          # mixed precision, CUDA only
    check_every: int = 20     # steps between NaN/inf checks (each check syncs a GPU)
    data_root: str = ""       # real datasets: their root folder
    download: bool = False    # real datasets: download where torchvision can
    workers: int = field(default_factory=default_workers)  # real datasets: DataLoader processes
    mean_images: int = 10000  # real datasets: training images averaged for the mean image
    command: str = ""

    def __post_init__(self):
        base = models.preset(self.preset).base  # a Table 3 variant trains with its preset's recipe
        models._check_choice("dataset", self.dataset, DATASETS)
        for key, value in RECIPES[base].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.data_seed is None:
            self.data_seed = self.seed
        self.epochs = integer("epochs (--epochs)", self.epochs, 1)
        self.batch_size = integer("batch_size (--batch-size)", self.batch_size, 1)
        # the network computes in float32: a larger rate or decay cannot even be applied
        self.lr = number("lr (--lr)", self.lr, 0, FLOAT32_MAX, low_open=True)
        self.momentum = number("momentum", self.momentum, 0, 1, high_open=True)
        self.weight_decay = number("weight_decay (--weight-decay)", self.weight_decay, 0, FLOAT32_MAX)
        self.dropout = number("dropout", self.dropout, 0, 1, high_open=True)
        self.radius = number("radius", self.radius, 0, low_open=True)
        self.patience = integer("patience", self.patience, 0)
        if self.stop_patience is not None:
            self.stop_patience = integer("stop_patience (--stop-patience)", self.stop_patience, 1)
        self.seed = integer("seed (--seed)", self.seed, 0, SEED_MAX)
        self.data_seed = integer("data_seed (--data-seed)", self.data_seed, 0, SEED_MAX)
        self.check_every = integer("check_every", self.check_every, 1)
        self.workers = integer("workers (--workers)", self.workers, 0)
        self.mean_images = integer("mean_images", self.mean_images, 1)
        self.snapshots = tuple(sorted(set(integer("snapshot epochs (--snapshots)", s, 1) for s in self.snapshots)))
        self.anneal = tuple(sorted(set(integer("anneal epochs (--anneal)", s, 1) for s in self.anneal)))
        if self.dataset not in WORLDS and not self.data_root:
            raise ValueError(f"dataset {self.dataset!r} needs --data-root (its folder)")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. Asking for one that is absent is an error."""
    base = str(device).split(":")[0]
    models._check_choice("device", base, DEVICES)
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but CUDA is not available here; "
                           "use --device cpu or --device auto")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device {device!r} was requested but Apple MPS is not available here; "
                           "use --device cpu or --device auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid devices are: {', '.join(DEVICES)} (or cuda:N)") from None


# ----------------------------------------------------------------------------- the run folder
def _snapshot_files(out: Path) -> list[Path]:
    snaps = out / "snapshots"
    return sorted(snaps.glob("epoch*.pt")) if snaps.is_dir() else []


def _leftovers(out: Path) -> list[Path]:
    """Temporary files of a write that a killed run left (``.last.pt.tmp123``,
    ``snapshots/.epoch5.pt.tmp123``: the process 123 no longer runs)."""
    snaps = out / "snapshots"
    return outputs.leftovers(out, RUN_FILES) + [p for p in outputs.leftovers(snaps)
                                                if p.name.startswith(".epoch") and p.is_file()]


def _is_history(path: Path) -> bool:
    try:
        h = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(h, list) and all(isinstance(r, dict) and "epoch" in r for r in h)


def _run_files(out: Path) -> list[Path]:
    """The files of a zfbook run in ``out``; refuses a file with a run's name that a run did
    not write (a foreign ``last.pt``, say), so ``force`` never removes one."""
    files = [out / n for n in RUN_FILES if (out / n).exists()] + _snapshot_files(out)
    for f in files:
        ours = _is_history(f) if f.suffix == ".json" else _is_checkpoint(f)
        if not ours:
            raise ValueError(f"{f} was not written by a zfbook run, so --force will not remove it; "
                             "move it away or choose another --out")
    return files + _leftovers(out)


def _is_checkpoint(path: Path) -> bool:
    try:
        load_checkpoint(path, mmap=True)
        return True
    except CheckpointError:
        return False


def _describe(out: Path, files: list[Path]) -> str:
    names = [str(f.relative_to(out)) for f in files]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return shown or "nothing"


def check_run_folder(out, *, resume: bool = False, force: bool = False) -> list[Path]:
    """What a run may do with the folder ``out``; returns the old run's files that ``force``
    will remove (none unless ``force`` starts over). Nothing is changed here.

    * empty or missing: a new run;
    * ``resume`` with ``out/last.pt``: continue it (see :func:`check_same_run`);
    * otherwise not empty: refused, unless ``force``, which removes the old run's files
      (``last.pt``, ``history.json``, ``snapshots/epoch*.pt``) and keeps anything else.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; --out takes a folder")
    leftovers = _leftovers(out) if out.is_dir() else []
    entries = sorted(p for p in out.iterdir() if p not in leftovers and p.name != outputs.LOCK) \
        if out.is_dir() else []
    if not entries or (resume and (out / "last.pt").exists()):
        return leftovers  # a new or resumed run clears the temporary files of a killed one
    run = [out / n for n in RUN_FILES if (out / n).exists()] + _snapshot_files(out)
    if resume and not run:
        return leftovers  # only other files: nothing to resume, nothing of ours to overwrite
    if not force:
        what = _describe(out, run or entries)
        if resume:
            raise ValueError(f"--out {out} has no last.pt to resume from, but holds {what}; "
                             "add --force to start over (removes them) or choose another --out")
        kind = "a zfbook run" if run else "other files"
        raise ValueError(f"--out {out} is not empty: it holds {kind} ({what}); add --resume to "
                         "continue a run, --force to start over (removes only a run's files), "
                         "or choose a new folder")
    return _run_files(out)


def _hold(out: Path, command: str):
    """Create ``out`` and hold it (:class:`zfbook.outputs.FolderLock`) for the run: (the
    top-most folder this created, the lock)."""
    created = outputs.make_folder(out)
    try:
        return created, outputs.FolderLock(out, "train", command).acquire()
    except BaseException:
        outputs.remove_if_empty(out, created)
        raise


def _clear(out: Path, files: list[Path]) -> None:
    for f in files:
        f.unlink(missing_ok=True)
    if (out / "snapshots").is_dir() and not any((out / "snapshots").iterdir()):
        (out / "snapshots").rmdir()
    run = [f for f in files if f not in _leftovers(out) and not f.name.startswith(".")]
    if run:
        print(f"--force: removed the old run's files from {out}: {_describe(out, run)}", flush=True)


# ----------------------------------------------------------------------------- the same run?
#: Config fields that make a run what it is: ``resume`` refuses a checkpoint that differs in any
#: (``epochs`` may grow; device, workers and snapshots do not change the numbers).
SAME_RUN = ("preset", "dataset", "seed", "data_seed", "batch_size", "lr", "momentum", "weight_decay",
            "dropout", "renorm", "radius", "patience", "anneal")


def _data_identity(train_set, cfg: "Config") -> dict:
    """What identifies a run's training data: its size, classes, labels, and for image files
    their paths relative to the root and their sizes in bytes (so a moved copy of the same
    data is the same data, and other images under the same names are not)."""
    labels = torch.as_tensor(train_set.labels).to(torch.int64).contiguous()
    h = hashlib.sha256(labels.numpy().tobytes())
    base = getattr(train_set, "base", None)
    samples = getattr(base, "samples", None) or getattr(base, "_samples", None)
    root = getattr(train_set, "root", None)
    if samples and root is not None:
        for path, _ in samples:
            try:
                rel = os.path.relpath(path, root)
            except ValueError:  # another drive (Windows)
                rel = str(path)
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            h.update(f"{rel}\0{size}\n".encode())
    return {"n": len(labels), "classes": list(getattr(train_set, "classes", [])), "sha256": h.hexdigest(),
            "root": str(Path(cfg.data_root).expanduser().resolve()) if cfg.data_root else ""}


def check_same_run(ckpt: dict, cfg: "Config", identity: dict | None = None) -> list[str]:
    """The differences between the run saved in ``ckpt`` and ``cfg`` (and, once the data is
    read, its ``identity``): one phrase each, empty if ``cfg`` continues the same run."""
    return _config_diffs(ckpt, cfg) + (_data_diffs(ckpt, identity) if identity is not None else [])


def _config_diffs(ckpt: dict, cfg: "Config") -> list[str]:
    saved = dict(ckpt.get("config", {}))
    saved.setdefault("data_seed", saved.get("seed"))
    saved.setdefault("preset", ckpt.get("preset"))
    now = _config_dict(cfg)
    diffs = []
    for key in SAME_RUN:
        if key in saved and saved[key] != now[key] and not (key == "data_seed" and cfg.dataset not in WORLDS):
            diffs.append(f"{key} {saved[key]!r} in the checkpoint, {now[key]!r} now")
    return diffs


def _data_diffs(ckpt: dict, identity: dict) -> list[str]:
    """The data: its classes, and its images (labels and file paths), wherever its root is."""
    have, diffs = ckpt.get("data"), []
    if have:
        if have.get("classes") != identity["classes"]:
            diffs.append(f"classes {_few(have.get('classes'))} in the checkpoint, {_few(identity['classes'])} now")
        elif have.get("sha256") != identity["sha256"]:
            where = (f" (data root {have.get('root')!r} then, {identity['root']!r} now)"
                     if have.get("root") != identity["root"] else "")
            diffs.append(f"the training images differ: {have.get('n')} then, {identity['n']} now{where}")
    return diffs


def _few(items) -> str:
    items = list(items or [])
    return "[" + ", ".join(map(str, items[:4])) + (f", … {len(items)} in all" if len(items) > 4 else "") + "]"


def _refuse_other_run(last: Path, diffs: list[str], force: bool) -> None:
    if not diffs:
        return
    text = "; ".join(diffs)
    if force:
        print(f"--force: continuing {last} although it is a different run: {text}", flush=True)
        return
    raise CheckpointError(f"cannot resume {last}: it is a different run ({text}); repeat the command "
                          "that started it with --resume, choose another --out, or add --force to "
                          "continue anyway")


# ----------------------------------------------------------------------------- data
def _load_data(cfg: Config):
    if cfg.dataset in WORLDS:
        family = WORLDS[cfg.dataset]
        return embedded("train", family, cfg.data_seed), embedded("val", family, cfg.data_seed)
    return tuple(real_split(cfg.dataset, cfg.data_root, split, cfg.preset, download=cfg.download)
                 for split in ("train", "val"))


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
                                 persistent_workers=shuffle and workers > 0)

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


def _topk_correct(logits, y, ks=(1, 5)):
    k = min(max(ks), logits.shape[1])
    top = logits.topk(k, 1).indices
    hit = top == y[:, None]
    return [hit[:, :min(kk, k)].any(1).sum() for kk in ks]


@torch.no_grad()
def evaluate(model, images, labels, preprocess: Preprocess, *, ten_crop=False, batch_size=256,
             device="cpu", workers=0) -> dict:
    """Top-1 / top-5 accuracy (in %) on uint8 images, with the centre crop or the 10 crops
    (softmax averaged over the crops, Section 3). ``images`` may also be a dataset of
    ``(uint8 image, label)`` items, with ``labels=None``."""
    device = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval().to(device)
    correct1 = correct5 = 0
    loss_sum = 0.0
    batches = (_Batches(images, labels, batch_size, device, shuffle=False) if labels is not None
               else _Loader(images, batch_size, device, workers))
    for x, y in batches:
        if ten_crop:
            crops = preprocess.ten_crop(x)
            n = crops.shape[0]
            probs = F.softmax(model(crops.flatten(0, 1)).float(), 1).view(n, 10, -1).mean(1)
            logits = probs.log()
        else:
            logits = model(preprocess.center(x)).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        c1, c5 = _topk_correct(logits, y)
        correct1 += c1.item()
        correct5 += c5.item()
    model.train(was_training)
    n = len(labels) if labels is not None else len(images)
    return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n, "loss": loss_sum / n}


# ----------------------------------------------------------------------------- RNG state
def _rng_state(gen: torch.Generator, device) -> dict:
    state = {"torch": torch.get_rng_state(), "data": gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator, device) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["data"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- training
def train(cfg: Config, out, *, resume: bool = False, force: bool = False, progress: bool = True,
          data=None, stop_after_steps: int | None = None) -> list:
    """Train ``cfg.preset`` and write ``out/last.pt`` every epoch, ``out/history.json`` and the
    snapshots ``out/snapshots/epoch{E}.pt``. Returns the history (a list of per-epoch dicts).

    ``out`` must be empty or new, unless ``resume`` (continue the run in it, which must be the
    same run: :func:`check_same_run`) or ``force`` (start over, removing the old run's files;
    with ``resume``: continue even a different run). ``data``: optional
    ``(train_set, val_set)`` with ``.images`` uint8 and ``.labels``, instead of the embedded
    dataset. ``stop_after_steps`` ends the run early (tests). Ctrl-C raises :class:`Interrupted`.
    """
    out = Path(out)
    outputs.check_place(out, inputs=[("--data-root", cfg.data_root)])
    device = resolve_device(cfg.device)
    w = distributed.world()
    if w.size > 1:
        if cfg.batch_size % w.size:
            raise ValueError(f"--batch-size {cfg.batch_size} (the global batch) is not divisible by the "
                             f"{w.size} processes; choose a multiple of {w.size}")
        if device.type == "cuda":
            device = torch.device("cuda", w.local_rank)
        w = distributed.init(device)
    # rank 0 creates and holds the folder before any rank looks into it
    created, lock = outputs.on_main(lambda: _hold(out, cfg.command)) or (None, None)
    start_epoch = 1
    try:
        old_files = check_run_folder(out, resume=resume, force=force)
        last = out / "last.pt"
        ckpt = None
        if resume and last.exists():
            ckpt = load_checkpoint(last, map_location=device)
            _refuse_other_run(last, _config_diffs(ckpt, cfg) + _world_diffs(ckpt, cfg, w.size), force)
        elif resume and w.main and not [f for f in old_files if not f.name.startswith(".")]:
            print(f"no checkpoint at {last}; starting from scratch", flush=True)
        if w.size > 1:  # every rank has checked the folder before rank 0 changes it
            torch.distributed.barrier()
        start_epoch = ckpt["epoch"] + 1 if ckpt else 1
        return _run(cfg, out, device, ckpt, old_files if w.main else [], force, progress and w.main, data,
                    stop_after_steps, w)
    except KeyboardInterrupt as e:
        _let_go(out, created, lock)
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(None, None, start_epoch, out) from None
    except BaseException:
        _let_go(out, created, lock)
        raise
    finally:
        if lock is not None:
            lock.release()


def _let_go(out: Path, created, lock) -> None:
    """After a failed or interrupted run: release the folder, and remove it if this run
    created it and wrote nothing."""
    if lock is not None:
        lock.release()
    outputs.remove_if_empty(out, created)


def _world_diffs(ckpt: dict, cfg: "Config", size: int) -> list[str]:
    """A different number of processes: the global batch is kept, but each rank's share of
    it and the per-rank augmentation streams are not."""
    then = int(ckpt.get("world_size", 1))
    if then == size:
        return []
    return [f"world size {then} in the checkpoint, {size} now (the global batch {cfg.batch_size} would be "
            f"split {size} ways instead of {then}; resume with torchrun --nproc_per_node {then}"
            f"{' or without torchrun' if then == 1 else ''})"]


def _run(cfg, out, device, ckpt, old_files, force, progress, data, stop_after_steps,
         w: "distributed.World" = distributed.World()) -> list:
    train_set, val_set = data or _load_data(cfg)
    check_classes(train_set, val_set)
    classes = list(getattr(train_set, "classes", []))
    num_classes = len(classes) or int(torch.as_tensor(train_set.labels).max()) + 1
    identity = _data_identity(train_set, cfg)
    last = out / "last.pt"
    if ckpt is not None:
        _refuse_other_run(last, _data_diffs(ckpt, identity), force)

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = models.build(cfg.preset, num_classes, dropout=cfg.dropout)
    mean = ckpt["mean"].float().cpu() if ckpt else _mean_of(train_set, cfg.mean_images, cfg.batch_size,
                                                              cfg.workers, progress)
    prep = Preprocess(mean.to(device), model.preset.crop, model.preset.input_scale)
    model.to(device)
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    net = model
    if w.size > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=cfg.patience)
    use_amp = cfg.amp and cuda
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history: list[dict] = []
    start_epoch = 1
    if ckpt is not None:
        load_state(model, ckpt, str(last))
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"], gen, device)
        history = list(ckpt["history"])
        start_epoch = ckpt["epoch"] + 1
    if old_files:
        _clear(out, old_files)

    batches = _batches(train_set, cfg.batch_size, device, gen, cfg.workers, seed=cfg.seed, world=w)
    steps = 0
    epoch, step, saved = None, None, start_epoch - 1
    if plateaued(history, cfg.anneal, cfg.stop_patience):
        return history  # a resumed run that had already stopped at its plateau
    try:
        for epoch in range(start_epoch, cfg.epochs + 1):
            step = 0
            t0 = time.perf_counter()
            model.train()
            if hasattr(batches, "set_epoch"):
                batches.set_epoch(epoch)
            # one process: crops and flips from the run's generator; several: from a per-rank one
            aug = gen if w.size == 1 else torch.Generator().manual_seed(
                ((cfg.seed * 1_000_003 + epoch) * 65_537 + w.rank) % 2**64)
            count = 0
            loss_sum = torch.zeros((), device=device)
            c1 = torch.zeros((), device=device, dtype=torch.long)
            c5 = torch.zeros((), device=device, dtype=torch.long)
            bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress, leave=False)
            for i, (xb, yb) in enumerate(bar):
                step = i + 1
                x = prep.random(xb, aug)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    logits = net(x)
                    if w.size == 1:
                        loss = F.cross_entropy(logits, yb)
                    else:  # DDP averages over ranks: weight so the mean is the global batch's
                        total = batches.global_size(i, len(yb))
                        loss = F.cross_entropy(logits, yb, reduction="sum") * (w.size / total)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                if cfg.renorm:
                    models.renormalize_filters(model, cfg.radius)
                loss_sum += (loss.detach() * len(yb) if w.size == 1 else
                             loss.detach() * (batches.global_size(i, len(yb)) / w.size))
                count += len(yb)
                a, b = _topk_correct(logits.detach(), yb)
                c1 += a
                c5 += b
                if (i + 1) % cfg.check_every == 0 or i + 1 == len(batches):
                    bad = ~torch.isfinite(loss_sum)
                    if w.size > 1:  # every rank stops together
                        bad = bad.to(torch.int32)
                        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
                        bad = bad.bool()
                    if bad:
                        bar.close()
                        kept = (f"The last good checkpoint (epoch {epoch - 1}) is kept at {last}."
                                if last.exists() else "No checkpoint had been written yet.")
                        raise NonFiniteLoss(
                            f"the training loss became {loss_sum.item()} in epoch {epoch}; stopping. {kept} "
                            f"Try a new run with a lower --lr (now {opt.param_groups[0]['lr']}; "
                            f"--resume keeps the checkpoint's learning rate).")
                    bar.set_postfix(loss=f"{loss_sum.item() / ((i + 1) * cfg.batch_size):.3f}")
                steps += 1
                if stop_after_steps is not None and steps >= stop_after_steps:
                    bar.close()
                    return history
            bar.close()
            n = len(train_set.labels) if hasattr(train_set, "labels") else len(train_set)
            if w.size > 1:
                loss_sum, c1, c5, n = _all_reduce_sums(loss_sum, c1, c5, count, device)
                val = _evaluate_sharded(model, val_set, prep, device, cfg.workers, w)
            elif hasattr(val_set, "images"):
                val = evaluate(model, val_set.images, val_set.labels, prep, device=device)
            else:
                val = evaluate(model, val_set, None, prep, device=device, workers=cfg.workers)
            lr = opt.param_groups[0]["lr"]
            sched.step(100.0 - val["top1"])
            if epoch in cfg.anneal:  # the paper anneals by hand; a recipe may fix the epochs
                for g in opt.param_groups:
                    g["lr"] *= 0.1
            rec = {"epoch": epoch, "train_loss": loss_sum.item() / n, "train_top1": 100.0 * c1.item() / n,
                   "train_top5": 100.0 * c5.item() / n, "val_loss": val["loss"], "val_top1": val["top1"],
                   "val_top5": val["top5"], "lr": lr, "seconds": time.perf_counter() - t0}
            if w.size > 1:
                rec.update(world_size=w.size, batch_size=cfg.batch_size)
            history.append(rec)
            ckpt = {"format": FORMAT, "preset": cfg.preset, "num_classes": num_classes, "classes": classes,
                    "model": _model_state(model), "mean": mean, "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                    "rng": _rng_state(gen, device), "epoch": epoch, "history": history,
                    "config": _config_dict(cfg), "data": identity}
            if w.size > 1:
                ckpt.update(world_size=w.size, global_batch=cfg.batch_size)
            with deferred_interrupts():  # Ctrl-C waits until the epoch's files are all written
                if w.main:
                    _save_epoch(out, ckpt, epoch in cfg.snapshots)
                saved = epoch
            if progress:
                tqdm.write(f"epoch {epoch}: loss {rec['train_loss']:.3f}  train top-1 {rec['train_top1']:.1f}%  "
                           f"val top-1 {rec['val_top1']:.1f}%  top-5 {rec['val_top5']:.1f}%  lr {lr:g}  "
                           f"{rec['seconds']:.0f}s")
            if plateaued(history, cfg.anneal, cfg.stop_patience):
                if progress:
                    tqdm.write(f"stopped after epoch {epoch}: validation top-1 has not improved for "
                               f"{cfg.stop_patience} epochs")
                break
    except KeyboardInterrupt:
        raise Interrupted(epoch, step, saved + 1, out) from None
    return history


def plateaued(history: list, anneal=(), stop_patience: int | None = None) -> bool:
    """Has a run reached its plateau? True when ``stop_patience`` is set, every ``anneal``
    epoch is behind it, and the best validation top-1 since the last change of the learning
    rate is at least ``stop_patience`` epochs old (the paper trains until the validation
    error stops falling, Section 3; its last change is the end of the run)."""
    if not stop_patience or not history or history[-1]["epoch"] < max(anneal, default=0) + 1:
        return False
    lr = history[-1]["lr"]
    tail = []
    for h in reversed(history):
        if h["lr"] != lr or h["epoch"] <= max(anneal, default=0):
            break
        tail.append(h["val_top1"])
    tail.reverse()
    best = max(range(len(tail)), key=lambda i: (tail[i], -i))  # the first epoch at the best
    return len(tail) - 1 - best >= stop_patience


def _all_reduce_sums(loss_sum, c1, c5, count, device):
    """The epoch's training loss, top-1 and top-5 counts and image count, summed over ranks."""
    t = torch.stack([loss_sum.double(), c1.double(), c5.double(),
                     torch.tensor(float(count), dtype=torch.float64, device=device)])
    torch.distributed.all_reduce(t)
    return t[0], t[1].round().long(), t[2].round().long(), int(t[3].item())


def _evaluate_sharded(model, val_set, prep, device, workers, w) -> dict:
    """:func:`evaluate` on this rank's shard of the validation set, summed over ranks."""
    n_all = len(val_set.labels) if hasattr(val_set, "labels") else len(val_set)
    part = distributed.shard(n_all, w.rank, w.size)
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    if len(part):
        if hasattr(val_set, "images"):
            r = evaluate(model, val_set.images[part.start:part.stop], val_set.labels[part.start:part.stop],
                         prep, device=device)
        else:
            from torch.utils.data import Subset
            r = evaluate(model, Subset(val_set, part), None, prep, device=device, workers=workers)
        k = len(part)
        sums += torch.tensor([round(r["top1"] * k / 100), round(r["top5"] * k / 100), r["loss"] * k, k],
                             dtype=torch.float64, device=device)
    torch.distributed.all_reduce(sums)
    c1, c5, loss, k = sums.tolist()
    return {"top1": 100.0 * c1 / k, "top5": 100.0 * c5 / k, "loss": loss / k}


def _save_epoch(out: Path, ckpt: dict, snapshot: bool) -> None:
    """The epoch's checkpoint, its snapshot and the history, each written atomically."""
    save_atomic(ckpt, out / "last.pt")
    if snapshot:
        save_atomic({k: ckpt[k] for k in ("format", "preset", "num_classes", "classes", "model",
                                          "mean", "epoch", "history", "config")},
                    out / "snapshots" / f"epoch{ckpt['epoch']}.pt")
    write_text_atomic(out / "history.json", json.dumps(ckpt["history"], indent=1))


def _model_state(model) -> dict:
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format).clone()
            for k, v in model.state_dict().items()}


def _config_dict(cfg: Config) -> dict:
    d = asdict(cfg)
    d["snapshots"] = list(d["snapshots"])
    d["anneal"] = list(d["anneal"])
    return d
