"""Hand-crafted baselines: HOG or raw pixels with a linear SVM, no network at all.

Fig. 9 sets the pretrained network beside the best method without ImageNet features of its
time (Bo et al. 2013, 55.2% on Caltech-256 with 60 images per class), and Razavian et al.
(2014) measured off-the-shelf CNN features against such pipelines. Ours are the classic two:

* ``hog`` — histograms of oriented gradients (Dalal & Triggs 2005;
  ``skimage.feature.hog``: 9 orientations, ``pixels_per_cell`` square cells, 2×2-cell
  blocks, L2-Hys block normalisation; colour images take each pixel's strongest channel
  gradient) of the centre crop;
* ``pixels`` — the centre crop shrunk to ``side``×``side`` by area averaging, its RGB
  values as features.

Both see the same centre crop the networks see (the checkpoint's crop of the resized
image). The classifier is ``LinearSVC`` after standardisation (:func:`zfbook.probes.classifier`
``linear-svc``), its C chosen by cross-validation on the training shots
(:func:`zfbook.probes.probe_cv`; C = 1 at one image per class). The baselines are deterministic
and cheap (HOG of 1,400 images: a few seconds), so they run on every draw.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..probes import CS, MAX_FOLDS, probe_cv

__all__ = ["HOG", "PIXELS", "RECIPES", "baseline_features", "baseline_arm"]

#: the baselines' default recipes (the first of each grid of :data:`zfbook.transfer.choose.GRIDS`)
HOG = {"features": "hog", "orientations": 9, "pixels_per_cell": 16, "cells_per_block": 2,
       "classifier": "linear-svc", "Cs": list(CS), "folds": MAX_FOLDS}
PIXELS = {"features": "pixels", "side": 32, "classifier": "linear-svc", "Cs": list(CS), "folds": MAX_FOLDS}
RECIPES = {"hog": HOG, "pixels": PIXELS}


def _centre(images: torch.Tensor, crop: int) -> torch.Tensor:
    o = (images.shape[-1] - crop) // 2
    return images[..., o:o + crop, o:o + crop]


def baseline_features(images: torch.Tensor, recipe: dict, crop: int) -> np.ndarray:
    """float32 (N, D) features of uint8 images (N, 3, R, R): HOG or shrunken pixels of the
    ``crop``×``crop`` centre (``recipe["features"]``)."""
    x = _centre(images, crop)
    if recipe["features"] == "pixels":
        side = int(recipe["side"])
        small = F.adaptive_avg_pool2d(x.float(), side) if side < crop else x.float()
        return small.flatten(1).numpy().astype(np.float32)
    if recipe["features"] != "hog":
        raise ValueError(f"unknown baseline features {recipe['features']!r}; valid features are: hog, pixels")
    from skimage.feature import hog
    ppc, cpb = int(recipe["pixels_per_cell"]), int(recipe["cells_per_block"])
    hwc = x.permute(0, 2, 3, 1).numpy()
    return np.stack([hog(im, orientations=int(recipe["orientations"]), pixels_per_cell=(ppc, ppc),
                         cells_per_block=(cpb, cpb), block_norm="L2-Hys", channel_axis=-1)
                     for im in hwc]).astype(np.float32)


def baseline_arm(train_x, train_y, test_x, test_y, recipe: dict, seed: int = 0):
    """The linear SVM on baseline features, C by cross-validation on the training rows:
    a :class:`zfbook.probes.CVProbeResult`."""
    return probe_cv(recipe["classifier"], train_x, train_y, test_x, test_y, seed, Cs=recipe["Cs"],
                    max_folds=recipe["folds"])
