"""Transfer (zfbook.transfer, Tables 4-5, Fig. 9): features, cache, draws, arms, records, CLI.

The Caltech tests run on a tiny tree in Caltech-101/256's layout, built here; the slow tests
re-run shipped records (data/results/transfer.json) and compare them bit for bit.
"""
import math
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zfbook.transfer as T
from zfbook.checkpoint import FORMAT, save_atomic
from zfbook.cli import main
from zfbook.experiments import cpu_kind
from zfbook.models import build

#: how far (points of top-1) a shipped record may be from its re-run on another kind of CPU
CLOSE_POINTS = 3.0

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "results" / "transfer.json"
COLOURS = {"ant": (200, 40, 40), "bee": (40, 180, 40), "cup": (40, 40, 200)}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The feature cache in a temporary folder."""
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _caltech_tree(root: Path, kind="caltech101", per_class=(7, 6, 8)):
    """Noisy solid-colour JPEGs, one colour per class, in Caltech's folder layout."""
    rng = np.random.default_rng(0)
    if kind == "caltech101":
        cats = root / "caltech101" / "101_ObjectCategories"
        names = {c: c for c in COLOURS}
        (cats / "BACKGROUND_Google").mkdir(parents=True)
        Image.new("RGB", (40, 30), (90, 90, 90)).save(cats / "BACKGROUND_Google" / "image_0001.jpg")
    else:
        cats = root / "caltech256" / "256_ObjectCategories"
        names = {c: f"{i + 1:03d}.{c}" for i, c in enumerate(COLOURS)}
        names["clutter"] = "257.clutter"
    for (c, folder), n in zip(names.items(), per_class + (3,)):
        (cats / folder).mkdir(parents=True)
        base = np.array(COLOURS.get(c, (128, 128, 128)))
        for i in range(n):
            pix = np.clip(base + rng.normal(0, 10, (30, 40, 3)), 0, 255).astype(np.uint8)
            stem = f"image_{i + 1:04d}" if kind == "caltech101" else f"{folder[:3]}_{i + 1:04d}"
            Image.fromarray(pix).save(cats / folder / f"{stem}.jpg")
    return root


@pytest.fixture(scope="module")
def model():
    return T.resolve_checkpoint("zfnet-mini")


