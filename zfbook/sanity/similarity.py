"""How alike two maps of one image are (:func:`similarity`, :data:`MEASURES`), and the same
for many pairs of maps at once (:func:`similarities`).

Spearman's coefficient is the Pearson correlation of the two maps' ranks. :func:`ranks`
ranks every map of a stack in one vectorised sort (ties get their average rank, as
``scipy.stats.rankdata``), and :func:`spearman` correlates paired rows, so a randomisation
step or a null ranks all its maps in a few array operations instead of one
``scipy.stats.spearmanr`` call per pair.
"""
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


def _stack(maps) -> torch.Tensor:
    """A stack of maps (N, C, H, W) or (N, H, W) as one tensor (a list is stacked)."""
    if isinstance(maps, torch.Tensor):
        return maps.detach()
    return torch.stack([torch.as_tensor(m).detach() for m in maps])


def _views(maps: torch.Tensor, absolute: bool) -> np.ndarray:
    """(N, H·W) float64: each map's :func:`_view`, flattened."""
    m = (maps.abs() if absolute else maps).double()
    if m.dim() == 4:
        m = m.sum(1)
    return m.flatten(1).cpu().numpy()


def ranks(values) -> np.ndarray:
    """Ranks 1…n along the last axis of an (..., n) array, every row at once; tied values
    share their average rank (``scipy.stats.rankdata``'s ``"average"``). A row holding a
    NaN is all NaN (``rankdata``'s ``nan_policy="propagate"``). Returns float64."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[-1]
    if x.size == 0:
        return x.copy()
    rows = x.reshape(-1, n)
    order = np.argsort(rows, axis=-1)         # ties may come in any order: they share a rank
    s = np.take_along_axis(rows, order, axis=-1)
    starts = np.ones(rows.shape, dtype=bool)  # where a run of equal sorted values begins
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    flat = starts.ravel()                     # a run never spans two rows
    bounds = np.append(np.flatnonzero(flat), flat.size)   # runs' first positions, then end
    first, last = bounds[:-1] % n, (bounds[1:] - 1) % n   # positions within the row
    mean_rank = (first + last) / 2 + 1                    # each run's average rank
    run = np.cumsum(flat) - 1                             # each sorted position's run
    out = np.empty_like(rows)
    np.put_along_axis(out, order, mean_rank[run].reshape(rows.shape), axis=-1)
    out[np.isnan(rows).any(axis=-1)] = np.nan
    return out.reshape(x.shape)


def _unit(r: np.ndarray) -> np.ndarray:
    """Each row centred and scaled to length 1 (NaN if it does not vary): the Pearson
    correlation of two rows is then their dot product."""
    r = r - r.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...i,...i->...", r, r))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, r / norm, np.nan)


def _dot(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    return np.clip(np.einsum("...i,...i->...", za, zb), -1.0, 1.0)


def spearman(a, b) -> np.ndarray:
    """Spearman's rank correlation of each row of ``a`` with the same row of ``b`` ((..., n)
    arrays): the Pearson correlation of their :func:`ranks`. NaN where a row is constant
    (its ranks do not vary) or holds a NaN. Returns float64 of shape (...)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return _dot(_unit(ranks(a)), _unit(ranks(b)))


def _unit_ranks(maps: torch.Tensor, measure: str) -> np.ndarray:
    """(N, H·W): each map of a stack ranked (|map| for ``spearman_abs``) and :func:`_unit`:
    rank a stack once, then the Spearman coefficient of two of its maps is a dot product."""
    return _unit(ranks(_views(maps, measure == "spearman_abs")))


def _ssim(x: np.ndarray, y: np.ndarray, shape) -> float:
    """SSIM of two absolute views (flattened), each scaled to [0, 1] by its maximum."""
    from skimage.metrics import structural_similarity
    x, y = (v.reshape(shape) / (v.max() if v.max() > 0 else 1) for v in (x, y))
    return float(structural_similarity(x, y, data_range=1.0))


def _exactly_one(got: np.ndarray, a: torch.Tensor, b: torch.Tensor, ia, ib) -> np.ndarray:
    """1.0 where the two maps are identical and not all zero (see :func:`similarity`)."""
    for k, (i, j) in enumerate(zip(ia, ib)):
        if torch.equal(a[i], b[j]) and bool(a[i].any()):
            got[k] = 1.0
    return got


def _pair_similarities(maps: torch.Tensor, pairs: np.ndarray, measure: str) -> np.ndarray:
    """(pairs,): ``measure`` between ``maps[i]`` and ``maps[j]`` for each row ``(i, j)`` of
    ``pairs``, each map of the stack viewed and ranked once however many pairs hold it
    (:func:`zfbook.sanity.null`)."""
    i, j = pairs[:, 0], pairs[:, 1]
    if measure == "ssim":
        v = _views(maps, True)
        got = np.array([_ssim(v[p], v[q], maps.shape[-2:]) for p, q in pairs], dtype=float)
    else:
        z = _unit_ranks(maps, measure)
        if len(pairs) > len(maps):      # many pairs per map: all the dot products at once
            got = np.clip((z @ z.T)[i, j], -1.0, 1.0)
        else:
            got = _dot(z[i], z[j])
    return _exactly_one(got, maps, maps, i, j)


def similarities(a, b, measure: str = "spearman_abs") -> np.ndarray:
    """:func:`similarity` of ``a[i]`` and ``b[i]`` for every ``i``: two stacks of N maps
    ((N, C, H, W) or (N, H, W), or lists of maps) → (N,) float64. Spearman ranks all the
    maps at once (:func:`ranks`); SSIM goes pair by pair."""
    _check("measure", measure, MEASURES)
    a, b = _stack(a), _stack(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold maps of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if measure == "ssim":
        got = np.array([_ssim(x, y, a.shape[-2:])
                        for x, y in zip(_views(a, True), _views(b, True))], dtype=float)
    else:
        got = _dot(_unit_ranks(a, measure), _unit_ranks(b, measure))
    k = range(len(a))
    return _exactly_one(got, a, b, k, k)


def similarity(a, b, measure: str = "spearman_abs") -> float:
    """Similarity of two maps of one image ((C, H, W) or (H, W)); see :data:`MEASURES`.

    ``spearman_abs``: Spearman's rank correlation of the absolute maps summed over colour
    channels; ``spearman``: the same, signed; ``ssim``: scikit-image's structural
    similarity of the absolute maps, each scaled to [0, 1] by its maximum. Identical maps
    give exactly 1.0 on every measure (the rank correlation of a vector with itself is 1;
    its floating-point evaluation may round to 1 − 2⁻⁵²). NaN when Spearman is undefined
    (a constant map, e.g. a unit that does not fire).
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return float(similarities(a[None], b[None], measure)[0])
