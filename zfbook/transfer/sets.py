"""The transfer sets and their features: the names a run may ask for (layers, arms, shots,
poolings, views, datasets), the checkpoint, each layer's features for a whole split and their
cache on disk, and the datasets with their seeded low-shot draws and validation split
(:class:`TransferSet`), and the chance level of each (:func:`chance`)."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import models

#: the layers whose features transfer and probes read (Table 7 has conv1…conv5, fc7; we add fc6)
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
ARMS = ("frozen", "scratch", "finetune")
#: hand-crafted baselines (HOG or pixels with a linear SVM: :mod:`zfbook.transfer.baseline`),
#: which stand where Fig. 9 sets Bo et al. (2013); run only when asked for
BASELINES = ("hog", "pixels")
#: shots per class of the low-shot curve (Fig. 9)
SHOTS = (1, 2, 3, 5, 10, 20, 30, 60)
#: ``max``: conv maps max-pooled to at most GRID×GRID before flattening; ``none``: flattened as they are
POOLINGS = ("max", "none")
GRID = 6
#: ``center``: the centre crop (the test view); ``ten-crop``: the 4 corners and the centre,
#: each also flipped (Section 3's 10 test crops), the frozen arm's augmented training views
VIEWS = ("center", "ten-crop")
DATASETS = ("embedded-transfer", "embedded-main", "caltech101", "caltech256", "imagefolder",
            "parts-transfer", "parts")
#: the embedded datasets: name → (family, split the shots come from, validation split or None)
_EMBEDDED = {"embedded-transfer": ("transfer", "train", None), "embedded-main": ("main", "val", None),
             "parts-transfer": ("parts-transfer", "train", "val"), "parts": ("parts", "val", None)}
#: Caltech protocol: (most shots per class, test images per class) — Tables 4 and 5
_CALTECH = {"caltech101": (30, 50), "caltech256": (60, 25)}


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
    from ..checkpoint import CheckpointError, load_checkpoint, manifest, model_from_checkpoint, pretrained, sha256
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


def _views(model: nn.Module, x: torch.Tensor, view: str) -> torch.Tensor:
    """The preprocessed network inputs of uint8 images ``x``: (N, …) or, for ten crops,
    (N·10, …) image by image (the centre crop is view 4; views 5–9 are 0–4 flipped)."""
    if view == "center":
        return model.preprocess.center(x)
    return model.preprocess.ten_crop(x).flatten(0, 1)


def _batches_of(images, batch_size: int):
    """uint8 batches from a tensor (N, 3, R, R) or a dataset of ``(image, label)`` items."""
    if torch.is_tensor(images):
        for i in range(0, len(images), batch_size):
            yield images[i:i + batch_size]
        return
    from torch.utils.data import DataLoader
    from ..loaders import quiet_worker
    workers = min(2, os.cpu_count() or 1)
    for x, _ in DataLoader(images, batch_size=batch_size, num_workers=workers, worker_init_fn=quiet_worker):
        yield x


@torch.no_grad()
def features(model: nn.Module, images, layers: Sequence[str] = LAYERS, *, pooling: str = "max",
             view: str = "center", batch_size: int = 100, device="cpu", progress: bool = True,
             desc: str = "features") -> dict:
    """The frozen features of ``layers`` for ``images``, in one batched pass.

    ``images``: uint8 (N, 3, R, R) at the checkpoint's resized side (or a dataset of such
    ``(image, label)`` items); each is centre-cropped and mean-subtracted by
    ``model.preprocess``. Returns ``{layer: float32 (N, D)}``: the rectified layer output,
    conv maps max-pooled to at most :data:`GRID`×:data:`GRID` with ``pooling="max"``, flattened.
    ``view="ten-crop"``: the features of each image's 10 crops (:data:`VIEWS`), (N, 10, D).
    """
    layers = list(layers)
    for layer in layers:
        _check("layer", layer, models.LAYERS)
    _check("pooling", pooling, POOLINGS)
    _check("view", view, VIEWS)
    per = 1 if view == "center" else 10
    was_training = model.training
    model.eval().to(device)
    out: dict[str, list] = {layer: [] for layer in layers}
    n = len(images)
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False, unit="img")
    for x in _batches_of(images, max(1, batch_size // per)):
        acts = models.activations(model, _views(model, x.to(device), view), layers)
        for layer in layers:
            f = _pool(acts[layer], pooling).float().cpu()
            out[layer].append(f if per == 1 else f.unflatten(0, (len(x), per)))
        bar.update(len(x))
    bar.close()
    model.train(was_training)
    return {layer: torch.cat(v) if v else torch.zeros(0) for layer, v in out.items()}


def feature_cache_path(sha: str, split: str, layer: str, pooling: str, view: str = "center") -> Path:
    from ..data.embedded import cache_dir
    tail = "" if view == "center" else f"--{view}"
    return cache_dir() / "features" / sha[:16] / f"{split}--{layer}--{pooling}{tail}.pt"


def cached_features(model: nn.Module, sha: str | None, split: str, images, layers=LAYERS, *,
                    pooling: str = "max", view: str = "center", progress: bool = True, device="cpu") -> dict:
    """:func:`features`, cached on disk by checkpoint ``sha`` (256), ``split`` (a name that
    identifies the images), layer, pooling and view. Missing layers are computed together in one
    pass; ``sha=None`` turns the cache off. A cache file that is damaged or holds another
    shape than the images' features is recomputed, with a warning that names it."""
    layers = list(layers)
    dims = 2 if view == "center" else 3
    found, missing = {}, []
    for layer in layers:
        path = feature_cache_path(sha, split, layer, pooling, view) if sha else None
        if path is not None and path.is_file():
            try:
                f = torch.load(path, weights_only=True)
            except Exception:
                f = None
            if (isinstance(f, torch.Tensor) and f.dim() == dims and f.is_floating_point()
                    and len(f) == len(images) and (dims == 2 or f.shape[1] == 10)):
                found[layer] = f
                continue
            got = f"a {'×'.join(map(str, f.shape))} tensor" if isinstance(f, torch.Tensor) else \
                ("no tensor" if f is not None else "nothing readable")
            tqdm.write(f"warning: the feature cache file {path} holds {got}, not the {len(images)} images' "
                       f"{layer} features; computing them again", file=sys.stderr)
        missing.append(layer)
    if missing:
        fresh = features(model, images, missing, pooling=pooling, view=view, progress=progress, device=device,
                         desc=f"features {split}" + ("" if view == "center" else f" ({view})"))
        for layer, f in fresh.items():
            if sha:
                from ..checkpoint import save_atomic
                save_atomic(f, feature_cache_path(sha, split, layer, pooling, view))
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
    after the first ``max_shots`` of each class's permutation; ``val``: fixed validation
    indices (the split every recipe is chosen on, :mod:`zfbook.transfer.choose`), or
    ``None`` when the dataset has none.
    """
    name: str
    classes: list
    parts: list
    labels: torch.Tensor
    pool: np.ndarray
    test: np.ndarray | None
    max_shots: int
    n_test: int | None = None
    val: np.ndarray | None = None
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

    def validation_split(self, shots: int, draw: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(train, val)``: the training images of :meth:`split` and the validation images.
        A dataset without a validation split is refused, naming those with one."""
        if self.val is None:
            raise ValueError(f"dataset {self.name} has no validation split to choose recipes on; datasets with "
                             f"one: {', '.join(n for n, v in _EMBEDDED.items() if v[2])}, imagefolder with "
                             "ROOT/val beside ROOT/test")
        return self.split(shots, draw, seed)[0], np.sort(self.val)

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

    def pool_views(self, model, sha, layer: str, *, pooling="max", progress=True, device="cpu") -> torch.Tensor:
        """The ten-crop features of ``layer``, (len(self), 10, D), for the parts that hold
        training images (the pool); the rows of the other parts (val, test) are NaN."""
        out, start = [], 0
        for p in self.parts:
            n = len(p.images)
            if np.any((self.pool >= start) & (self.pool < start + n)):
                out.append(cached_features(model, sha, p.key, p.images, [layer], pooling=pooling, view="ten-crop",
                                           progress=progress, device=device)[layer])
            else:
                out.append(None)
            start += n
        dim = next(f for f in out if f is not None).shape[-1]
        return torch.cat([f if f is not None else torch.full((len(p.images), 10, dim), float("nan"))
                          for f, p in zip(out, self.parts)])


