"""The grey square: where it goes (:func:`placements`) and pasting it on an image (:func:`occlude`)."""
from __future__ import annotations

import numpy as np
import torch


# ---------------------------------------------------------------- the square
def placements(size: int, patch: int, stride: int) -> list[int]:
    """Top-left coordinates of the square along one axis of length ``size``.

    ``0, stride, 2·stride, …`` up to ``size − patch``, plus the edge position
    ``size − patch`` when the stride does not land on it, so the squares reach the far
    edge (and cover every pixel when ``stride ≤ patch``).
    """
    _check_patch_stride(size, patch, stride)
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return pos


def _check_patch_stride(size: int, patch: int, stride: int) -> None:
    if isinstance(patch, bool) or isinstance(stride, bool):
        raise ValueError(f"patch and stride must be positive integers, got {patch!r} and {stride!r}")
    if not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ValueError(f"patch must be a positive integer, got {patch!r}")
    if patch > size:
        raise ValueError(f"patch {patch} is larger than the image ({size} pixels); "
                         f"valid patch sizes are 1…{size}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer (≥ 1), got {stride!r}")


def _fill_image(fill, image: torch.Tensor) -> torch.Tensor:
    """``fill`` as a tensor broadcastable to the (C, H, W) image."""
    c = image.shape[0]
    if fill is None:
        fill = 0.0
    fill = torch.as_tensor(fill, dtype=image.dtype, device=image.device)
    if fill.dim() == 1:
        fill = fill[:, None, None]
    if fill.dim() == 0:
        fill = fill.reshape(1, 1, 1)
    if fill.dim() != 3 or fill.shape[0] not in (1, c) or \
            fill.shape[1:] not in ((1, 1), tuple(image.shape[1:])):
        raise ValueError(f"fill must be a number, a ({c},) colour or a {tuple(image.shape)} "
                         f"image, got shape {tuple(fill.shape)}")
    return fill


def occlude(image: torch.Tensor, y: int, x: int, size: int, fill=None) -> torch.Tensor:
    """A copy of the (C, H, W) ``image`` with the square ``[y, y+size) × [x, x+size)`` set
    to ``fill`` (default 0: the training mean once the mean is subtracted)."""
    h, w = image.shape[-2:]
    _check_patch_stride(min(h, w), size, 1)
    if not (0 <= y <= h - size and 0 <= x <= w - size):
        raise ValueError(f"square at ({y}, {x}) of side {size} leaves the {h}×{w} image; "
                         f"valid corners are y in 0…{h - size}, x in 0…{w - size}")
    out = image.clone()
    f = _fill_image(fill, image).expand_as(image)
    out[:, y:y + size, x:x + size] = f[:, y:y + size, x:x + size]
    return out
