"""Linear probes (Section 5.2, Table 7): how well a linear classifier separates new classes
using the frozen features of one layer.

:func:`probe` fits one of :data:`CLASSIFIERS` from scikit-learn on the features of some
training images and scores it on test images:

* ``svm`` — ``SVC`` with the linear kernel (hinge loss, C = 1, libsvm's one-vs-one
  multi-class vote), the paper's "SVM (l)" rows. The kernel is passed as the callable
  ``linear_kernel``, so scikit-learn computes the Gram matrix X Xᵀ with one BLAS call and
  libsvm solves the dual on it: the same SVM, and the same predictions, as
  ``SVC(kernel="linear")``, whose on-demand dot products over 3,456-wide conv features took
  10 s a fit where this takes 0.5 s (``LinearSVC``, one-vs-rest with squared hinge loss,
  took 2–7 s a fit, more than the probes' budget for all 70);
* ``softmax`` — ``LogisticRegression`` (multinomial, L-BFGS, L2 with C = 1), the paper's
  "Softmax (l)" rows and, on fc7, the *frozen* arm of Tables 4–5 (a new softmax on top of
  layers 1–7).

Semantics where the paper is silent: each feature is standardised (``StandardScaler``,
fitted on the training images only) before the classifier, so one C serves every layer,
whose activations differ in scale by orders of magnitude; C is scikit-learn's default (1),
not tuned (at 1 image per class there is nothing to tune it on). The score is the mean
per-class accuracy in percent (``balanced_accuracy_score``: Caltech's test sets are
unbalanced; on a balanced test set it is the plain accuracy). The solvers are
deterministic (``seed`` is kept for solvers that draw random numbers; these two do not),
so a probe re-run on the same features gives the same predictions. A solver that hits its
iteration limit is reported (``converged=False``), not hidden.

**C chosen by cross-validation** (:func:`probe_cv`; the frozen arm and the hand-crafted
baselines of a recipe chosen on validation, :mod:`zfbook.transfer.choose`): C from
:data:`CS` by the mean per-class accuracy of stratified k-fold cross-validation on the
training shots alone, with ``k`` = min(5, the fewest training images of a class): the
test images are never seen, and no fixed C is assumed to serve 1 and 60 shots alike. Folds split *images*: the
augmented views of one image (``groups``) are always on the same side, and a held-out image
is scored on its ``held_out`` view only (the centre crop, as the test images are). Ties go
to the smaller C. At 1 image per class there is no fold to hold out: C stays 1 and the
result says ``folds=0``. ``linear-svc`` (``LinearSVC``: one-vs-rest, squared hinge) is the
hand-crafted baseline's classifier (HOG or pixels, Fig. 9's comparison); it is not one of
Table 7's :data:`CLASSIFIERS`.

Where the features come from (one batched pass, cached on disk) is :mod:`zfbook.transfer`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.metrics.pairwise import linear_kernel
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC, LinearSVC
from threadpoolctl import threadpool_limits

__all__ = ["CLASSIFIERS", "HEADS", "CS", "MAX_FOLDS", "ProbeResult", "CVProbeResult", "classifier", "probe",
           "probe_cv", "predict", "cv_folds", "mean_per_class_accuracy"]

#: the classifiers of Table 7
CLASSIFIERS = ("svm", "softmax")
#: every classifier :func:`classifier` builds: Table 7's and the baselines' ``linear-svc``
HEADS = CLASSIFIERS + ("linear-svc",)
#: the values of C that :func:`probe_cv` chooses from (ascending: ties go to the first)
CS = (0.00001, 0.0001, 0.001, 0.01, 0.1, 1.0)
#: the most folds of :func:`probe_cv`'s cross-validation
MAX_FOLDS = 5


def classifier(name: str, seed: int = 0, C: float = 1.0):
    """An unfitted scikit-learn pipeline: ``StandardScaler`` then the linear classifier."""
    if name == "svm":
        head = SVC(kernel=linear_kernel, C=C)
    elif name == "softmax":
        head = LogisticRegression(C=C, max_iter=2000)
    elif name == "linear-svc":
        head = LinearSVC(C=C, max_iter=10000, random_state=seed)
    else:
        raise ValueError(f"unknown classifier {name!r}; valid classifiers are: {', '.join(HEADS)}")
    return make_pipeline(StandardScaler(), head)


@dataclass
class ProbeResult:
    """``top1``: mean per-class accuracy (%); ``predictions``: int64 (N_test,);
    ``seconds``: fit and predict; ``converged``: the solver stopped before its iteration limit;
    ``model``: the fitted pipeline (:func:`predict` reads more images with it)."""
    top1: float
    predictions: np.ndarray
    seconds: float
    converged: bool
    model: object = field(default=None, repr=False)


def mean_per_class_accuracy(labels, predictions) -> float:
    """Mean over classes of the share of each class's test images classified correctly, in %."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # predicted classes absent from the test set
        return 100.0 * float(balanced_accuracy_score(np.asarray(labels), np.asarray(predictions)))


