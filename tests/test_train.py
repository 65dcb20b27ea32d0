"""The training loop, checkpoints, resume and the CLI (issue #2 items 4, 5, 7)."""
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

import zfbook
from zfbook import checkpoint, train
from zfbook.__main__ import main

PY = sys.executable


def tiny_data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 128, 128), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 3
    images[labels == 0, 0] = 250  # something learnable
    d = SimpleNamespace(images=images, labels=labels, classes=["a", "b", "c"])
    return d, SimpleNamespace(images=images[:12], labels=labels[:12], classes=d.classes)


def cfg(**kw):
    base = dict(preset="zfnet-mini", epochs=3, batch_size=16, lr=0.01, device="cpu", snapshots=(1, 3))
    base.update(kw)
    return train.Config(**base)


def test_run_writes_checkpoint_history_snapshots(tmp_path):
    hist = train.train(cfg(), tmp_path, data=tiny_data(), progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    keys = {"train_loss", "train_top1", "train_top5", "val_loss", "val_top1", "val_top5", "lr", "seconds"}
    assert keys <= set(hist[0])
    assert json.loads((tmp_path / "history.json").read_text()) == hist
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["epoch1.pt", "epoch3.pt"]
    ck = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert {"optimizer", "scheduler", "rng", "mean", "scaler"} <= set(ck)
    assert ck["mean"].shape == (3, 128, 128)
    model = checkpoint.model_from_checkpoint(ck)
    # filter renormalisation held after every step
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.weight.pow(2).mean((1, 2, 3)).sqrt().max() <= 0.1 + 1e-5


def test_resume_continues_exactly(tmp_path):
    data = tiny_data()
    train.train(cfg(), tmp_path / "a", data=data, progress=False)
    train.train(cfg(epochs=1), tmp_path / "b", data=data, progress=False)
    hist = train.train(cfg(), tmp_path / "b", data=data, progress=False, resume=True)
    a = checkpoint.load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = checkpoint.load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for k in a:
        assert torch.equal(a[k], b[k]), k


KILL_SCRIPT = r"""
import sys, pathlib
sys.path.insert(0, {tests!r})
from test_train import tiny_data, cfg
from zfbook import train

marker = pathlib.Path(sys.argv[1]) / "in-epoch-2"
plain = train.tqdm


class Marked:  # the progress bar, which also marks step 5 of epoch 2 on disk
    def __init__(self, it, *a, **k):
        self.bar, self.desc = plain(it, *a, **k), k.get("desc", "")

    def __iter__(self):
        for i, batch in enumerate(self.bar):
            if self.desc.startswith("epoch 2/") and i == 5:
                marker.touch()
            yield batch

    def __getattr__(self, name):
        return getattr(self.bar, name)


train.tqdm = Marked
train.train(cfg(epochs=3), sys.argv[1], data=tiny_data(n=320), progress=False, resume=True)
"""


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    """A run killed (SIGKILL) inside epoch 2 and resumed ends identical to an uninterrupted one."""
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(__file__)))
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run([PY, str(script), str(ref)], check=True)
    proc = subprocess.Popen([PY, str(script), str(run)])
    deadline = time.time() + 900  # a loaded machine starts Python slowly
    while not (run / "in-epoch-2").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)   # 20 steps per epoch: this lands inside epoch 2
    proc.wait()
    ck = checkpoint.load_checkpoint(run / "last.pt")
    assert ck["epoch"] == 1, "the kill should land inside epoch 2"
    subprocess.run([PY, str(script), str(run)], check=True)
    a = checkpoint.load_checkpoint(ref / "last.pt")
    b = checkpoint.load_checkpoint(run / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in ("train_loss", "val_top1"):
        assert [h[k] for h in a["history"]] == [h[k] for h in b["history"]]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    data = tiny_data()
    train.train(cfg(epochs=1), tmp_path, data=data, progress=False)
    good = (tmp_path / "last.pt").read_bytes()
    real = train.F.cross_entropy
    calls = []

    def diverging(*a, **k):  # the loss blows up on the third step of epoch 2
        calls.append(1)
        loss = real(*a, **k)
        return loss * float("inf") if len(calls) >= 3 else loss
    monkeypatch.setattr(train.F, "cross_entropy", diverging)
    with pytest.raises(train.NonFiniteLoss, match="last good checkpoint .epoch 1."):
        train.train(cfg(epochs=3, check_every=1), tmp_path, data=data, progress=False, resume=True)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_devices():
    assert train.resolve_device("cpu").type == "cpu"
    assert train.resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="auto, cpu, cuda, mps"):
        train.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train.resolve_device("cuda")


