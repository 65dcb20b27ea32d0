"""Transfer (Section 5, Tables 4–5, Fig. 9): the network's features on classes it never saw.

Three **arms**, run on the *same* seeded draws of training images:

* ``frozen`` — layers 1–7 frozen, a new softmax trained on top (the paper's setup): a
  multinomial logistic regression on the fc7 features (:func:`zfbook.probes.probe`,
  ``softmax``), which is Table 7's "Softmax (7)" probe;
* ``scratch`` — the same architecture trained from random weights on the few images,
  with the project's trainer (:func:`zfbook.train.train`) and the :data:`SCRATCH` recipe;
* ``finetune`` — every layer trained from the pretrained weights at a small learning rate
  with a new fc8 (:data:`FINETUNE`; what practitioners do today, beyond the paper).

**Features** (:func:`features`): the rectified output of each requested layer, for a whole
split in one batched pass (centre crop, the checkpoint's own preprocessing), stopping at
the last layer asked for. Conv maps are flattened, as the paper's linear classifiers take
them; with ``pooling="max"`` (the default) they are first max-pooled to at most 6×6
(ZFNet's pool5 grid; :data:`GRID`), which keeps conv1 of the full model at 96·36 numbers
instead of 96·55·55. :func:`cached_features` stores them under
``$ZFBOOK_CACHE/features/<checkpoint sha256>/<split>--<layer>--<pooling>.pt``.

**The low-shot protocol** (:class:`TransferSet`): per class, a seeded permutation
(``numpy.random.default_rng([seed, draw, class])``) of the class's training pool; a draw
with *k* shots takes its first *k* images, so within a draw the training sets are nested
(the 5 images of the 5-shot set are among the 10-shot set's). The test images are a fixed
split (the embedded families, imagefolder) or, for Caltech, the next images of the same
permutation after the protocol's maximum number of shots, up to ``n_test`` per class
(Caltech-101: at most 30 shots, 50 test images per class, as in Table 4; Caltech-256: at
most 60 shots, 25 test images per class — the paper says only that it follows Griffin et
al.), so a draw's test set is the same for every number of shots. Scores are mean
per-class accuracy in percent.

**Refusals**: unknown arms, layers, poolings and datasets, and more shots than a class has
(the message names the maximum) are one-line ``ValueError``s; a missing dataset is
:class:`zfbook.data.real.DatasetNotFound`, a bad checkpoint
:class:`zfbook.checkpoint.CheckpointError`.

**Records** (:class:`Records`): ``results.json`` is a list of records, one per line,
written atomically after each one; a run started again skips the records it already has
and refuses records of another checkpoint, dataset, seed or recipe unless told to start the
file over (one file never mixes two models), and a ``results.json`` it did not write. Training on the CPU is deterministic, so a record re-run reproduces its number bit
for bit.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import models
from .probes import probe, mean_per_class_accuracy

__all__ = [
    "LAYERS", "ARMS", "SHOTS", "POOLINGS", "GRID", "DATASETS", "SCRATCH", "FINETUNE",
    "features", "cached_features", "feature_cache_path", "resolve_checkpoint",
    "TransferSet", "transfer_set", "frozen_arm", "scratch_arm", "scratch_schedule", "finetune_arm", "run_seed",
    "Records", "run_transfer", "run_probes", "predict", "parse_list", "summarize", "load_records",
]

#: the layers whose features transfer and probes read (Table 7 has conv1…conv5, fc7; we add fc6)
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
ARMS = ("frozen", "scratch", "finetune")
#: shots per class of the low-shot curve (Fig. 9)
SHOTS = (1, 2, 3, 5, 10, 20, 30, 60)
#: ``max``: conv maps max-pooled to at most GRID×GRID before flattening; ``none``: flattened as they are
POOLINGS = ("max", "none")
GRID = 6
DATASETS = ("embedded-transfer", "embedded-main", "caltech101", "caltech256", "imagefolder")
#: Caltech protocol: (most shots per class, test images per class) — Tables 4 and 5
_CALTECH = {"caltech101": (30, 50), "caltech256": (60, 25)}

#: The scratch arm's recipe for a few images (trainer ``Config`` fields, plus ``epoch_images``):
#: the training images are repeated until an epoch holds at least ``epoch_images`` of them
#: (600, the 60-shot set of the transfer family), and a run lasts ``passes`` passes over its
#: training images, at least ``min_epochs`` such epochs (:func:`scratch_schedule`: 4 epochs
#: for 1–2 shots per class, 100 for 60), with one ×0.1 after ``anneal_at`` of them. A fixed
#: number of steps (20 epochs of 600 whatever the shots) left 20 and more shots per class far
#: from fitting (training loss 1.1–2.3, test 12–22%), while one run of 100 passes at 60 shots
#: ended at 0.11 and 83%; 10 shots needed about 100 passes too (0.17 after 120, 0.9 after 72).
#: SGD with the paper's momentum, weight decay, dropout and filter renormalisation; no plateau
#: schedule (``patience`` never runs out); batch 16 rather than 32 for twice the steps. The
#: trainer's validation split is one training image per class (it is only logged). The test
#: images are never seen during training. The learning rate is half the preset's: at 0.01,
#: one image per class (draw 0) blew the loss up to 50 in epoch 3 and left a dead network at
#: chance; at 0.005 it fits its 10 images.
SCRATCH = {"passes": 100, "min_epochs": 4, "anneal_at": 0.75, "batch_size": 16, "lr": 0.005,
           "epoch_images": 600}
#: The finetune arm: all layers from the pretrained weights at ``lr`` (the new fc8 at
#: ``head_lr``), the same epochs, batch, augmentation and schedule as :data:`SCRATCH`.
FINETUNE = {"epochs": 10, "batch_size": 16, "lr": 0.001, "head_lr": 0.01, "anneal": (8,),
            "epoch_images": 600}


def _check(kind: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid {kind}s are: {', '.join(map(str, choices))}")


def parse_list(text, kind: str, choices=None, cast=str) -> list:
    """``"conv1,fc7"`` → ``["conv1", "fc7"]``, each checked against ``choices``."""
    items = [s.strip() for s in str(text).split(",") if s.strip()]
    if not items:
        raise ValueError(f"no {kind}s given; valid {kind}s are: {', '.join(map(str, choices or []))}")
    out = []
    for s in items:
        try:
            v = cast(s)
        except ValueError:
            raise ValueError(f"{kind}s are {cast.__name__}s separated by commas, got {text!r}") from None
        if choices is not None:
            _check(kind, v, choices)
        if v not in out:
            out.append(v)
    return out


# ------------------------------------------------------------------ checkpoints
def resolve_checkpoint(spec) -> tuple[nn.Module, str, str]:
    """``(model, sha256, name)`` for a shipped name (``zfnet-mini``) or a checkpoint path."""
    from .checkpoint import CheckpointError, load_checkpoint, manifest, model_from_checkpoint, pretrained, sha256
    spec = str(spec)
    shipped = sorted({k.split("-epoch")[0].removesuffix(".pt") for k in manifest() if k.endswith(".pt")})
    if spec in shipped:
        model = pretrained(spec)
        return model, model.meta["sha256"], spec
    path = Path(spec).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {spec}; give a checkpoint file or a shipped "
                              f"name ({', '.join(shipped)})")
    model = model_from_checkpoint(load_checkpoint(path), source=str(path))
    return model, sha256(path), str(path)


# ------------------------------------------------------------------ features
def _pool(a: torch.Tensor, pooling: str) -> torch.Tensor:
    if a.dim() == 4 and pooling == "max" and a.shape[-1] > GRID:
        a = F.adaptive_max_pool2d(a, GRID)
    return a.flatten(1)


def _batches_of(images, batch_size: int):
    """uint8 batches from a tensor (N, 3, R, R) or a dataset of ``(image, label)`` items."""
    if torch.is_tensor(images):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    from torch.utils.data import DataLoader
    workers = min(2, os.cpu_count() or 1)
    for x, _ in DataLoader(images, batch_size=batch_size, num_workers=workers):
        yield x


@torch.no_grad()
def features(model: nn.Module, images, layers: Sequence[str] = LAYERS, *, pooling: str = "max",
             batch_size: int = 100, device="cpu", progress: bool = True, desc: str = "features") -> dict:
    """The frozen features of ``layers`` for ``images``, in one batched pass.

    ``images``: uint8 (N, 3, R, R) at the checkpoint's resized side (or a dataset of such
    ``(image, label)`` items); each is centre-cropped and mean-subtracted by
    ``model.preprocess``. Returns ``{layer: float32 (N, D)}``: the rectified layer output,
    conv maps max-pooled to at most :data:`GRID`×:data:`GRID` with ``pooling="max"``, flattened.
    """
    layers = list(layers)
    for layer in layers:
        _check("layer", layer, models.LAYERS)
    _check("pooling", pooling, POOLINGS)
    was_training = model.training
    model.eval().to(device)
    out: dict[str, list] = {layer: [] for layer in layers}
    n = len(images)
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False, unit="img")
    for x in _batches_of(images, batch_size):
        acts = models.activations(model, model.preprocess.center(x.to(device)), layers)
        for layer in layers:
            out[layer].append(_pool(acts[layer], pooling).float().cpu())
        bar.update(len(x))
    bar.close()
    model.train(was_training)
    return {layer: torch.cat(v) if v else torch.zeros(0) for layer, v in out.items()}


def feature_cache_path(sha: str, split: str, layer: str, pooling: str) -> Path:
    from .data.embedded import cache_dir
    return cache_dir() / "features" / sha[:16] / f"{split}--{layer}--{pooling}.pt"


def cached_features(model: nn.Module, sha: str | None, split: str, images, layers=LAYERS, *,
                    pooling: str = "max", progress: bool = True, device="cpu") -> dict:
    """:func:`features`, cached on disk by checkpoint ``sha`` (256), ``split`` (a name that
    identifies the images), layer and pooling. Missing layers are computed together in one
    pass; ``sha=None`` turns the cache off. A cache file that is damaged or holds another
    shape than the images' features is recomputed, with a warning that names it."""
    layers = list(layers)
    found, missing = {}, []
    for layer in layers:
        path = feature_cache_path(sha, split, layer, pooling) if sha else None
        if path is not None and path.is_file():
            try:
                f = torch.load(path, weights_only=True)
            except Exception:
                f = None
            if isinstance(f, torch.Tensor) and f.dim() == 2 and f.is_floating_point() and len(f) == len(images):
                found[layer] = f
                continue
            got = f"a {'×'.join(map(str, f.shape))} tensor" if isinstance(f, torch.Tensor) else \
                ("no tensor" if f is not None else "nothing readable")
            tqdm.write(f"warning: the feature cache file {path} holds {got}, not the {len(images)} images' "
                       f"{layer} features; computing them again", file=sys.stderr)
        missing.append(layer)
    if missing:
        fresh = features(model, images, missing, pooling=pooling, progress=progress, device=device,
                         desc=f"features {split}")
        for layer, f in fresh.items():
            if sha:
                from .checkpoint import save_atomic
                save_atomic(f, feature_cache_path(sha, split, layer, pooling))
            found[layer] = f
    return {layer: found[layer] for layer in layers}


