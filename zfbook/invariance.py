"""Feature invariance (Section 4, Fig. 5): how far the features move as an image is
translated vertically, scaled and rotated.

For each transform value, :func:`invariance_sweep` transforms the *un-preprocessed* uint8
images at the resized resolution (128 for the mini presets, 256 in the paper) with
``torchvision.transforms.v2.functional``, then applies the model's preprocessing (mean
subtraction, centre crop) and records, per image:

* the **normalised Euclidean distance** ``‖f(x) − f(T x)‖₂ / ‖f(x)‖₂`` between the
  flattened features of the original and transformed image at ``conv1`` and ``fc7``
  (the paper plots the raw distance; dividing by the original's norm puts the two
  layers on one scale and makes 1 mean "moved as far as the vector is long");
* P(true class), and the most probable class.

Ranges (:func:`paper_values`) are the paper's, with translations scaled to the crop:
vertical translation −60…60 px at 224 (so −30…30 px at 112), scale 1…1.8, rotation
0…350°. Choices where the paper is silent: bilinear interpolation, rotation and scale
about the image centre, and pixels moved in from outside the image filled with the
training mean's average colour (≈ 0 after mean subtraction, like the occluder's grey).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from .models import activations

__all__ = ["TRANSFORMS", "paper_values", "transform", "feature_distance", "InvarianceSweep",
           "invariance_sweep"]

#: the transforms of Fig. 5, rows a–c
TRANSFORMS = ("translation", "scale", "rotation")
_IDENTITY = {"translation": 0.0, "scale": 1.0, "rotation": 0.0}


def _check_transform(name: str) -> None:
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; transforms are: {', '.join(TRANSFORMS)}")


def paper_values(name: str, crop: int = 224) -> list[float]:
    """The values swept in Fig. 5, scaled to a network input of side ``crop``.

    translation: −60…60 px in steps of 10 at 224, times ``crop / 224``, rounded to whole
    pixels (positive moves the image down); scale: 1.0…1.8 in steps of 0.1; rotation:
    0…350° in steps of 10 (counter-clockwise).
    """
    _check_transform(name)
    if name == "translation":
        return [float(round(v * crop / 224)) for v in range(-60, 61, 10)]
    if name == "scale":
        return [round(1.0 + 0.1 * i, 1) for i in range(9)]
    return [float(a) for a in range(0, 360, 10)]


def transform(images: torch.Tensor, name: str, value: float, fill=None) -> torch.Tensor:
    """Apply one transform of Fig. 5 to uint8 images (N, C, R, R) or (C, R, R).

    ``fill`` (a number or one value per channel) colours pixels that come from outside
    the image. The identity value (0 px, scale 1, 0°) returns the images unchanged.
    """
    _check_transform(name)
    if float(value) == _IDENTITY[name]:
        return images.clone()
    if name == "scale" and value <= 0:
        raise ValueError(f"scale must be positive, got {value}")
    if fill is not None:
        fill = [float(f) for f in torch.as_tensor(fill, dtype=torch.float64).reshape(-1)]
    bilinear = InterpolationMode.BILINEAR
    if name == "translation":
        return TF.affine(images, angle=0.0, translate=[0.0, float(value)], scale=1.0,
                         shear=[0.0, 0.0], interpolation=bilinear, fill=fill)
    if name == "scale":
        return TF.affine(images, angle=0.0, translate=[0.0, 0.0], scale=float(value),
                         shear=[0.0, 0.0], interpolation=bilinear, fill=fill)
    return TF.rotate(images, float(value), interpolation=bilinear, fill=fill)


def feature_distance(original: torch.Tensor, transformed: torch.Tensor) -> torch.Tensor:
    """``‖a − b‖₂ / ‖a‖₂`` per row, for (N, …) feature tensors flattened per item
    (0 where both are zero, ``inf`` where only the original is zero)."""
    a = original.reshape(len(original), -1).double()
    b = transformed.reshape(len(transformed), -1).double()
    diff = (a - b).norm(dim=1)
    norm = a.norm(dim=1)
    return torch.where(diff == 0, torch.zeros_like(diff), diff / norm)


@dataclass
class InvarianceSweep:
    """One row of Fig. 5: ``values`` (T,) of ``transform`` applied to N images.

    ``distance[layer]`` (N, T) — normalised distance to the untransformed features;
    ``p_true`` (N, T) — P(true class); ``top_class`` (N, T); ``labels`` (N,).
    """
    transform: str
    values: list
    distance: dict
    p_true: torch.Tensor
    top_class: torch.Tensor
    labels: torch.Tensor


@torch.no_grad()
def invariance_sweep(model, images: torch.Tensor, labels, name: str, values=None,
                     layers=("conv1", "fc7"), preprocess=None, fill=None,
                     batch: int = 64) -> InvarianceSweep:
    """Sweep uint8 ``images`` (N, C, R, R) at the resized resolution through transform
    ``name`` over ``values`` (default :func:`paper_values` for the model's crop).

    ``preprocess`` (default ``model.preprocess``) turns them into network inputs with its
    ``center`` crop; ``fill`` defaults to the rounded per-channel average of its mean image.
    """
    _check_transform(name)
    if preprocess is None:
        preprocess = getattr(model, "preprocess", None)
        if preprocess is None:
            raise ValueError("pass preprocess=Preprocess(mean, crop): the model carries none")
    if images.dim() == 3:
        images = images[None]
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (un-preprocessed), got {images.dtype}")
    labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    values = list(paper_values(name, preprocess.crop) if values is None else values)
    if fill is None:
        fill = preprocess.mean.mean(dim=(1, 2)).round()
    layers = list(layers)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        n, t = len(images), len(values)
        # every (image, value) pair, preprocessed, in batches
        feats = {layer: [] for layer in layers}
        wanted = list(dict.fromkeys(layers + ["fc8"]))
        logits = []
        items = [(i, v) for v in range(t) for i in range(n)]
        for b0 in range(0, len(items), batch):
            chunk = items[b0:b0 + batch]
            xs = torch.cat([transform(images[i:i + 1], name, values[v], fill) for i, v in chunk])
            x = preprocess.center(xs).to(device)
            out = activations(model, x, wanted)
            for layer in layers:
                feats[layer].append(out[layer].cpu())
            logits.append(out["fc8"].cpu())
        logits = torch.cat(logits).reshape(t, n, -1).transpose(0, 1)          # (N, T, K)
        x0 = preprocess.center(images).to(device)
        base = activations(model, x0, layers)
        distance = {}
        for layer in layers:
            f = torch.cat(feats[layer]).reshape(t, n, -1).transpose(0, 1)      # (N, T, D)
            a = base[layer].cpu().reshape(n, 1, -1).expand_as(f)
            d = feature_distance(a.reshape(n * t, -1), f.reshape(n * t, -1))
            distance[layer] = d.reshape(n, t)
    finally:
        model.train(was_training)
    probs = torch.softmax(logits.double(), dim=-1)
    p_true = probs.gather(2, labels.view(n, 1, 1).expand(n, t, 1))[..., 0]
    return InvarianceSweep(name, values, distance, p_true, probs.argmax(-1), labels)
