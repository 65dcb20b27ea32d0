"""Linear probes (zfbook.probes, Table 7) against scikit-learn's own fits and a hand count."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from zfbook.probes import CLASSIFIERS, classifier, mean_per_class_accuracy, probe


def _blobs(n_per_class, classes=3, dim=20, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + rng.normal(0, spread, (len(y), dim))
    return x.astype(np.float32), y


def test_mean_per_class_accuracy_by_hand():
    y = np.array([0, 0, 0, 0, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 2, 0])
    # class 0: 3/4, class 1: 1/1, class 2: 1/2 → mean 0.75
    assert mean_per_class_accuracy(y, p) == pytest.approx(75.0)
    assert mean_per_class_accuracy(y, y) == 100.0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_probe_matches_an_independent_scikit_learn_fit(name):
    xtr, ytr = _blobs(15, spread=2.5)
    xte, yte = _blobs(30, seed=1, spread=2.5)
    # the test's own pipeline: standardise with the training statistics, then the classifier
    s = StandardScaler().fit(xtr)
    # the SVM the book's svm (a callable linear kernel) must agree with: libsvm's built-in one
    ref = (SVC(kernel="linear", C=1.0) if name == "svm"
           else LogisticRegression(C=1.0, max_iter=2000)).fit(s.transform(xtr), ytr)
    want = ref.predict(s.transform(xte))
    res = probe(name, xtr, ytr, xte, yte, seed=0)
    np.testing.assert_array_equal(res.predictions, want)
    acc = np.mean([np.mean(want[yte == c] == c) for c in np.unique(yte)]) * 100
    assert res.top1 == pytest.approx(acc)
    assert res.converged and res.seconds >= 0
    # neither chance nor perfect: the blobs overlap, so the check can fail either way
    assert 40 < res.top1 < 100


def test_probe_is_deterministic():
    xtr, ytr = _blobs(10, spread=3.0)
    xte, yte = _blobs(20, seed=2, spread=3.0)
    a = probe("svm", xtr, ytr, xte, yte, seed=3)
    b = probe("svm", xtr, ytr, xte, yte, seed=3)
    np.testing.assert_array_equal(a.predictions, b.predictions)


def test_unknown_classifier_names_the_choices():
    with pytest.raises(ValueError, match="valid classifiers are: svm, softmax"):
        classifier("knn")


def test_a_solver_that_runs_out_of_iterations_says_so(monkeypatch):
    import zfbook.probes as P
    real = P.LogisticRegression
    monkeypatch.setattr(P, "LogisticRegression", lambda **kw: real(**{**kw, "max_iter": 1}))
    xtr, ytr = _blobs(10)
    assert not probe("softmax", xtr, ytr, xtr, ytr).converged


# ---------------------------------------------------------------- C by cross-validation
def _noisy(n_per_class, seed, dim=60, classes=3):
    """Few images, many dimensions of noise around centres shared by every seed: how strongly
    the classifier is regularised (C) changes what it gets right."""
    centres = np.random.default_rng(99).normal(0, 1, (classes, dim))
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    return (centres[y] + rng.normal(0, 2.5, (len(y), dim))).astype(np.float32), y


@pytest.mark.parametrize("name", ["softmax", "linear-svc"])
def test_probe_cv_chooses_c_as_an_independent_grid_search(name):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC
    from zfbook.probes import CS, probe_cv
    xtr, ytr = _noisy(8, 0)
    xte, yte = _noisy(20, 1)
    res = probe_cv(name, xtr, ytr, xte, yte, seed=3)
    head = (LogisticRegression(max_iter=2000) if name == "softmax" else LinearSVC(max_iter=10000, random_state=3))
    step = type(head).__name__.lower()
    ref = GridSearchCV(make_pipeline(StandardScaler(), head), {f"{step}__C": list(CS)},
                       cv=StratifiedKFold(5, shuffle=True, random_state=3), scoring="balanced_accuracy").fit(xtr, ytr)
    assert res.folds == 5 and res.C == ref.best_params_[f"{step}__C"]
    np.testing.assert_allclose([res.cv_top1[c] for c in CS], 100 * ref.cv_results_["mean_test_score"], atol=1e-9)
    np.testing.assert_array_equal(res.predictions, ref.predict(xte))
    assert len(set(res.cv_top1.values())) > 1           # the choice mattered: C changes the held-out score


def test_probe_cv_keeps_the_views_of_an_image_in_one_fold():
    """Ten identical copies of images with random labels: folds over rows let a copy of each
    held-out image be learned (near 100%), folds over images leave only chance."""
    from zfbook.probes import probe_cv
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 50)).astype(np.float32)
    y = np.repeat(np.arange(3), 10)
    xs, ys, groups = np.repeat(x, 10, 0), np.repeat(y, 10), np.repeat(np.arange(30), 10)
    rows = probe_cv("softmax", xs, ys, x, y, Cs=(1.0,))
    images = probe_cv("softmax", xs, ys, x, y, groups=groups, held_out=np.tile(np.arange(10) == 4, 30), Cs=(1.0,))
    assert rows.cv_top1[1.0] > 95 and images.cv_top1[1.0] < 60 and images.folds == 5


def test_probe_cv_at_one_image_per_class_keeps_c_1():
    from zfbook.probes import cv_folds, probe_cv
    xtr, ytr = _blobs(1, spread=2.0)
    xte, yte = _blobs(10, seed=1, spread=2.0)
    res = probe_cv("softmax", xtr, ytr, xte, yte)
    assert (res.folds, res.C, res.cv_top1) == (0, 1.0, None)
    np.testing.assert_array_equal(res.predictions, probe("softmax", xtr, ytr, xte, yte).predictions)
    assert cv_folds(np.repeat(np.arange(3), 3)) == 3 and cv_folds(np.repeat(np.arange(3), 60)) == 5
    assert cv_folds(np.repeat(np.arange(3), 20), groups=np.repeat(np.arange(6), 10)) == 2