def _digest(*items) -> str:
    return hashlib.sha1(json.dumps([list(map(str, i)) if not isinstance(i, str) else i
                                    for i in items]).encode()).hexdigest()[:12]


def chance(dataset) -> float:
    """Chance level (%) of a transfer set or dataset name: 100 / the number of classes
    (the axis line of Fig. 9 and Table 7's plots). By name: the embedded families' classes,
    Caltech-101's 101 and Caltech-256's 256 object classes (clutter left out, as here);
    ``imagefolder`` needs its :class:`TransferSet`."""
    if isinstance(dataset, TransferSet):
        return 100.0 / len(dataset.classes)
    _check("dataset", dataset, DATASETS)
    if dataset in _EMBEDDED:
        from ..data.embedded import FAMILIES
        return 100.0 / len(FAMILIES[_EMBEDDED[dataset][0]])
    if dataset == "imagefolder":
        raise ValueError("the chance level of an imagefolder depends on its classes; give its TransferSet")
    return 100.0 / {"caltech101": 101, "caltech256": 256}[dataset]


def transfer_set(name: str, root="", *, size: int = 128, seed: int = 0, download: bool = False) -> TransferSet:
    """The images of a transfer experiment.

    ``embedded-transfer``: the embedded dataset's transfer family (10 classes), shots from
    its train split (60 per class), tested on its test split (40 per class).
    ``embedded-main``: the 12 classes the network was trained on, shots from the val split
    (100 per class, never trained on), tested on the test split (200 per class).
    ``parts-transfer``: the parts world's transfer family (:mod:`zfbook.data.world`, 10
    classes disjoint from the 24 it trains on), shots from its train split (60 per class),
    recipes chosen on its val split (20 per class), tested on its test split (60 per class).
    ``parts``: the parts world's 24 training classes, shots from the val split (100 per
    class, never trained on), tested on the test split (150 per class); no validation split.
    ``caltech101`` / ``caltech256``: read from ``root`` (:func:`zfbook.data.real.load`),
    the protocol of Tables 4–5 (module docstring); Caltech-256's clutter class is left out.
    ``imagefolder``: ``root/train/<class>/*`` and ``root/test/<class>/*`` (or ``root/val``);
    with both ``root/test`` and ``root/val``, ``val`` is the validation split.
    ``size`` is the checkpoint's resized side (``model.preprocess.size``).
    """
    _check("dataset", name, DATASETS)
    if name in _EMBEDDED:
        from ..data.embedded import embedded
        family, pool_split, val_split = _EMBEDDED[name]
        splits = [pool_split, "test"] + ([val_split] if val_split else [])
        got = [embedded(s, family=family, seed=seed) for s in splits]
        if got[0].images.shape[-1] != size:
            raise ValueError(f"the embedded images are {got[0].images.shape[-1]} px; this checkpoint "
                             f"expects {size} px images")
        # the old world's cache names as they were; the parts world's name its images' bytes too,
        # so features cached before its renderer changed are never read for the new images
        tag = (lambda d: "") if name.startswith("embedded-") else \
            (lambda d: "-" + hashlib.sha1(d.images.numpy().tobytes()).hexdigest()[:12])
        parts = [_Part(f"{name}-{s}-s{seed}{tag(d)}", d.images) for s, d in zip(splits, got)]
        labels = torch.cat([d.labels for d in got])
        ends = np.cumsum([0] + [len(d) for d in got])
        pool, test = np.arange(ends[0], ends[1]), np.arange(ends[1], ends[2])
        val = np.arange(ends[2], ends[3]) if val_split else None
        max_shots = int(torch.bincount(got[0].labels).min())
        return TransferSet(name, list(got[0].classes), parts, labels, pool, test, max_shots, val=val)
    from ..data.real import load
    if not root:
        raise ValueError(f"dataset {name!r} needs --data-root (its folder)")
    if name == "imagefolder":
        test_split = "test" if (Path(root) / "test").is_dir() else "val"
        splits = ["train", test_split] + (["val"] if test_split == "test" and (Path(root) / "val").is_dir() else [])
        got = [load("imagefolder", root, split=s, size=size, download=download) for s in splits]
        for s, d in zip(splits[1:], got[1:]):
            if got[0].classes != d.classes:
                raise ValueError(f"{root}/train and {root}/{s} hold different classes")
        parts = [_Part(f"imagefolder-{s}-{_digest(d.classes, d.labels.tolist())}", d) for s, d in zip(splits, got)]
        labels = torch.cat([d.labels for d in got])
        ends = np.cumsum([0] + [len(d) for d in got])
        pool, test = np.arange(ends[0], ends[1]), np.arange(ends[1], ends[2])
        val = np.arange(ends[2], ends[3]) if len(got) == 3 else None
        return TransferSet(name, got[0].classes, parts, labels, pool, test, int(torch.bincount(got[0].labels).min()),
                           val=val)
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
