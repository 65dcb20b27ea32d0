"""How alike two maps of one image are (:func:`similarity`, :data:`MEASURES`)."""
from __future__ import annotations

import numpy as np
import torch

from .methods import _check

#: the similarity measures
MEASURES = ("spearman_abs", "spearman", "ssim")


def _view(m, absolute: bool) -> np.ndarray:
    """A map as a 2-D float64 array: |m| (or m) summed over colour channels."""
    m = torch.as_tensor(m).detach().double()
    if absolute:
        m = m.abs()
    if m.dim() == 3:
        m = m.sum(0)
    return m.cpu().numpy()


def similarity(a, b, measure: str = "spearman_abs") -> float:
    """Similarity of two maps of one image ((C, H, W) or (H, W)); see :data:`MEASURES`.

    Identical maps give exactly 1.0 on every measure (the rank correlation of a vector
    with itself is 1; its floating-point evaluation may round to 1 − 2⁻⁵²). NaN when
    Spearman is undefined (a constant map, e.g. a unit that does not fire).
    """
    _check("measure", measure, MEASURES)
    if torch.equal(torch.as_tensor(a), torch.as_tensor(b)) and _view(a, True).max() > 0:
        return 1.0
    if measure == "ssim":
        from skimage.metrics import structural_similarity
        x, y = (_view(m, True) for m in (a, b))
        x, y = (v / v.max() if v.max() > 0 else v for v in (x, y))
        return float(structural_similarity(x, y, data_range=1.0))
    from scipy.stats import spearmanr
    x, y = (_view(m, measure == "spearman_abs").ravel() for m in (a, b))
    if x.min() == x.max() or y.min() == y.max():
        return float("nan")
    return float(spearmanr(x, y).statistic)
