"""The null: how alike the maps of two *unrelated* images are (:func:`null`).

A randomised network's map that keeps a rank correlation of 0.3 with the trained one has
not necessarily kept anything of *this image*: the trained network's maps of any two
images may correlate that much already. Objects sit near the centre of our images, so
most maps are brighter in the middle (centre bias); the network's padding marks the
borders the same way in every map; occlusion's maps are smooth blobs of the square's
size. The null measures all of that at once: image ``i``'s map against image ``j``'s
(``j ≠ i``), same network, method and target, each map explaining what it explains in
the run (its own class or conv5 map), with the same measures as the randomisation
(:data:`~zfbook.sanity.MEASURES`). A similarity at the null's level says "nothing of
this image in common". Adebayo et al. (2018, Section 3) compare a randomised network's
map with the trained network's map of the same image; the null is the level below which
that comparison means nothing.

Pairs (:func:`unrelated_pairs`): ``"derangement"`` (default) pairs image ``i`` with
``π(i)``, a permutation with no fixed point drawn uniformly (numpy's seeded
``Generator.permutation``, redrawn until no image is its own partner): ``n`` pairs, each
image once on each side, as cheap as one randomisation step. ``"all"`` takes every
unordered pair ``i < j`` (``n(n−1)/2``; the three measures are symmetric), affordable for
a few dozen images.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .methods import _check
from .similarity import MEASURES, _pair_similarities, _stack
from .weights import Randomisation, SeededRandomisation

#: how the pairs of unrelated images are drawn
PAIRINGS = ("derangement", "all")


def unrelated_pairs(n: int, how: str = "derangement", seed: int = 0) -> np.ndarray:
    """(pairs, 2) indices ``(i, j)``, ``i ≠ j``, of ``n`` images (see the module docstring)."""
    _check("pairing", how, PAIRINGS)
    if n < 2:
        raise ValueError(f"a null needs at least two images, got {n}")
    if how == "all":
        return np.array(np.triu_indices(n, 1)).T
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return np.stack([np.arange(n), perm], axis=1)


@dataclass
class Null:
    """Similarities of unrelated images' maps: ``scores[method][measure]`` is a (pairs,)
    float64 array over ``pairs`` ((pairs, 2) image indices) of ``n`` images."""
    pairs: np.ndarray
    n: int
    scores: dict

    def mean(self, method: str, measure: str = "spearman_abs") -> float:
        """The mean over the pairs (NaNs ignored)."""
        return float(np.nanmean(self.scores[method][measure]))

    def per_image(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        """(n,): each image's mean over the pairs that hold it (a derangement: its two
        pairs, ``i → π(i)`` and ``π⁻¹(i) → i``; all pairs: its ``n − 1``), NaNs ignored.
        Set beside a randomisation's :meth:`~SeededRandomisation.per_image`, image by
        image."""
        v = self.scores[method][measure]
        total, count = np.zeros(self.n), np.zeros(self.n)
        for side in (0, 1):
            ok = ~np.isnan(v)
            np.add.at(total, self.pairs[ok, side], v[ok])
            np.add.at(count, self.pairs[ok, side], 1)
        with np.errstate(invalid="ignore"):
            return total / count

    def paired(self, values, method: str, measure: str = "spearman_abs",
               level: float = 0.95):
        """``values`` (one similarity per image, e.g. a step of
        :meth:`SeededRandomisation.per_image`) minus this null, image by image: the paired
        t-test and interval of :func:`zfbook.stats.paired` over the images where both are
        defined. Above 0: the maps keep more of their own image than another image's map
        has. The per-image nulls share pairs, so they are not quite independent: read the
        interval and p as approximate."""
        from .. import stats
        a, b = np.asarray(values, dtype=float), self.per_image(method, measure)
        if a.shape != b.shape:
            raise ValueError(f"values must hold one similarity per image ({self.n}), "
                             f"got shape {a.shape}")
        ok = ~(np.isnan(a) | np.isnan(b))
        return stats.paired(a[ok], b[ok], level)


def null(maps, *, measures=MEASURES, how: str = "derangement", seed: int = 0) -> Null:
    """The similarity between maps of unrelated images (see the module docstring).

    ``maps``: ``{method: (images, …) maps}``, e.g. a :class:`SeededRandomisation`'s
    ``trained``; a :class:`Randomisation` or :class:`SeededRandomisation` itself (its
    trained network's maps) is accepted too. ``how`` and ``seed`` choose the pairs
    (:func:`unrelated_pairs`); the same pairs serve every method.
    """
    if isinstance(maps, SeededRandomisation):
        maps = maps.trained
    elif isinstance(maps, Randomisation):
        maps = {m: v[0] for m, v in maps.maps.items()}
    for s in measures:
        _check("measure", s, MEASURES)
    sizes = {len(v) for v in maps.values()}
    if len(sizes) != 1:
        raise ValueError(f"every method needs maps of the same images, got {sorted(sizes)}")
    n = sizes.pop()
    pairs = unrelated_pairs(n, how, seed)
    scores = {m: {s: _pair_similarities(_stack(v), pairs, s) for s in measures}
              for m, v in maps.items()}
    return Null(pairs, n, scores)