# ------------------------------------------------------------------ datasets and draws
@dataclass
class _Part:
    key: str          # names the images in the feature cache
    images: object    # uint8 tensor (N, 3, R, R) or a dataset of (image, label)


@dataclass
class TransferSet:
    """Images of new classes and the protocol to draw training shots and test images.

    ``labels``: int64 over the concatenation of ``parts`` (−1: not used, e.g. Caltech-256's
    clutter); ``pool``: indices the training shots are drawn from; ``test``: fixed test
    indices, or ``None`` to take, per draw, up to ``n_test`` per class from the pool images
    after the first ``max_shots`` of each class's permutation.
    """
    name: str
    classes: list
    parts: list
    labels: torch.Tensor
    pool: np.ndarray
    test: np.ndarray | None
    max_shots: int
    n_test: int | None = None
    _loaded: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    def check_shots(self, shots) -> None:
        for k in shots:
            if not isinstance(k, (int, np.integer)) or k < 1 or k > self.max_shots:
                raise ValueError(f"shots {k!r} is not available on {self.name}: shots per class are "
                                 f"1…{self.max_shots} (the maximum{self._why()})")

    def _why(self) -> str:
        counts = torch.bincount(self.labels[torch.as_tensor(self.pool)], minlength=len(self.classes))
        c = int(counts.argmin())
        room = " and keeps the rest for test" if self.test is None else ""
        return f"; the smallest class, {self.classes[c]!r}, has {int(counts[c])} training images{room}"

    def split(self, shots: int, draw: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(train, test)`` sorted indices of draw ``draw`` with ``shots`` images per class."""
        self.check_shots([shots])
        labels = self.labels.numpy()
        train, test = [], []
        for c in range(len(self.classes)):
            members = self.pool[labels[self.pool] == c]
            perm = np.random.default_rng([seed, draw, c]).permutation(members)
            train.append(perm[:shots])
            if self.test is None:
                test.append(perm[self.max_shots:self.max_shots + self.n_test])
        test = self.test if self.test is not None else np.concatenate(test)
        return np.sort(np.concatenate(train)), np.sort(test)

    def images(self, idx) -> torch.Tensor:
        """uint8 (len(idx), 3, R, R) images by index (real datasets are read once, then kept)."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        whole = []
        for i, part in enumerate(self.parts):
            if torch.is_tensor(part.images):
                whole.append(part.images)
            else:
                if i not in self._loaded:
                    self._loaded[i] = torch.cat(list(_batches_of(part.images, 100)))
                whole.append(self._loaded[i])
        return (whole[0] if len(whole) == 1 else torch.cat(whole))[idx]

    def features(self, model, sha, layers=LAYERS, *, pooling="max", progress=True, device="cpu") -> dict:
        """:func:`cached_features` of every image of the set (parts concatenated)."""
        per = [cached_features(model, sha, p.key, p.images, layers, pooling=pooling, progress=progress,
                               device=device) for p in self.parts]
        return {layer: torch.cat([f[layer] for f in per]) for layer in layers}


def _digest(*items) -> str:
    return hashlib.sha1(json.dumps([list(map(str, i)) if not isinstance(i, str) else i
                                    for i in items]).encode()).hexdigest()[:12]


def transfer_set(name: str, root="", *, size: int = 128, seed: int = 0, download: bool = False) -> TransferSet:
    """The images of a transfer experiment.

    ``embedded-transfer``: the embedded dataset's transfer family (10 classes), shots from
    its train split (60 per class), tested on its test split (40 per class).
    ``embedded-main``: the 12 classes the network was trained on, shots from the val split
    (100 per class, never trained on), tested on the test split (200 per class).
    ``caltech101`` / ``caltech256``: read from ``root`` (:func:`zfbook.data.real.load`),
    the protocol of Tables 4–5 (module docstring); Caltech-256's clutter class is left out.
    ``imagefolder``: ``root/train/<class>/*`` and ``root/test/<class>/*`` (or ``root/val``).
    ``size`` is the checkpoint's resized side (``model.preprocess.size``).
    """
    _check("dataset", name, DATASETS)
    if name.startswith("embedded-"):
        from .data.embedded import embedded
        family = name.split("-", 1)[1]
        pool_split = "train" if family == "transfer" else "val"
        a, b = embedded(pool_split, family=family, seed=seed), embedded("test", family=family, seed=seed)
        if a.images.shape[-1] != size:
            raise ValueError(f"the embedded images are {a.images.shape[-1]} px; this checkpoint "
                             f"expects {size} px images")
        parts = [_Part(f"{name}-{pool_split}-s{seed}", a.images), _Part(f"{name}-test-s{seed}", b.images)]
        labels = torch.cat([a.labels, b.labels])
        pool, test = np.arange(len(a)), np.arange(len(a), len(a) + len(b))
        max_shots = int(torch.bincount(a.labels).min())
        return TransferSet(name, list(a.classes), parts, labels, pool, test, max_shots)
    from .data.real import load
    if not root:
        raise ValueError(f"dataset {name!r} needs --data-root (its folder)")
    if name == "imagefolder":
        test_split = "test" if (Path(root) / "test").is_dir() else "val"
        a = load("imagefolder", root, split="train", size=size, download=download)
        b = load("imagefolder", root, split=test_split, size=size, download=download)
        if a.classes != b.classes:
            raise ValueError(f"{root}/train and {root}/{test_split} hold different classes")
        parts = [_Part(f"imagefolder-train-{_digest(a.classes, a.labels.tolist())}", a),
                 _Part(f"imagefolder-{test_split}-{_digest(b.classes, b.labels.tolist())}", b)]
        labels = torch.cat([a.labels, b.labels])
        pool, test = np.arange(len(a)), np.arange(len(a), len(a) + len(b))
        return TransferSet(name, a.classes, parts, labels, pool, test, int(torch.bincount(a.labels).min()))
    ds = load(name, root, size=size, download=download)
    labels, classes = ds.labels.clone(), list(ds.classes)
    if name == "caltech256" and "clutter" in classes:
        drop = classes.index("clutter")
        labels = torch.where(labels == drop, -1, labels - (labels > drop).long())
        classes.pop(drop)
    most, n_test = _CALTECH[name]
    used = labels >= 0
    smallest = int(torch.bincount(labels[used], minlength=len(classes)).min())
    if smallest < 2:
        raise ValueError(f"{name} at {root}: a class has {smallest} image(s); each needs at least 2")
    parts = [_Part(f"{name}-{_digest(ds.classes, ds.labels.tolist())}", ds)]
    pool = np.nonzero(used.numpy())[0]
    return TransferSet(name, classes, parts, labels, pool, None, min(most, smallest - 1), n_test)


# ------------------------------------------------------------------ the arms
def run_seed(seed: int, draw: int, shots: int) -> int:
    """The training seed of one scratch/finetune run: distinct for every (seed, draw, shots)."""
    return seed * 1_000_000 + draw * 1000 + shots


@dataclass
class _Images:
    """What the trainer takes as a dataset: ``.images`` uint8, ``.labels``, ``.classes``."""
    images: torch.Tensor
    labels: torch.Tensor
    classes: list

    def __len__(self):
        return len(self.labels)


def _repeats(n: int, epoch_images: int) -> int:
    """How many copies of ``n`` training images fill an epoch of at least ``epoch_images``."""
    return max(1, math.ceil(epoch_images / n))


def _repeat(images, labels, epoch_images: int):
    r = _repeats(len(labels), epoch_images)
    return images.repeat(r, 1, 1, 1), labels.repeat(r)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 200, device="cpu") -> np.ndarray:
    """Centre-crop predictions (class indices) of a model with ``.preprocess``."""
    model.eval().to(device)
    out = [model(model.preprocess.center(images[i:i + batch_size].to(device))).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy().astype(np.int64)


def frozen_arm(train_features, train_labels, test_features, test_labels, seed: int = 0):
    """Layers 1–7 frozen, a new softmax on top: :func:`zfbook.probes.probe` ``softmax`` on fc7."""
    return probe("softmax", train_features, train_labels, test_features, test_labels, seed)


def scratch_schedule(recipe: dict, n_train: int) -> tuple[int, tuple[int, ...]]:
    """``(epochs, anneal epochs)`` of a scratch run on ``n_train`` images: the recipe's own
    ``epochs`` and ``anneal`` if it names them, else ``passes`` over the images in epochs of
    ``epoch_images`` (at least ``min_epochs``), ×0.1 after ``anneal_at`` of them."""
    if "epochs" in recipe:
        return int(recipe["epochs"]), tuple(recipe["anneal"])
    per_epoch = n_train * _repeats(n_train, recipe["epoch_images"])
    epochs = max(recipe["min_epochs"], math.ceil(recipe["passes"] * n_train / per_epoch))
    return epochs, ((max(1, round(recipe["anneal_at"] * epochs)),) if epochs > 1 else ())


def scratch_arm(preset: str, images, labels, classes, test_images, *, seed: int, recipe: dict = SCRATCH,
                device="cpu") -> tuple[np.ndarray, float]:
    """Train ``preset`` from random weights on the training images with :func:`zfbook.train.train`
    (``recipe``: :data:`SCRATCH`), in a temporary folder; ``(test predictions, final train loss)``."""
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .train import Config, train
    rep_x, rep_y = _repeat(images, labels, recipe["epoch_images"])
    # the trainer's per-epoch validation only logs here (no plateau schedule): one image per class
    first = torch.as_tensor(np.unique(labels.numpy(), return_index=True)[1])
    epochs, anneal = scratch_schedule(recipe, len(labels))
    cfg = Config(preset=preset, epochs=epochs, batch_size=recipe["batch_size"], lr=recipe["lr"],
                 anneal=anneal, patience=10 ** 9, seed=seed, snapshots=(),
                 device=str(device), command="zfbook.transfer.scratch_arm")
    with tempfile.TemporaryDirectory(prefix="zfbook-scratch-") as tmp:
        history = train(cfg, tmp, progress=False,
                        data=(_Images(rep_x, rep_y, list(classes)), _Images(images[first], labels[first], list(classes))))
        model = model_from_checkpoint(load_checkpoint(Path(tmp) / "last.pt"))
    return predict(model, test_images, device=device), float(history[-1]["train_loss"])


def finetune_arm(pretrained: nn.Module, images, labels, num_classes: int, test_images, *, seed: int,
                 recipe: dict = FINETUNE, device="cpu") -> tuple[np.ndarray, float]:
    """Every layer trained from ``pretrained`` with a new fc8 (N(0, 0.01²), as Section 3's
    init), SGD (momentum 0.9, weight decay 5e-4) at ``recipe["lr"]`` (fc8 at ``head_lr``),
    random crops and flips, dropout, filter renormalisation, ×0.1 after the ``anneal``
    epochs. The pretrained model is not changed. ``(test predictions, final train loss)``."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(pretrained).to(device)
    old = model.classifier.fc8
    head = nn.Linear(old.in_features, num_classes)
    nn.init.normal_(head.weight, 0.0, 0.01)
    nn.init.zeros_(head.bias)
    model.classifier.fc8 = head.to(device)
    model.num_classes = num_classes
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier.fc8.")]
    opt = torch.optim.SGD([{"params": body, "lr": recipe["lr"]},
                           {"params": head.parameters(), "lr": recipe["head_lr"]}],
                          momentum=0.9, weight_decay=5e-4)
    prep = model.preprocess
    rep_x, rep_y = _repeat(images, labels, recipe["epoch_images"])
    bs = recipe["batch_size"]
    loss_sum = 0.0
    for epoch in range(1, recipe["epochs"] + 1):
        model.train()
        order = torch.randperm(len(rep_y), generator=gen)
        loss_sum = 0.0
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            x = prep.random(rep_x[idx].to(device), gen)
            loss = F.cross_entropy(model(x), rep_y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            models.renormalize_filters(model)
            loss_sum += loss.item() * len(idx)
        if not math.isfinite(loss_sum):
            raise RuntimeError(f"finetuning diverged (loss {loss_sum}) in epoch {epoch}; lower the learning rate")
        if epoch in recipe["anneal"]:
            for g in opt.param_groups:
                g["lr"] *= 0.1
    return predict(model, test_images, device=device), loss_sum / len(rep_y)


# ------------------------------------------------------------------ records
class Records:
    """``results.json``: a list of records, one per line, rewritten atomically on every add.

    ``key`` names the fields that identify a record (``arm, shots, draw`` …); ``same`` those
    that must agree for an existing record to count as done (checkpoint, dataset, seed,
    recipe). A file holds the records of one checkpoint, dataset and seed
    (:data:`IDENTITY`), so its means never mix two models: a record of another one, or with
    the same key and a different recipe, is an error unless ``force``, which starts the file
    over (the old file stays until the first new record replaces it). A file that is not a
    list of such records is refused before anything is added to it.
    """

    #: the fields every record of one file shares
    IDENTITY = ("dataset", "checkpoint_sha256", "seed")

    def __init__(self, path, key: Sequence[str], same: Sequence[str], force: bool = False):
        self.path, self.key, self.same, self.force = Path(path), tuple(key), tuple(same), force
        self.records: list[dict] = []
        if self.path.is_file():
            self.records = self._read()
        self.dropped = len(self.records) if force else 0
        if force:
            self.records = []
            if self.dropped:
                import sys
                print(f"--force: starting {self.path} over (it held {self.dropped} records); the old file "
                      "stays until the first new record replaces it", file=sys.stderr, flush=True)

    def _read(self) -> list[dict]:
        need = self.key + tuple(k for k in self.IDENTITY if k in self.same) + ("top1",)
        try:
            records = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            records = None
        if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in need)
                                                    for r in records):
            raise ValueError(f"{self.path} is not a zfbook results file of this command (a JSON list of "
                             f"records with {', '.join(need)}); move it away or choose another --out")
        return records

    def _k(self, rec) -> tuple:
        return tuple(rec.get(k) for k in self.key)

    def done(self, want: dict) -> bool:
        """Whether a record matching ``want`` (its key and ``same`` fields) exists."""
        for rec in self.records:
            other = [k for k in self.IDENTITY if k in self.same and rec.get(k) != want.get(k)]
            if other:
                names = {"dataset": f"dataset ({rec.get('dataset')})", "seed": f"seed ({rec.get('seed')})",
                         "checkpoint_sha256": f"checkpoint ({rec.get('checkpoint') or '?'}, sha256 "
                                              f"{str(rec.get('checkpoint_sha256'))[:12]}…)"}
                raise ValueError(f"{self.path} holds records of another {', '.join(names[k] for k in other)}; "
                                 "use another --out, or --force to start the file over")
            if self._k(rec) != self._k(want):
                continue
            diff = [k for k in self.same if rec.get(k) != want.get(k)]
            if not diff:
                return True
            raise ValueError(f"{self.path} already holds a record for "
                             f"{', '.join(f'{k}={v}' for k, v in zip(self.key, self._k(rec)))} with a different "
                             f"{', '.join(diff)}; use another --out, or --force to start the file over")
        return False

    def add(self, rec: dict) -> None:
        self.records = [r for r in self.records if self._k(r) != self._k(rec)] + [rec]
        self._write()

    def sort(self, key: Callable) -> None:
        """Reorder the records (and the file) by ``key``."""
        self.records.sort(key=key)
        self._write()

    def _write(self) -> None:
        from .checkpoint import write_text_atomic
        write_text_atomic(self.path, "[\n" + ",\n".join(json.dumps(r, separators=(",", ":"))
                                                        for r in self.records) + "\n]\n")


_SAME = ("dataset", "checkpoint_sha256", "seed", "recipe")


def _train_arm(tset: TransferSet, model, arm: str, k: int, d: int, seed: int, recipe: dict,
               device) -> tuple[np.ndarray, dict]:
    """One scratch or finetune record's predictions and extra fields."""
    tr, te = tset.split(k, d, seed)
    ytr = tset.labels[tr]
    s = run_seed(seed, d, k)
    if arm == "scratch":
        pred, loss = scratch_arm(model.preset.name, tset.images(tr), ytr, tset.classes, tset.images(te),
                                 seed=s, recipe=recipe, device=device)
        return pred, {"run_seed": s, "train_loss": loss, "epochs": scratch_schedule(recipe, len(tr))[0]}
    pred, loss = finetune_arm(model, tset.images(tr), ytr, len(tset.classes), tset.images(te),
                              seed=s, recipe=recipe, device=device)
    return pred, {"run_seed": s, "train_loss": loss}


_WORKER: dict = {}


def _worker_init(tset, model) -> None:
    _WORKER.update(tset=tset, model=model)


def _worker_run(task) -> tuple:
    arm, k, d, seed, recipe, device = task
    t0 = time.perf_counter()
    pred, extra = _train_arm(_WORKER["tset"], _WORKER["model"], arm, k, d, seed, recipe, device)
    return pred, extra, time.perf_counter() - t0, torch.get_num_threads()


def _cost(arm: str, k: int, n_classes: int, recipes: dict) -> float:
    """Images a training run passes through (to start the longest first)."""
    r = recipes[arm]
    epochs = scratch_schedule(r, k * n_classes)[0] if arm == "scratch" else r["epochs"]
    return epochs * r["epoch_images"]


def run_transfer(tset: TransferSet, model, sha: str, *, arms=ARMS, shots=SHOTS, draws: int = 5,
                 train_draws: int | None = None, seed: int = 0, out, force: bool = False,
                 recipes: dict | None = None, command: str = "", checkpoint: str = "",
                 device="cpu", progress: bool = True, log: Callable | None = print,
                 jobs: int = 1) -> list[dict]:
    """The three arms over ``shots`` × draws; appends to ``out/results.json`` and skips the
    records it already has. ``train_draws``: draws for scratch and finetune (default: all).
    ``jobs`` > 1: the scratch and finetune runs in that many processes, the longest first
    (:func:`zfbook.parallel.run_parallel`); each record names its ``threads``."""
    from .parallel import check_jobs, run_parallel
    for a in arms:
        _check("arm", a, ARMS)
    tset.check_shots(shots)
    check_jobs(jobs)
    train_draws = draws if train_draws is None else min(train_draws, draws)
    recipes = {"frozen": {"classifier": "softmax", "layer": "fc7"}, "scratch": SCRATCH,
               "finetune": FINETUNE, **(recipes or {})}
    records = Records(Path(out) / "results.json", ("arm", "shots", "draw"), _SAME, force)
    base = {"dataset": tset.name, "checkpoint": checkpoint, "checkpoint_sha256": sha, "seed": seed,
            "command": command}
    plan = [(a, k, d) for a in arms for d in range(draws if a == "frozen" else train_draws) for k in shots]
    todo = [(a, k, d) for a, k, d in plan
            if not records.done({**base, "arm": a, "shots": k, "draw": d, "recipe": _jsonable(recipes[a])})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} records already in {records.path}; running the other {len(todo)}")
    labels = tset.labels

    def add(arm, k, d, pred, extra, seconds, threads):
        tr, te = tset.split(k, d, seed)
        rec = {"arm": arm, "shots": k, "draw": d,
               "top1": mean_per_class_accuracy(labels[te].numpy(), pred), "seconds": round(seconds, 3),
               "n_train": len(tr), "n_test": len(te), **extra, **base,
               "threads": threads, "recipe": _jsonable(recipes[arm]), "predictions": pred.tolist()}
        records.add(rec)
        if log and not progress:
            log(f"{arm:9s} {k:3d} shots  draw {d}  top-1 {rec['top1']:6.2f}%  {rec['seconds']:7.1f} s")

    frozen = [t for t in todo if t[0] == "frozen"]
    trained = [t for t in todo if t[0] != "frozen"]
    if frozen:
        feats = tset.features(model, sha, ["fc7"], progress=progress, device=device)["fc7"].numpy()
        for arm, k, d in frozen:
            tr, te = tset.split(k, d, seed)
            t0 = time.perf_counter()
            res = frozen_arm(feats[tr], labels[tr].numpy(), feats[te], labels[te].numpy(), seed)
            add(arm, k, d, res.predictions, {"converged": res.converged}, time.perf_counter() - t0,
                torch.get_num_threads())
    bar = tqdm(total=len(trained), desc="transfer", disable=not progress)
    if jobs == 1:
        for arm, k, d in trained:
            bar.set_postfix_str(f"{arm} {k} shots, draw {d}")
            t0 = time.perf_counter()
            pred, extra = _train_arm(tset, model, arm, k, d, seed, recipes[arm], device)
            add(arm, k, d, pred, extra, time.perf_counter() - t0, torch.get_num_threads())
            bar.update()
    else:
        tasks = sorted(((a, k, d, seed, recipes[a], str(device)) for a, k, d in trained),
                       key=lambda t: -_cost(t[0], t[1], len(tset.classes), recipes))
        for (arm, k, d, *_), (pred, extra, seconds, threads) in run_parallel(
                _worker_run, tasks, jobs, initializer=_worker_init, initargs=(tset, model)):
            add(arm, k, d, pred, extra, seconds, threads)
            bar.update()
        order = {t: i for i, t in enumerate(plan)}  # the file in the plan's order, as one process writes it
        records.sort(key=lambda r: order.get((r["arm"], r["shots"], r["draw"]), -1))
    bar.close()
    return records.records


def run_probes(tset: TransferSet, model, sha: str, *, layers=LAYERS, classifiers=("svm", "softmax"),
               shots=(60,), draws: int = 5, seed: int = 0, pooling: str = "max", out, force: bool = False,
               command: str = "", checkpoint: str = "", device="cpu", progress: bool = True,
               log: Callable | None = print) -> list[dict]:
    """Table 7: each classifier on each layer's frozen features, over ``shots`` × draws."""
    from .probes import CLASSIFIERS
    for layer in layers:
        _check("layer", layer, LAYERS)
    for c in classifiers:
        _check("classifier", c, CLASSIFIERS)
    _check("pooling", pooling, POOLINGS)
    tset.check_shots(shots)
    records = Records(Path(out) / "results.json", ("layer", "classifier", "shots", "draw", "pooling"),
                      ("dataset", "checkpoint_sha256", "seed"), force)
    base = {"dataset": tset.name, "checkpoint": checkpoint, "checkpoint_sha256": sha, "seed": seed,
            "command": command}
    plan = [(l, c, k, d) for l in layers for c in classifiers for k in shots for d in range(draws)]
    todo = [p for p in plan if not records.done({**base, "layer": p[0], "classifier": p[1], "shots": p[2],
                                                 "draw": p[3], "pooling": pooling})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} records already in {records.path}; running the other {len(todo)}")
    need = [l for l in layers if any(p[0] == l for p in todo)]
    feats = tset.features(model, sha, need, pooling=pooling, progress=progress, device=device) if need else {}
    labels = tset.labels.numpy()
    for layer, c, k, d in tqdm(todo, desc="probes", disable=not progress):
        tr, te = tset.split(k, d, seed)
        x = feats[layer].numpy()
        res = probe(c, x[tr], labels[tr], x[te], labels[te], seed)
        records.add({"layer": layer, "classifier": c, "shots": k, "draw": d, "pooling": pooling,
                     "top1": res.top1, "seconds": round(res.seconds, 3), "converged": res.converged,
                     "n_train": len(tr), "n_test": len(te), "features": int(x.shape[1]), **base})
    return records.records


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))


