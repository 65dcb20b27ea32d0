"""Transfer (Section 5, Tables 4–5, Fig. 9): the network's features on classes it never saw.

Three **arms**, run on the *same* seeded draws of training images:

* ``frozen`` — layers 1–7 frozen, a new softmax trained on top (the paper's setup): a
  multinomial logistic regression on the fc7 features (:func:`zfbook.probes.probe`,
  ``softmax``), which is Table 7's "Softmax (7)" probe;
* ``scratch`` — the same architecture trained from random weights on the few images,
  with the project's trainer (:func:`zfbook.train.train`) and the :data:`SCRATCH` recipe;
* ``finetune`` — every layer trained from the pretrained weights at a small learning rate
  with a new fc8 (:data:`FINETUNE`; what practitioners do today, beyond the paper).

**Features** (:func:`features`): the rectified output of each requested layer, for a whole
split in one batched pass (centre crop, the checkpoint's own preprocessing), stopping at
the last layer asked for. Conv maps are flattened, as the paper's linear classifiers take
them; with ``pooling="max"`` (the default) they are first max-pooled to at most 6×6
(ZFNet's pool5 grid; :data:`GRID`), which keeps conv1 of the full model at 96·36 numbers
instead of 96·55·55. :func:`cached_features` stores them under
``$ZFBOOK_CACHE/features/<checkpoint sha256>/<split>--<layer>--<pooling>.pt``.

**The low-shot protocol** (:class:`TransferSet`): per class, a seeded permutation
(``numpy.random.default_rng([seed, draw, class])``) of the class's training pool; a draw
with *k* shots takes its first *k* images, so within a draw the training sets are nested
(the 5 images of the 5-shot set are among the 10-shot set's). The test images are a fixed
split (the embedded families, imagefolder) or, for Caltech, the next images of the same
permutation after the protocol's maximum number of shots, up to ``n_test`` per class
(Caltech-101: at most 30 shots, 50 test images per class, as in Table 4; Caltech-256: at
most 60 shots, 25 test images per class — the paper says only that it follows Griffin et
al.), so a draw's test set is the same for every number of shots. Scores are mean
per-class accuracy in percent.

**Refusals**: unknown arms, layers, poolings and datasets, and more shots than a class has
(the message names the maximum) are one-line ``ValueError``s; a missing dataset is
:class:`zfbook.data.real.DatasetNotFound`, a bad checkpoint
:class:`zfbook.checkpoint.CheckpointError`.

**Records** (:class:`Records`): ``results.json`` is a list of records, one per line,
written atomically after each one; a run started again skips the records it already has
and refuses records of another checkpoint, dataset, seed or recipe unless told to start the
file over (one file never mixes two models), and a ``results.json`` it did not write. Training on the CPU is deterministic, so a record re-run reproduces its number bit
for bit.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..probes import mean_per_class_accuracy, probe
from .arms import FINETUNE, SCRATCH, finetune_arm, frozen_arm, predict, run_seed, scratch_arm, scratch_schedule
from .records import PAPER_TABLE4, PAPER_TABLE5, PAPER_TABLE7, Records, _jsonable, load_records, summarize
from .sets import (ARMS, DATASETS, GRID, LAYERS, POOLINGS, SHOTS, TransferSet, _check, cached_features,
                   feature_cache_path, features, parse_list, resolve_checkpoint, transfer_set)

__all__ = [
    "LAYERS", "ARMS", "SHOTS", "POOLINGS", "GRID", "DATASETS", "SCRATCH", "FINETUNE",
    "features", "cached_features", "feature_cache_path", "resolve_checkpoint",
    "TransferSet", "transfer_set", "frozen_arm", "scratch_arm", "scratch_schedule", "finetune_arm", "run_seed",
    "Records", "run_transfer", "run_probes", "predict", "parse_list", "summarize", "load_records",
    "PAPER_TABLE4", "PAPER_TABLE5", "PAPER_TABLE7",
]


_SAME = ("dataset", "checkpoint_sha256", "seed", "recipe")


def _train_arm(tset: TransferSet, model, arm: str, k: int, d: int, seed: int, recipe: dict,
               device) -> tuple[np.ndarray, dict]:
    """One scratch or finetune record's predictions and extra fields."""
    tr, te = tset.split(k, d, seed)
    ytr = tset.labels[tr]
    s = run_seed(seed, d, k)
    if arm == "scratch":
        pred, loss = scratch_arm(model.preset.name, tset.images(tr), ytr, tset.classes, tset.images(te),
                                 seed=s, recipe=recipe, device=device)
        return pred, {"run_seed": s, "train_loss": loss, "epochs": scratch_schedule(recipe, len(tr))[0]}
    pred, loss = finetune_arm(model, tset.images(tr), ytr, len(tset.classes), tset.images(te),
                              seed=s, recipe=recipe, device=device)
    return pred, {"run_seed": s, "train_loss": loss}