def test_amp_and_channels_last_paths_run_on_cpu_autocast():
    """The CUDA step uses autocast + GradScaler + channels_last; bfloat16 autocast on the CPU
    exercises the same code shape where no GPU exists."""
    model = zfbook.build("zfnet-mini", 3).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 112, 112).contiguous(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))
    scaler.scale(loss).backward()
    assert torch.isfinite(loss) and model.features.conv1.weight.grad is not None


def test_config_rejects_bad_names():
    with pytest.raises(ValueError, match="zfnet-mini"):
        train.Config(preset="vgg")
    with pytest.raises(ValueError, match="embedded"):
        train.Config(dataset="mnist")


# -------------------------------------------------------------- checkpoints & CLI
def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.pt"
    checkpoint.save_atomic({"a": torch.zeros(2)}, target)

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.save_atomic({"a": torch.ones(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]


def test_load_errors_are_one_line_and_safe(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="not found"):
        checkpoint.load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(checkpoint.CheckpointError, match="not a zfbook checkpoint"):
        checkpoint.load_checkpoint(bad)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    evil = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, evil)
    with pytest.raises(checkpoint.CheckpointError, match="holds Python objects other than tensors"):
        checkpoint.load_checkpoint(evil)


def test_architecture_mismatch(tmp_path):
    train.train(cfg(epochs=1), tmp_path, data=tiny_data(), progress=False)
    ck = checkpoint.load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(checkpoint.CheckpointError, match="'zfnet-mini'.*'alexnet-mini'"):
        checkpoint.load_state(zfbook.build("alexnet-mini", 3), ck)
    with pytest.raises(checkpoint.CheckpointError, match="resume"):
        train.train(cfg(preset="alexnet-mini", epochs=2), tmp_path, data=tiny_data(), progress=False, resume=True)


def test_cli_help_and_errors(tmp_path, capsys):
    r = subprocess.run([PY, "-m", "zfbook", "train", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--resume" in r.stdout and "--preset" in r.stdout
    r = subprocess.run([PY, "-m", "zfbook", "evaluate", "--checkpoint", str(tmp_path / "nope.pt")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "nope.pt" in r.stderr
    assert main(["train", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "zfnet-mini" in capsys.readouterr().err
    assert main(["train", "--device", "tpu", "--out", str(tmp_path), "--epochs", "1"]) == 2


def test_trains_on_an_imagefolder_tree_through_the_cli(tmp_path):
    """Real datasets go through zfbook.data.load and a DataLoader; a tiny on-disk tree here."""
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (tmp_path / "tree" / split / c).mkdir(parents=True)
            for i in range(6):
                arr = torch.randint(0, 256, (150, 170, 3), dtype=torch.uint8, generator=g).numpy()
                Image.fromarray(arr).save(tmp_path / "tree" / split / c / f"{i}.png")
    out = tmp_path / "run"
    code = main(["train", "--preset", "zfnet-mini", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                 "--dataset", "imagefolder", "--data-root", str(tmp_path / "tree"), "--workers", "0",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    ck = checkpoint.load_checkpoint(out / "last.pt")
    assert ck["classes"] == ["cat", "dog"] and ck["mean"].shape == (3, 128, 128)
    assert main(["train", "--dataset", "imagefolder", "--out", str(out)]) == 2  # no --data-root


def test_evaluate_reads_the_real_dataset_a_checkpoint_was_trained_on(tmp_path, capsys):
    """A run on an ImageFolder tree is evaluated on that tree's val split, not the embedded set."""
    from PIL import Image
    from zfbook.data.real import load
    g = torch.Generator().manual_seed(1)
    for split in ("train", "val"):
        for c in ("a", "b", "c"):
            (tmp_path / "tree" / split / c).mkdir(parents=True)
            for i in range(4):
                arr = torch.randint(0, 256, (140, 140, 3), dtype=torch.uint8, generator=g).numpy()
                Image.fromarray(arr).save(tmp_path / "tree" / split / c / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--preset", "zfnet-mini", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                 "--dataset", "imagefolder", "--data-root", str(tmp_path / "tree"), "--workers", "0",
                 "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "last.pt"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "imagefolder val split" in text
    model = checkpoint.model_from_checkpoint(checkpoint.load_checkpoint(out / "last.pt"))
    want = train.evaluate(model, load("imagefolder", tmp_path / "tree", "val", size=128), None, model.preprocess)
    assert f"top-1 {want['top1']:.2f}%" in text.splitlines()[1]
    # moved data: --data-root points at it; a wrong root fails with one line, exit 2
    (tmp_path / "tree").rename(tmp_path / "moved")
    assert main(["evaluate", "--checkpoint", str(out / "last.pt"), "--device", "cpu"]) == 2
    assert main(["evaluate", "--checkpoint", str(out / "last.pt"), "--device", "cpu",
                 "--data-root", str(tmp_path / "moved")]) == 0


def test_config_takes_the_presets_recipe_unless_told_otherwise():
    full = train.Config(preset="zfnet")
    assert (full.epochs, full.batch_size, full.lr, full.anneal) == (70, 128, 0.01, ())  # the paper's
    mini = train.Config(preset="zfnet-mini")
    r = train.RECIPES["zfnet-mini"]
    assert (mini.epochs, mini.batch_size, mini.lr, mini.anneal) == (r["epochs"], r["batch_size"], r["lr"],
                                                                     tuple(r["anneal"]))
    mine = train.Config(preset="zfnet-mini", epochs=2, batch_size=8, lr=0.5, anneal=())
    assert (mine.epochs, mine.batch_size, mine.lr, mine.anneal) == (2, 8, 0.5, ())
    assert set(train.RECIPES) == set(zfbook.models.PRESETS)


def test_fixed_anneal_multiplies_the_learning_rate(tmp_path):
    hist = train.train(cfg(lr=0.01, anneal=(1, 2)), tmp_path, data=tiny_data(), progress=False)
    assert [h["lr"] for h in hist] == pytest.approx([0.01, 0.001, 0.0001])


def test_cli_recipe_flags(tmp_path, capsys):
    assert main(["train", "--anneal", "x", "--out", str(tmp_path), "--epochs", "1"]) == 2
    assert "--anneal" in capsys.readouterr().err
    from zfbook.__main__ import _parser
    args = _parser().parse_args(["train", "--out", "o"])
    assert args.epochs is None and args.batch_size is None and args.lr is None  # the recipe decides


def test_shuffled_labels_are_a_seeded_permutation_that_training_uses(tmp_path):
    """--labels shuffled (the sanity chapter's data-randomisation network): the training labels
    are a permutation of themselves, fixed by the seed, the validation labels stay true, and
    a run is not continued with the other kind of labels."""
    import hashlib
    from zfbook.loaders import shuffle_labels
    data, val = tiny_data()
    a, b, c = shuffle_labels(data, 0), shuffle_labels(data, 0), shuffle_labels(data, 1)
    assert torch.equal(a.labels, b.labels) and not torch.equal(a.labels, c.labels)
    assert not torch.equal(a.labels, data.labels) and a.images is data.images
    assert torch.equal(torch.bincount(a.labels), torch.bincount(data.labels))
    assert torch.equal(data.labels, torch.arange(48) % 3)   # the input is not changed

    class Items(torch.utils.data.Dataset):   # a dataset of (image, label) items, as a real one
        labels, classes = data.labels, ["a", "b", "c"]

        def __len__(self):
            return 48

        def __getitem__(self, i):
            return torch.full((1,), float(i)), int(self.labels[i])
    wrapped = shuffle_labels(Items(), 0)
    assert [int(wrapped[i][1]) for i in range(48)] == a.labels.tolist() and wrapped.classes == ["a", "b", "c"]
    assert [float(wrapped[i][0]) for i in range(48)] == list(range(48))   # the images keep their order

    train.train(cfg(epochs=1, labels="shuffled"), tmp_path / "s", data=(data, val), progress=False)
    ck = checkpoint.load_checkpoint(tmp_path / "s" / "last.pt")
    assert ck["config"]["labels"] == "shuffled"
    assert ck["data"]["sha256"] == hashlib.sha256(a.labels.numpy().tobytes()).hexdigest()
    with pytest.raises(Exception, match="labels 'shuffled' in the checkpoint, 'true' now"):
        train.train(cfg(epochs=2), tmp_path / "s", data=(data, val), progress=False, resume=True)
    with pytest.raises(ValueError, match="true, shuffled"):
        cfg(labels="random")


def test_conv1_weight_decay_acts_on_conv1_alone(tmp_path):
    """conv1's own weight decay (the parts world's recipe): one epoch with it differs from
    one without in conv1's weights only; left unset it is weight_decay, in one group as before."""
    from zfbook.train import _param_groups
    data = tiny_data()
    plain = cfg(epochs=1, snapshots=())
    assert plain.conv1_weight_decay == plain.weight_decay
    model = zfbook.models.build("zfnet-mini", 3)
    assert not isinstance(_param_groups(model, plain), list)
    groups = _param_groups(model, cfg(conv1_weight_decay=0.05))
    assert [g["weight_decay"] for g in groups[:1]] == [0.05] and "weight_decay" not in groups[1]
    assert groups[0]["params"][0] is model.features.conv1.weight
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))

    one_step = dict(epochs=1, snapshots=(), batch_size=48)   # one step: nothing downstream differs yet
    train.train(cfg(**one_step), tmp_path / "a", data=data, progress=False)
    train.train(cfg(**one_step, conv1_weight_decay=0.05), tmp_path / "b", data=data, progress=False)
    a = checkpoint.load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    b = checkpoint.load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    differ = sorted(k for k in a if not torch.equal(a[k], b[k]))
    assert differ == ["features.conv1.weight"], differ   # (the bias starts at 0 and is not decayed away from it)


def test_the_parts_world_has_its_own_recipe():
    c = train.Config(preset="zfnet-mini", dataset="parts")
    assert (c.epochs, c.anneal, c.conv1_weight_decay) == (train.PARTS_RECIPE["epochs"], train.PARTS_RECIPE["anneal"],
                                                         train.PARTS_RECIPE["conv1_weight_decay"])
    d = train.Config(preset="zfnet-mini:no-fc7", dataset="parts", epochs=3)   # a Table 3 variant: its preset's
    assert d.epochs == 3 and d.conv1_weight_decay == train.PARTS_RECIPE["conv1_weight_decay"]
    assert train.Config(preset="zfnet-mini").conv1_weight_decay == 5e-4


# -------------------------------------------------------------- the data-randomisation network's options
class Items(torch.utils.data.Dataset):
    """A dataset of (image, label) items, as a real one (module level: picklable). Item i's
    image is the number i, so a view's items say which images it kept."""
    classes = ["a", "b", "c"]

    def __init__(self, labels):
        self.labels = torch.as_tensor(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.full((1,), float(i)), int(self.labels[i])


def first_per_class(labels, n):
    """The independent reference of loaders.per_class: indices, in order, of each class's first n."""
    seen, kept = {}, []
    for i, c in enumerate(labels):
        seen[c] = seen.get(c, 0) + 1
        if seen[c] <= n:
            kept.append(i)
    return kept


def test_per_class_keeps_the_first_n_images_of_each_class_in_order():
    from zfbook.loaders import per_class
    labels = [2, 0, 0, 1, 2, 2, 0, 1, 2, 0, 2]   # class 1 has only two images
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 4, 4).clone()
    masks = torch.arange(len(labels)).view(-1, 1) * torch.ones(1, 5)
    mem = SimpleNamespace(images=images, labels=torch.tensor(labels), masks=masks, classes=["a", "b", "c"])
    for n in (1, 3, 99):
        want = first_per_class(labels, n)
        kept = per_class(mem, n)
        assert kept.images[:, 0, 0, 0].tolist() == want and kept.masks[:, 0].tolist() == want
        assert kept.labels.tolist() == [labels[i] for i in want] and kept.classes == ["a", "b", "c"]
        wrapped = per_class(Items(labels), n)
        assert [int(wrapped[i][0]) for i in range(len(wrapped))] == want
        assert wrapped.labels.tolist() == [labels[i] for i in want] and wrapped.classes == ["a", "b", "c"]
    assert torch.equal(mem.images[:, 0, 0, 0], torch.arange(len(labels), dtype=torch.uint8))  # input unchanged
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"train_per_class \(--train-per-class\) must be an integer ≥ 1"):
            per_class(mem, bad)


def test_views_compose_and_pickle():
    """per_class then shuffle_labels: the kept images, with a permutation of their labels; a
    view of a view wraps the dataset itself; a view survives pickling (DataLoader workers)."""
    import pickle
    from zfbook.loaders import _View, per_class, shuffle_labels
    labels = torch.arange(30) % 3
    both = shuffle_labels(per_class(Items(labels), 4), 7)
    assert type(both) is _View and type(both.dataset) is Items
    want = first_per_class(labels.tolist(), 4)
    assert [int(both[i][0]) for i in range(len(both))] == want
    assert sorted(both.labels.tolist()) == sorted(labels[want].tolist())
    assert both.labels.tolist() != labels[want].tolist()
    # the in-memory path gives the same labels
    mem = SimpleNamespace(images=torch.zeros(30, 3, 2, 2, dtype=torch.uint8), labels=labels, classes=Items.classes)
    assert torch.equal(shuffle_labels(per_class(mem, 4), 7).labels, both.labels)
    back = pickle.loads(pickle.dumps(both))
    assert [(float(back[i][0]), int(back[i][1])) for i in range(len(back))] == \
        [(float(both[i][0]), int(both[i][1])) for i in range(len(both))]
    assert back.classes == Items.classes


def test_train_per_class_trains_on_the_first_n_of_each_class(tmp_path):
    data, val = tiny_data()
    hist = train.train(cfg(epochs=1, train_per_class=5, snapshots=()), tmp_path, data=(data, val), progress=False)
    ck = checkpoint.load_checkpoint(tmp_path / "last.pt")
    assert ck["config"]["train_per_class"] == 5 and ck["data"]["n"] == 15
    assert ck["data"]["sha256"] == __import__("hashlib").sha256(
        data.labels[first_per_class(data.labels.tolist(), 5)].numpy().tobytes()).hexdigest()
    assert torch.allclose(ck["mean"], data.images[:15].double().mean(0).float(), atol=1e-4)  # 5 a class
    assert len(hist) == 1
    with pytest.raises(Exception, match="train_per_class 5 in the checkpoint, None now"):
        train.train(cfg(epochs=2), tmp_path, data=(data, val), progress=False, resume=True)


def built_models(monkeypatch):
    """The models train() builds, and for each the inputs of its training-mode forward passes."""
    built, real = [], zfbook.models.build

    def build(*a, **k):
        model = real(*a, **k)
        model.inputs = []
        model.register_forward_pre_hook(lambda m, args: m.inputs.append(args[0].detach().clone())
                                        if m.training else None)
        built.append(model)
        return model
    monkeypatch.setattr(zfbook.models, "build", build)
    return built


def test_dropout_is_the_models_and_the_checkpoints(tmp_path, monkeypatch):
    built = built_models(monkeypatch)
    data = tiny_data()
    train.train(cfg(epochs=1, dropout=0.2, snapshots=()), tmp_path / "a", data=data, progress=False,
                stop_after_steps=1)
    train.train(cfg(epochs=1, snapshots=()), tmp_path / "b", data=data, progress=False, stop_after_steps=1)
    ps = lambda m: [m.classifier.drop6.p, m.classifier.drop7.p]
    assert ps(built[0]) == [0.2, 0.2] and ps(built[1]) == [0.5, 0.5]   # default: the paper's
    monkeypatch.undo()
    train.train(cfg(epochs=1, dropout=0.0, snapshots=()), tmp_path / "c", data=data, progress=False)
    ck = checkpoint.load_checkpoint(tmp_path / "c" / "last.pt")
    assert ck["config"]["dropout"] == 0.0 and ps(checkpoint.model_from_checkpoint(ck)) == [0.0, 0.0]
    for bad in (1.0, -0.1, float("nan"), "0.5"):
        with pytest.raises(ValueError, match=r"dropout \(--dropout\) must be a finite number ≥ 0 and < 1"):
            cfg(dropout=bad)


def test_no_augment_trains_on_the_centre_crop_every_epoch(tmp_path, monkeypatch):
    """Without augmentation every training input is the image's centre crop, the same in every
    epoch (an independent reference: the mean-subtracted pixels 8…120, scaled by 1/64); with
    it, the inputs are other crops and flips."""
    data, val = tiny_data(n=12)
    mean = (data.images.double().sum(0) / 12).float()
    ref = ((data.images[..., 8:120, 8:120].float() - mean[:, 8:120, 8:120]) * (1 / 64)).flatten(1)

    def nearest(x):   # for each input, the distance to the nearest centre crop, and which
        d = torch.cdist(x.flatten(1).double(), ref.double())
        return d.min(1)
    built = built_models(monkeypatch)
    train.train(cfg(epochs=2, batch_size=12, augment=False, snapshots=()), tmp_path / "off", data=(data, val),
                progress=False)
    train.train(cfg(epochs=2, batch_size=12, snapshots=()), tmp_path / "on", data=(data, val), progress=False)
    off, on = built
    assert len(off.inputs) == len(on.inputs) == 2
    for x in off.inputs:
        dist, which = nearest(x)
        assert dist.max() < 1e-4 and sorted(which.tolist()) == list(range(12))
    assert all(nearest(x)[0].max() > 1 for x in on.inputs)
    assert checkpoint.load_checkpoint(tmp_path / "off" / "last.pt")["config"]["augment"] is False
    with pytest.raises(ValueError, match=r"augment \(--no-augment\) must be True or False"):
        cfg(augment="no")
    with pytest.raises(Exception, match="augment False in the checkpoint, True now"):
        train.train(cfg(epochs=3, batch_size=12), tmp_path / "off", data=(data, val), progress=False, resume=True)


def test_cli_passes_the_new_options_to_the_config(tmp_path, monkeypatch, capsys):
    import zfbook.cli.train as verb
    seen = []
    monkeypatch.setattr(verb, "train", lambda c, out, **k: seen.append(c) or [])
    assert main(["train", "--out", str(tmp_path / "o"), "--dropout", "0.25", "--no-augment",
                 "--train-per-class", "7"]) == 0
    assert (seen[0].dropout, seen[0].augment, seen[0].train_per_class) == (0.25, False, 7)
    assert main(["train", "--out", str(tmp_path / "o")]) == 0
    assert (seen[1].dropout, seen[1].augment, seen[1].train_per_class) == (0.5, True, None)
    for flag, value in (("--dropout", "1"), ("--train-per-class", "0")):
        assert main(["train", "--out", str(tmp_path / "o"), flag, value]) == 2
        assert f"({flag})" in capsys.readouterr().err


def test_shuffled_labels_anneal_and_stop_on_the_training_top1(tmp_path, monkeypatch):
    """On shuffled labels the validation top-1 stays at chance whatever is memorised, so the
    plateau rule (ReduceLROnPlateau) and the stop rule watch the training top-1; on true
    labels they watch the validation top-1, as before."""
    from torch.optim.lr_scheduler import ReduceLROnPlateau
    stepped, real_step = [], ReduceLROnPlateau.step
    monkeypatch.setattr(ReduceLROnPlateau, "step", lambda self, m: stepped.append(m) or real_step(self, m))
    asked, real_plateaued = [], train.plateaued
    monkeypatch.setattr(train, "plateaued", lambda *a: asked.append(a[3]) or real_plateaued(*a))
    data = tiny_data()
    for labels, key in (("shuffled", "train_top1"), ("true", "val_top1")):
        stepped.clear(), asked.clear()
        hist = train.train(cfg(epochs=2, labels=labels, snapshots=(), stop_patience=1, anneal=()),
                           tmp_path / labels, data=data, progress=False)
        assert stepped == [100.0 - h[key] for h in hist]
        assert set(asked) == {key}
    monkeypatch.undo()
    # the stop rule itself: a flat validation top-1 and a climbing training top-1
    h = [{"epoch": e, "lr": 0.01, "val_top1": 33.0, "train_top1": 30.0 + 10 * e} for e in (1, 2, 3, 4)]
    assert train.plateaued(h, (), 2) and train.plateaued(h, (), 2, "val_top1")
    assert not train.plateaued(h, (), 2, train.watched("shuffled"))
    assert train.watched("true") == "val_top1"


def test_resume_without_epochs_keeps_the_runs_own_length(tmp_path):
    """A run of 2 epochs (not the recipe's 20) stopped in epoch 2 and resumed without epochs
    ends after epoch 2, as the run uninterrupted."""
    data = tiny_data()   # 3 steps an epoch
    two = dict(preset="zfnet-mini", batch_size=16, device="cpu", snapshots=())
    train.train(train.Config(**two, epochs=2), tmp_path / "a", data=data, progress=False, stop_after_steps=4)
    assert checkpoint.load_checkpoint(tmp_path / "a" / "last.pt")["epoch"] == 1
    # stop_after_steps bounds a wrong run: 3 steps finish epoch 2, a 4th would start epoch 3
    hist = train.train(train.Config(**two), tmp_path / "a", data=data, progress=False, resume=True,
                       stop_after_steps=4)
    ck = checkpoint.load_checkpoint(tmp_path / "a" / "last.pt")
    assert ck["epoch"] == 2 and ck["config"]["epochs"] == 2 and [h["epoch"] for h in hist] == [1, 2]
    train.train(train.Config(**two, epochs=2), tmp_path / "b", data=data, progress=False)
    b = checkpoint.load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(ck["model"][k], b[k]) for k in b)


def test_resume_with_epochs_grows_the_run_and_keeps_the_rest_of_its_recipe(tmp_path):
    """A given epochs still grows a run: 1 epoch at lr 0.02, resumed with epochs 2 and no lr,
    ends as a 2-epoch run at lr 0.02 (the recipe's 0.01 is not taken, nor the run refused)."""
    data = tiny_data()
    c = train.Config(preset="zfnet-mini", batch_size=16, epochs=1, lr=0.02, device="cpu", snapshots=())
    assert {"epochs", "lr"}.isdisjoint(c._from_recipe) and "anneal" in c._from_recipe
    assert c == train.Config(**{f: getattr(c, f) for f in c.__dataclass_fields__})  # not part of equality
    train.train(c, tmp_path / "a", data=data, progress=False)
    grown = train.Config(preset="zfnet-mini", batch_size=16, epochs=2, device="cpu", snapshots=())
    hist = train.train(grown, tmp_path / "a", data=data, progress=False, resume=True)
    assert [(h["epoch"], h["lr"]) for h in hist] == [(1, 0.02), (2, 0.02)]
    train.train(__import__("dataclasses").replace(c, epochs=2), tmp_path / "b", data=data, progress=False)
    a = checkpoint.load_checkpoint(tmp_path / "a" / "last.pt")
    b = checkpoint.load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["config"]["epochs"] == 2 and all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    assert "_from_recipe" not in a["config"]