def summarize(records, by=("arm", "shots"), **where) -> dict:
    """``{key: (mean top1, std top1, n)}`` over draws, grouping ``records`` by the ``by``
    fields, keeping those whose fields equal ``where`` (std: population, 0 for one draw)."""
    groups: dict = {}
    for r in records:
        if all(r.get(k) == v for k, v in where.items()):
            groups.setdefault(tuple(r[k] for k in by), []).append(r["top1"])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in sorted(groups.items())}


def load_records(name: str) -> list:
    """Shipped records: ``data/results/<name>.json`` (``transfer`` or ``probes``)."""
    from .checkpoint import data_dir
    return json.loads((data_dir() / "results" / f"{name}.json").read_text())


# ------------------------------------------------------------------ the paper's numbers
#: Table 4, Caltech-101, mean per-class accuracy % at 15 / 30 training images per class
PAPER_TABLE4 = {"pretrained": {15: 83.8, 30: 86.5}, "scratch": {15: 22.8, 30: 46.5}}
#: Table 5 (and Fig. 9), Caltech-256, accuracy % at 15 / 30 / 45 / 60 per class; "bo2013" the
#: previous best (Bo et al. 2013)
PAPER_TABLE5 = {"pretrained": {15: 65.7, 30: 70.6, 45: 72.7, 60: 74.2},
                "scratch": {15: 9.0, 30: 22.5, 45: 31.2, 60: 38.8},
                "bo2013": {15: 40.5, 30: 48.0, 45: 51.9, 60: 55.2}}
#: Table 7: (classifier, layer) → (Caltech-101 at 30 per class, Caltech-256 at 60 per class); no layer 6
PAPER_TABLE7 = {("svm", "conv1"): (44.8, 24.6), ("svm", "conv2"): (66.2, 39.6), ("svm", "conv3"): (72.3, 46.0),
                ("svm", "conv4"): (76.6, 51.3), ("svm", "conv5"): (86.2, 65.6), ("svm", "fc7"): (85.5, 71.7),
                ("softmax", "conv5"): (82.9, 65.7), ("softmax", "fc7"): (85.4, 72.6)}
