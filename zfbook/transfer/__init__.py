"""Transfer (Section 5, Tables 4–5, Fig. 9): the network's features on classes it never saw.

Three **arms**, run on the *same* seeded draws of training images:

* ``frozen`` — layers 1–7 frozen, a new softmax trained on top (the paper's setup): a
  multinomial logistic regression on the fc7 features (:func:`zfbook.probes.probe`,
  ``softmax``), which is Table 7's "Softmax (7)" probe;
* ``scratch`` — the same architecture trained from random weights on the few images,
  with the project's trainer (:func:`zfbook.train.train`) and the :data:`SCRATCH` recipe;
* ``finetune`` — every layer trained from the pretrained weights at a small learning rate
  with a new fc8 (:data:`FINETUNE`; what practitioners do today, beyond the paper).

Beside them, when named, two hand-crafted **baselines** with no network (:data:`BASELINES`,
:mod:`zfbook.transfer.baseline`): HOG or raw pixels of the centre crop with a linear SVM,
what Fig. 9 sets the network against (there Bo et al. 2013, the best method of its day).

**Recipes chosen on validation** (``choose=True``, :mod:`zfbook.transfer.choose`): every
arm's recipe at each number of shots is picked from a small stated grid (:data:`GRIDS`) by
its accuracy on the dataset's validation split (``parts-transfer``: 20 images per class),
never on the test split; the frozen arm then reads augmented features if that wins (the
training shots' 10 crops) and chooses its C by cross-validation on the training shots
(:func:`zfbook.probes.probe_cv`; C = 1 at 1 shot, where nothing can be held out). Each test
record says what was chosen and every candidate's validation score (``chosen``).

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
for bit. The layer-wise probes (:func:`run_probes`, Table 7) may put several checkpoints in
one file (``several``: pretrained seeds), each record keyed by its checkpoint's sha256.

**Intervals and chance** (:mod:`zfbook.transfer.intervals`): :func:`bootstrap` gives each
arm's mean over draws a percentile bootstrap interval over the test images, and
:func:`difference` a paired one for two arms; :func:`chance` is 100 / the number of classes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..probes import mean_per_class_accuracy, probe
from ..probes import predict as probe_predict
from .arms import (FINETUNE, FROZEN, FROZEN_CV, SCRATCH, finetune_arm, frozen_arm, frozen_cv_arm, predict, run_seed,
                   scratch_arm, scratch_schedule)
from .baseline import RECIPES as BASELINE_RECIPES, baseline_arm, baseline_features
from .choose import GRIDS, candidates, select
from .intervals import Interval, bootstrap, difference
from .records import PAPER_TABLE4, PAPER_TABLE5, PAPER_TABLE7, Records, _jsonable, load_records, summarize
from .sets import (ARMS, BASELINES, DATASETS, GRID, LAYERS, POOLINGS, SHOTS, VIEWS, TransferSet, _check,
                   cached_features, chance, feature_cache_path, features, parse_list, resolve_checkpoint,
                   transfer_set)

__all__ = [
    "LAYERS", "ARMS", "BASELINES", "SHOTS", "POOLINGS", "VIEWS", "GRID", "DATASETS", "FROZEN", "FROZEN_CV",
    "SCRATCH", "FINETUNE", "BASELINE_RECIPES", "GRIDS",
    "features", "cached_features", "feature_cache_path", "resolve_checkpoint", "chance",
    "refit", "TransferSet", "transfer_set", "frozen_arm", "frozen_cv_arm", "scratch_arm", "scratch_schedule", "finetune_arm",
    "baseline_arm", "baseline_features", "run_seed", "candidates", "select",
    "Records", "run_transfer", "run_probes", "predict", "parse_list", "summarize", "load_records",
    "Interval", "bootstrap", "difference",
    "PAPER_TABLE4", "PAPER_TABLE5", "PAPER_TABLE7",
]


_SAME = ("dataset", "checkpoint_sha256", "seed", "recipe")
#: the arms fitted in this process on features (cheap: every draw); the others train networks
_CHEAP = ("frozen",) + BASELINES


def _indices(tset: TransferSet, k: int, d: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(train, scored)`` indices: the draw's training shots and its test (or validation) images."""
    return tset.split(k, d, seed) if split == "test" else tset.validation_split(k, d, seed)


