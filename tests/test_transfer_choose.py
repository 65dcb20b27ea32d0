"""Transfer on the parts world, recipes chosen on validation, the frozen arm's augmented
features and cross-validated C, the hand-crafted baselines, bootstrap intervals, chance
levels, and probes on several checkpoints (zfbook.transfer, Section 5.2, Fig. 9, Table 7).

The parts world's transfer family is rendered small here (3 training, 2 validation and
2 test images per class, about a second); nothing renders a whole split.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import importlib
import zfbook.transfer as T
from zfbook.cli import main
from zfbook.data.world import TRANSFER_CLASSES
from zfbook.models import activations

from test_transfer import _caltech_tree

SMALL = {"train": 3, "val": 2, "test": 2}
E = importlib.import_module("zfbook.data.embedded")   # the module (zfbook.data.embedded is also a function)


@pytest.fixture(scope="module")
def small_parts():
    """The parts-transfer splits at SMALL images per class, rendered once."""
    return {s: E.embedded(s, "parts-transfer", 0, per_class=n, cache=False) for s, n in SMALL.items()}


@pytest.fixture
def parts(small_parts, tmp_path, monkeypatch):
    """``transfer_set("parts-transfer")`` reads the small splits; the feature cache is temporary."""
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    real = E.embedded

    def small(split="train", family="main", seed=0, **kw):
        return small_parts[split] if family == "parts-transfer" and seed == 0 else real(split, family, seed, **kw)
    monkeypatch.setattr(E, "embedded", small)
    return T.transfer_set("parts-transfer")


@pytest.fixture(scope="module")
def model():
    return T.resolve_checkpoint("zfnet-mini")


def _cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- the parts world's transfer set
def test_parts_transfer_has_disjoint_train_val_and_test_and_a_validation_split(parts):
    assert parts.classes == list(TRANSFER_CLASSES) and parts.max_shots == 3
    y = parts.labels.numpy()
    tr, te = parts.split(2, 0)
    tr2, va = parts.validation_split(2, 0)
    assert np.array_equal(tr, tr2)                       # the same training shots as the test run
    assert not (set(tr) & set(va)) and not (set(va) & set(te)) and not (set(parts.pool) & set(va))
    assert np.bincount(y[va]).tolist() == [2] * 10 and np.bincount(y[te]).tolist() == [2] * 10
    # the images' bytes name the feature cache, so a changed renderer never reads stale features
    assert all(p.key.startswith(f"parts-transfer-{s}-s0-") for p, s in zip(parts.parts, ("train", "test", "val")))
    assert T.chance(parts) == 10.0


def test_chance_levels_by_name():
    assert T.chance("parts-transfer") == 10.0 and T.chance("embedded-transfer") == 10.0
    assert T.chance("parts") == pytest.approx(100 / 24) and T.chance("embedded-main") == pytest.approx(100 / 12)
    assert T.chance("caltech101") == pytest.approx(100 / 101) and T.chance("caltech256") == pytest.approx(100 / 256)
    with pytest.raises(ValueError, match="give its TransferSet"):
        T.chance("imagefolder")
    with pytest.raises(ValueError, match="valid datasets are: .*parts-transfer"):
        T.chance("cifar")


def test_a_dataset_without_validation_split_is_refused_naming_those_with_one(tmp_path, capsys):
    ts = T.transfer_set("embedded-transfer")
    assert ts.val is None
    with pytest.raises(ValueError, match="no validation split .* one: parts-transfer, imagefolder"):
        ts.validation_split(1, 0)
    rc, _, err = _cli(capsys, "transfer", "--checkpoint", "zfnet-mini", "--choose-recipes", "--out", tmp_path / "o")
    assert rc == 2 and "no validation split" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    rc, _, err = _cli(capsys, "transfer", "--checkpoint", "zfnet-mini", "--arms", "frozen,hug", "--out", tmp_path / "o")
    assert rc == 2 and "valid arms are: frozen, scratch, finetune, hog, pixels" in err


def test_imagefolder_with_val_beside_test_has_a_validation_split(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{i}.png")
    ts = T.transfer_set("imagefolder", tmp_path)
    assert len(ts.val) == 4 and len(ts.test) == 4 and set(ts.val).isdisjoint(ts.test)
    assert T.transfer_set("imagefolder", tmp_path).split(1, 0)[1].tolist() == ts.test.tolist()
    import shutil
    shutil.rmtree(tmp_path / "val")
    assert T.transfer_set("imagefolder", tmp_path).val is None


# ---------------------------------------------------------------- features of the ten crops
def test_ten_crop_features_are_the_crops_features(model):
    m = model[0]
    x = torch.randint(0, 256, (3, 3, 128, 128), dtype=torch.uint8)
    ten = T.features(m, x, ["conv5", "fc7"], view="ten-crop", progress=False)
    assert ten["fc7"].shape == (3, 10, 1024)
    centre = T.features(m, x, ["conv5", "fc7"], progress=False)
    with torch.no_grad():   # the mean-subtracted centre crop, mirrored, through the network by hand
        flipped = activations(m.eval(), m.preprocess.center(x).flip(-1), ["conv5", "fc7"])
    for layer in ("conv5", "fc7"):
        np.testing.assert_allclose(ten[layer][:, 4], centre[layer], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ten[layer][:, 9], flipped[layer].flatten(1), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="valid views are: center, ten-crop"):
        T.features(m, x, ["fc7"], view="five-crop", progress=False)


# ---------------------------------------------------------------- the hand-crafted baselines
def test_baseline_features_are_hog_and_shrunken_pixels_of_the_centre_crop():
    from skimage.feature import hog
    x = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    crop = x[..., 8:120, 8:120]
    h = T.baseline_features(x, T.BASELINE_RECIPES["hog"], 112)
    want = hog(crop[1].permute(1, 2, 0).numpy(), orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2),
               block_norm="L2-Hys", channel_axis=-1)
    np.testing.assert_allclose(h[1], want, rtol=1e-5)
    p = T.baseline_features(x, {**T.BASELINE_RECIPES["pixels"], "side": 16}, 112)
    blocks = crop.double().reshape(2, 3, 16, 7, 16, 7).mean((3, 5)).flatten(1).numpy()
    np.testing.assert_allclose(p, blocks, rtol=1e-5)


def test_baselines_run_as_arms_on_every_draw(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    root = _caltech_tree(tmp_path / "data")
    out = tmp_path / "run"
    rc, text, err = _cli(capsys, "transfer", "--checkpoint", "zfnet-mini", "--dataset", "caltech101", "--data-root",
                         root, "--arms", "pixels,hog", "--shots", "1,3", "--draws", "2", "--out", out, "--no-progress")
    assert rc == 0, err
    recs = json.loads((out / "results.json").read_text())
    assert sorted((r["arm"], r["shots"], r["draw"]) for r in recs) == sorted(
        (a, k, d) for a in ("pixels", "hog") for k in (1, 3) for d in (0, 1))
    for r in recs:
        assert r["cv_folds"] == (0 if r["shots"] == 1 else 3) and r["recipe"]["classifier"] == "linear-svc"
        assert (r["C"] == 1.0) if r["shots"] == 1 else (r["C"] in T.BASELINE_RECIPES["hog"]["Cs"])
    # one solid colour per class: the pixels tell them apart (chance 33%)
    assert np.mean([r["top1"] for r in recs if r["arm"] == "pixels" and r["shots"] == 3]) > 80
    assert "pixels    mean top-1 by shots  1: " in text and "chance 33.3%" in text


# ---------------------------------------------------------------- recipes chosen on validation
TINY_GRIDS = {"frozen": T.GRIDS["frozen"], "scratch": [{"lr": 0.005}, {"lr": 0.01}],
              "pixels": [{"side": 16}, {"side": 8}]}


def _tiny(monkeypatch):
    monkeypatch.setitem(T.SCRATCH, "epoch_images", 20)
    return {"scratch": {**T.SCRATCH, "epochs": 1, "anneal": ()}}


def test_recipes_are_chosen_on_validation_and_recorded(parts, model, tmp_path, monkeypatch):
    m, sha, _ = model
    recipes = _tiny(monkeypatch)
    recs = T.run_transfer(parts, m, sha, arms=("frozen", "scratch", "pixels"), shots=(1, 2), draws=2, train_draws=1,
                          out=tmp_path / "o", recipes=recipes, progress=False, log=None, choose=True,
                          choose_draws=2, grids=TINY_GRIDS)
    val = json.loads((tmp_path / "o" / "validation.json").read_text())
    assert sorted((r["arm"], r["shots"], r["draw"], r["candidate"]) for r in val) == sorted(
        (a, k, d, i) for a in ("frozen", "scratch", "pixels") for k in (1, 2) for d in (0, 1) for i in (0, 1))
    assert all(r["split"] == "val" and r["n_val"] == 20 and len(r["predictions"]) == 20 for r in val)
    for r in recs:
        ch = r["chosen"]
        means = [np.mean([v["top1"] for v in val if (v["arm"], v["shots"], v["candidate"]) == (r["arm"], r["shots"], i)])
                 for i in range(2)]
        assert ch["val_top1"] == pytest.approx(means) and ch["val_draws"] == 2
        assert ch["candidate"] == int(np.argmax(means))   # the best mean, the first of equals
        assert ch["setting"] == TINY_GRIDS[r["arm"]][ch["candidate"]]
        assert all(r["recipe"][k] == v for k, v in ch["setting"].items())
        assert r["n_test"] == 20
    frozen = [r for r in recs if r["arm"] == "frozen"]
    assert all("Cs" in r["recipe"] for r in frozen)              # C by cross-validation, once chosen
    assert {r["cv_folds"] for r in frozen if r["shots"] == 2} == {2} and {r["cv_folds"] for r in frozen
                                                                        if r["shots"] == 1} == {0}
    assert len([r for r in recs if r["arm"] == "scratch"]) == 2 and len(frozen) == 4
    # started again: nothing to do; another grid's chosen recipe is a different recipe, refused
    again = T.run_transfer(parts, m, sha, arms=("frozen", "scratch", "pixels"), shots=(1, 2), draws=2, train_draws=1,
                           out=tmp_path / "o", recipes=recipes, progress=False, log=None, choose=True,
                           choose_draws=2, grids=TINY_GRIDS)
    assert again == recs


def test_frozen_records_after_the_worker_processes_read_the_true_labels(parts, model, tmp_path, monkeypatch):
    """Handing the set to worker processes (jobs=2, the validation phase's scratch runs) moves
    its tensors into shared memory; the frozen arm's later fits (draw 1) must not read labels
    through a view taken before then: the records are those of one process."""
    m, sha, _ = model
    kw = dict(arms=("frozen", "scratch"), shots=(1, 2), draws=2, train_draws=1, recipes=_tiny(monkeypatch),
              progress=False, log=None, choose=True, grids=TINY_GRIDS)
    two = T.run_transfer(parts, m, sha, out=tmp_path / "two", jobs=2, **kw)
    one = T.run_transfer(parts, m, sha, out=tmp_path / "one", jobs=1, **kw)
    frozen = lambda recs: [(r["shots"], r["draw"], r["predictions"], r["top1"]) for r in recs if r["arm"] == "frozen"]
    assert frozen(two) == frozen(one) and len(frozen(two)) == 4
    assert all(0 <= p < 10 for r in two for p in r["predictions"])


def test_choosing_never_reads_the_test_split(parts, model, tmp_path, monkeypatch):
    """Test images blanked and test labels shuffled: the same validation scores and choices."""
    m, sha, _ = model
    recipes = _tiny(monkeypatch)
    kw = dict(arms=("frozen", "scratch", "pixels"), shots=(2,), draws=1, progress=False, log=None, choose=True,
              recipes=recipes, grids=TINY_GRIDS)
    T.run_transfer(parts, m, sha, out=tmp_path / "a", **kw)
    blank = T.TransferSet(parts.name, parts.classes,
                          [parts.parts[0], T.sets._Part("blank-test", torch.zeros_like(parts.parts[1].images)),
                           parts.parts[2]],
                          parts.labels.clone(), parts.pool, parts.test, parts.max_shots, val=parts.val)
    te = torch.as_tensor(parts.test)
    blank.labels[te] = blank.labels[te][torch.randperm(len(te), generator=torch.Generator().manual_seed(1))]
    recs = T.run_transfer(blank, m, sha, out=tmp_path / "b", **kw)
    a, b = (json.loads((tmp_path / d / "validation.json").read_text()) for d in ("a", "b"))
    assert [(r["top1"], r["predictions"]) for r in a] == [(r["top1"], r["predictions"]) for r in b]
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    assert [r["chosen"] for r in first] == [r["chosen"] for r in recs]
    assert [r["top1"] for r in first] != [r["top1"] for r in recs]   # while the test scores did change


def test_the_frozen_arm_on_ten_crops_is_a_softmax_on_every_view_with_its_cv_c(parts, model, tmp_path):
    m, sha, _ = model
    recipe = {**T.FROZEN_CV, "view": "ten-crop"}
    recs = T.run_transfer(parts, m, sha, arms=("frozen",), shots=(3,), draws=1, out=tmp_path / "o",
                          recipes={"frozen": recipe}, progress=False, log=None)
    r = recs[0]
    assert r["cv_folds"] == 3 and len(r["cv_top1"]) == len(recipe["Cs"]) and r["C"] in recipe["Cs"]
    # the test's own fit: all ten views of the 30 training images, the recorded C, the test centre crops
    tr, te = parts.split(3, 0)
    y = parts.labels.numpy()
    views = T.features(m, parts.images(tr), ["fc7"], view="ten-crop", progress=False)["fc7"].numpy()
    test = T.features(m, parts.images(te), ["fc7"], progress=False)["fc7"].numpy()
    x, yy = views.reshape(-1, views.shape[-1]), np.repeat(y[tr], 10)
    s = StandardScaler().fit(x)
    ref = LogisticRegression(C=r["C"], max_iter=2000).fit(s.transform(x), yy)
    assert r["predictions"] == ref.predict(s.transform(test)).tolist()


# ---------------------------------------------------------------- bootstrap intervals
def test_bootstrap_agrees_with_scipy_and_pairs_draws_on_shared_test_images(parts):
    from scipy.stats import bootstrap as scipy_bootstrap
    rng = np.random.default_rng(0)
    y = parts.labels.numpy()
    _, te = parts.split(1, 0)
    recs = []
    for d, acc in ((0, 0.6), (1, 0.7)):
        pred = np.where(rng.random(len(te)) < acc, y[te], (y[te] + 1) % 10)
        recs.append({"arm": "frozen", "shots": 1, "draw": d, "seed": 0, "predictions": pred.tolist(),
                     "top1": T.mean_per_class_accuracy(y[te], pred)})
    ci = T.bootstrap(recs, parts, n_resamples=4000)[("frozen", 1)]
    assert ci.mean == pytest.approx(np.mean([r["top1"] for r in recs])) and ci.n == 20
    correct = np.array([np.array(r["predictions"]) == y[te] for r in recs]).mean(0) * 100   # balanced test set
    import inspect
    rng = "rng" if "rng" in inspect.signature(scipy_bootstrap).parameters else "random_state"
    ref = scipy_bootstrap((correct,), np.mean, n_resamples=4000, method="percentile",
                          **{rng: np.random.default_rng(5)}).confidence_interval
    assert abs(ci.low - ref.low) < 2.0 and abs(ci.high - ref.high) < 2.0 and ci.low < ci.mean < ci.high
    same = T.difference(recs, parts, {"draw": 0}, {"draw": 0}, n_resamples=500)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)
    gap = T.difference(recs, parts, {"draw": 1}, {"draw": 0}, n_resamples=2000)
    assert gap.mean == pytest.approx(recs[1]["top1"] - recs[0]["top1"]) and gap.low < gap.mean < gap.high
    with pytest.raises(ValueError, match="no predictions to resample"):
        T.bootstrap([{k: v for k, v in recs[0].items() if k != "predictions"}], parts)


def test_bootstrap_scores_average_to_the_mean_per_class_accuracy_on_an_unbalanced_test_set(tmp_path):
    from zfbook.transfer.intervals import _scores
    ts = T.transfer_set("caltech101", _caltech_tree(tmp_path, per_class=(9, 6, 12)))
    _, te = ts.split(1, 0)
    y = ts.labels.numpy()[te]
    assert len(set(np.bincount(y))) > 1                      # unbalanced
    pred = np.where(np.arange(len(y)) % 3 == 0, (y + 1) % 3, y)
    rec = {"shots": 1, "draw": 0, "seed": 0, "predictions": pred.tolist()}
    assert _scores(rec, ts)[1].mean() == pytest.approx(T.mean_per_class_accuracy(y, pred))
    # Caltech draws its test images per draw: one bootstrap over one test set refuses two draws
    other = {**rec, "draw": 1, "predictions": [0] * len(ts.split(1, 1)[1])}
    with pytest.raises(ValueError, match="different test sets"):
        T.bootstrap([rec, other], ts, by=("shots",))


# ---------------------------------------------------------------- probes on several checkpoints
def test_probe_takes_several_checkpoints_into_one_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    root = _caltech_tree(tmp_path / "data")
    out = tmp_path / "p"
    common = ["probe", "--dataset", "caltech101", "--data-root", root, "--layers", "conv5,fc7", "--classifiers",
              "softmax", "--shots", "2", "--draws", "2", "--out", out, "--no-progress"]
    rc, text, err = _cli(capsys, *common, "--checkpoint", "zfnet-mini", "alexnet-mini", "--predictions")
    assert rc == 0, err
    recs = json.loads((out / "results.json").read_text())
    shas = {r["checkpoint"]: r["checkpoint_sha256"] for r in recs}
    assert sorted(shas) == ["alexnet-mini", "zfnet-mini"] and len(set(shas.values())) == 2
    assert len(recs) == 2 * 2 * 2 and all(len(r["predictions"]) == r["n_test"] for r in recs)
    assert "± " in text and "over the 2 checkpoints" in text
    before = (out / "results.json").read_text()
    rc, text, _ = _cli(capsys, *common, "--checkpoint", "alexnet-mini", "zfnet-mini", "--predictions")
    assert rc == 0 and text.count("4 of 4 records already") == 2 and (out / "results.json").read_text() == before
    # one checkpoint into the file of several: refused, naming --force
    rc, _, err = _cli(capsys, *common, "--checkpoint", "zfnet-mini")
    assert rc == 2 and "another checkpoint" in err and "--force" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(capsys, *common, "--checkpoint", "zfnet-mini", "zfnet-mini", "--force")
    assert rc == 0   # the same name twice is one checkpoint
    from zfbook.checkpoint import data_dir
    before = (out / "results.json").read_text()
    rc, _, err = _cli(capsys, *common, "--checkpoint", "zfnet-mini", data_dir() / "zfnet-mini.pt", "--force")
    assert rc == 2 and "names one checkpoint twice" in err and (out / "results.json").read_text() == before


def test_draws_with_the_same_training_images_share_one_fit(parts, model, tmp_path, monkeypatch):
    """At the most shots a class has (3 here, 60 in the transfer families) every draw takes all
    of each class's images: one deterministic fit serves them all; at fewer shots each draw
    is fitted."""
    m, sha, _ = model
    real, calls = T.frozen_arm, []
    monkeypatch.setattr(T, "frozen_arm", lambda *a, **k: calls.append(1) or real(*a, **k))
    recs = T.run_transfer(parts, m, sha, arms=("frozen",), shots=(1, 3), draws=3, out=tmp_path / "o", progress=False,
                          log=None)
    assert len(calls) == 3 + 1 and len(recs) == 6
    most = [r for r in recs if r["shots"] == 3]
    assert all(r["predictions"] == most[0]["predictions"] and r["seconds"] == most[0]["seconds"] for r in most)
    assert len({json.dumps(r["predictions"]) for r in recs if r["shots"] == 1}) == 3


def test_ctrl_c_while_choosing_says_what_was_written(parts, tmp_path, capsys, monkeypatch):
    real, calls = T.frozen_cv_arm, []

    def then_ctrl_c(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "frozen_cv_arm", then_ctrl_c)
    out = tmp_path / "o"
    argv = ["transfer", "--checkpoint", "zfnet-mini", "--dataset", "parts-transfer", "--arms", "frozen", "--shots", "2",
            "--draws", "2", "--choose-recipes", "--out", out, "--no-progress"]
    # the two candidates' validation fits; the test record of draw 0 reads the chosen one's fit
    # again (the same training images and recipe); draw 1's fit is interrupted
    rc, _, err = _cli(capsys, *argv)
    assert rc == 130 and err.strip() == (f"interrupted; 1 new record written to {out / 'results.json'} (it holds 1) "
                                         f"and 2 validation records written to {out / 'validation.json'}; "
                                         "the same command continues with the rest")
    calls.clear()
    rc, text, err = _cli(capsys, *argv)      # started again: only draw 1's fit is left
    assert rc == 0, err
    assert "2 of 2 validation records already" in text and "1 of 2 records already" in text and len(calls) == 1
    val = json.loads((out / "validation.json").read_text())
    first = json.loads((out / "results.json").read_text())[0]
    chosen = next(v for v in val if v["candidate"] == first["chosen"]["candidate"])
    assert (first["C"], first["cv_top1"], first["seconds"]) == (chosen["C"], chosen["cv_top1"], chosen["seconds"])


def test_refit_fits_the_cheap_records_again_and_finds_a_changed_one(parts, model, tmp_path, monkeypatch):
    """transfer.refit: every frozen and baseline record, fitted again from its recipe, gives
    its predictions again; a record whose predictions were altered does not; a trained arm's
    record and another checkpoint's are refused."""
    m, sha, _ = model
    recs = T.run_transfer(parts, m, sha, arms=("frozen", "scratch", "pixels"), shots=(1, 2), draws=2,
                          train_draws=1, out=tmp_path / "o", recipes=_tiny(monkeypatch), progress=False, log=None,
                          choose=True, grids=TINY_GRIDS)
    cheap = [r for r in recs if r["arm"] != "scratch"]
    assert len(cheap) == 8 and T.refit(cheap, parts, m, sha) == [True] * 8
    changed = json.loads(json.dumps(cheap[0]))
    changed["predictions"][0] = (changed["predictions"][0] + 1) % 10
    assert T.refit([changed], parts, m, sha) == [False]
    with pytest.raises(ValueError, match="not 'scratch'"):
        T.refit([r for r in recs if r["arm"] == "scratch"], parts, m, sha)
    with pytest.raises(ValueError, match="cannot be refitted"):
        T.refit(cheap[:1], parts, m, "0" * 64)