def _dtype(name: str):
    # the SVM's Gram matrix sums thousands of products: in float64, as libsvm's own kernels are
    # (in float32, near-ties in the one-vs-one vote fell the other way)
    return np.float64 if name == "svm" else np.float32


def predict(name: str, model, x) -> np.ndarray:
    """Class predictions (int64) of a fitted ``model`` of classifier ``name`` (a result's
    ``model``) for features ``x``, computed as the fit computed its own."""
    with threadpool_limits(1):
        return model.predict(np.asarray(x, dtype=_dtype(name))).astype(np.int64)


def _fit_predict(name: str, C: float, seed: int, train_x, train_y, test_x) -> tuple[np.ndarray, bool, object]:
    """One fit and predict on one BLAS thread: ``(predictions, converged, fitted pipeline)``."""
    clf = classifier(name, seed, C)
    # one BLAS/OpenMP thread: the problems are small, and next to PyTorch's threads the extra
    # ones spin-wait (on the busy 2-core CPU a 600-image fc7 softmax took 12 s of CPU, 0.3 s alone)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(np.asarray(train_x, dtype=_dtype(name)), np.asarray(train_y))
    pred = predict(name, clf, test_x)
    return pred, not any(issubclass(w.category, ConvergenceWarning) for w in caught), clf


def probe(name: str, train_x, train_y, test_x, test_y, seed: int = 0, C: float = 1.0) -> ProbeResult:
    """Fit classifier ``name`` on (``train_x`` (N, D), ``train_y``) and score it on the test set."""
    classifier(name, seed, C)   # an unknown name is refused before any work
    t0 = time.perf_counter()
    pred, converged, model = _fit_predict(name, C, seed, train_x, train_y, test_x)
    return ProbeResult(mean_per_class_accuracy(test_y, pred), pred, time.perf_counter() - t0, converged, model)


@dataclass
class CVProbeResult(ProbeResult):
    """:class:`ProbeResult` of the refit on all training rows with the chosen ``C``;
    ``folds``: the folds of the cross-validation (0: none, at 1 image per class);
    ``cv_top1``: each C's mean held-out per-class accuracy (%), in :data:`CS` order."""
    C: float = 1.0
    folds: int = 0
    cv_top1: dict | None = None


def cv_folds(train_y, groups=None, max_folds: int = MAX_FOLDS) -> int:
    """The folds :func:`probe_cv` uses: min(``max_folds``, the fewest images (distinct
    ``groups``) of a class); 0 when that is below 2 (nothing to hold out)."""
    y = np.asarray(train_y)
    g = np.arange(len(y)) if groups is None else np.asarray(groups)
    fewest = min(len(np.unique(g[y == c])) for c in np.unique(y))
    k = min(max_folds, fewest)
    return k if k >= 2 else 0


def _image_folds(train_y, groups, held_out, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(fit rows, scored rows)`` of each fold: stratified over images (groups), every row of
    an image on one side, held-out images scored on their ``held_out`` rows only."""
    y, g = np.asarray(train_y), np.asarray(groups)
    images, first = np.unique(g, return_index=True)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for fit_i, out_i in folds.split(images, y[first]):
        out_rows = np.isin(g, images[out_i])
        out.append((np.nonzero(~out_rows)[0], np.nonzero(out_rows & held_out)[0]))
    return out


def probe_cv(name: str, train_x, train_y, test_x, test_y, seed: int = 0, *, groups=None, held_out=None,
             Cs=CS, max_folds: int = MAX_FOLDS) -> CVProbeResult:
    """:func:`probe` with C chosen by cross-validation on the training rows (module
    docstring). ``groups`` (N,): the image each training row comes from (default: each row
    its own); ``held_out`` (N,) bool: the rows a held-out image is scored on (default: all)."""
    classifier(name, seed)
    x, y = np.asarray(train_x), np.asarray(train_y)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    held_out = np.ones(len(y), bool) if held_out is None else np.asarray(held_out, bool)
    Cs = tuple(sorted(float(c) for c in Cs))
    t0 = time.perf_counter()
    k = cv_folds(y, groups, max_folds)
    scores = None
    best = 1.0
    if k:
        folds = _image_folds(y, groups, held_out, k, seed)
        scores = {}
        for C in Cs:
            scores[C] = float(np.mean([mean_per_class_accuracy(y[out], _fit_predict(name, C, seed, x[fit], y[fit],
                                                                                      x[out])[0])
                                       for fit, out in folds]))
        best = max(Cs, key=lambda c: (scores[c], -Cs.index(c)))
    pred, converged, model = _fit_predict(name, best, seed, x, y, test_x)
    return CVProbeResult(mean_per_class_accuracy(test_y, pred), pred, time.perf_counter() - t0, converged, model,
                         C=best, folds=k, cv_top1=scores)
