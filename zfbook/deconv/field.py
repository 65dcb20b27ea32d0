"""Receptive fields: the input box a unit sees (:func:`receptive_field`) and cutting it out (:func:`crop`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .links import chain
from .projection import _as_long


# ------------------------------------------------------------------ receptive fields
def receptive_field(model: nn.Module, layer: str, location):
    """The input box (top, left, bottom, right) that the unit at ``location`` of ``layer`` sees.

    ``bottom``/``right`` are exclusive, like slices; the box may extend beyond the image
    (padding). ``location`` is a (y, x) pair → a tuple of 4 ints, or an array of pairs
    (..., 2) → a long tensor (..., 4). Crop the patch with :func:`crop`.
    """
    links = chain(model, layer)
    start, step, ext = [0, 0], [1, 1], [1, 1]  # top = start + step * y; extent ext
    for l in reversed(links):
        if l.kind in ("flatten", "linear"):
            raise ValueError(f"layer {layer!r} is fully connected: its units see the whole image")
        if l.kind in ("conv", "pool"):
            for a in range(2):  # going down: top_in = top_out * stride - padding
                start[a] = start[a] * l.stride[a] - l.padding[a]
                step[a] = step[a] * l.stride[a]
                ext[a] = (ext[a] - 1) * l.stride[a] + l.dilation[a] * (l.kernel[a] - 1) + 1
    loc = _as_long(location, "location")
    if loc.shape[-1:] != (2,):
        raise ValueError(f"location must be a (y, x) pair or pairs, got shape {tuple(loc.shape)}")
    top = start[0] + step[0] * loc[..., 0]
    left = start[1] + step[1] * loc[..., 1]
    box = torch.stack([top, left, top + ext[0], left + ext[1]], -1)
    return tuple(box.tolist()) if loc.dim() == 1 else box


def crop(images: torch.Tensor, box, fill: float = 0.0) -> torch.Tensor:
    """Cut ``box`` = (top, left, bottom, right) out of ``images``, padding with ``fill`` outside.

    ``images`` is (C, H, W) with one box, or (N, C, H, W) with one box or N boxes (all the
    same size, as the receptive fields of one layer are). For mean-subtracted images
    ``fill=0`` is the mean colour.
    """
    box = torch.as_tensor(box, dtype=torch.long)
    single = images.dim() == 3
    x = images.unsqueeze(0) if single else images
    boxes = box.expand(x.shape[0], 4) if box.dim() == 1 else box
    if boxes.shape != (x.shape[0], 4):
        raise ValueError(f"need one box or {x.shape[0]} boxes, got shape {tuple(box.shape)}")
    sizes = boxes[:, 2:] - boxes[:, :2]
    if not bool((sizes == sizes[0]).all()) or bool((sizes[0] <= 0).any()):
        raise ValueError("all boxes must have the same positive size")
    h, w = x.shape[-2:]
    m = int(max(0, -boxes[:, :2].min(), (boxes[:, 2] - h).max(), (boxes[:, 3] - w).max()))
    padded = F.pad(x, (m, m, m, m), value=fill)
    out = torch.stack([padded[i, :, t + m:b + m, l + m:r + m]
                       for i, (t, l, b, r) in enumerate(boxes.tolist())])
    return out[0] if single else out
