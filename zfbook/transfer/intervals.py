"""Bootstrap intervals over test images for the transfer arms' means (Fig. 9, Tables 4–5).

A mean over draws of an arm at some number of shots depends on *which* test images were
drawn. :func:`bootstrap` resamples the test images with replacement (a seeded percentile
bootstrap, as :func:`zfbook.stats.bootstrap_interval`): each record's per-image scores are
``100 · correct · N / (C · n_c)`` (N test images, C classes, n_c images of the image's class),
whose mean over the whole test set is the record's mean per-class accuracy exactly (on a
balanced test set, plain accuracy); a resample's score of a group is the mean over its
records (draws) of their means over the resampled images. Records on the same test set (every
draw of the embedded and parts families) share each resample, so the interval is of the mean
over draws with the images held in common, and :func:`difference` of two arms is paired;
records on different test sets (Caltech's draws) are resampled independently. The interval
says nothing of the spread from draw to draw, which the draws' own standard deviation
(:func:`zfbook.transfer.summarize`) shows. Needs the records' ``predictions`` and the
:class:`~zfbook.transfer.TransferSet` they were made on (for the test labels).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Interval", "bootstrap", "difference"]


class Interval(NamedTuple):
    """A mean over draws (%) with its ``level`` bootstrap interval ``[low, high]``."""
    mean: float
    low: float
    high: float
    draws: int
    level: float


def _scores(rec: dict, tset) -> tuple[tuple, np.ndarray]:
    """(the record's test set as a key, its per-image scores)."""
    if "predictions" not in rec:
        raise ValueError(f"record {rec.get('arm', rec.get('layer'))} at {rec.get('shots')} shots has no "
                         "predictions to resample (probe records keep them with --predictions)")
    _, te = tset.split(rec["shots"], rec["draw"], rec["seed"])
    pred = np.asarray(rec["predictions"])
    if len(pred) != len(te):
        raise ValueError(f"a record holds {len(pred)} predictions but its test set has {len(te)} images: "
                         f"records of another dataset than {tset.name}?")
    y = tset.labels.numpy()[te]
    classes, counts = np.unique(y, return_counts=True)
    weight = len(y) / (len(classes) * counts[np.searchsorted(classes, y)])
    return tuple(te.tolist()), 100.0 * (pred == y) * weight


def _replicates(records, tset, n_resamples: int, seed: int) -> list[np.ndarray]:
    """Each record's resampled means (n_resamples,), records on one test set sharing resamples."""
    keyed = [_scores(r, tset) for r in records]
    sets = sorted({k for k, _ in keyed})
    draws = {}
    for i, k in enumerate(sets):
        rng = np.random.default_rng([seed, i])
        draws[k] = rng.integers(0, len(k), (n_resamples, len(k)), dtype=np.int32)
    out = []
    for k, v in keyed:
        idx = draws[k]
        out.append(np.concatenate([v[idx[j:j + 1000]].mean(1) for j in range(0, n_resamples, 1000)]))
    return out


def _groups(records, by, where) -> dict:
    groups: dict = {}
    for r in records:
        if all(r.get(k) == v for k, v in where.items()):
            groups.setdefault(tuple(r[k] for k in by), []).append(r)
    return dict(sorted(groups.items()))


def _interval(reps: np.ndarray, mean: float, draws: int, level: float) -> Interval:
    low, high = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(mean), float(low), float(high), draws, level)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level}")


def bootstrap(records, tset, *, by=("arm", "shots"), level: float = 0.95, n_resamples: int = 9999,
              seed: int = 0, **where) -> dict:
    """``{key: Interval}`` of the mean top-1 over draws of each group of ``records`` (grouped
    by the ``by`` fields, keeping those whose fields equal ``where``), with its bootstrap
    interval over test images (module docstring)."""
    _check_level(level)
    out = {}
    for key, recs in _groups(records, by, where).items():
        reps = np.mean(_replicates(recs, tset, n_resamples, seed), axis=0)
        out[key] = _interval(reps, np.mean([r["top1"] for r in recs]), len(recs), level)
    return out


def difference(records, tset, a: dict, b: dict, *, level: float = 0.95, n_resamples: int = 9999,
               seed: int = 0) -> Interval:
    """Mean top-1 of the records matching ``a`` minus that of those matching ``b`` (e.g.
    ``a={"arm": "frozen", "shots": 5}``), with its paired bootstrap interval: on a test set
    both share, each resample is the same images for both. ``draws``: those of ``a``."""
    _check_level(level)
    ra = [r for r in records if all(r.get(k) == v for k, v in a.items())]
    rb = [r for r in records if all(r.get(k) == v for k, v in b.items())]
    if not ra or not rb:
        raise ValueError(f"no records match {a if not ra else b}")
    reps = _replicates(ra + rb, tset, n_resamples, seed)
    diff = np.mean(reps[:len(ra)], axis=0) - np.mean(reps[len(ra):], axis=0)
    mean = np.mean([r["top1"] for r in ra]) - np.mean([r["top1"] for r in rb])
    return _interval(diff, mean, len(ra), level)
