"""Feature evolution during training (Section 4, Fig. 4): how each layer's features settle.

Fig. 4 of the paper shows, for a few feature maps of every layer, the strongest activation
over the training set at epochs 1, 2, 5, 10, 20, 30, 40 and 64, each projected to pixels
with the deconvnet, and reads from it that "the lower layers of the model can be seen to
converge within a few epochs", while the upper layers "only develop after a considerable
number of epochs (40–50)". This module turns the pictures into numbers, for snapshots of
*one* run (``pretrained(name, epoch=E)``, all from the run that produced the final model):

* :func:`weight_change` — per layer and snapshot, ‖W_e − W_final‖ / ‖W_final‖ (weights
  only, no biases): 0 at the final epoch; a layer has converged once it stays small.
* :class:`Evolution` (from :func:`track`) — one top-k search (:func:`zfbook.topk.top_activations`)
  per snapshot over the same images:

  * :meth:`Evolution.overlap` — per map, the share of its top-k images (k = 9, as in
    Fig. 2) that are also among its top-k at the final epoch; 1 at the final epoch, about
    k / N for unrelated choices;
  * :meth:`Evolution.project` — each map's strongest activation at each snapshot,
    projected to pixels (:meth:`zfbook.topk.TopK.project`) and optionally cut to its
    receptive field: the tiles of Fig. 4.

* :func:`settled` — the first epoch from which a per-epoch curve stays at or beyond a
  threshold (``None`` if it never does).
* :func:`noise_ceiling` (or :meth:`Evolution.noise_ceiling`) — the overlap's reference
  level: the top-k overlap of the final network with an equally good network, each map
  paired with its counterpart there (:class:`Ceiling`; see its docstring for why it takes a
  second network and not two halves of the images).

Semantics: a map's strongest activation may come from a different image at every
snapshot, as in the paper. Snapshots are float16 (the shipped files); that rounding moves
weights by about 10⁻³ relative, far below the changes measured. Refuses snapshots of
different presets or an empty set of images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import deconv, topk
from .checkpoint import manifest, parse_shipped_name, pretrained
from .models import LAYERS, activations

__all__ = ["CONV", "snapshot_epochs", "load_snapshots", "weight_change", "Evolution", "track",
           "settled", "Ceiling", "pair_maps", "noise_ceiling"]

CONV = ("conv1", "conv2", "conv3", "conv4", "conv5")


def snapshot_epochs(name: str = "zfnet-mini") -> list[int]:
    """The epochs of the shipped snapshots of ``name``, the final model's included, sorted
    (any set of epochs: whatever ``{name}-epoch{E}.pt`` files the manifest lists)."""
    entries = manifest()
    epochs = {e for m, e in filter(None, map(parse_shipped_name, entries))
              if m == name and e is not None}
    if f"{name}.pt" in entries:
        epochs.add(int(entries[f"{name}.pt"]["epochs"]))
    return sorted(epochs)


def load_snapshots(name: str = "zfnet-mini", epochs=None) -> dict[int, nn.Module]:
    """epoch → model (eval mode) for the shipped snapshots of ``name`` (default all)."""
    epochs = snapshot_epochs(name) if epochs is None else list(epochs)
    if not epochs:
        raise ValueError(f"no shipped snapshots of {name!r}")
    return {e: pretrained(name, epoch=e) for e in epochs}


def _check(models: dict) -> list[int]:
    if not models:
        raise ValueError("no snapshots given")
    presets = {m.preset.name for m in models.values()}
    if len(presets) > 1:
        raise ValueError(f"snapshots of different presets: {', '.join(sorted(presets))}")
    return sorted(models)


def _layer_weight(model: nn.Module, layer: str) -> torch.Tensor:
    part = model.features if layer.startswith("conv") else model.classifier
    return getattr(part, layer).weight.detach().double()


def weight_change(models: dict, layers=LAYERS, final: int | None = None) -> dict[str, list[float]]:
    """layer → [‖W_e − W_final‖ / ‖W_final‖ for each epoch e in sorted order]; ``final``
    defaults to the last epoch."""
    epochs = _check(models)
    ref = models[epochs[-1] if final is None else final]
    out = {}
    for layer in layers:
        w_final = _layer_weight(ref, layer)
        out[layer] = [((_layer_weight(models[e], layer) - w_final).norm() / w_final.norm()).item()
                      for e in epochs]
    return out


@dataclass
class Evolution:
    """Top-k searches of the same images at every snapshot (see :func:`track`)."""
    epochs: list
    models: dict
    images: torch.Tensor
    top: dict = field(repr=False)   # epoch → layer → TopK
    ceiling: "Ceiling | None" = field(default=None, repr=False)  # set by noise_ceiling

    @property
    def layers(self) -> list[str]:
        return list(self.top[self.epochs[0]])

    def overlap(self, layer: str, final: int | None = None) -> torch.Tensor:
        """(epochs, maps): share of each map's top-k images at each epoch that are also in
        its top-k at ``final`` (default the last epoch). Empty slots never match."""
        ref = self.top[self.epochs[-1] if final is None else final][layer].index
        return torch.stack([_overlap(self.top[e][layer].index, ref) for e in self.epochs])

    def strongest(self, layer: str) -> torch.Tensor:
        """(epochs, maps) image index of each map's strongest activation."""
        return torch.stack([self.top[e][layer].index[:, 0] for e in self.epochs])

    def project(self, layer: str, maps, *, crop: bool = True) -> list:
        """Fig. 4's tiles: for each epoch, the projections (len(maps), C, h, w) of each map's
        strongest activation, cut to its receptive field when ``crop`` (a list over epochs;
        receptive fields at the image border are smaller)."""
        maps = torch.as_tensor(maps, dtype=torch.long)
        out = []
        for e in self.epochs:
            t = self.top[e][layer]
            one = topk.TopK(layer, t.value[:, :1], t.index[:, :1], t.y[:, :1], t.x[:, :1])
            p = one.project(self.models[e], self.images, maps)[:, 0]
            if crop:
                boxes = one.boxes(self.models[e], maps)[:, 0]
                p = [deconv.crop(p[i], boxes[i]) for i in range(len(maps))]
            out.append(p)
        return out

    def noise_ceiling(self, other: nn.Module, match_images: torch.Tensor, *,
                      batch_size: int = 64) -> "Ceiling":
        """:func:`noise_ceiling` of the final snapshot against ``other`` on this search's
        images, layers and k, so that it sits on the same scale as :meth:`overlap`; also
        kept as ``self.ceiling``."""
        final = self.epochs[-1]
        k = self.top[final][self.layers[0]].k
        self.ceiling = noise_ceiling(self.models[final], other, self.images, match_images,
                                     self.layers, k=k, batch_size=batch_size,
                                     reference_top=self.top[final])
        return self.ceiling


