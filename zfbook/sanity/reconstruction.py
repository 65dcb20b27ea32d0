"""Reconstruction (Nie, Zhang & Patel 2018): how much of the image's edges a map follows
(:func:`edge_map`, :func:`edge_correlation`)."""
from __future__ import annotations

import numpy as np
import torch

from .similarity import _view


def edge_map(image: torch.Tensor) -> np.ndarray:
    """Edge strength of a (C, H, W) image: the Sobel gradient magnitude of its channel mean
    (scikit-image), the simplest parameter-free map of where an image has structure."""
    from skimage.filters import sobel
    return sobel(image.detach().double().mean(0).cpu().numpy())


def edge_correlation(maps, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image, Spearman between |map| and the image's :func:`edge_map` (how much of the
    image the map reconstructs, Nie et al.), and the same with the *next* image's edges
    (image i against i + 1, cyclically): what layout alone gives. Two (N,) arrays."""
    from scipy.stats import spearmanr
    edges = [edge_map(x).ravel() for x in images]
    n = len(images)
    if n < 2:
        raise ValueError("edge_correlation needs at least two images (one is the control)")
    own, other = [], []
    for i in range(n):
        v = _view(maps[i], True).ravel()
        own.append(spearmanr(v, edges[i]).statistic)
        other.append(spearmanr(v, edges[(i + 1) % n]).statistic)
    return np.array(own, dtype=float), np.array(other, dtype=float)
