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

Tested (:func:`against_null`): for each method and randomisation step, each image's
similarity to the trained map against that image's null (:meth:`Null.per_image`), by the
paired t-test over images (:func:`zfbook.stats.paired`: the mean difference, its
t-interval and a two-sided p), with Holm's correction (:func:`zfbook.stats.holm`) over
every method × step tested. The t-test, not Wilcoxon's signed-rank test: with the handful
of images a chapter can afford, the signed-rank test cannot reach p < 0.05 at all (four
images: its smallest two-sided p is 0.125), and the t-test comes with an interval. It
assumes the differences are roughly normal; with few images, read p as approximate.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import stats
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


# ------------------------------------------------------------------ each step against it
@dataclass(frozen=True)
class NullTest:
    """One method at one step against the null: ``similarity`` and ``null`` are the means
    over the ``n`` images where both are defined; ``test`` the paired t-test of similarity
    − null (:class:`zfbook.stats.Difference`); ``p_holm`` its p after Holm's correction over
    every row of the :class:`AgainstNull` (NaN when there is no test: fewer than two images,
    or differences that are all 0); ``rejected``: ``p_holm`` ≤ ``alpha``."""
    method: str
    step: str
    n: int
    similarity: float
    null: float
    test: stats.Difference
    p_holm: float
    rejected: bool

    @property
    def verdict(self) -> str:
        """``above the null``, ``below the null``, or ``not distinguished`` (not
        rejected)."""
        if not self.rejected:
            return "not distinguished"
        return "above the null" if self.test.diff > 0 else "below the null"


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}".replace("-", stats.MINUS)


def _cells(r: NullTest, digits: int) -> tuple:
    """One row of :meth:`AgainstNull.table`."""
    d = r.test
    diff = _signed(d.diff, digits)
    if not math.isnan(d.low):
        diff += f" [{_signed(d.low, digits)}, {_signed(d.high, digits)}]"
    p = "–" if math.isnan(r.p_holm) else stats.format_p(r.p_holm).replace("p = ", "")
    return (r.method.replace("_", " "), r.step, r.n, f"{r.similarity:.{digits}f}",
            f"{r.null:.{digits}f}", diff, p.replace("p ", ""), r.verdict)


@dataclass(frozen=True)
class AgainstNull:
    """The rows of :func:`against_null`, one per method and step (a tidy table: method,
    step, then the numbers), with the ``measure``, interval ``level`` and ``alpha`` used."""
    rows: tuple
    measure: str
    level: float
    alpha: float

    def row(self, method: str, step: str) -> NullTest:
        """The row of ``method`` at the step labelled ``step``."""
        for r in self.rows:
            if (r.method, r.step) == (method, step):
                return r
        raise KeyError(f"no row for method {method!r} at step {step!r}; rows are: "
                       + ", ".join(f"{r.method} at {r.step}" for r in self.rows))

    def table(self, *, caption: str | None = None, name: str | None = None,
              digits: int = 2):
        """The rows as a :func:`zfbook.display.table`: the mean similarity and null over
        images, the paired difference with its interval, Holm's p and the verdict."""
        from ..display import table
        pct = f"{100 * self.level:g}%"
        rows = [_cells(r, digits) for r in self.rows]
        if caption is None:
            caption = (f"Similarity to the trained network's map ({self.measure}) against "
                       "the null, the similarity of unrelated images' maps: means over "
                       f"images, the paired difference with its {pct} t-interval, and the "
                       f"paired t-test's p, Holm-corrected over the {len(self.rows)} rows "
                       f"(α = {self.alpha:g}).")
        return table(rows, ["method", "step", "n", "similarity", "null",
                            f"difference [{pct}]", "p (Holm)", "verdict"],
                     caption=caption, name=name)


def _per_image(result, method: str, measure: str) -> np.ndarray:
    """(steps, images): each image's similarity at every step (averaged over seeds)."""
    if isinstance(result, SeededRandomisation):
        return result.per_image(method, measure)
    if isinstance(result, Randomisation):
        return np.asarray(result.scores[method][measure], dtype=float)
    return np.asarray(result[method], dtype=float)


def against_null(result, null: Null, measure: str = "spearman_abs", *, steps=None,
                 labels=None, level: float = 0.95, alpha: float = 0.05) -> AgainstNull:
    """Each method at each randomisation step against the null, image by image (see the
    module docstring): the paired t-test (:func:`zfbook.stats.paired`, via
    :meth:`Null.paired`) with Holm's correction (:func:`zfbook.stats.holm`) over every
    method × step tested.

    ``result``: a :class:`Randomisation` or :class:`SeededRandomisation` (each image's mean
    over the seeds), or a mapping ``method → (steps, images)`` array of similarities to
    the trained maps, with ``labels`` naming its steps (default ``step 0``, ``step 1``, …).
    ``null``: the :func:`null` of the same images. ``steps``: indices of the steps to test;
    by default every step but the trained network (step 0, similar to itself by
    construction) of a randomisation, and every row of a mapping. Images where a
    similarity or the null is NaN are left out of that row. Methods: those of ``result``,
    each of which ``null`` must hold.
    """
    _check("measure", measure, MEASURES)
    ran = isinstance(result, (Randomisation, SeededRandomisation))
    if not ran and not isinstance(result, Mapping):
        raise TypeError("result must be a Randomisation, a SeededRandomisation or a mapping "
                        f"method → (steps, images) similarities, got {type(result).__name__}")
    methods = list(result.scores) if ran else list(result)
    for m in methods:
        if m not in null.scores or measure not in null.scores[m]:
            raise ValueError(f"the null holds no {measure!r} for method {m!r}; it holds: "
                             + ", ".join(f"{k} ({', '.join(v)})" for k, v in null.scores.items()))
    values = {m: _per_image(result, m, measure) for m in methods}
    n_steps = {v.shape[0] for v in values.values()}
    if len(n_steps) != 1 or any(v.ndim != 2 for v in values.values()):
        raise ValueError("every method needs a (steps, images) array with the same steps")
    n_steps = n_steps.pop()
    if ran:
        labels = result.labels
    elif labels is None:
        labels = [f"step {k}" for k in range(n_steps)]
    if len(labels) != n_steps:
        raise ValueError(f"{len(labels)} labels for {n_steps} steps")
    if steps is None:
        steps = range(1 if ran else 0, n_steps)
    steps = [int(k) for k in steps]
    if any(not 0 <= k < n_steps for k in steps):
        raise ValueError(f"steps must be between 0 and {n_steps - 1}, got {steps}")
    tests = {}
    for m in methods:
        base = null.per_image(m, measure)
        for k in steps:
            a = values[m][k]
            if a.shape != base.shape:
                raise ValueError(f"{m} has {a.shape[0]} images, the null {null.n}: "
                                 "give the null of the same images")
            ok = ~(np.isnan(a) | np.isnan(base))
            test = (null.paired(a, m, measure, level) if ok.any() else
                    stats.Difference(*[math.nan] * 6, 0, 0, level, "paired"))
            tests[m, k] = (test, a[ok], base[ok])
    finite = {key: t.p for key, (t, _, _) in tests.items() if not math.isnan(t.p)}
    holm = stats.holm(finite, alpha) if finite else None
    mean = lambda v: float(v.mean()) if len(v) else math.nan
    rows = tuple(NullTest(m, labels[k], t.n_a, mean(a), mean(b), t,
                          holm.adjusted[m, k] if (m, k) in finite else math.nan,
                          bool(holm.rejected[m, k]) if (m, k) in finite else False)
                 for (m, k), (t, a, b) in tests.items())
    return AgainstNull(rows, measure, level, alpha)
