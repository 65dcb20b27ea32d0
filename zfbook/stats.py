"""Statistics for the book's comparisons: intervals on means, tests of differences, and a
correction when a table marks several effects.

The paper compares networks by one ImageNet run each. We compare a few seeds, or two
networks on the same few thousand test images, so every mean the book compares carries an
interval and every mark a test:

* **Over seeds** (Table 2's architecture comparison, Table 3's ablation): the Student-t
  interval of a mean (:func:`mean_interval`); Welch's test of two independent groups of
  runs (:func:`welch`), since two networks' runs share a seed number but not their weights;
  the paired t-test (:func:`paired`) where the same runs are measured twice (one network
  evaluated two ways, a run before and after a change).
* **Over test images** (two classifiers on the same images: Fig. 9's transfer arms, the
  layer-wise probes): per-image correctness, a seeded percentile bootstrap of an accuracy
  (:func:`bootstrap_interval`) or of the difference of two (:func:`paired_bootstrap`), and
  McNemar's exact test on the images where the two disagree (:func:`mcnemar`).
* **Several effects in one table** (Table 3): Holm's step-down correction (:func:`holm`),
  which keeps the chance of any false mark at ``alpha`` without assuming independence.

Semantics where conventions differ:

* ``sd`` is the sample standard deviation (``ddof=1``). One value has no spread: its
  interval is ``(nan, nan)`` and reads "n = 1, no interval"; a test with a group of one is
  ``nan`` throughout. Values that do not vary give a zero-width t-interval of a mean; two
  groups that both do not vary give no Welch test (its degrees of freedom are 0/0).
* Intervals and p-values are two-sided. p-values are computed here from the t and
  binomial distributions of ``scipy.stats``; the tests check them against
  ``scipy.stats.ttest_ind(equal_var=False)``, ``ttest_rel`` and ``binomtest``.
* The bootstrap is the percentile bootstrap (``scipy.stats.bootstrap``,
  ``method="percentile"`` unless asked otherwise): the interval is the middle ``level`` of
  the accuracies of resampled test sets, easy to say in a sentence and never undefined (BCa
  is ``nan`` when every image gives the same value, e.g. an accuracy of 100%). It is seeded
  (``seed``), so the same call gives the same interval on every machine. A bootstrap
  interval says how much the accuracy depends on *which* test images were drawn, not how it
  varies from seed to seed: with several seeds on the same images (a ``(seeds, images)``
  array) it resamples images, the same images for every seed, and the seeds' own spread is
  :func:`mean_interval`'s business.

Bad input (empty, NaN, a level outside (0, 1), lengths that differ) is a one-line
``ValueError`` naming what is valid.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as _st

__all__ = ["Interval", "Difference", "McNemar", "Holm", "mean_interval", "welch", "paired",
           "mcnemar", "holm", "bootstrap_interval", "paired_bootstrap", "format_p"]

MINUS = "\u2212"  # the minus sign, as the paper prints it


# ----------------------------------------------------------------------------- results
def _num(x: float, digits: int, sign: bool = False) -> str:
    if math.isnan(x):
        return "nan"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _show(x: float, digits: int, sign: bool = False) -> str:
    return _num(x, digits, sign).replace("-", MINUS)


def _pct(level: float) -> str:
    return f"{100 * level:g}%"


def _bracketed(head: str, low: float, high: float, digits: int, level: float, what: str) -> str:
    return f"{head} [{_show(low, digits)}, {_show(high, digits)}] ({_pct(level)} {what})"


def format_p(p: float) -> str:
    """``p = 0.12``, ``p = 0.012``, ``p < 0.001`` (two significant digits), ``p = nan``."""
    if math.isnan(p):
        return "p = nan"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


@dataclass(frozen=True)
class Interval:
    """A mean (or an accuracy) with its ``level`` interval ``[low, high]`` over ``n`` values
    whose sample standard deviation is ``sd``; ``method`` names the interval."""
    mean: float
    low: float
    high: float
    n: int
    sd: float
    level: float
    method: str = "t-interval"

    @property
    def se(self) -> float:
        """The standard error of the mean, ``sd / sqrt(n)`` (``nan`` for one value)."""
        return self.sd / math.sqrt(self.n)

    def scaled(self, factor: float) -> "Interval":
        """The same interval in other units (``scaled(100)``: a fraction as percent)."""
        return replace(self, mean=self.mean * factor, low=self.low * factor,
                       high=self.high * factor, sd=self.sd * abs(factor))

    def format(self, digits: int = 1, unit: str = "", sign: bool | None = None) -> str:
        """``86.3% [84.1, 88.5] (95% t-interval, n = 3)``; ``86.3% (n = 1, no interval)``.
        ``sign``: a ``+`` on positive means (default: for a paired difference only)."""
        sign = self.method.startswith("paired") if sign is None else sign
        m = _show(self.mean, digits, sign) + unit
        if math.isnan(self.low):
            return f"{m} (n = {self.n}, no interval)"
        return _bracketed(m, self.low, self.high, digits, self.level, f"{self.method}, n = {self.n}")

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class Difference:
    """A difference of means ``a − b`` with its ``level`` t-interval, its t statistic,
    degrees of freedom and two-sided p-value; ``method`` is ``"Welch"`` or ``"paired"``."""
    diff: float
    low: float
    high: float
    t: float
    df: float
    p: float
    n_a: int
    n_b: int
    level: float
    method: str

    def format(self, digits: int = 1, unit: str = "") -> str:
        """``+2.1 [−0.5, 4.7] (95% Welch t-interval, p = 0.12)``."""
        d = _show(self.diff, digits, sign=True) + unit
        if math.isnan(self.p) and math.isnan(self.low):
            why = "a group has one value" if min(self.n_a, self.n_b) < 2 else "no spread"
            return f"{d} (no test: {why})"
        return _bracketed(d, self.low, self.high, digits, self.level,
                          f"{self.method} t-interval, {format_p(self.p)}")

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class McNemar:
    """Two classifiers on the same ``n`` images: ``a_only`` images only a gets right,
    ``b_only`` only b; ``diff`` = accuracy(a) − accuracy(b) (a fraction); ``p`` McNemar's
    exact two-sided p (1 when they never disagree)."""
    a_only: int
    b_only: int
    n: int
    diff: float
    p: float

    def __str__(self) -> str:
        return (f"{_show(100 * self.diff, 1, sign=True)} points ({self.a_only} vs "
                f"{self.b_only} of {self.n} images, McNemar {format_p(self.p)})")


@dataclass(frozen=True)
class Holm:
    """Holm-adjusted p-values and which hypotheses are rejected at ``alpha``, in the input's
    order and shape (a dict for a dict, a tuple for a sequence)."""
    adjusted: dict | tuple
    rejected: dict | tuple
    alpha: float


# ----------------------------------------------------------------------------- checks
def _level(level: float, what: str = "level") -> float:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"{what} must be a number between 0 and 1 (exclusive), e.g. 0.95; got {level!r}")
    return float(level)


def _values(values, what: str = "values", ndim=(1,)) -> np.ndarray:
    try:
        v = np.asarray(values if not hasattr(values, "__next__") else list(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers (a list or a 1-D array)") from None
    if v.ndim not in ndim:
        shapes = " or ".join({1: "(n,)", 2: "(seeds, images)"}[d] for d in ndim)
        raise ValueError(f"{what} must have shape {shapes}; got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{what} is empty; give at least one value")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} holds NaN or infinity; give finite numbers only")
    return v


def _correct(values, what: str) -> np.ndarray:
    v = _values(values, what)
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"{what} must be per-image correctness: booleans or 0/1")
    return v.astype(bool)


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{what} must have the same length (the same items, in the same order); "
                         f"got {a.shape[-1]} and {b.shape[-1]}")


# ----------------------------------------------------------------------------- over seeds
def mean_interval(values, level: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student-t interval, ``mean ± t(n−1) · sd/√n``: the
    interval on every mean over seeds the book compares (Table 2's top-1 error per network,
    Table 3's per variant). One value: ``(nan, nan)``."""
    level = _level(level)
    v = _values(values)
    n, m = len(v), float(v.mean())
    if n < 2:
        return Interval(m, math.nan, math.nan, 1, math.nan, level)
    sd = float(v.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(m, m - half, m + half, n, sd, level)


def welch(a, b, level: float = 0.95) -> Difference:
    """Welch's test of two independent groups (``a − b``): the difference of means, its
    t-interval with the Welch–Satterthwaite degrees of freedom, t and the two-sided p. For
    two networks' (or two Table 3 variants') runs over seeds: the same seed number draws
    different weights for different architectures, so the runs are not pairs. A group of
    one value, or no spread in either group: ``nan`` interval, t, df and p."""
    level = _level(level)
    a, b = _values(a, "a"), _values(b, "b")
    na, nb = len(a), len(b)
    diff = float(a.mean() - b.mean())
    nan = math.nan
    if na < 2 or nb < 2:
        return Difference(diff, nan, nan, nan, nan, nan, na, nb, level, "Welch")
    va, vb = float(a.var(ddof=1)) / na, float(b.var(ddof=1)) / nb
    se2 = va + vb
    if se2 == 0:
        return Difference(diff, nan, nan, nan, nan, nan, na, nb, level, "Welch")
    df = se2 ** 2 / (va ** 2 / (na - 1) + vb ** 2 / (nb - 1))
    se = math.sqrt(se2)
    t = diff / se
    p = float(2 * _st.t.sf(abs(t), df))
    half = float(_st.t.ppf(0.5 + level / 2, df)) * se
    return Difference(diff, diff - half, diff + half, t, df, p, na, nb, level, "Welch")


def paired(a, b, level: float = 0.95) -> Difference:
    """The paired t-test (``a − b``, item by item): the mean difference, its t-interval on
    n − 1 degrees of freedom, t and the two-sided p (as ``scipy.stats.ttest_rel``). For the
    same runs measured twice (one network's centre-crop and 10-crop error, or before and
    after a change that keeps its seeds' weights). Differences that do not vary: a
    zero-width interval, t = ±inf (p = 0) or, when they are all 0, ``nan``."""
    level = _level(level)
    a, b = _values(a, "a"), _values(b, "b")
    _same_length(a, b, "a and b")
    d = mean_interval(a - b, level)
    n, nan = d.n, math.nan
    if n < 2:
        return Difference(d.mean, nan, nan, nan, nan, nan, n, n, level, "paired")
    if d.sd == 0:
        t = nan if d.mean == 0 else math.copysign(math.inf, d.mean)
        p = nan if d.mean == 0 else 0.0
    else:
        t = d.mean / d.se
        p = float(2 * _st.t.sf(abs(t), n - 1))
    return Difference(d.mean, d.low, d.high, t, float(n - 1), p, n, n, level, "paired")


# ----------------------------------------------------------------------------- over images
def mcnemar(correct_a, correct_b) -> McNemar:
    """McNemar's exact test of two classifiers on the same test images (per-image booleans
    or 0/1, same order): of the images where exactly one is right, does each get half? The
    exact two-sided binomial p on those discordant images (``scipy.stats.binomtest``); 1
    when there are none. For Fig. 9's transfer arms and the probes, evaluated on one split."""
    a, b = _correct(correct_a, "correct_a"), _correct(correct_b, "correct_b")
    _same_length(a, b, "correct_a and correct_b")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n = len(a)
    p = 1.0 if a_only + b_only == 0 else float(_st.binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return McNemar(a_only, b_only, n, (a_only - b_only) / n, p)


#: ``scipy.stats.bootstrap`` took ``random_state`` before SciPy 1.15 and takes ``rng`` since
_RNG = "rng" if "rng" in inspect.signature(_st.bootstrap).parameters else "random_state"
_METHODS = ("percentile", "basic", "BCa")


def _bootstrap(v: np.ndarray, level: float, n_resamples: int, seed: int, method: str,
               name: str) -> Interval:
    if method not in _METHODS:
        raise ValueError(f"unknown bootstrap method {method!r}; methods are {', '.join(_METHODS)}")
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer; got {n_resamples!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    n, m = len(v), float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else math.nan
    if n < 2:
        return Interval(m, math.nan, math.nan, n, sd, level, name)
    # resample in batches of about 4 M numbers, so memory stays small for any test set
    res = _st.bootstrap((v,), np.mean, n_resamples=n_resamples, confidence_level=level,
                        method=method, vectorized=True, batch=max(1, 4_000_000 // n),
                        **{_RNG: np.random.default_rng(seed)})
    ci = res.confidence_interval
    return Interval(m, float(ci.low), float(ci.high), n, sd, level, name)


def bootstrap_interval(correct, level: float = 0.95, n_resamples: int = 9999, seed: int = 0,
                       method: str = "percentile") -> Interval:
    """An accuracy (the mean of per-image 0/1 correctness, or of any per-image value) with
    its ``level`` bootstrap interval over test images: ``n_resamples`` test sets drawn with
    replacement from the images, seeded by ``seed``. ``correct`` of shape ``(seeds, images)``
    (several seeds on the same images): the mean over seeds, resampling images, the same for
    every seed. ``method``: ``percentile`` (default), ``basic`` or ``BCa``. Fractions in,
    fractions out (``.scaled(100)`` for percent). For the accuracies of Fig. 9's transfer
    curves and the probes."""
    level = _level(level)
    v = _values(correct, "correct", ndim=(1, 2))
    per_image = v.mean(axis=0) if v.ndim == 2 else v
    seeds = f", {len(v)} seeds" if v.ndim == 2 else ""
    return _bootstrap(per_image, level, n_resamples, seed, method,
                      f"{method} bootstrap over images{seeds}")


def paired_bootstrap(correct_a, correct_b, level: float = 0.95, n_resamples: int = 9999,
                     seed: int = 0, method: str = "percentile") -> Interval:
    """accuracy(a) − accuracy(b) of two classifiers on the same test images, with its
    bootstrap interval: each resample draws one set of images for both, so what the two
    share cancels. Shapes ``(images,)`` or ``(seeds, images)`` (means over seeds; a and b may
    have different numbers of seeds); other arguments as :func:`bootstrap_interval`. For
    Fig. 9's comparisons of transfer arms; :func:`mcnemar` is the matching test."""
    level = _level(level)
    a = _values(correct_a, "correct_a", ndim=(1, 2))
    b = _values(correct_b, "correct_b", ndim=(1, 2))
    _same_length(a, b, "correct_a and correct_b (images)")
    pa = a.mean(axis=0) if a.ndim == 2 else a
    pb = b.mean(axis=0) if b.ndim == 2 else b
    return _bootstrap(pa - pb, level, n_resamples, seed, method, f"paired {method} bootstrap over images")


# ----------------------------------------------------------------------------- several tests
def holm(pvalues, alpha: float = 0.05) -> Holm:
    """Holm's step-down correction of several p-values (a dict name → p, or a sequence):
    sorted ascending, the k-th smallest (of m) is multiplied by m − k + 1, made monotone
    (never below an earlier one) and capped at 1; a hypothesis is rejected when its adjusted
    p is ≤ ``alpha``. The same decisions as testing p₍ₖ₎ ≤ alpha / (m − k + 1) in turn and
    stopping at the first that fails. For Table 3, where several variants are marked."""
    alpha = _level(alpha, "alpha")
    if isinstance(pvalues, Mapping):
        names, ps = list(pvalues), list(pvalues.values())
    else:
        names, ps = None, list(pvalues)
    p = _values(ps, "pvalues")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("pvalues must lie between 0 and 1")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    adj = tuple(float(x) for x in adjusted)
    rej = tuple(bool(x <= alpha) for x in adjusted)
    if names is not None:
        return Holm(dict(zip(names, adj)), dict(zip(names, rej)), alpha)
    return Holm(adj, rej, alpha)