def _train_arm(tset: TransferSet, model, arm: str, k: int, d: int, seed: int, recipe: dict,
               device, split: str = "test") -> tuple[np.ndarray, dict]:
    """One scratch or finetune record's predictions and extra fields."""
    tr, te = _indices(tset, k, d, seed, split)
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
    (arm, k, d, *_), seed, recipe, device, split = task
    t0 = time.perf_counter()
    pred, extra = _train_arm(_WORKER["tset"], _WORKER["model"], arm, k, d, seed, recipe, device, split)
    return pred, extra, time.perf_counter() - t0, torch.get_num_threads()


def _cost(arm: str, k: int, n_classes: int, recipe: dict) -> float:
    """Images a training run passes through (to start the longest first)."""
    epochs = scratch_schedule(recipe, k * n_classes)[0] if arm == "scratch" else recipe["epochs"]
    return epochs * recipe["epoch_images"]


class _Cheap:
    """The frozen arm and the baselines: features computed once (per layer, view or
    baseline recipe), then one linear fit per record. The fits are deterministic, so records
    whose training images and recipe are the same (every draw at the most shots a class has;
    the test run of draw 0 and the validation run of its chosen recipe) share one fit and
    the seconds it took."""

    def __init__(self, tset: TransferSet, model, sha: str, progress: bool, device):
        self.tset, self.model, self.sha, self.progress, self.device = tset, model, sha, progress, device
        # a copy, not a view: handing the set to worker processes (jobs > 1) moves its tensors
        # into shared memory, and a NumPy view taken before then would read freed memory
        self.labels = tset.labels.numpy().copy()
        self._centre: dict = {}
        self._views: dict = {}
        self._baseline: dict = {}
        self._fits: dict = {}

    def centre(self, layer: str) -> np.ndarray:
        if layer not in self._centre:
            self._centre[layer] = self.tset.features(self.model, self.sha, [layer], progress=self.progress,
                                                     device=self.device)[layer].numpy()
        return self._centre[layer]

    def inputs(self, arm: str, recipe: dict) -> np.ndarray:
        """The features every image is read on: the baseline's, or the layer's centre crop."""
        if arm not in BASELINES:
            return self.centre(recipe.get("layer", "fc7"))
        key = json.dumps({f: v for f, v in recipe.items() if f not in ("classifier", "Cs", "folds")}, sort_keys=True)
        if key not in self._baseline:
            self._baseline[key] = baseline_features(self.tset.images(np.arange(len(self.tset))), recipe,
                                                    self.model.preprocess.crop)
        return self._baseline[key]

    def run(self, arm: str, k: int, d: int, seed: int, recipe: dict, split: str) -> tuple[np.ndarray, dict, float]:
        """``(predictions, extra fields, seconds of the fit and predict)``. A fit made before on
        the same training images (another draw, or the validation split's run of the chosen
        recipe) is read again on these images."""
        tr, te = _indices(self.tset, k, d, seed, split)
        x, y = self.inputs(arm, recipe), self.labels
        key = (arm, json.dumps(recipe, sort_keys=True), seed, tr.tobytes())
        if arm == "frozen" and recipe.get("view", "center") == "center" and "Cs" not in recipe and "C" not in recipe:
            # the paper's frozen arm, and the shipped records: frozen_arm on the centre crop
            key += (te.tobytes(),)
            if key not in self._fits:
                t0 = time.perf_counter()
                res = frozen_arm(x[tr], y[tr], x[te], y[te], seed)
                self._fits[key] = res.predictions, {"converged": res.converged}, time.perf_counter() - t0
            pred, extra, seconds = self._fits[key]
            return pred, dict(extra), seconds
        if key not in self._fits:
            self._fits[key] = self._fit(arm, tr, te, x, seed, recipe)
        res, extra, seconds = self._fits[key]
        return probe_predict(recipe.get("classifier", "softmax"), res.model, x[te]), dict(extra), seconds

    def _fit(self, arm: str, tr: np.ndarray, te: np.ndarray, x: np.ndarray, seed: int, recipe: dict) -> tuple:
        """``(result, extra fields, seconds)`` of the fit of a baseline or a frozen arm with C
        chosen by cross-validation (or set), on the centre crop or the ten crops."""
        y = self.labels
        if arm in BASELINES:
            return self._extra(baseline_arm(x[tr], y[tr], x[te], y[te], recipe, seed))
        layer, view = recipe.get("layer", "fc7"), recipe.get("view", "center")
        groups = held_out = None
        train_x, train_y = x[tr], y[tr]
        if view == "ten-crop":
            if layer not in self._views:
                self._views[layer] = self.tset.pool_views(self.model, self.sha, layer, progress=self.progress,
                                                          device=self.device).numpy()
            v = self._views[layer][tr]                                   # (n, 10, D)
            train_x, train_y = v.reshape(-1, v.shape[-1]), np.repeat(y[tr], 10)
            groups = np.repeat(tr, 10)
            held_out = np.tile(np.arange(10) == 4, len(tr))              # the centre crop of each image
        elif view != "center":
            _check("view", view, VIEWS)
        return self._extra(frozen_cv_arm(train_x, train_y, x[te], y[te], seed, recipe=recipe, groups=groups,
                                         held_out=held_out))

    @staticmethod
    def _extra(res) -> tuple:
        extra = {"converged": res.converged}
        if hasattr(res, "folds"):
            extra.update(C=res.C, cv_folds=res.folds,
                         cv_top1=None if res.cv_top1 is None else [res.cv_top1[c] for c in sorted(res.cv_top1)])
        return res, extra, res.seconds


