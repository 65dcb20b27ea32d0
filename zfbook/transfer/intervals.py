"""Bootstrap intervals over test images for the transfer arms' means (Fig. 9, Tables 4–5).

A mean over draws of an arm at some number of shots depends on *which* test images were
drawn. :func:`bootstrap` gives it the seeded percentile bootstrap of
:func:`zfbook.stats.bootstrap_interval`: the test images are resampled with replacement, the
same images for every draw, and a resample's score is the mean over draws of the mean over
the resampled images. Each record's per-image scores are ``100 · correct · N / (C · n_c)``
(N test images, C classes, n_c images of the image's class), whose mean over the whole test
set is the record's mean per-class accuracy exactly (on a balanced test set, as the embedded
and parts families' are, they are plain percent correct). :func:`difference` of two groups
(two arms at the same shots) is :func:`zfbook.stats.paired_bootstrap`: each resample draws one
set of images for both. The interval says how much the mean depends on which test images
were drawn, not how it varies from draw to draw, which the draws' own standard deviation
(:func:`zfbook.transfer.summarize`) shows. Needs the records' ``predictions``, all on one
test set (every draw of a fixed test split; Caltech's draws each have their own and are
refused), and the :class:`~zfbook.transfer.TransferSet` they were made on (the test labels).
"""
from __future__ import annotations

import numpy as np

from ..stats import Interval, bootstrap_interval, paired_bootstrap

__all__ = ["Interval", "bootstrap", "difference", "per_image_scores"]


def _scores(rec: dict, tset) -> tuple[np.ndarray, np.ndarray]:
    """(the record's test indices, its per-image scores in %)."""
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
    return te, 100.0 * (pred == y) * weight


def per_image_scores(records, tset) -> np.ndarray:
    """(records, test images) per-image scores (%) of records on one test set; each row's mean
    is its record's mean per-class accuracy."""
    keyed = [_scores(r, tset) for r in records]
    if any(not np.array_equal(keyed[0][0], te) for te, _ in keyed[1:]):
        raise ValueError(f"the records are on different test sets ({tset.name} draws its test images per "
                         "draw); a bootstrap over one set of test images needs records on the same one")
    return np.stack([v for _, v in keyed])


def _groups(records, by, where) -> dict:
    groups: dict = {}
    for r in records:
        if all(r.get(k) == v for k, v in where.items()):
            groups.setdefault(tuple(r[k] for k in by), []).append(r)
    return dict(sorted(groups.items()))


def bootstrap(records, tset, *, by=("arm", "shots"), level: float = 0.95, n_resamples: int = 9999,
              seed: int = 0, **where) -> dict:
    """``{key: zfbook.stats.Interval}``: the mean top-1 (%) over draws of each group of
    ``records`` (grouped by the ``by`` fields, keeping those whose fields equal ``where``) with
    its bootstrap interval over the test images (``n``: the test images)."""
    return {key: bootstrap_interval(per_image_scores(recs, tset), level, n_resamples, seed)
            for key, recs in _groups(records, by, where).items()}


def difference(records, tset, a: dict, b: dict, *, level: float = 0.95, n_resamples: int = 9999,
               seed: int = 0) -> Interval:
    """Mean top-1 of the records matching ``a`` minus that of those matching ``b`` (e.g.
    ``a={"arm": "frozen", "shots": 5}``), each a mean over its draws, with the paired bootstrap
    interval over the test images both share."""
    ra = [r for r in records if all(r.get(k) == v for k, v in a.items())]
    rb = [r for r in records if all(r.get(k) == v for k, v in b.items())]
    if not ra or not rb:
        raise ValueError(f"no records match {a if not ra else b}")
    both = per_image_scores(ra + rb, tset)
    return paired_bootstrap(both[:len(ra)], both[len(ra):], level, n_resamples, seed)
