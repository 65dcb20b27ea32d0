"""Careless and hostile input to the command line, the checks that refuse it, and the
defaults: weights that are not finite, export's names and write order, classes that differ
between splits, symlink loops, too many workers, images and ``--k`` too large to allocate,
messages that name their flag or file, torchrun, and every verb run with only its required
flags.

The command-line cases call ``zfbook.cli.main`` in-process (as ``python -m zfbook`` does)
and read what it prints with ``capsys``; only the torchrun cases start processes.
"""
import importlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

import zfbook
from zfbook import checkpoint, train
from zfbook.cli import main
from zfbook.cli.export import check_name

import test_cli_safety as safety
from test_cli_safety import TINY, one_error_line as one_line, run1, tree  # noqa: F401  (fixtures)

TORCHRUN = Path(sys.executable).with_name("torchrun")
REPO = Path(zfbook.__file__).resolve().parent.parent


def cli(capsys, *argv):
    """``python -m zfbook ARGV`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def make_tree(root: Path, classes=("cat", "dog"), val_classes=None, per_class=4):
    """An image folder ``root/{train,val}/<class>/*.png`` (test_cli_safety's, its class
    folders then kept, removed or copied under new names to give ``classes`` and
    ``val_classes``)."""
    safety.make_tree(root, per_class=per_class)
    for split, names in (("train", classes), ("val", classes if val_classes is None else val_classes)):
        for c in ("cat", "dog"):
            if c not in names:
                shutil.move(root / split / c, root / split / f".{c}")
        source = next(p for p in (root / split / "cat", root / split / ".cat") if p.exists())
        for c in names:
            if not (root / split / c).exists():
                shutil.copytree(source, root / split / c)
        for c in ("cat", "dog"):
            shutil.rmtree(root / split / f".{c}", ignore_errors=True)
    return root


@pytest.fixture(scope="module")
def last(run1):
    """test_cli_safety's finished 1-epoch run on its tiny tree: its last.pt."""
    return run1 / "last.pt"


def files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ 4. weights that are not finite
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused_on_load_naming_the_file(tmp_path, last, capsys,
                                                                          monkeypatch, bad):
    ckpt = torch.load(last, weights_only=True)
    ckpt["model"]["features.conv2.weight"][0, 0, 0, 0] = bad
    path = tmp_path / "diverged.pt"
    torch.save(ckpt, path)
    with pytest.raises(checkpoint.CheckpointError, match="diverged.pt holds weights that are not finite"):
        zfbook.load_checkpoint(path)
    code, out, err = cli(capsys, "evaluate", "--checkpoint", path, "--device", "cpu")
    line = one_line(err)
    assert code == 2 and str(path) in line and "features.conv2.weight" in line and not out
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("ZFBOOK_DATA", str(data))
    code, _, err = cli(capsys, "export", "--checkpoint", path, "--name", "diverged.pt")
    assert code == 2 and str(path) in one_line(err)
    assert list(data.iterdir()) == []  # no file, no manifest


def test_export_refuses_weights_beyond_float16(tmp_path, last, capsys, monkeypatch):
    ckpt = torch.load(last, weights_only=True)
    ckpt["model"]["classifier.fc8.bias"][0] = 1e6  # finite in float32, inf in float16
    path = tmp_path / "big.pt"
    torch.save(ckpt, path)
    monkeypatch.setenv("ZFBOOK_DATA", str(tmp_path / "data"))
    code, _, err = cli(capsys, "export", "--checkpoint", path, "--name", "big.pt")
    assert code == 2 and "float16" in one_line(err) and "classifier.fc8.bias" in err
    assert not (tmp_path / "data").exists()


# ------------------------------------------------------------------ 5. the manifest after the file
def test_export_writes_the_manifest_only_after_its_file(tmp_path, last, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("ZFBOOK_DATA", str(data))
    assert cli(capsys, "export", "--checkpoint", last, "--name", "tiny.pt")[0] == 0
    before = files(data)
    assert set(before) == {"MANIFEST.json", "tiny.pt"}
    other = tmp_path / "other.pt"  # another model: its export has other bytes
    ckpt = torch.load(last, weights_only=True)
    ckpt["model"]["classifier.fc8.bias"] += 0.5
    torch.save(ckpt, other)

    # the rename that puts the file in place fails: the manifest is not touched
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst).name in ("tiny.pt", "new.pt"):  # the staged file onto its name
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    code, _, err = cli(capsys, "export", "--checkpoint", other, "--name", "tiny.pt", "--force", "--note", "x")
    assert files(data) == before  # byte for byte, and no temporary file
    assert code == 2 and "cannot write" in one_line(err) and "tiny.pt" in err
    code, _, err = cli(capsys, "export", "--checkpoint", other, "--name", "new.pt")
    assert code == 2 and files(data) == before
    monkeypatch.setattr(os, "replace", real_replace)

    # the manifest cannot be written after the rename: the replaced file comes back
    def no_manifest(path, text):
        raise OSError(28, f"no space left on the device while writing {path}")
    monkeypatch.setattr("zfbook.cli.export.write_text_atomic", no_manifest)
    for name in ("tiny.pt", "new.pt"):
        code, _, err = cli(capsys, "export", "--checkpoint", other, "--name", name, "--force")
        assert code == 2 and "no space left" in one_line(err)
        assert files(data) == before


# ------------------------------------------------------------------ 6. names pretrained() reads back
NAMES = st.text(alphabet="az09_-.EPOCHepoch/\\\n\0 ", max_size=24) | st.builds(
    lambda a, e, z: f"{a}-epoch{e}{z}.pt", st.text(alphabet="ab1-_", min_size=1, max_size=6),
    st.text(alphabet="0123X", max_size=3), st.sampled_from(["", "-epoch2", ".pt", "\n"]))


@settings(max_examples=400, deadline=None)
@given(NAMES)
def test_every_name_export_accepts_is_read_back_by_pretrained(name):
    try:
        check_name(name)
    except ValueError as e:
        assert "--name" in str(e) and "\n" not in str(e)
        return
    parsed = checkpoint.parse_shipped_name(name)
    assert parsed is not None and name == Path(name).name and "\n" not in name and not name.startswith(".")
    model, epoch = parsed
    assert "-epoch" not in model
    entries = {name: {}, "other.pt": {}, "other-epoch3.pt": {}}
    assert checkpoint.shipped_file(entries, model, epoch) == name


@pytest.mark.parametrize("name", ["zfnet-mini-epochX.pt", "zfnet-mini-epoch01.pt", "a-epoch3-epoch4.pt",
                                  "a\n.pt", "a.pt\n", "-a.pt", "a-.pt", "a b.pt", "a.b.pt", "é.pt",
                                  "MANIFEST.json", "../x.pt", ".x.pt", "x" * 198 + ".pt"])
def test_export_refuses_names_pretrained_cannot_read_back(name):
    with pytest.raises(ValueError, match="--name takes a file name") as e:
        check_name(name)
    assert "\n" not in str(e.value)


def test_an_exported_snapshot_loads_by_name_and_epoch(tmp_path, last, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("ZFBOOK_DATA", str(data))
    assert cli(capsys, "export", "--checkpoint", last, "--name", "my_net-v2-epoch1.pt")[0] == 0
    model = zfbook.pretrained("my_net-v2", epoch=1)
    assert model.meta["file"] == "my_net-v2-epoch1.pt"
    with pytest.raises(ValueError, match=r"no snapshot of 'my_net-v2' at epoch 2; snapshots: \[1\]"):
        zfbook.pretrained("my_net-v2", epoch=2)


def test_a_shipped_file_passed_by_path_gets_the_sha256_check(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("MANIFEST.json", "alexnet-mini.pt"):
        shutil.copy(checkpoint.data_dir() / name, data / name)
    monkeypatch.setenv("ZFBOOK_DATA", str(data))
    blob = bytearray((data / "alexnet-mini.pt").read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    (data / "alexnet-mini.pt").write_bytes(bytes(blob))
    (tmp_path / "link.pt").symlink_to(data / "alexnet-mini.pt")
    for spec in (data / "alexnet-mini.pt", tmp_path / "link.pt"):
        with pytest.raises(checkpoint.CheckpointError, match="does not match its sha256 in MANIFEST.json"):
            zfbook.load_checkpoint(spec)
        code, _, err = cli(capsys, "evaluate", "--checkpoint", spec, "--device", "cpu")
        assert code == 2 and "alexnet-mini.pt does not match its sha256" in one_line(err)
    copy = tmp_path / "copy.pt"  # a copy elsewhere is any checkpoint: no manifest speaks for it
    shutil.copy(checkpoint.data_dir() / "alexnet-mini.pt", copy)
    assert zfbook.load_checkpoint(copy)["preset"] == "alexnet-mini"


# ------------------------------------------------------------------ 8. the classes of the splits
@pytest.mark.parametrize("val, words", [(("cat", "cow"), ["only in training: [dog]", "only in validation: [cow]"]),
                                        (("cat",), ["only in training: [dog]"])])
def test_train_refuses_a_validation_split_with_other_classes(tmp_path, capsys, val, words):
    root = make_tree(tmp_path / "t", val_classes=val, per_class=2)
    code, _, err = cli(capsys, "train", *TINY, "--data-root", root, "--out", tmp_path / "run")
    line = one_line(err)
    assert code == 2 and f"{root / 'train'} and {root / 'val'} hold different classes" in line, line
    assert all(w in line for w in words), line
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_dataset_of_one_class(tmp_path, capsys):
    root = make_tree(tmp_path / "t", classes=("cat",), per_class=2)
    code, _, err = cli(capsys, "train", *TINY, "--data-root", root, "--out", tmp_path / "run")
    assert code == 2 and f"{root / 'train'} holds 1 class (cat); a classifier needs at least 2" in one_line(err)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="the training data holds 1 class"):
        train.check_classes(type("D", (), {"labels": torch.zeros(5, dtype=torch.long)})(), None)


# ------------------------------------------------------------------ 10. visualize's embedded images
def test_visualize_reads_every_embedded_split(tmp_path, capsys):
    small = ["--model", "zfnet-mini", "--layers", "conv1", "--maps", "0", "--k", "1", "--limit", "2",
             "--no-progress"]
    for i, images in enumerate([None, "embedded", "embedded:train", "embedded:val", "embedded:test"]):
        out = tmp_path / f"v{i}"
        code, _, err = cli(capsys, "visualize", *small, *(["--images", images] if images else []), "--out", out)
        assert code == 0, err
        split = images.partition(":")[2] if images and ":" in images else "test"
        assert json.loads((out / "images.json").read_text()) == [f"embedded {split} #0", f"embedded {split} #1"]
    code, _, err = cli(capsys, "visualize", *small, "--images", "embedded:nope", "--out", tmp_path / "x")
    assert code == 2 and "unknown embedded split 'nope'; splits are: train, val, test" in one_line(err)


# ------------------------------------------------------------------ 11. symlink loops
def test_a_symlink_loop_in_an_image_folder_is_refused_not_walked_forever(tmp_path, capsys):
    from zfbook.data.real import load
    root = make_tree(tmp_path / "t", per_class=2)
    (root / "train" / "cat" / "again").symlink_to(root / "train", target_is_directory=True)
    elsewhere = make_tree(tmp_path / "other", classes=("dog",), per_class=1) / "train" / "dog"
    (root / "train" / "dog" / "more").symlink_to(elsewhere, target_is_directory=True)  # not a loop

    def hung(signum, frame):
        raise TimeoutError("the walk did not end")
    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        with pytest.raises(ValueError, match="again is a symbolic link to .* a folder that contains it"):
            load("imagefolder", root, split="train")
        code, _, err = cli(capsys, "train", *TINY, "--data-root", root, "--out", tmp_path / "run")
        assert code == 2 and "cat/again is a symbolic link" in one_line(err)
        (root / "train" / "cat" / "again").unlink()
        ds = load("imagefolder", root, split="train")  # the link that is no loop is followed
        assert len(ds) == 5 and any("more" in ds.file(i) for i in range(len(ds)))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


# ------------------------------------------------------------------ 12. more workers than cores
def test_workers_beyond_the_cores_are_capped_with_a_note(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("zfbook.cli.train.train", lambda cfg, out, **kw: seen.append(cfg.workers) or [])
    cores = train.available_cores()
    code, _, err = cli(capsys, "train", "--workers", "1000", "--out", tmp_path / "r", "--device", "cpu")
    assert code == 0 and seen == [cores]
    assert one_line(err) == f"note: --workers 1000 is more than the {cores} CPU cores here; using {cores}"
    code, _, err = cli(capsys, "train", "--workers", str(cores), "--out", tmp_path / "r", "--device", "cpu")
    assert code == 0 and seen[-1] == cores and err == ""


# ------------------------------------------------------------------ 13. sizes checked before allocating
def test_an_image_too_elongated_to_resize_is_refused_naming_the_file(tmp_path, capsys):
    from PIL import Image
    from zfbook import sources
    from zfbook.data.real import load
    strip = tmp_path / "imgs" / "strip.png"
    strip.parent.mkdir()
    Image.new("RGB", (1_000_000, 1)).save(strip)  # 3 KB on disk
    assert strip.stat().st_size < 20_000
    Image.new("RGB", (60, 50), (200, 10, 10)).save(tmp_path / "imgs" / "fine.png")
    with pytest.raises(OSError, match=r"strip.png: 1000000×1 pixels: one side 1,000,000 times longer"):
        sources.open_image(strip)
    code, _, err = cli(capsys, "occlude", "--model", "zfnet-mini", "--image", strip, "--out", tmp_path / "o")
    assert code == 2 and str(strip) in one_line(err) and "up to 100:1" in err
    warnings = []
    images, kept = sources.read_images(tmp_path / "imgs", lambda im: torch.zeros(1), progress=False,
                                       warn=warnings.append)
    assert [p.name for p in kept] == ["fine.png"] and len(warnings) == 1 and "strip.png" in warnings[0]
    root = make_tree(tmp_path / "t", per_class=1)
    Image.new("RGB", (1, 500)).save(root / "train" / "cat" / "tall.png")
    ds = load("imagefolder", root, split="train")
    i = next(i for i in range(len(ds)) if ds.file(i).endswith("tall.png"))
    with pytest.raises(OSError, match=r"cannot read .*tall.png .*1×500 pixels"):
        ds[i]


def test_k_beyond_its_range_is_refused_naming_the_flag(tmp_path, capsys):
    base = ["visualize", "--model", "zfnet-mini", "--layers", "conv1", "--no-progress", "--out", tmp_path / "v"]
    code, _, err = cli(capsys, *base, "--k", "1000000")
    assert code == 2 and one_line(err) == ("error: --k must be in 1…64 (activations per map, drawn as one "
                                           "mosaic), got 1000000")
    code, _, err = cli(capsys, *base, "--k", "5", "--limit", "3")
    assert code == 2 and one_line(err) == "error: --k 5 is more than the 3 images; valid values are 1…3"
    assert not (tmp_path / "v").exists()


# ------------------------------------------------------------------ 16. messages that name their flag or file
def test_numbers_out_of_range_name_their_flag(tmp_path, capsys):
    out = ["--out", tmp_path / "o", "--device", "cpu", "--no-progress"]
    cases = [
        (["train", "--lr", "1e300", *out], "lr (--lr) must be a finite number > 0 and ≤ 3.4e+38, got 1e+300"),
        (["train", "--weight-decay", "1e300", *out], "weight_decay (--weight-decay) must be a finite number"),
        (["train", "--seed", str(2**64), *out], "seed (--seed) must be an integer in 0…18446744073709551615"),
        (["train", "--dropout", "1", *out], "dropout (--dropout) must be a finite number ≥ 0 and < 1, got 1.0"),
        (["train", "--train-per-class", "0", *out], "train_per_class (--train-per-class) must be an integer ≥ 1, got 0"),
        (["transfer", "--checkpoint", "zfnet-mini", "--seed", "-1", *out],
         "--seed must be an integer in 0…4294967295, got -1"),
        (["compare", "--presets", "zfnet-mini", "--seeds", "x", *out],
         "--seeds takes seeds separated by commas (e.g. 0,1,2), got 'x'"),
    ]
    for argv, words in cases:
        code, _, err = cli(capsys, *argv)
        assert code == 2 and words in one_line(err), (argv, err)
    assert not (tmp_path / "o").exists()


def test_a_wrong_shaped_feature_cache_file_is_named_and_computed_again(tmp_path, monkeypatch, capsys):
    from zfbook import models, transfer as T
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path))
    torch.manual_seed(0)
    mini = models.build("zfnet-mini", 12).eval()
    mini.preprocess = zfbook.data.Preprocess(torch.zeros(3, 128, 128), 112, 1 / 64)
    images = torch.randint(0, 256, (6, 3, 128, 128), dtype=torch.uint8)
    want = T.cached_features(mini, "ab" * 32, "six", images, ["conv5"], progress=False)["conv5"]
    path = T.feature_cache_path("ab" * 32, "six", "conv5", "max")
    torch.save(torch.zeros(4, 7), path)  # another shape: another set of images, or a damaged file
    capsys.readouterr()
    got = T.cached_features(mini, "ab" * 32, "six", images, ["conv5"], progress=False)["conv5"]
    err = capsys.readouterr().err
    assert torch.equal(got, want) and str(path) in one_line(err) and "a 4×7 tensor" in err
    assert torch.equal(torch.load(path, weights_only=True), want)  # and written again


# ------------------------------------------------------------------ 15. torchrun
def test_torchrun_prefix_of_the_command_that_continues(monkeypatch):
    from zfbook import cli as C
    monkeypatch.setattr(sys, "argv", ["/x/zfbook/__main__.py", "train", "--out", "run"])
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert C.launcher() == ["python", "-m", "zfbook"]
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    parent = ["/venv/bin/python", "/venv/bin/torchrun", "--nnodes", "2", "--nproc_per_node", "2",
              "--rdzv-endpoint", "host:29400", "-m", "zfbook", "train", "--out", "run"]
    monkeypatch.setattr(C, "_parent_command", lambda: parent)
    assert C.command_line() == ("torchrun --nnodes 2 --nproc_per_node 2 --rdzv-endpoint host:29400 -m zfbook "
                                "train --out run")
    parent[-1] = "elsewhere"  # not our parent after all: rebuilt from torchrun's environment
    assert C.command_line() == "torchrun --nnodes=2 --nproc_per_node=2 -m zfbook train --out run"


DRIVER = r"""
import os, sys
from zfbook import models
from zfbook.cli import main
if os.environ.get("CTRL_C_AT_STEP"):  # as if Ctrl-C came in that training step (counted over epochs)
    stop, real = int(os.environ["CTRL_C_AT_STEP"]), models.renormalize_filters
    def step(model, *a, calls=[0]):
        calls[0] += 1
        if calls[0] == stop:
            raise KeyboardInterrupt
        return real(model, *a)
    models.renormalize_filters = step
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(tmp_path, *argv, env=None):
    """``torchrun --standalone --nproc_per_node 2 driver.py ARGV`` in ``tmp_path``; on a
    timeout its whole process group is killed (no rank left behind)."""
    (tmp_path / "driver.py").write_text(DRIVER)
    job = subprocess.Popen([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "driver.py", *map(str, argv)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                           start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    try:
        out, err = job.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(job.args, job.returncode, out, err)


def _ours(err: str) -> list[str]:
    """Our lines among torchrun's own (its log lines, its report of the failed processes)."""
    return [line for line in err.splitlines() if line.startswith(("error:", "note:", "interrupted"))]


def test_under_torchrun_rank_0_alone_prints_a_user_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        code, _, err = cli(capsys, "train", "--lr", "-1", "--out", tmp_path / "r")
        assert code == 2 and (err == "" if rank == "1" else "lr (--lr) must be" in one_line(err))
        code, _, err = cli(capsys, "train", "--out", tmp_path / "r", "--no-such-flag")
        assert code == 2 and (err == "" if rank == "1" else "unrecognized arguments" in one_line(err))
    # a file that one rank read alone: that rank names it
    monkeypatch.setenv("RANK", "1")
    code, _, err = cli(capsys, "occlude", "--model", "zfnet-mini", "--image", tmp_path / "bad.png",
                       "--out", tmp_path / "o")
    assert code == 2 and one_line(err).startswith("error: rank 1: ") and "bad.png" in err, err


def test_under_torchrun_ctrl_c_names_the_torchrun_command_that_continues(tmp_path):
    make_tree(tmp_path / "t", per_class=2)
    # 2 epochs of 1 step (4 images, global batch 4): Ctrl-C at the first step of epoch 2
    args = ["train", *TINY, "--epochs", "2", "--snapshots", "1", "--data-root", "t", "--out", "run"]
    r = _torchrun(tmp_path, *args, env={"CTRL_C_AT_STEP": "2"})
    lines = _ours(r.stderr)
    assert len(lines) == 1 and lines[0].startswith("interrupted at epoch 2 step 1; `torchrun "), r.stderr
    # every rank exits 130 (or is stopped by torchrun first), none with a traceback of ours;
    # torchrun then reports the stopped job in its own words (a traceback, exit status 1)
    assert "exitcode  : 130" in r.stderr and not re.search(r'File ".*zfbook', r.stderr), r.stderr
    command = shlex.split(lines[0].split("`")[1])  # paths relative to the folder it ran in
    assert command[:5] == ["torchrun", "--standalone", "--nproc_per_node", "2", "driver.py"]
    assert command[5:] == [*args, "--resume"] and "continues from epoch 2" in lines[0]
    assert checkpoint.load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    assert command[4] == "driver.py"
    r = _torchrun(tmp_path, *command[5:])  # the printed command, as typed
    assert r.returncode == 0, r.stderr[-2000:]
    ckpt = checkpoint.load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["world_size"] == 2


# ------------------------------------------------------------------ 10. every verb with its defaults
class FirstStepDone(Exception):
    """Raised after the first training step of a verb whose defaults train for minutes."""


@pytest.fixture
def small_embedded(monkeypatch):
    """The embedded dataset's main splits cut to their first 4 images per class (the
    transfer family whole: its default shots need all 60 per class), so that the verbs that
    evaluate a network over a split (evaluate, export, visualize) run in seconds. Only the
    size of the data changes, not a flag."""
    E = importlib.import_module("zfbook.data.embedded")  # the module (zfbook.data.embedded is the function)
    real = E.embedded

    def small(split="train", family="main", seed=0, **kw):
        d = real(split, family, seed, **kw)
        if family != "main":
            return d
        keep = torch.cat([torch.nonzero(d.labels == c).flatten()[:4] for c in range(len(d.classes))]).sort().values
        return E.EmbeddedDataset(d.images[keep], d.labels[keep], d.masks[keep], d.keypoints[keep], d.classes,
                                 family, split, seed)
    monkeypatch.setattr(E, "embedded", small)


def first_step_only(monkeypatch):
    """Training stops after its first step: ``train`` (20 epochs by default) then returns,
    and a verb that trains several runs (compare, ablate, transfer's scratch arm) stops with
    :class:`FirstStepDone` once its first run has taken that step."""
    real = train.train
    steps = []

    def one_step(cfg, out, **kw):
        steps.append(cfg)
        real(cfg, out, **{**kw, "stop_after_steps": 1})
        return []
    monkeypatch.setattr("zfbook.cli.train.train", one_step)

    def then_stop(cfg, out, **kw):
        one_step(cfg, out, **kw)
        raise FirstStepDone
    monkeypatch.setattr(train, "train", then_stop)
    monkeypatch.setattr("zfbook.experiments.train", then_stop)
    return steps


def test_every_verb_runs_with_only_its_required_flags(tmp_path, monkeypatch, capsys, small_embedded):
    from PIL import Image
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZFBOOK_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    for name in ("MANIFEST.json", "zfnet-mini.pt"):
        shutil.copy(REPO / "data" / name, tmp_path / "data" / name)
    Image.fromarray(zfbook.data.embedded("test").images[0].permute(1, 2, 0).numpy()).save(tmp_path / "one.png")
    steps = first_step_only(monkeypatch)
    trained = {  # these train for minutes by default: they stop after their first step
        "train": ["train", "--out", "t"],
        "compare": ["compare", "--presets", "zfnet-mini", "--out", "c"],
        "ablate": ["ablate", "--out", "a"],
        "transfer": ["transfer", "--checkpoint", "zfnet-mini", "--out", "x"],
    }
    whole = {  # these run to the end
        "evaluate": ["evaluate", "--checkpoint", "data/zfnet-mini.pt"],
        "export": ["export", "--checkpoint", "data/zfnet-mini.pt", "--name", "again.pt"],
        "probe": ["probe", "--checkpoint", "zfnet-mini", "--out", "p"],
        "visualize": ["visualize", "--model", "zfnet-mini", "--out", "v"],
        "occlude": ["occlude", "--model", "zfnet-mini", "--image", "one.png", "--out", "o"],
    }
    from zfbook.cli import VERBS
    assert set(trained) | set(whole) == set(VERBS)
    results = {}
    for verb, argv in {**trained, **whole}.items():
        try:
            results[verb] = cli(capsys, *argv)
        except FirstStepDone:
            results[verb] = "first step"
    for verb in whole:
        assert results[verb][0] == 0, (verb, results[verb][2][-2000:])
    assert results["train"][0] == 0 and "error" not in results["train"][2]  # (its progress bar)
    assert [(c.preset, c.seed, c.epochs, c.dataset) for c in steps] == [
        ("zfnet-mini", 0, 20, "embedded"), ("zfnet-mini", 0, 20, "embedded"),  # train, compare's first run
        ("zfnet-mini", 0, 20, "embedded"),                                     # ablate's: the baseline
        ("zfnet-mini", 1, 4, "embedded")]  # transfer: the scratch arm at 1 shot, draw 0 (its run seed 1)
    assert all(results[v] == "first step" for v in ("compare", "ablate", "transfer"))
    frozen = json.loads((tmp_path / "x" / "results.json").read_text())
    assert sorted({(r["arm"], r["shots"]) for r in frozen}) == [("frozen", k) for k in (1, 2, 3, 5, 10, 20, 30, 60)]
    assert len(frozen) == 40  # 8 shots × 5 draws, before the first scratch run
    assert "on the test split" in results["evaluate"][1]
    assert "again.pt" in json.loads((tmp_path / "data" / "MANIFEST.json").read_text())
    probes = json.loads((tmp_path / "p" / "results.json").read_text())
    assert len(probes) == 7 * 2 * 5  # layers × classifiers × draws, at 60 shots
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [
        "conv1", "conv2", "conv3", "conv4", "conv5", "images.json", "index.html", "topk.pt"]
    assert json.loads((tmp_path / "v" / "images.json").read_text())[0] == "embedded test #0"
    assert {"p_target.png", "maps.json"} <= {p.name for p in (tmp_path / "o").iterdir()}
