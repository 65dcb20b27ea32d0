"""Neuron selectivity (Mahendran & Vedaldi 2016): how alike one image's maps of
different units are (:func:`selectivity`)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .methods import (METHODS, TARGETS, _check, _check_model, _occlusion_drops, explain,
                      top_features)
from .similarity import _stack, _views, ranks


def _pairwise(maps) -> float:
    """Mean Spearman (absolute maps) over all pairs of distinct maps, NaN pairs skipped.

    Every map is ranked once (:func:`~zfbook.sanity.similarity.ranks`, average ranks for
    ties) and the Pearson correlations of the ranks are Spearman's coefficients."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(ranks(_views(_stack(maps), True)))
    vals = r[np.triu_indices(len(maps), 1)]
    return float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")


def selectivity(model: nn.Module, image: torch.Tensor, method: str, target: str = "conv5",
                which=None, *, patch: int = 16, stride: int = 8) -> float:
    """How alike one image's maps of *different* units are (Mahendran & Vedaldi).

    The mean pairwise Spearman (absolute maps) among the maps of the ``which`` conv5
    feature maps (default: the image's 8 most active) or fc8 classes (default: all).
    Near 1: the map hardly depends on which unit was chosen.
    """
    _check_model(model)
    image = image if image.dim() == 4 else image[None]
    if which is None:
        which = (top_features(model, image, k=8)[0] if target == "conv5"
                 else list(range(model.num_classes)))
    which = [int(v) for v in which]
    if len(which) < 2:
        raise ValueError("selectivity needs at least two units to compare")
    _check("method", method, METHODS)
    _check("target", target, TARGETS)
    model.eval()
    if method == "occlusion":   # one sweep serves every unit
        return _pairwise(_occlusion_drops(model, image[0], target, which, patch, stride))
    images = image.expand(len(which), *image.shape[1:])
    return _pairwise(explain(model, images, method, target, which, patch=patch, stride=stride))