_WORKER: dict = {}


def _worker_init(tset, model) -> None:
    _WORKER.update(tset=tset, model=model)


def _worker_run(task) -> tuple:
    arm, k, d, seed, recipe, device = task
    t0 = time.perf_counter()
    pred, extra = _train_arm(_WORKER["tset"], _WORKER["model"], arm, k, d, seed, recipe, device)
    return pred, extra, time.perf_counter() - t0, torch.get_num_threads()


def _cost(arm: str, k: int, n_classes: int, recipes: dict) -> float:
    """Images a training run passes through (to start the longest first)."""
    r = recipes[arm]
    epochs = scratch_schedule(r, k * n_classes)[0] if arm == "scratch" else r["epochs"]
    return epochs * r["epoch_images"]


def run_transfer(tset: TransferSet, model, sha: str, *, arms=ARMS, shots=SHOTS, draws: int = 5,
                 train_draws: int | None = None, seed: int = 0, out, force: bool = False,
                 recipes: dict | None = None, command: str = "", checkpoint: str = "",
                 device="cpu", progress: bool = True, log: Callable | None = print,
                 jobs: int = 1) -> list[dict]:
    """The three arms over ``shots`` × draws; appends to ``out/results.json`` and skips the
    records it already has. ``train_draws``: draws for scratch and finetune (default: all).
    ``jobs`` > 1: the scratch and finetune runs in that many processes, the longest first
    (:func:`zfbook.parallel.run_parallel`); each record names its ``threads``."""
    from ..parallel import check_jobs, run_parallel
    for a in arms:
        _check("arm", a, ARMS)
    tset.check_shots(shots)
    check_jobs(jobs)
    train_draws = draws if train_draws is None else min(train_draws, draws)
    recipes = {"frozen": {"classifier": "softmax", "layer": "fc7"}, "scratch": SCRATCH,
               "finetune": FINETUNE, **(recipes or {})}
    records = Records(Path(out) / "results.json", ("arm", "shots", "draw"), _SAME, force)
    base = {"dataset": tset.name, "checkpoint": checkpoint, "checkpoint_sha256": sha, "seed": seed,
            "command": command}
    plan = [(a, k, d) for a in arms for d in range(draws if a == "frozen" else train_draws) for k in shots]
    todo = [(a, k, d) for a, k, d in plan
            if not records.done({**base, "arm": a, "shots": k, "draw": d, "recipe": _jsonable(recipes[a])})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} records already in {records.path}; running the other {len(todo)}")
    labels = tset.labels

    def add(arm, k, d, pred, extra, seconds, threads):
        tr, te = tset.split(k, d, seed)
        rec = {"arm": arm, "shots": k, "draw": d,
               "top1": mean_per_class_accuracy(labels[te].numpy(), pred), "seconds": round(seconds, 3),
               "n_train": len(tr), "n_test": len(te), **extra, **base,
               "threads": threads, "recipe": _jsonable(recipes[arm]), "predictions": pred.tolist()}
        records.add(rec)
        if log and not progress:
            log(f"{arm:9s} {k:3d} shots  draw {d}  top-1 {rec['top1']:6.2f}%  {rec['seconds']:7.1f} s")

    frozen = [t for t in todo if t[0] == "frozen"]
    trained = [t for t in todo if t[0] != "frozen"]
    if frozen:
        feats = tset.features(model, sha, ["fc7"], progress=progress, device=device)["fc7"].numpy()
        for arm, k, d in frozen:
            tr, te = tset.split(k, d, seed)
            t0 = time.perf_counter()
            res = frozen_arm(feats[tr], labels[tr].numpy(), feats[te], labels[te].numpy(), seed)
            add(arm, k, d, res.predictions, {"converged": res.converged}, time.perf_counter() - t0,
                torch.get_num_threads())
    bar = tqdm(total=len(trained), desc="transfer", disable=not progress)
    if jobs == 1:
        for arm, k, d in trained:
            bar.set_postfix_str(f"{arm} {k} shots, draw {d}")
            t0 = time.perf_counter()
            pred, extra = _train_arm(tset, model, arm, k, d, seed, recipes[arm], device)
            add(arm, k, d, pred, extra, time.perf_counter() - t0, torch.get_num_threads())
            bar.update()
    else:
        tasks = sorted(((a, k, d, seed, recipes[a], str(device)) for a, k, d in trained),
                       key=lambda t: -_cost(t[0], t[1], len(tset.classes), recipes))
        for (arm, k, d, *_), (pred, extra, seconds, threads) in run_parallel(
                _worker_run, tasks, jobs, initializer=_worker_init, initargs=(tset, model)):
            add(arm, k, d, pred, extra, seconds, threads)
            bar.update()
        order = {t: i for i, t in enumerate(plan)}  # the file in the plan's order, as one process writes it
        records.sort(key=lambda r: order.get((r["arm"], r["shots"], r["draw"]), -1))
    bar.close()
    return records.records


