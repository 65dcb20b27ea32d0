"""Every arm's recipe chosen on the validation split, never on the test split.

The paper fixes its transfer recipe (a new softmax on frozen layers 1–7, Section 5.2) and
does not say how it was chosen; a fair comparison of arms (frozen against finetuned features,
as Yosinski et al. 2014 set them side by side, and both against training from scratch)
gives each the same chance to be tuned, on images the test never shares. Here each arm has a
small stated grid (:data:`GRIDS`), every candidate is trained on the same draws of training
shots as the test runs (draws ``0 … choose_draws − 1``) and scored on the dataset's
validation split (``TransferSet.val``: 20 images per class of ``parts-transfer``); for each
arm and number of shots the candidate with the highest mean validation accuracy over those
draws is chosen, ties going to the candidate listed first (each grid lists the arm's default
first). The test images are never read while choosing.

The grids (each entry overrides the arm's base recipe):

* ``frozen`` — the view of the training images (centre crop, or 10 crops: augmented
  features); C of the softmax is chosen *inside* each fit by cross-validation on the training
  shots (:func:`zfbook.probes.probe_cv`, :data:`zfbook.transfer.arms.FROZEN_CV`);
* ``scratch`` — the learning rate, 0.005 (:data:`~zfbook.transfer.arms.SCRATCH`), 0.0025, 0.01;
* ``finetune`` — the learning rate of the pretrained layers, 0.001
  (:data:`~zfbook.transfer.arms.FINETUNE`), 0.0003, 0.003, the new fc8 at 10× each;
* ``hog`` — cells of 16 or 8 pixels; ``pixels`` — 32×32 or 16×16 pixels (C by
  cross-validation, as the frozen arm's).

:func:`select` turns the validation records into the chosen recipe of each (arm, shots),
with every candidate's validation score, which the test records then carry (``chosen``).
"""
from __future__ import annotations

import numpy as np

from ..probes import CS, MAX_FOLDS

__all__ = ["GRIDS", "candidates", "select"]

#: each arm's candidates: overrides of its base recipe, the default first
GRIDS = {
    "frozen": [{"view": "center"}, {"view": "ten-crop"}],
    "scratch": [{"lr": 0.005}, {"lr": 0.0025}, {"lr": 0.01}],
    "finetune": [{"lr": 0.001, "head_lr": 0.01}, {"lr": 0.0003, "head_lr": 0.003}, {"lr": 0.003, "head_lr": 0.03}],
    "hog": [{"pixels_per_cell": 16}, {"pixels_per_cell": 8}],
    "pixels": [{"side": 32}, {"side": 16}],
}


def candidates(arm: str, base: dict, grids: dict | None = None) -> list[dict]:
    """The recipes ``arm`` chooses among: ``base`` with each of its grid's overrides (the
    frozen arm's base gains C by cross-validation if it has none)."""
    grids = GRIDS if grids is None else grids
    if arm not in grids:
        raise ValueError(f"no grid of recipes for arm {arm!r}; arms with one are: {', '.join(grids)}")
    if arm == "frozen" and "Cs" not in base:
        base = {**base, "Cs": list(CS), "folds": MAX_FOLDS}
    return [{**base, **g} for g in grids[arm]]


def select(val_records, arm: str, shots: int, grid: list[dict], recipes: list[dict]) -> dict:
    """The chosen candidate of ``arm`` at ``shots`` from its validation records (``candidate``
    index, ``top1`` on the validation split, one per draw): ``{"recipe", "chosen": {...}}``
    where ``chosen`` holds the candidate's index and setting, every candidate's mean
    validation accuracy and the draws it is a mean over."""
    means, draws = [], []
    for i in range(len(recipes)):
        v = [r["top1"] for r in val_records if (r["arm"], r["shots"], r["candidate"]) == (arm, shots, i)]
        if not v:
            raise ValueError(f"no validation record of {arm} at {shots} shots, candidate {i}")
        means.append(float(np.mean(v)))
        draws.append(len(v))
    best = int(np.argmax(means))   # the first of equal means: the grid lists the default first
    return {"recipe": recipes[best],
            "chosen": {"candidate": best, "setting": grid[best], "grid": grid, "val_top1": means,
                       "val_draws": min(draws)}}