def _run_plan(tset: TransferSet, model, sha: str, todo: list, recipe_of: Callable, seed: int, split: str,
              add: Callable, *, device, progress: bool, jobs: int, desc: str, fits: _Cheap) -> None:
    """Run the records ``todo`` ((arm, shots, draw[, candidate])) on ``split`` ("test" or
    "val"): the cheap arms here (with ``fits``), the trained ones in ``jobs`` processes, the
    longest first; ``add(task, predictions, extra, seconds, threads)`` for each as it ends."""
    from ..parallel import run_parallel
    cheap = [t for t in todo if t[0] in _CHEAP]
    trained = [t for t in todo if t[0] not in _CHEAP]
    if cheap:
        for t in cheap:
            pred, extra, seconds = fits.run(t[0], t[1], t[2], seed, recipe_of(t), split)
            add(t, pred, extra, seconds, torch.get_num_threads())
    bar = tqdm(total=len(trained), desc=desc, disable=not progress)
    if jobs == 1:
        for t in trained:
            bar.set_postfix_str(f"{t[0]} {t[1]} shots, draw {t[2]}")
            t0 = time.perf_counter()
            pred, extra = _train_arm(tset, model, t[0], t[1], t[2], seed, recipe_of(t), device, split)
            add(t, pred, extra, time.perf_counter() - t0, torch.get_num_threads())
            bar.update()
    else:
        order = sorted(trained, key=lambda t: -_cost(t[0], t[1], len(tset.classes), recipe_of(t)))
        tasks = [(t, seed, recipe_of(t), str(device), split) for t in order]
        for task, (pred, extra, seconds, threads) in run_parallel(
                _worker_run, tasks, jobs, initializer=_worker_init, initargs=(tset, model)):
            add(task[0], pred, extra, seconds, threads)
            bar.update()
    bar.close()


