"""Linear probes (Section 5.2, Table 7): how well a linear classifier separates new classes
using the frozen features of one layer.

:func:`probe` fits one of :data:`CLASSIFIERS` from scikit-learn on the features of some
training images and scores it on test images:

* ``svm`` — ``LinearSVC`` (one-vs-rest linear SVM, squared hinge loss, C = 1), the paper's
  "SVM (l)" rows;
* ``softmax`` — ``LogisticRegression`` (multinomial, L-BFGS, L2 with C = 1), the paper's
  "Softmax (l)" rows and, on fc7, the *frozen* arm of Tables 4–5 (a new softmax on top of
  layers 1–7).

Semantics where the paper is silent: each feature is standardised (``StandardScaler``,
fitted on the training images only) before the classifier, so one C serves every layer,
whose activations differ in scale by orders of magnitude; C is scikit-learn's default (1),
not tuned (at 1 image per class there is nothing to tune it on). The score is the mean
per-class accuracy in percent (``balanced_accuracy_score``: Caltech's test sets are
unbalanced; on a balanced test set it is the plain accuracy). The solvers are
deterministic given ``seed`` (LinearSVC's coordinate order), so a probe re-run on the same
features gives the same predictions. A solver that hits its iteration limit is reported
(``converged=False``), not hidden.

Where the features come from (one batched pass, cached on disk) is :mod:`zfbook.transfer`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

__all__ = ["CLASSIFIERS", "ProbeResult", "classifier", "probe", "mean_per_class_accuracy"]

#: the classifiers of Table 7
CLASSIFIERS = ("svm", "softmax")


def classifier(name: str, seed: int = 0):
    """An unfitted scikit-learn pipeline: ``StandardScaler`` then the linear classifier."""
    if name == "svm":
        head = LinearSVC(C=1.0, dual="auto", max_iter=5000, random_state=seed)
    elif name == "softmax":
        head = LogisticRegression(C=1.0, max_iter=2000)
    else:
        raise ValueError(f"unknown classifier {name!r}; valid classifiers are: {', '.join(CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), head)


@dataclass
class ProbeResult:
    """``top1``: mean per-class accuracy (%); ``predictions``: int64 (N_test,);
    ``seconds``: fit and predict; ``converged``: the solver stopped before its iteration limit."""
    top1: float
    predictions: np.ndarray
    seconds: float
    converged: bool


def mean_per_class_accuracy(labels, predictions) -> float:
    """Mean over classes of the share of each class's test images classified correctly, in %."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # predicted classes absent from the test set
        return 100.0 * float(balanced_accuracy_score(np.asarray(labels), np.asarray(predictions)))


def probe(name: str, train_x, train_y, test_x, test_y, seed: int = 0) -> ProbeResult:
    """Fit classifier ``name`` on (``train_x`` (N, D), ``train_y``) and score it on the test set."""
    clf = classifier(name, seed)
    t0 = time.perf_counter()
    # one BLAS/OpenMP thread: the problems are small, and next to PyTorch's threads the extra
    # ones spin-wait (on the busy 2-core CPU a 600-image fc7 softmax took 12 s of CPU, 0.3 s alone)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(np.asarray(train_x, dtype=np.float32), np.asarray(train_y))
        pred = clf.predict(np.asarray(test_x, dtype=np.float32)).astype(np.int64)
    seconds = time.perf_counter() - t0
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return ProbeResult(mean_per_class_accuracy(test_y, pred), pred, seconds, converged)
