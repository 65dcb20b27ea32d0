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
from sklearn.metrics.pairwise import linear_kernel
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

__all__ = ["CLASSIFIERS", "ProbeResult", "classifier", "probe", "mean_per_class_accuracy"]

#: the classifiers of Table 7
CLASSIFIERS = ("svm", "softmax")


def classifier(name: str, seed: int = 0):
    """An unfitted scikit-learn pipeline: ``StandardScaler`` then the linear classifier."""
    if name == "svm":
        head = SVC(kernel=linear_kernel, C=1.0)
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
    # the SVM's Gram matrix sums thousands of products: in float64, as libsvm's own kernels are
    # (in float32, near-ties in the one-vs-one vote fell the other way)
    dtype = np.float64 if name == "svm" else np.float32
    t0 = time.perf_counter()
    # one BLAS/OpenMP thread: the problems are small, and next to PyTorch's threads the extra
    # ones spin-wait (on the busy 2-core CPU a 600-image fc7 softmax took 12 s of CPU, 0.3 s alone)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(np.asarray(train_x, dtype=dtype), np.asarray(train_y))
        pred = clf.predict(np.asarray(test_x, dtype=dtype)).astype(np.int64)
    seconds = time.perf_counter() - t0
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return ProbeResult(mean_per_class_accuracy(test_y, pred), pred, seconds, converged)