def run_probes(tset: TransferSet, model, sha: str, *, layers=LAYERS, classifiers=("svm", "softmax"),
               shots=(60,), draws: int = 5, seed: int = 0, pooling: str = "max", out, force: bool = False,
               command: str = "", checkpoint: str = "", device="cpu", progress: bool = True,
               log: Callable | None = print) -> list[dict]:
    """Table 7: each classifier on each layer's frozen features, over ``shots`` × draws."""
    from ..probes import CLASSIFIERS
    for layer in layers:
        _check("layer", layer, LAYERS)
    for c in classifiers:
        _check("classifier", c, CLASSIFIERS)
    _check("pooling", pooling, POOLINGS)
    tset.check_shots(shots)
    records = Records(Path(out) / "results.json", ("layer", "classifier", "shots", "draw", "pooling"),
                      ("dataset", "checkpoint_sha256", "seed"), force)
    base = {"dataset": tset.name, "checkpoint": checkpoint, "checkpoint_sha256": sha, "seed": seed,
            "command": command}
    plan = [(l, c, k, d) for l in layers for c in classifiers for k in shots for d in range(draws)]
    todo = [p for p in plan if not records.done({**base, "layer": p[0], "classifier": p[1], "shots": p[2],
                                                 "draw": p[3], "pooling": pooling})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} records already in {records.path}; running the other {len(todo)}")
    need = [l for l in layers if any(p[0] == l for p in todo)]
    feats = tset.features(model, sha, need, pooling=pooling, progress=progress, device=device) if need else {}
    labels = tset.labels.numpy()
    for layer, c, k, d in tqdm(todo, desc="probes", disable=not progress):
        tr, te = tset.split(k, d, seed)
        x = feats[layer].numpy()
        res = probe(c, x[tr], labels[tr], x[te], labels[te], seed)
        records.add({"layer": layer, "classifier": c, "shots": k, "draw": d, "pooling": pooling,
                     "top1": res.top1, "seconds": round(res.seconds, 3), "converged": res.converged,
                     "n_train": len(tr), "n_test": len(te), "features": int(x.shape[1]), **base})
    return records.records
