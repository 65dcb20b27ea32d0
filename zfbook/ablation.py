"""Table 3's ablations: the shipped records of ``python -m zfbook ablate``, grouped by
variant and set beside the paper's rows.

The variants themselves are :data:`zfbook.models.VARIANTS` (a preset with layers removed or
resized, built by the same model code); the runs are :mod:`zfbook.experiments` records.
The paper made its removals on its AlexNet replication (Table 3's upper block) and its
resizings on its own model (the lower block); we make both on ``zfnet-mini``, so each of
our variants is compared with its own block's reference through the *change* of error it
causes (:func:`effects`), with Welch's t-interval of that change over the seeds and its
p-value corrected for the table's several variants by Holm's method (:mod:`zfbook.stats`).
"""
from __future__ import annotations

import math

from . import experiments, models, stats

__all__ = ["PAPER_TABLE3", "PAPER_REFERENCE", "load_records", "by_variant", "errors", "effects"]

#: Table 3 (error %: train top-1, val top-1, val top-5) for each variant's row; the removals
#: and the fc resizings of the upper block are relative to the Krizhevsky replication, the
#: rest (the lower block) to "Ours (Fig. 3)". fc-narrow and fc-wide take the lower block's rows.
PAPER_TABLE3 = {
    "baseline": (33.1, 38.4, 16.5),
    "no-fc7": (27.4, 40.0, 18.4),
    "no-fc6-fc7": (27.4, 44.8, 22.4),
    "no-conv3-conv4": (41.8, 45.4, 22.1),
    "no-conv3-conv4-fc6-fc7": (71.1, 71.3, 50.1),
    "fc-narrow": (38.2, 40.2, 17.6),
    "fc-wide": (22.0, 38.8, 17.0),
    "conv-wide": (18.8, 37.5, 16.0),
    "fc-wide-conv-wide": (10.0, 38.3, 16.9),
}
#: the row each variant's paper numbers are relative to: the replication of Krizhevsky et al.
#: for the removals (upper block), Fig. 3's model for the resizings (lower block)
PAPER_REFERENCE = {
    "krizhevsky": (35.1, 40.5, 18.1),
    "baseline": PAPER_TABLE3["baseline"],
}


def _reference(variant: str) -> str:
    return "krizhevsky" if variant.startswith("no-") else "baseline"


def load_records(path=None) -> list[dict]:
    """The shipped ablation records (``data/results/ablation.json``), or those at ``path``."""
    from .checkpoint import data_dir
    return experiments.load_results(path or data_dir() / "results" / "ablation.json")


def by_variant(records, epochs: int | None = None) -> dict[str, list[dict]]:
    """Records grouped by variant, in :data:`~zfbook.models.VARIANTS` order, each group by
    seed. By default the table's runs: those of the preset's own recipe, whose name carries
    no override (:func:`zfbook.experiments.run_name`: ``zfnet-mini-no-fc7``, not the cheap
    ``zfnet-mini-no-fc7-epochs1``), however many epochs each trained before its plateau
    stopped it. With ``epochs``: every run of exactly that many epochs, whatever its name
    (``epochs=1``: the cheap records)."""
    records = list(records)
    if epochs is None:
        keep = lambda r: r["name"] == experiments.run_name(r["preset"], {})
    else:
        keep = lambda r: r["epochs"] == epochs
    groups = {v: [r for r in records if r["variant"] == v and keep(r)] for v in models.VARIANTS}
    return {v: sorted(rs, key=lambda r: r["seed"]) for v, rs in groups.items() if rs}


def errors(r: dict) -> dict:
    """One record's errors (%) as Table 3 reports them: train top-1 (the last epoch's
    running error on the augmented training images, dropout on), and test top-1 / top-5
    (centre crop; our test split stands in for the paper's validation set)."""
    return {"train": 100.0 - r["train_top1"], "test": r["test_error_top1_centre"],
            "test5": r["test_error_top5_centre"], "test10crop": r["test_error_top1_10crop"]}


def effects(groups: dict[str, list[dict]], key: str = "test", level: float = 0.95,
            alpha: float = 0.05) -> dict[str, dict]:
    """Per variant: the change of error (points) from our baseline (mean over seeds, with its
    standard error from both groups' seed spreads) beside the paper's change from its
    block's reference. ``significant``: both groups have at least two runs (one run has no
    spread) and the change is more than twice its standard error.

    The tests behind Table 3's marks (:mod:`zfbook.stats`): ``welch`` (a
    :class:`~zfbook.stats.Difference`) is Welch's test of the variant's runs against the
    baseline's, ``change_low``/``change_high`` its ``level`` t-interval of the change and
    ``p`` its two-sided p; ``p_holm`` is ``p`` corrected by Holm's method over every variant
    in ``groups`` but the baseline that has a test, and ``holm_significant`` says whether
    ``p_holm`` ≤ ``alpha``; ``interval`` is the t-interval of the variant's own mean
    (:class:`~zfbook.stats.Interval`). Without a test (the baseline itself, a group of one
    run, no spread in either group) these are ``nan`` and not significant."""
    base = [errors(r)[key] for r in groups["baseline"]]
    bm, bsd, _ = experiments.mean_sd(base)
    col = {"train": 0, "test": 1, "test5": 2, "test10crop": 1}[key]
    out = {}
    for v, rs in groups.items():
        vals = [errors(r)[key] for r in rs]
        m, sd, _ = experiments.mean_sd(vals)
        se = math.sqrt((sd ** 2 if len(vals) > 1 else 0) / len(vals)
                       + (bsd ** 2 if len(base) > 1 else 0) / len(base))
        paper = PAPER_TABLE3[v][col] - PAPER_REFERENCE[_reference(v)][col]
        test = stats.welch(vals, base, level) if v != "baseline" else None
        out[v] = {"mean": m, "sd": sd, "n": len(vals), "change": m - bm, "se": se,
                  "significant": (v != "baseline" and len(vals) > 1 and len(base) > 1
                                and abs(m - bm) > 2 * se),
                  "paper": PAPER_TABLE3[v][col], "paper_change": paper,
                  "paper_reference": _reference(v),
                  "interval": stats.mean_interval(vals, level), "welch": test,
                  "change_low": test.low if test else math.nan,
                  "change_high": test.high if test else math.nan,
                  "p": test.p if test else math.nan,
                  "p_holm": math.nan, "holm_significant": False}
    tested = {v: e["p"] for v, e in out.items() if not math.isnan(e["p"])}
    if tested:
        h = stats.holm(tested, alpha)
        for v in tested:
            out[v].update(p_holm=h.adjusted[v], holm_significant=h.rejected[v])
    return out
