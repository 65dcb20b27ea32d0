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

Semantics: a map's strongest activation may come from a different image at every
snapshot, as in the paper. Snapshots are float16 (the shipped files); that rounding moves
weights by about 10⁻³ relative, far below the changes measured. Refuses snapshots of
different presets or an empty set of images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from . import deconv, topk
from .checkpoint import manifest, pretrained
from .models import LAYERS

__all__ = ["CONV", "snapshot_epochs", "load_snapshots", "weight_change", "Evolution", "track",
           "settled"]

CONV = ("conv1", "conv2", "conv3", "conv4", "conv5")


def snapshot_epochs(name: str = "zfnet-mini") -> list[int]:
    """The epochs of the shipped snapshots of ``name``, the final model's included, sorted."""
    entries = manifest()
    epochs = {int(k.split("-epoch")[1][:-3]) for k in entries if k.startswith(f"{name}-epoch")}
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

    @property
    def layers(self) -> list[str]:
        return list(self.top[self.epochs[0]])

    def overlap(self, layer: str, final: int | None = None) -> torch.Tensor:
        """(epochs, maps): share of each map's top-k images at each epoch that are also in
        its top-k at ``final`` (default the last epoch). Empty slots never match."""
        ref = self.top[self.epochs[-1] if final is None else final][layer].index
        rows = []
        for e in self.epochs:
            idx = self.top[e][layer].index
            hit = (idx[:, :, None] == ref[:, None, :]) & (idx[:, :, None] >= 0)
            rows.append(hit.any(2).float().mean(1))
        return torch.stack(rows)

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
