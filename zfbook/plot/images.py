"""From tensors to pictures, shared by every chapter's figures.

A projection (:func:`zfbook.deconv.project`) is shown contrast-normalised on its own,
scaled by its largest absolute value and centred at grey (zero is grey, positive
brighter), like the paper's figures; filters likewise, one by one. Images are HWC
arrays in [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ['projection_rgb', 'image_rgb', 'mosaic']


def projection_rgb(p: torch.Tensor, scale: float | None = None) -> np.ndarray:
    """A projection (C, H, W) as an HWC image in [0, 1]: scaled by its max |value| (or by
    ``scale``, to show several on one scale; values beyond it are clipped), 0 at grey."""
    p = p.detach().float().cpu()
    scale = float(p.abs().max()) if scale is None else float(scale)
    q = (p / (2 * scale) + 0.5).clamp(0, 1) if scale > 0 else torch.full_like(p, 0.5)
    q = q.permute(1, 2, 0).numpy()
    return np.repeat(q, 3, axis=2) if q.shape[2] == 1 else q


def image_rgb(x: torch.Tensor, preprocess=None) -> np.ndarray:
    """A preprocessed image (C, H, W) for viewing, HWC in [0, 1].

    With the :class:`~zfbook.data.Preprocess` it came from, the mean is added back; without
    it the image is min-max scaled.
    """
    if preprocess is not None:
        return preprocess.display(x)
    x = x.detach().float().cpu()
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else torch.full_like(x, 0.5)
    x = x.permute(1, 2, 0).numpy()
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def mosaic(tiles, ncols: int, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Tile equally sized HWC arrays row by row into one image, ``gap`` pixels apart."""
    tiles = list(tiles)
    h, w, c = tiles[0].shape
    nrows = -(-len(tiles) // ncols)
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap, c), fill, dtype=np.float32)
    for i, t in enumerate(tiles):
        r, q = divmod(i, ncols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = t
    return out


def _rgb_array(image) -> np.ndarray:
    """A uint8 (3, H, W) tensor, a float (3, H, W) tensor in 0…255, or an HWC array in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        return (image.float() / 255.0).clamp(0, 1).permute(1, 2, 0).numpy()
    return np.asarray(image)


def _first_conv(model_or_weight) -> torch.Tensor:
    if isinstance(model_or_weight, torch.Tensor):
        return model_or_weight
    for m in model_or_weight.modules():
        if isinstance(m, nn.Conv2d):
            return m.weight
    raise ValueError("the model has no Conv2d layer")


def _resize(a: np.ndarray, side: int) -> np.ndarray:
    """An HWC float array in [0, 1] to side × side: nearest when enlarging, box when shrinking."""
    from PIL import Image

    if a.shape[:2] == (side, side):
        return a
    img = Image.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8))
    resample = Image.NEAREST if max(a.shape[:2]) <= side else Image.BOX
    return np.asarray(img.resize((side, side), resample), dtype=np.float32) / 255


def _cut(a: np.ndarray, box, fill: float) -> np.ndarray:
    """The ``box`` (top, left, bottom, right) of an HWC array, padded with ``fill`` outside."""
    t, l, b, r = (int(v) for v in box)
    h, w = a.shape[:2]
    out = np.full((b - t, r - l, a.shape[2]), fill, dtype=np.float32)
    y0, x0, y1, x1 = max(t, 0), max(l, 0), min(b, h), min(r, w)
    if y1 > y0 and x1 > x0:
        out[y0 - t:y1 - t, x0 - l:x1 - l] = a[y0:y1, x0:x1]
    return out