def _choose(tset: TransferSet, model, sha: str, *, arms, shots, draws: int, seed: int, out, force: bool,
            recipes: dict, grids: dict | None, base: dict, device, progress: bool, log, jobs: int,
            fits: _Cheap) -> dict:
    """Validation records (``out/validation.json``) of every candidate recipe, then the chosen
    one of each (arm, shots): ``{(arm, shots): select(...)}`` (:mod:`zfbook.transfer.choose`)."""
    grids = GRIDS if grids is None else grids
    cands = {a: candidates(a, recipes[a], grids) for a in arms}
    records = Records(Path(out) / "validation.json", ("arm", "shots", "draw", "candidate"), _SAME, force)
    plan = [(a, k, d, i) for a in arms for i in range(len(cands[a])) for d in range(draws) for k in shots]
    todo = [(a, k, d, i) for a, k, d, i in plan
            if not records.done({**base, "arm": a, "shots": k, "draw": d, "candidate": i,
                                 "recipe": _jsonable(cands[a][i])})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} validation records already in {records.path}; "
            f"running the other {len(todo)}")

    def add(t, pred, extra, seconds, threads):
        arm, k, d, i = t
        tr, va = tset.validation_split(k, d, seed)
        rec = {"arm": arm, "shots": k, "draw": d, "candidate": i, "setting": grids[arm][i], "split": "val",
               "top1": mean_per_class_accuracy(tset.labels[va].numpy(), pred), "seconds": round(seconds, 3),
               "n_train": len(tr), "n_val": len(va), **extra, **base, "threads": threads,
               "recipe": _jsonable(cands[arm][i]), "predictions": pred.tolist()}
        records.add(rec)
        if log and not progress:
            log(f"validation {arm:9s} {k:3d} shots  draw {d}  candidate {i}  top-1 {rec['top1']:6.2f}%")

    _run_plan(tset, model, sha, todo, lambda t: cands[t[0]][t[3]], seed, "val", add, device=device,
              progress=progress, jobs=jobs, desc="validation", fits=fits)
    order = {t: n for n, t in enumerate(plan)}
    records.sort(key=lambda r: order.get((r["arm"], r["shots"], r["draw"], r["candidate"]), -1))
    return {(a, k): select(records.records, a, k, grids[a], [_jsonable(c) for c in cands[a]])
            for a in arms for k in shots}


def run_transfer(tset: TransferSet, model, sha: str, *, arms=ARMS, shots=SHOTS, draws: int = 5,
                 train_draws: int | None = None, seed: int = 0, out, force: bool = False,
                 recipes: dict | None = None, command: str = "", checkpoint: str = "",
                 device="cpu", progress: bool = True, log: Callable | None = print,
                 jobs: int = 1, choose: bool = False, choose_draws: int = 1,
                 grids: dict | None = None) -> list[dict]:
    """The arms over ``shots`` × draws; appends to ``out/results.json`` and skips the
    records it already has. ``train_draws``: draws for scratch and finetune (default: all).
    ``jobs`` > 1: the scratch and finetune runs in that many processes, the longest first
    (:func:`zfbook.parallel.run_parallel`); each record names its ``threads``. ``arms`` may
    include the hand-crafted :data:`BASELINES` (every draw, like the frozen arm).

    ``choose``: first choose each arm's recipe at each number of shots from its grid
    (``grids``, default :data:`GRIDS`, over the base ``recipes``) by the mean accuracy on the
    validation split over draws ``0 … choose_draws − 1`` (``out/validation.json``,
    :mod:`zfbook.transfer.choose`), then run the test records with the chosen recipes; each
    carries ``chosen``: the candidate, its setting and every candidate's validation score."""
    from ..parallel import check_jobs
    for a in arms:
        _check("arm", a, ARMS + BASELINES)
    tset.check_shots(shots)
    check_jobs(jobs)
    if choose and tset.val is None:
        tset.validation_split(1, 0)   # the refusal, naming the datasets with a validation split
    if choose and choose_draws < 1:
        raise ValueError(f"choose_draws must be at least 1, got {choose_draws}")
    train_draws = draws if train_draws is None else min(train_draws, draws)
    recipes = {"frozen": FROZEN, "scratch": SCRATCH, "finetune": FINETUNE, **BASELINE_RECIPES, **(recipes or {})}
    records = Records(Path(out) / "results.json", ("arm", "shots", "draw"), _SAME, force)
    base = {"dataset": tset.name, "checkpoint": checkpoint, "checkpoint_sha256": sha, "seed": seed,
            "command": command}
    chosen = {}
    fits = _Cheap(tset, model, sha, progress, device)
    if choose:
        chosen = _choose(tset, model, sha, arms=arms, shots=shots, draws=choose_draws, seed=seed, out=out,
                         force=force, recipes=recipes, grids=grids, base=base, device=device, progress=progress,
                         log=log, jobs=jobs, fits=fits)

    def recipe_of(t) -> dict:
        return chosen[t[0], t[1]]["recipe"] if chosen else recipes[t[0]]

    plan = [(a, k, d) for a in arms for d in range(draws if a in _CHEAP else train_draws) for k in shots]
    todo = [(a, k, d) for a, k, d in plan
            if not records.done({**base, "arm": a, "shots": k, "draw": d, "recipe": _jsonable(recipe_of((a, k)))})]
    if log and len(todo) < len(plan):
        log(f"{len(plan) - len(todo)} of {len(plan)} records already in {records.path}; running the other {len(todo)}")
    labels = tset.labels

    def add(t, pred, extra, seconds, threads):
        arm, k, d = t
        tr, te = tset.split(k, d, seed)
        rec = {"arm": arm, "shots": k, "draw": d,
               "top1": mean_per_class_accuracy(labels[te].numpy(), pred), "seconds": round(seconds, 3),
               "n_train": len(tr), "n_test": len(te), **extra, **base,
               "threads": threads, "recipe": _jsonable(recipe_of(t))}
        if chosen:
            rec["chosen"] = _jsonable(chosen[arm, k]["chosen"])
        rec["predictions"] = pred.tolist()
        records.add(rec)
        if log and not progress:
            log(f"{arm:9s} {k:3d} shots  draw {d}  top-1 {rec['top1']:6.2f}%  {rec['seconds']:7.1f} s")

    _run_plan(tset, model, sha, todo, recipe_of, seed, "test", add, device=device, progress=progress, jobs=jobs,
              desc="transfer", fits=fits)
    if jobs > 1:
        order = {t: i for i, t in enumerate(plan)}  # the file in the plan's order, as one process writes it
        records.sort(key=lambda r: order.get((r["arm"], r["shots"], r["draw"]), -1))
    return records.records