# ---------------------------------------------------------------- features
def _block_max(a: np.ndarray, grid: int) -> np.ndarray:
    """Independent max-pool to grid×grid for sides divisible by grid (numpy reshape)."""
    n, c, h, w = a.shape
    return a.reshape(n, c, grid, h // grid, grid, w // grid).max(axis=(3, 5)).reshape(n, -1)


def test_features_equal_an_independent_forward(model):
    m = model[0]
    x = torch.randint(0, 256, (5, 3, 128, 128), dtype=torch.uint8)
    f = T.features(m, x, T.LAYERS, batch_size=2, progress=False)
    with torch.no_grad():
        a = m.preprocess.center(x)
        outs = {}
        for name, mod in m.features.named_children():   # the layers by hand, top to bottom
            a = mod(a)
            if name.startswith("relu"):
                outs["conv" + name[4:]] = a.clone()
        a = a.flatten(1)
        for name, mod in m.classifier.named_children():
            a = mod(a)
            if name in ("relu6", "relu7"):
                outs["fc" + name[4:]] = a.clone()
    assert outs["conv1"].shape[-1] == 54 and outs["conv2"].shape[-1] == 12
    for layer in ("conv1", "conv2"):
        np.testing.assert_allclose(f[layer].numpy(), _block_max(outs[layer].numpy(), 6), rtol=1e-5, atol=1e-5)
    for layer in ("conv3", "conv4", "conv5", "fc6", "fc7"):   # 6x6 or dense already: flattened as they are
        np.testing.assert_allclose(f[layer].numpy(), outs[layer].flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    raw = T.features(m, x, ["conv2"], pooling="none", progress=False)["conv2"]
    np.testing.assert_allclose(raw.numpy(), outs["conv2"].flatten(1).numpy(), rtol=1e-5, atol=1e-5)
    assert not m.training


def test_features_refuse_unknown_layer_and_pooling(model):
    x = torch.zeros(1, 3, 128, 128, dtype=torch.uint8)
    with pytest.raises(ValueError, match="valid layers are: conv1"):
        T.features(model[0], x, ["conv9"], progress=False)
    with pytest.raises(ValueError, match="valid poolings are: max, none"):
        T.features(model[0], x, ["conv1"], pooling="mean", progress=False)


def test_cache_is_keyed_and_reused(model, cache, monkeypatch):
    m, sha, _ = model
    x = torch.randint(0, 256, (4, 3, 128, 128), dtype=torch.uint8)
    first = T.cached_features(m, sha, "split-a", x, ["conv5", "fc7"], progress=False)
    assert T.feature_cache_path(sha, "split-a", "fc7", "max").is_file()
    calls = []
    real = T.features
    monkeypatch.setattr(T.sets, "features", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    again = T.cached_features(m, sha, "split-a", x, ["fc7", "conv5"], progress=False)
    assert calls == []                                   # from disk, no forward pass
    for layer in ("conv5", "fc7"):
        assert torch.equal(first[layer], again[layer])
    T.cached_features(m, sha, "split-a", x, ["conv5", "fc6", "fc7", "conv1"], progress=False)
    assert calls == [["fc6", "conv1"]]                   # only the missing layers, in one pass
    T.cached_features(m, sha, "split-b", x, ["fc7"], progress=False)
    T.cached_features(m, "0" * 64, "split-a", x, ["fc7"], progress=False)
    T.cached_features(m, sha, "split-a", x, ["conv5"], pooling="none", progress=False)
    assert calls[1:] == [["fc7"], ["fc7"], ["conv5"]]    # split, checkpoint and pooling are in the key
    T.feature_cache_path(sha, "split-a", "fc7", "max").write_bytes(b"damaged")
    fixed = T.cached_features(m, sha, "split-a", x, ["fc7"], progress=False)
    assert calls[-1] == ["fc7"] and torch.equal(fixed["fc7"], first["fc7"])


# ---------------------------------------------------------------- draws
def test_embedded_draws_are_nested_disjoint_and_balanced():
    ts = T.transfer_set("embedded-transfer")
    assert ts.max_shots == 60 and len(ts.classes) == 10
    y = ts.labels.numpy()
    prev = None
    for k in (1, 2, 5, 60):
        tr, te = ts.split(k, draw=3)
        assert np.bincount(y[tr], minlength=10).tolist() == [k] * 10
        assert np.all(tr < 600) and np.all(te >= 600) and len(te) == 400
        if prev is not None:
            assert set(prev) <= set(tr)                  # nested within a draw
        prev = tr
    a, b = ts.split(5, 0)[0], ts.split(5, 1)[0]
    assert not np.array_equal(a, b)                      # draws differ
    assert np.array_equal(a, ts.split(5, 0)[0])          # and are reproducible
    assert not np.array_equal(a, ts.split(5, 0, seed=1)[0])
    with pytest.raises(ValueError, match="shots per class are 1…60"):
        ts.split(61, 0)


def test_caltech_protocol_on_a_fixture_tree(tmp_path):
    root = _caltech_tree(tmp_path)
    ts = T.transfer_set("caltech101", root)
    assert ts.classes == ["ant", "bee", "cup"] and ts.test is None
    assert ts.max_shots == 5                              # the smallest class has 6 images
    y = ts.labels.numpy()
    tests = []
    for k in (1, 3, 5):
        tr, te = ts.split(k, draw=0)
        assert not set(tr) & set(te)
        assert np.bincount(y[tr]).tolist() == [k] * 3
        assert np.bincount(y[te]).tolist() == [2, 1, 3]   # the rest after 5 shots, up to 50
        tests.append(te)
    assert all(np.array_equal(tests[0], t) for t in tests)  # a draw's test set is the same for every shots
    with pytest.raises(ValueError, match=r"1…5 .*'bee', has 6 training images and keeps the rest for test"):
        ts.check_shots([6])
    x = ts.images(ts.split(1, 0)[0])
    assert x.dtype == torch.uint8 and x.shape == (3, 3, 128, 128)


def test_caltech256_leaves_clutter_out(tmp_path):
    root = _caltech_tree(tmp_path, "caltech256")
    ts = T.transfer_set("caltech256", root)
    assert ts.classes == ["ant", "bee", "cup"]
    assert (ts.labels == -1).sum() == 3
    tr, te = ts.split(2, 1)
    assert (ts.labels[tr] >= 0).all() and (ts.labels[te] >= 0).all()


def test_missing_dataset_and_unknown_dataset(tmp_path):
    from zfbook.data.real import DatasetNotFound
    with pytest.raises(DatasetNotFound, match="caltech101 not found"):
        T.transfer_set("caltech101", tmp_path / "nothing")
    with pytest.raises(ValueError, match="valid datasets are: embedded-transfer, embedded-main, caltech101"):
        T.transfer_set("cifar100", tmp_path)
    with pytest.raises(ValueError, match="needs --data-root"):
        T.transfer_set("caltech256", "")


# ---------------------------------------------------------------- CLI on the fixture tree
def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_transfer_and_probe_on_caltech_fixture(tmp_path, cache, capsys, monkeypatch):
    root = _caltech_tree(tmp_path / "data")
    out = tmp_path / "run"
    common = ["--checkpoint", "zfnet-mini", "--dataset", "caltech101", "--data-root", str(root),
              "--draws", "2", "--out", str(out), "--no-progress"]
    # tiny recipes so that the test trains for one short epoch
    monkeypatch.setitem(T.SCRATCH, "epoch_images", 12)
    monkeypatch.setitem(T.FINETUNE, "epoch_images", 12)
    rc, text, err = _cli(capsys, "transfer", *common, "--arms", "frozen,scratch,finetune", "--shots", "1,3",
                         "--train-draws", "1", "--scratch-epochs", "1", "--finetune-epochs", "1")
    assert rc == 0, err
    recs = json.loads((out / "results.json").read_text())
    keys = sorted((r["arm"], r["shots"], r["draw"]) for r in recs)
    assert keys == sorted([("frozen", k, d) for k in (1, 3) for d in (0, 1)]
                          + [(a, k, 0) for a in ("scratch", "finetune") for k in (1, 3)])
    for r in recs:
        assert 0 <= r["top1"] <= 100 and r["n_train"] == 3 * r["shots"] and r["n_test"] == 6
        assert r["dataset"] == "caltech101" and r["checkpoint"] == "zfnet-mini" and r["seed"] == 0
        assert len(r["checkpoint_sha256"]) == 64 and r["command"].startswith("python -m zfbook transfer")
        assert len(r["predictions"]) == 6
    # coloured blobs are easy: the frozen softmax on fc7 tells them apart with 3 shots (chance: 33%)
    assert np.mean([r["top1"] for r in recs if r["arm"] == "frozen" and r["shots"] == 3]) > 50

    # started again: nothing to do, nothing changes
    before = (out / "results.json").read_text()
    monkeypatch.setattr(T, "frozen_arm", lambda *a, **k: pytest.fail("re-ran a record it had"))
    monkeypatch.setattr(T, "scratch_arm", lambda *a, **k: pytest.fail("re-ran a record it had"))
    rc, text, _ = _cli(capsys, "transfer", *common, "--arms", "frozen,scratch", "--shots", "1,3",
                       "--train-draws", "1", "--scratch-epochs", "1")
    assert rc == 0 and "6 of 6 records already" in text and (out / "results.json").read_text() == before
    # another seed in the same folder is refused, naming --force
    rc, _, err = _cli(capsys, "transfer", *common, "--arms", "frozen", "--shots", "1", "--seed", "1")
    assert rc == 2 and "--force" in err and len(err.strip().splitlines()) == 1

    pout = tmp_path / "probe"
    rc, text, err = _cli(capsys, "probe", *[a if a != str(out) else str(pout) for a in common],
                         "--layers", "conv5,fc7", "--shots", "2")
    assert rc == 0, err
    precs = json.loads((pout / "results.json").read_text())
    assert sorted((r["layer"], r["classifier"], r["draw"]) for r in precs) == sorted(
        (l, c, d) for l in ("conv5", "fc7") for c in ("svm", "softmax") for d in (0, 1))
    assert all(r["features"] == (2304 if r["layer"] == "conv5" else 1024) for r in precs)


@pytest.mark.parametrize("argv, message", [
    (["transfer", "--arms", "frozen,warm"], "unknown arm 'warm'; valid arms are: frozen, scratch, finetune"),
    (["probe", "--layers", "conv2,conv9"], "unknown layer 'conv9'; valid layers are: conv1, conv2, conv3"),
    (["probe", "--classifiers", "knn"], "valid classifiers are: svm, softmax"),
    (["transfer", "--shots", "5,61"], "shots per class are 1…60"),
    (["transfer", "--shots", "five"], "shots are ints separated by commas"),
    (["transfer", "--dataset", "cifar100"], "valid datasets are: embedded-transfer"),
    (["probe", "--pooling", "mean"], "valid poolings are: max, none"),
])
def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys, argv, message):
    rc, _, err = _cli(capsys, *argv[:1], "--checkpoint", "zfnet-mini", "--out", str(tmp_path / "o"), *argv[1:])
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_refuses_bad_checkpoints_and_missing_data(tmp_path, capsys):
    rc, _, err = _cli(capsys, "transfer", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "checkpoint not found" in err and "zfnet-mini" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc, _, err = _cli(capsys, "probe", "--checkpoint", str(bad), "--out", str(tmp_path / "o"))
    assert rc == 2 and "bad.pt" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(capsys, "transfer", "--checkpoint", "zfnet-mini", "--dataset", "caltech256",
                      "--data-root", str(tmp_path / "nocal"), "--out", str(tmp_path / "o"))
    assert rc == 2 and "caltech256 not found" in err and "256_ObjectCategories" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_checkpoint_path_works_like_a_name(tmp_path, cache):
    torch.manual_seed(0)
    m = build("zfnet-mini", 12)
    ckpt = {"format": FORMAT, "preset": "zfnet-mini", "num_classes": 12, "classes": [],
            "model": m.state_dict(), "mean": torch.full((3, 128, 128), 120.0)}
    save_atomic(ckpt, tmp_path / "random.pt")
    model, sha, name = T.resolve_checkpoint(tmp_path / "random.pt")
    from zfbook.checkpoint import sha256
    assert sha == sha256(tmp_path / "random.pt") and name == str(tmp_path / "random.pt")
    assert torch.equal(model.features.conv1.weight, m.features.conv1.weight)


# ---------------------------------------------------------------- the shipped records
def _shipped():
    if not SHIPPED.is_file():
        pytest.skip("data/results/transfer.json is not shipped yet")
    return json.loads(SHIPPED.read_text())


def _close_on_another_cpu(top1: float, rec: dict, what) -> None:
    """A refit that is not the record's float: allowed only on another kind of CPU than the
    record's (records made before 2026-12-02 do not name theirs), whose kernels add in
    another order, and then within CLOSE_POINTS of the record."""
    assert rec.get("cpu") != cpu_kind(), ("same kind of CPU, other bits", what)
    assert abs(top1 - rec["top1"]) <= CLOSE_POINTS, (top1, rec["top1"], what)


@pytest.mark.slow
def test_shipped_scratch_record_reproduces_bit_for_bit():
    rec = next(r for r in _shipped() if r["arm"] == "scratch" and r["shots"] == 1 and r["draw"] == 0)
    m, sha, _ = T.resolve_checkpoint(rec["checkpoint"])
    assert sha == rec["checkpoint_sha256"]
    ts = T.transfer_set(rec["dataset"])
    tr, te = ts.split(rec["shots"], rec["draw"], rec["seed"])
    recipe = dict(rec["recipe"])  # scratch_schedule turns it into epochs and anneal epochs
    # the thread count changes the bits of a scratch run (with the earlier 20-epoch recipe, 1
    # thread ended this run at a training loss of 0.0002 and 2 threads at 0.4733): use the record's
    threads = torch.get_num_threads()
    torch.set_num_threads(rec.get("threads", 2))
    try:
        pred, loss = T.scratch_arm(m.preset.name, ts.images(tr), ts.labels[tr], ts.classes,
                                   ts.images(te), seed=rec["run_seed"], recipe=recipe)
    finally:
        torch.set_num_threads(threads)
    top1 = T.mean_per_class_accuracy(ts.labels[te].numpy(), pred)
    if (loss, pred.tolist(), top1) != (rec["train_loss"], rec["predictions"], rec["top1"]):
        # Seen on an AVX-512/AMX Xeon: training loss 0.0423 against the recorded 0.1110.
        _close_on_another_cpu(top1, rec, "scratch")


@pytest.mark.slow
def test_shipped_frozen_records_reproduce():
    recs = [r for r in _shipped() if r["arm"] == "frozen" and r["draw"] == 0]
    m, sha, _ = T.resolve_checkpoint(recs[0]["checkpoint"])
    ts = T.transfer_set(recs[0]["dataset"])
    f = ts.features(m, sha, ["fc7"], progress=False)["fc7"].numpy()
    y = ts.labels.numpy()
    for rec in recs:
        tr, te = ts.split(rec["shots"], rec["draw"], rec["seed"])
        res = T.frozen_arm(f[tr], y[tr], f[te], y[te], rec["seed"])
        if res.top1 != rec["top1"]:
            # seen on an AMD EPYC (AVX-512): 63.5% against the recorded 63.0% at 30 shots
            _close_on_another_cpu(res.top1, rec, rec["shots"])


@pytest.mark.slow
def test_shipped_probe_records_reproduce():
    """Draw 0 at 60 shots on the new classes, every layer and both classifiers: the probes the
    chapter's Table 7 rests on give the shipped accuracies again (scikit-learn is deterministic)."""
    path = SHIPPED.with_name("probes.json")
    if not path.is_file():
        pytest.skip("data/results/probes.json is not shipped yet")
    recs = [r for r in json.loads(path.read_text())
            if r["dataset"] == "embedded-transfer" and r["draw"] == 0 and r["shots"] == 60]
    assert len(recs) == len(T.LAYERS) * 2
    m, sha, _ = T.resolve_checkpoint(recs[0]["checkpoint"])
    assert sha == recs[0]["checkpoint_sha256"]
    ts = T.transfer_set(recs[0]["dataset"])
    feats = ts.features(m, sha, T.LAYERS, progress=False)
    y = ts.labels.numpy()
    for rec in recs:
        tr, te = ts.split(rec["shots"], rec["draw"], rec["seed"])
        x = feats[rec["layer"]].numpy()
        res = T.probe(rec["classifier"], x[tr], y[tr], x[te], y[te], rec["seed"])
        if res.top1 != rec["top1"]:
            _close_on_another_cpu(res.top1, rec, (rec["layer"], rec["classifier"]))


def test_low_shot_plot_draws_the_single_runs_of_another_recipe():
    from zfbook.plot.transfer import low_shot
    recs = [{"arm": a, "shots": k, "draw": d, "top1": 10.0 + k + d}
            for a in ("frozen", "scratch") for k in (1, 5) for d in (0, 1)]
    one = {"arm": "scratch", "shots": 5, "draw": 0, "top1": 80.0}
    ax = low_shot(recs, arms=("frozen", "scratch"), extra=[(one, "longer")]).axes[0]
    marks = [l for l in ax.get_lines() if l.get_label() == "longer"]
    assert len(marks) == 1 and list(marks[0].get_ydata()) == [80.0]
    assert "longer" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_scratch_schedule_gives_every_shot_count_its_passes():
    per_class = {k: 10 * k for k in T.SHOTS}         # the transfer family's 10 classes
    for k, n in per_class.items():
        epochs, anneal = T.scratch_schedule(T.SCRATCH, n)
        images = epochs * n * math.ceil(T.SCRATCH["epoch_images"] / n)
        assert images >= T.SCRATCH["passes"] * n    # at least the stated passes over the images
        assert epochs >= T.SCRATCH["min_epochs"]
        assert anneal == (round(T.SCRATCH["anneal_at"] * epochs),)
    assert T.scratch_schedule(T.SCRATCH, 600) == (100, (75,))
    assert T.scratch_schedule(T.SCRATCH, 10) == (4, (3,))
    # a recipe that names its epochs (--scratch-epochs, older records) keeps them
    assert T.scratch_schedule({**T.SCRATCH, "epochs": 7, "anneal": [5]}, 600) == (7, (5,))


def test_jobs_give_the_records_of_one_process_with_as_many_threads(tmp_path, cache, capsys, monkeypatch):
    """--jobs 2 trains the scratch and finetune runs in two processes; each record is the
    one a single process makes with the same threads (the CPU bits depend on them)."""
    from zfbook.parallel import threads_per_job
    root = _caltech_tree(tmp_path / "data")
    monkeypatch.setitem(T.SCRATCH, "epoch_images", 12)
    monkeypatch.setitem(T.FINETUNE, "epoch_images", 12)
    args = ["--checkpoint", "zfnet-mini", "--dataset", "caltech101", "--data-root", str(root),
            "--arms", "finetune,scratch", "--shots", "1,3", "--draws", "1", "--no-progress",
            "--scratch-epochs", "2", "--finetune-epochs", "1"]
    rc, _, err = _cli(capsys, "transfer", *args, "--jobs", "2", "--out", str(tmp_path / "two"))
    assert rc == 0, err
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_job(2))
    try:
        rc, _, err = _cli(capsys, "transfer", *args, "--out", str(tmp_path / "one"))
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    two, one = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("two", "one"))
    # the same records in the same (plan) order, and the same numbers
    assert [(r["arm"], r["shots"], r["draw"]) for r in two] == [(r["arm"], r["shots"], r["draw"]) for r in one]
    for a, b in zip(two, one):
        assert a["threads"] == b["threads"] == threads_per_job(2)
        assert (a["predictions"], a["train_loss"], a["top1"]) == (b["predictions"], b["train_loss"], b["top1"])
    rc, _, err = _cli(capsys, "transfer", *args, "--jobs", "0", "--out", str(tmp_path / "x"))
    assert rc == 2 and "--jobs" in err and len(err.strip().splitlines()) == 1
