"""Reconstruction (Nie, Zhang & Patel 2018): how much of the image's edges a map follows
(:func:`edge_map`, :func:`edge_correlation`)."""
from __future__ import annotations

import numpy as np
import torch

from .similarity import _stack, _views, spearman


def edge_map(image: torch.Tensor) -> np.ndarray:
    """Edge strength of a (C, H, W) image: the Sobel gradient magnitude of its channel mean
    (scikit-image), the simplest parameter-free map of where an image has structure."""
    from skimage.filters import sobel
    return sobel(image.detach().double().mean(0).cpu().numpy())


def edge_correlation(maps, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image, Spearman between |map| and the image's :func:`edge_map` (how much of the
    image the map reconstructs, Nie et al.), and the same with the *next* image's edges
    (image i against i + 1, cyclically): what layout alone gives. Two (N,) arrays."""
    if len(images) < 2:
        raise ValueError("edge_correlation needs at least two images (one is the control)")
    edges = np.stack([edge_map(x).ravel() for x in images])
    views = _views(_stack(maps), True)
    return spearman(views, edges), spearman(views, np.roll(edges, -1, axis=0))
