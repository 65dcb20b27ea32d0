"""Searches over a dataset (Fig. 2, Fig. 4): for every feature map, the images that excite it most.

:func:`top_activations` makes one pass over a dataset and keeps, for every feature map of
the chosen layers, its ``k`` strongest activations (9 in the paper), each with the image's
index, the location (y, x) in the map and the value. Each image counts once per map, at its
strongest location, so the k entries of a map are k different images. Memory is
O(k × maps): a running top-k is merged with every batch. The results project straight to
pixels with :meth:`TopK.project` (the deconvnet, :mod:`zfbook.deconv`) and are saved and
reloaded with :func:`save` / :func:`load`.

:func:`merge` combines top-k lists found over disjoint sets of images (the running top-k
merges every batch with it; :func:`zfbook.distributed.top_activations` merges the lists of
each rank's shard): the result is exactly the search over all of them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from . import deconv
from .checks import finite_images, integer
from .models import layer_module

__all__ = ["TopK", "top_activations", "merge", "save", "load"]

_FORMAT = "zfbook.topk/1"


@dataclass
class TopK:
    """The ``k`` strongest activations of every feature map of one layer.

    All fields are (maps, k) tensors, each row sorted by decreasing ``value`` (ties: lower
    image index first). ``index`` is the image's position in the dataset (-1 and value
    ``-inf`` where the dataset had fewer than ``k`` images); ``y``, ``x`` the location in
    the map (0 for fc layers).
    """
    layer: str
    value: torch.Tensor
    index: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor

    @property
    def maps(self) -> int:
        return self.value.shape[0]

    @property
    def k(self) -> int:
        return self.value.shape[1]

    def __repr__(self) -> str:
        return f"TopK(layer={self.layer!r}, maps={self.maps}, k={self.k})"

    def location(self) -> torch.Tensor:
        """(maps, k, 2) locations (y, x)."""
        return torch.stack([self.y, self.x], -1)

    def _rows(self, maps) -> torch.Tensor:
        rows = torch.arange(self.maps) if maps is None else torch.as_tensor(maps, dtype=torch.long)
        if rows.numel() and (rows.min() < 0 or rows.max() >= self.maps):
            raise ValueError(f"maps must be between 0 and {self.maps - 1} (layer {self.layer!r})")
        return rows

    def project(self, model: nn.Module, images: torch.Tensor, maps=None, **kwargs) -> torch.Tensor:
        """Deconvnet projections of the top-k activations: (len(maps), k, C, H, W).

        ``images`` are the preprocessed dataset images the search ran on (indexable by
        ``index``); ``maps`` a subset of feature maps (default all). Empty entries (index -1)
        are zero. Keyword arguments go to :func:`zfbook.deconv.project`.
        """
        rows = self._rows(maps)
        idx, ok = self.index[rows], self.index[rows] >= 0
        feats = rows[:, None].expand_as(idx)
        fc = any(l.kind in ("flatten", "linear") for l in deconv.chain(model, self.layer))
        out = images.new_zeros(*idx.shape, *images.shape[1:])
        if ok.any():
            loc = None if fc else self.location()[rows][ok]
            out[ok] = deconv.project(model, images, self.layer, feats[ok], loc,
                                     index=idx[ok], **kwargs)
        return out

    def boxes(self, model: nn.Module, maps=None) -> torch.Tensor:
        """Receptive-field boxes (top, left, bottom, right) in the image: (len(maps), k, 4)."""
        rows = self._rows(maps)
        return deconv.receptive_field(model, self.layer, self.location()[rows])

    def patches(self, model: nn.Module, images: torch.Tensor, maps=None, fill: float = 0.0):
        """The image patches the activations see (Fig. 2, right): (len(maps), k, C, h, w)."""
        rows = self._rows(maps)
        boxes = self.boxes(model, rows)
        idx = self.index[rows].clamp(min=0)
        flat = deconv.crop(images[idx.flatten()], boxes.reshape(-1, 4), fill)
        flat[self.index[rows].flatten() < 0] = fill
        return flat.view(*idx.shape, *flat.shape[1:])

    def to_dict(self) -> dict:
        return {"value": self.value, "index": self.index, "y": self.y, "x": self.x}


def _select(v, i, y, x, k: int):
    """Per row, the ``k`` entries with the largest value, ties by the lower image index;
    entries with index -1 (padding) are dropped."""
    v = v.masked_fill(i < 0, float("-inf"))
    key = torch.where(i < 0, torch.iinfo(torch.long).max, i)
    by_index = torch.sort(key, dim=1, stable=True).indices
    by_value = torch.sort(v.gather(1, by_index), dim=1, descending=True, stable=True).indices
    order = by_index.gather(1, by_value)[:, :k]
    order = order[:, :int((i >= 0).sum(1).min())] if (i < 0).any() else order
    return tuple(t.gather(1, order) for t in (v, i, y, x))


def merge(*parts: TopK, k: int | None = None) -> TopK:
    """Exact merge of top-k lists of one layer found over disjoint sets of images.

    Each part's ``index`` must already be the images' global numbers (entries with index -1,
    the padding of a search over fewer than ``k`` images, are dropped). The result keeps,
    per map, the ``k`` largest values (default: the parts' ``k``), ties broken by the lower
    image index, the order :func:`top_activations` gives: merging the searches of the
    shards of a dataset gives exactly the search over the whole dataset.
    """
    if not parts:
        raise ValueError("merge needs at least one TopK")
    layer, maps = parts[0].layer, parts[0].maps
    for p in parts:
        if p.layer != layer or p.maps != maps:
            raise ValueError(f"cannot merge {p!r} with {parts[0]!r}: same layer and maps needed")
    k = parts[0].k if k is None else k
    v, i, y, x = _select(*(torch.cat([getattr(p, f) for p in parts], 1)
                           for f in ("value", "index", "y", "x")), k)
    pad = k - v.shape[1]
    if pad > 0:  # fewer images than k
        fill = lambda t, val: torch.cat([t, torch.full((maps, pad), val, dtype=t.dtype)], 1)
        v, i, y, x = fill(v, float("-inf")), fill(i, -1), fill(y, 0), fill(x, 0)
    return TopK(layer, v, i, y, x)


class _Running:
    """A running top-k over images for the maps of one layer: every batch is merged in
    (:func:`merge`'s selection), locating only the newcomers."""

    def __init__(self, k: int):
        self.k, self.v = k, None

    def merge(self, act: torch.Tensor, first: int) -> None:
        act = act.detach()
        if act.dim() not in (2, 4):
            raise ValueError(f"layer output must be (N, C, H, W) or (N, C), got {tuple(act.shape)}")
        b, m = act.shape[:2]
        flat = act.flatten(2) if act.dim() == 4 else act[:, :, None]
        v = flat.amax(2).float().T.cpu()  # (maps, batch): each image's strongest activation
        if self.v is None:
            self.v = torch.full((m, 0), float("-inf"))
            self.i = self.y = self.x = torch.zeros((m, 0), dtype=torch.long)
        unknown = torch.full((m, b), -2, dtype=torch.long)  # locations found below, if kept
        cand = [torch.cat(p, 1) for p in ((self.v, v), (self.i, torch.arange(first, first + b).expand(m, b)),
                                           (self.y, unknown), (self.x, unknown))]
        self.v, self.i, self.y, self.x = _select(*cand, self.k)
        new = self.y < -1
        if new.any():  # locate only the newcomers: the first maximum, row-major
            maps, rank = new.nonzero(as_tuple=True)
            pos = flat[(self.i[maps, rank] - first).to(flat.device), maps.to(flat.device)].argmax(1).cpu()
            w = act.shape[-1] if act.dim() == 4 else 1
            self.y[maps, rank], self.x[maps, rank] = pos // w, pos % w

    def result(self, layer: str) -> TopK:
        return merge(TopK(layer, self.v, self.i, self.y, self.x), k=self.k)


def _batches(data, batch_size: int):
    if isinstance(data, torch.Tensor):
        for s in range(0, data.shape[0], batch_size):
            yield data[s:s + batch_size]
        return
    for item in data:
        yield item[0] if isinstance(item, (tuple, list)) else item


@torch.no_grad()
def top_activations(model: nn.Module, data, layers, k: int = 9, *, batch_size: int = 64,
                    transform=None, progress: bool = True):
    """For every feature map of ``layers``, the ``k`` strongest activations over ``data`` (Fig. 2).

    Args:
        model: a zfbook model (layers ``conv1``…``fc8``) or any model whose layers are named
            by ``named_modules()``. It runs in eval mode (restored afterwards).
        data: preprocessed images (N, C, H, W), or an iterable of batches (tensors, or tuples
            whose first item is the images, e.g. a ``DataLoader``); images are numbered in
            the order they come.
        layers: a layer name, or several (one pass serves them all).
        k: entries per map (9 in the paper).
        transform: optional callable applied to each batch first (e.g. ``Preprocess.center``).
        progress: show a tqdm progress bar.

    Returns a :class:`TopK` for one layer name, or a dict layer → :class:`TopK`.
    """
    single = isinstance(layers, str)
    names = [layers] if single else list(dict.fromkeys(layers))
    if not names:
        raise ValueError("layers is empty; give a layer name or several (e.g. 'conv5' or "
                         "['conv1', 'conv5'])")
    k = integer("k", k, 1)
    batch_size = integer("batch_size", batch_size, 1)
    running = {n: _Running(k) for n in names}
    state = {"first": 0, "done": 0}

    class _Stop(Exception):
        pass

    def hook_for(name):
        def hook(_m, _i, out):
            running[name].merge(out, state["first"])
            state["done"] += 1
            if state["done"] == len(names):
                raise _Stop  # the deepest layer is done: skip the rest of the network
        return hook

    hooks = [layer_module(model, n).register_forward_hook(hook_for(n)) for n in names]
    device = next(model.parameters()).device
    total = data.shape[0] if isinstance(data, torch.Tensor) else \
        len(data.dataset) if hasattr(data, "dataset") else None
    was_training = model.training
    model.eval()
    try:
        with tqdm(total=total, unit="img", disable=not progress, desc="top-k") as bar:
            for x in _batches(data, batch_size):
                x = x.to(device)
                if transform is not None:
                    x = transform(x)
                finite_images(f"the images {state['first']}…{state['first'] + len(x) - 1}", x)
                state["done"] = 0
                try:
                    model(x)
                except _Stop:
                    pass
                state["first"] += x.shape[0]
                bar.update(x.shape[0])
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if state["first"] == 0:
        raise ValueError("data is empty")
    out = {n: running[n].result(n) for n in names}
    return out[names[0]] if single else out


def save(results, path) -> None:
    """Save a :class:`TopK` or a dict of them (plain tensors; reload with :func:`load`)."""
    items = [results] if isinstance(results, TopK) else list(results.values())
    blob = {"format": _FORMAT, "single": isinstance(results, TopK),
            "layers": {t.layer: t.to_dict() for t in items}}
    from .checkpoint import save_atomic
    save_atomic(blob, path)  # a temporary file, fsync, rename: never a half-written file


def load(path):
    """Reload what :func:`save` wrote (``torch.load(weights_only=True)``)."""
    blob = torch.load(path, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise ValueError(f"{path} is not a top-k file written by zfbook.topk.save")
    out = {n: TopK(n, **d) for n, d in blob["layers"].items()}
    return next(iter(out.values())) if blob["single"] else out