def refit(records, tset: TransferSet, model, sha: str, *, progress: bool = False, device="cpu") -> list[bool]:
    """Fit every cheap record again (the frozen arm and the hand-crafted :data:`BASELINES`:
    one linear fit on features, seconds each) from its arm, shots, draw, seed and recipe, and
    say for each whether its test predictions came out the same: a check, live in a chapter,
    that a shipped record is what the code makes. Records of other arms (``scratch``,
    ``finetune``: networks trained for minutes) and of another checkpoint are refused."""
    fits = _Cheap(tset, model, sha, progress, device)
    out = []
    for r in records:
        if r["arm"] not in _CHEAP:
            raise ValueError(f"refit fits only {', '.join(_CHEAP)} records, not {r['arm']!r} "
                             "(a network trained for minutes)")
        if r["checkpoint_sha256"] != sha or r["dataset"] != tset.name:
            raise ValueError(f"a record of {r['dataset']} on checkpoint {r['checkpoint_sha256'][:12]} cannot be "
                             f"refitted with {tset.name} on {sha[:12]}")
        pred, _, _ = fits.run(r["arm"], r["shots"], r["draw"], r["seed"], r["recipe"], "test")
        out.append(np.asarray(pred).tolist() == r["predictions"])
    return out


def run_probes(tset: TransferSet, model, sha: str, *, layers=LAYERS, classifiers=("svm", "softmax"),
               shots=(60,), draws: int = 5, seed: int = 0, pooling: str = "max", out, force: bool = False,
               command: str = "", checkpoint: str = "", device="cpu", progress: bool = True,
               log: Callable | None = print, several: bool = False, predictions: bool = False) -> list[dict]:
    """Table 7: each classifier on each layer's frozen features, over ``shots`` × draws.

    ``several``: this checkpoint is one of several whose records share ``out/results.json``
    (the layer-wise probes on several pretrained seeds): the checkpoint's sha256 joins the
    fields that identify a record, and the file may hold several checkpoints (of one dataset
    and seed). ``predictions``: keep each record's test predictions (for
    :func:`zfbook.transfer.bootstrap`)."""
    from ..probes import CLASSIFIERS
    for layer in layers:
        _check("layer", layer, LAYERS)
    for c in classifiers:
        _check("classifier", c, CLASSIFIERS)
    _check("pooling", pooling, POOLINGS)
    tset.check_shots(shots)
    key = ("layer", "classifier", "shots", "draw", "pooling")
    records = Records(Path(out) / "results.json", (("checkpoint_sha256",) + key) if several else key,
                      ("dataset", "seed") if several else ("dataset", "checkpoint_sha256", "seed"), force)
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
        rec = {"layer": layer, "classifier": c, "shots": k, "draw": d, "pooling": pooling,
               "top1": res.top1, "seconds": round(res.seconds, 3), "converged": res.converged,
               "n_train": len(tr), "n_test": len(te), "features": int(x.shape[1]), **base}
        if predictions:
            rec["predictions"] = res.predictions.tolist()
        records.add(rec)
    return records.records