def track(models: dict, images: torch.Tensor, layers=CONV, *, k: int = 9,
          progress: bool = False) -> Evolution:
    """Run the top-k search (:func:`zfbook.topk.top_activations`) of every snapshot over
    ``images`` (preprocessed with the final model's preprocessing; all snapshots of a run
    share its mean image)."""
    epochs = _check(models)
    if len(images) == 0:
        raise ValueError("images is empty")
    layers = [layers] if isinstance(layers, str) else list(layers)
    top = {e: topk.top_activations(models[e], images, layers, k=k, progress=progress) for e in epochs}
    return Evolution(epochs, dict(models), images, top)


def settled(values, epochs, threshold: float, *, above: bool = True):
    """The first epoch from which ``values`` (one per epoch) stay ≥ ``threshold`` (or ≤ it
    with ``above=False``) up to the last epoch; ``None`` if the last value does not."""
    ok = [(v >= threshold) if above else (v <= threshold) for v in values]
    first = None
    for e, good in zip(epochs, ok):
        if good and first is None:
            first = e
        elif not good:
            first = None
    return first


def _overlap(idx: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(maps,) share of each row of ``idx`` (maps, k) found in the same row of ``ref``;
    empty slots (-1) never match."""
    hit = (idx[:, :, None] == ref[:, None, :]) & (idx[:, :, None] >= 0)
    return hit.any(2).float().mean(1)


@dataclass
class Ceiling:
    """The top-k overlap's noise ceiling (Section 4, Fig. 4): per map of the final network,
    the share of its top-k images that its counterpart in an equally good network also has
    in its top-k, over the same images and with the same k as :meth:`Evolution.overlap`.

    **Why a second network, not two halves of the images.** The overlap compares image
    identities in one fixed pool, and the final network's top-k of that pool is
    deterministic: the only noise the curve can hide is the network's own, what training
    on another draw of images or from another start would change. Two halves of the pool
    share no image, so their top-k sets cannot overlap; resampling the pool drops every
    network's top images at the same rate, whatever the network, so it says nothing about
    the network. Halves (or a bootstrap) of the pool give the overlap's interval over
    images, which is the caller's, not its ceiling.

    **What the second network makes it.** Trained by the same recipe from the same initial
    weights on an independent sample of training images (another ``--data-seed``): two
    equally good measurements of one network, the noise ceiling proper. Trained from
    another seed (another start and order): maps learned independently, so the value is
    what the same *kind* of feature shares, a floor for "settled". The final network
    itself: 1 for every map.

    **Pairing.** Maps come in arbitrary order, so each map is paired one-to-one with a map
    of the other network (the Hungarian algorithm) to maximise the summed Spearman
    correlation of their per-image strongest activations (what the top-k ranks) over
    ``match_images``: other images than the pool, or partners would be chosen for sharing
    the very top images being counted.

    ``overlap[layer]`` (maps,) the overlap with the partner; ``partner[layer]`` (maps,)
    the partner's index in the other network; ``correlation[layer]`` (maps,) the pair's
    Spearman correlation on the matching images (0 for a map that never varies).
    """
    layers: list
    overlap: dict
    partner: dict
    correlation: dict
    k: int
    n_images: int
    n_match: int

    @property
    def chance(self) -> float:
        """The overlap of unrelated choices, about k / N."""
        return self.k / self.n_images

    def mean(self, layer: str) -> float:
        """The ceiling of the chapter's curve: the overlap averaged over the maps."""
        return float(self.overlap[layer].mean())


@torch.no_grad()
def _strongest(model: nn.Module, images: torch.Tensor, layers, batch_size: int) -> dict:
    """layer → (N, maps) float64: each image's strongest activation of each map (the value
    the top-k search ranks; an fc unit's activation itself)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = {layer: [] for layer in layers}
    try:
        for b in range(0, len(images), batch_size):
            acts = activations(model, images[b:b + batch_size].to(device), layers)
            for layer in layers:
                a = acts[layer]
                out[layer].append((a.flatten(2).amax(2) if a.dim() == 4 else a).double().cpu())
    finally:
        model.train(was_training)
    return {layer: torch.cat(v) for layer, v in out.items()}


def _spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(maps_a, maps_b) Spearman correlations between the columns of a (N, maps_a) and
    b (N, maps_b), ties ranked by their average; 0 where a column never varies."""
    from scipy.stats import rankdata

    def z(x):
        r = torch.from_numpy(rankdata(x.numpy(), axis=0))
        r = r - r.mean(0)
        norm = r.norm(dim=0)
        return r / torch.where(norm > 0, norm, torch.ones_like(norm))
    return z(a).t() @ z(b)


def pair_maps(model: nn.Module, other: nn.Module, images: torch.Tensor, layers=CONV, *,
              batch_size: int = 64) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """layer → (partner, correlation): each map ``m`` of ``model`` paired one-to-one with
    map ``partner[m]`` of ``other`` to maximise the summed Spearman correlation of their
    per-image strongest activations over ``images`` (Hungarian algorithm,
    ``scipy.optimize.linear_sum_assignment``); ``correlation[m]`` is that pair's."""
    from scipy.optimize import linear_sum_assignment

    layers = [layers] if isinstance(layers, str) else list(layers)
    if len(images) < 2:
        raise ValueError(f"need at least 2 images to pair maps by correlation, got {len(images)}")
    a = _strongest(model, images, layers, batch_size)
    b = _strongest(other, images, layers, batch_size)
    out = {}
    for layer in layers:
        if a[layer].shape[1] != b[layer].shape[1]:
            raise ValueError(f"{layer} has {a[layer].shape[1]} maps in one network and "
                             f"{b[layer].shape[1]} in the other; pair networks of one preset")
        corr = _spearman(a[layer], b[layer])
        _, cols = linear_sum_assignment(corr.numpy(), maximize=True)
        partner = torch.from_numpy(np.asarray(cols)).long()
        out[layer] = (partner, corr[torch.arange(len(partner)), partner])
    return out


def noise_ceiling(model: nn.Module, other: nn.Module, images: torch.Tensor,
                  match_images: torch.Tensor, layers=CONV, *, k: int = 9, batch_size: int = 64,
                  reference_top: dict | None = None) -> Ceiling:
    """The :class:`Ceiling` of the top-k overlap of ``model`` (the final network) against
    ``other``: maps paired on ``match_images`` (:func:`pair_maps`), overlaps counted on
    ``images`` (the pool of :func:`track`; both preprocessed alike). ``reference_top``
    (layer → TopK of ``model`` on ``images``) skips that search when it is at hand."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    if len(images) == 0:
        raise ValueError("images is empty")
    pairs = pair_maps(model, other, match_images, layers, batch_size=batch_size)
    ref = reference_top or topk.top_activations(model, images, layers, k=k, progress=False)
    top = topk.top_activations(other, images, layers, k=k, progress=False)
    overlap = {layer: _overlap(top[layer].index[pairs[layer][0]], ref[layer].index)
               for layer in layers}
    return Ceiling(layers, overlap, {layer: p for layer, (p, _) in pairs.items()},
                   {layer: c for layer, (_, c) in pairs.items()}, int(k), len(images),
                   len(match_images))
