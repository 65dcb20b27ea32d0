"""Issue #14: nothing lost, nothing overwritten, one clear line — the command line and the
library under bad input, damaged files, full disks, reused folders and interruptions.

The command-line cases run ``python -m zfbook`` in a subprocess, as a user does, on a tiny
image-folder tree (2 classes, a few images) so each run takes a step or two.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import zfbook
from zfbook import checkpoint, train
from zfbook.cli.export import check_name

PY = sys.executable
ZF = [PY, "-m", "zfbook"]


def cli(*args, env=None, timeout=1800):
    """``python -m zfbook ARGS``: (exit status, stdout, stderr)."""
    r = subprocess.run([*ZF, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    return r.returncode, r.stdout, r.stderr


DRIVER = r"""
import contextlib, io, json, os, sys
from zfbook.cli import main
results = []
for env, argv in json.load(open(sys.argv[1])):
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, open(sys.argv[2], "w"))
"""


def cli_batch(tmp_path, *commands):
    """Several ``python -m zfbook`` commands, each through ``zfbook.cli.main`` exactly as
    ``python -m zfbook`` calls it, in one fresh process (one interpreter start instead of
    one per command). A command is an argument list, or ``(env, argument list)``."""
    cmds = [c if isinstance(c, tuple) else ({}, c) for c in commands]
    (tmp_path / "cmds.json").write_text(json.dumps([[env, list(map(str, argv))] for env, argv in cmds]))
    (tmp_path / "driver.py").write_text(DRIVER)
    subprocess.run([PY, str(tmp_path / "driver.py"), str(tmp_path / "cmds.json"), str(tmp_path / "res.json")],
                   check=True, timeout=1800)
    return [tuple(r) for r in json.loads((tmp_path / "res.json").read_text())]


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_tree(root: Path, per_class=6, seed=0, fmt="png", side=(40, 48)):
    from PIL import Image
    g = torch.Generator().manual_seed(seed)
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(per_class if split == "train" else 2):
                arr = torch.randint(0, 256, (*side, 3), dtype=torch.uint8, generator=g).numpy()
                if c == "cat":
                    arr[..., 0] = 250  # something learnable
                Image.fromarray(arr).save(root / split / c / f"{i}.{fmt}")
    return root


TINY = ["--preset", "zfnet-mini", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
        "--dataset", "imagefolder", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tree(tmp_path_factory.mktemp("data") / "tree")


@pytest.fixture(scope="module")
def run1(tmp_path_factory, tree):
    """A finished 1-epoch run on the tiny tree (trained in-process: it only feeds other tests)."""
    out = tmp_path_factory.mktemp("runs") / "run1"
    cfg = train.Config(preset="zfnet-mini", epochs=1, batch_size=4, device="cpu", dataset="imagefolder",
                       data_root=str(tree), workers=0, snapshots=(1,), command="python -m zfbook train ...")
    train.train(cfg, out, progress=False)
    return out


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ 1. export writes safely
@pytest.mark.parametrize("name", ["MANIFEST.json", "manifest.JSON", "../../escape.pt", "/tmp/abs.pt",
                                  "sub/x.pt", "..", ".hidden.pt", "x..pt", "x.txt", ""])
def test_export_name_is_a_plain_file_name(name):
    with pytest.raises(ValueError, match="--name"):
        check_name(name)
    assert check_name("zfnet-mini-v2.pt") == "zfnet-mini-v2.pt"


def test_export_refuses_paths_and_existing_files_and_evaluates_first(tmp_path, run1):
    untouched, data = tmp_path / "untouched", tmp_path / "data"
    untouched.mkdir()
    data.mkdir()
    ck = run1 / "last.pt"
    code, _, err = cli("export", "--checkpoint", ck, "--name", "../escape.pt", env={"ZFBOOK_DATA": str(untouched)})
    assert code == 2 and "--name" in one_error_line(err)
    res = cli_batch(tmp_path, *[({"ZFBOOK_DATA": str(untouched)}, ["export", "--checkpoint", ck, "--name", bad])
                                for bad in ("MANIFEST.json", str(tmp_path / "abs.pt"), "sub/x.pt")],
                    # a failed evaluation (a wrong data root) writes nothing
                    ({"ZFBOOK_DATA": str(untouched)}, ["export", "--checkpoint", ck, "--name", "tiny.pt",
                                                       "--data-root", tmp_path / "nowhere"]),
                    ({"ZFBOOK_DATA": str(data)}, ["export", "--checkpoint", ck, "--name", "tiny.pt"]),
                    ({"ZFBOOK_DATA": str(data)}, ["export", "--checkpoint", ck, "--name", "tiny.pt"]),
                    ({"ZFBOOK_DATA": str(data)}, ["export", "--checkpoint", ck, "--name", "tiny.pt", "--force",
                                                  "--note", "again"]))
    for code, _, err in res[:3]:
        assert code == 2 and "--name" in one_error_line(err)
    code, _, err = res[3]
    assert code == 2 and "nowhere" in one_error_line(err)
    assert list(untouched.iterdir()) == [] and not (tmp_path / "escape.pt").exists() and not (tmp_path / "abs.pt").exists()
    assert res[4][0] == 0, res[4]
    code, _, err = res[5]
    assert code == 2 and "already exists" in one_error_line(err) and "--force" in err
    assert res[6][0] == 0, res[6]
    entry = json.loads((data / "MANIFEST.json").read_text())["tiny.pt"]
    assert entry["note"] == "again" and entry["sha256"] == checkpoint.sha256(data / "tiny.pt")
    assert sorted(p.name for p in data.iterdir()) == ["MANIFEST.json", "tiny.pt"]  # no temporary files


def test_pretrained_checks_sha256_once_per_file_version(tmp_path, monkeypatch):
    import shutil
    src = checkpoint.data_dir()
    for name in ("MANIFEST.json", "alexnet-mini.pt"):
        shutil.copy(src / name, tmp_path / name)
    monkeypatch.setenv("ZFBOOK_DATA", str(tmp_path))
    calls = []
    real = checkpoint.sha256
    monkeypatch.setattr(checkpoint, "sha256", lambda p: calls.append(p) or real(p))
    zfbook.pretrained("alexnet-mini")
    zfbook.pretrained("alexnet-mini")
    assert len(calls) == 1  # cached by (path, size, mtime)
    blob = bytearray((tmp_path / "alexnet-mini.pt").read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte
    (tmp_path / "alexnet-mini.pt").write_bytes(bytes(blob))
    with pytest.raises(checkpoint.CheckpointError, match=r"alexnet-mini\.pt does not match its sha256"):
        zfbook.pretrained("alexnet-mini")
    (tmp_path / "MANIFEST.json").write_bytes(b"PK\x03\x04 a torch zip, not JSON")
    with pytest.raises(checkpoint.CheckpointError, match="MANIFEST.json is damaged or was replaced"):
        zfbook.pretrained("alexnet-mini")


# ------------------------------------------------------------------ 2. train never destroys a run
def test_train_refuses_a_used_out_checks_numbers_first_and_force_removes_only_the_runs_files(tmp_path, run1, tree):
    import shutil
    kept, forced, foreign, new = tmp_path / "kept", tmp_path / "forced", tmp_path / "foreign", tmp_path / "new"
    for d in (kept, forced):
        shutil.copytree(run1, d)
        (d / "notes.txt").write_text("mine")
    foreign.mkdir()
    (foreign / "last.pt").write_text("someone else's file")
    before = snapshot(kept)
    ro = _read_only_folder(tmp_path)
    # the data root does not exist: had the data been read before the checks, that would be the error
    missing = ["--dataset", "imagefolder", "--data-root", tmp_path / "missing"]
    bad_numbers = [(["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--lr", "-1"], "--lr"),
                   (["--epochs", "0"], "--epochs"), (["--batch-size", "0"], "--batch-size"),
                   (["--weight-decay", "nan"], "--weight-decay"), (["--workers", "-1"], "--workers"),
                   (["--snapshots", "0"], "--snapshots"), (["--workers", "two"], "--workers"),
                   (["--bogus"], "--bogus")]
    res = cli_batch(tmp_path,
                    ["train", *TINY, "--data-root", tree, "--out", kept],
                    ["train", *TINY, "--data-root", tree, "--out", foreign, "--force"],
                    ["train", *missing, "--out", ro / "run"],
                    *[["train", *missing, "--out", new, *flags] for flags, _ in bad_numbers],
                    ["train", *TINY, "--preset", "alexnet-mini", "--snapshots", "2", "--data-root", tree,
                     "--out", forced, "--force"])
    line = one_error_line(res[0][2])
    assert res[0][0] == 2 and "not empty" in line and "--resume" in line and "--force" in line
    assert snapshot(kept) == before
    assert res[1][0] == 2 and "not written by a zfbook run" in one_error_line(res[1][2])
    assert (foreign / "last.pt").read_text() == "someone else's file"
    assert res[2][0] == 2 and "not writable" in one_error_line(res[2][2]) and str(ro) in res[2][2]
    for (code, _, err), (flags, word) in zip(res[3:-1], bad_numbers):
        assert code == 2 and word in one_error_line(err), (flags, err)
    assert not new.exists()
    code, stdout, err = res[-1]
    assert code == 0, err
    assert "removed the old run's files" in stdout and "snapshots/epoch1.pt" in stdout
    assert not (forced / "snapshots").exists() and (forced / "notes.txt").read_text() == "mine"
    assert checkpoint.load_checkpoint(forced / "last.pt")["preset"] == "alexnet-mini"
    # --no-progress: no bar at all, the mean image's included
    assert "mean image" not in err and "it/s" not in err


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: chmod 500, or (as root, which ignores modes)
    a folder of a read-only file system."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        (ro / "probe").touch()
    except OSError:
        return ro
    (ro / "probe").unlink()
    for cand in ("/sys/kernel", "/proc/self"):
        try:
            Path(cand, "zfbook-probe").touch()
        except OSError:
            return Path(cand)
    pytest.skip("no unwritable folder available")


# ------------------------------------------------------------------ 3. --resume continues the same run only
def test_resume_refuses_another_run_unless_forced(tmp_path, run1, tree):
    import shutil
    kept, out = tmp_path / "kept", tmp_path / "out"
    shutil.copytree(run1, kept)
    shutil.copytree(run1, out)
    before = snapshot(kept)
    other = make_tree(tmp_path / "other", seed=5)  # same classes, other images
    moved = tmp_path / "moved"
    shutil.copytree(tree, moved)  # the same data elsewhere: the same run
    more = [*TINY, "--epochs", "2"]
    res = cli_batch(tmp_path,
                    ["train", *more, "--lr", "0.02", "--data-root", tree, "--out", kept, "--resume"],
                    ["train", *more, "--data-root", other, "--out", kept, "--resume"],
                    ["train", *more, "--data-root", moved, "--out", out, "--resume"],
                    ["train", *TINY, "--epochs", "3", "--lr", "0.02", "--data-root", moved, "--out", out,
                     "--resume", "--force"])
    line = one_error_line(res[0][2])
    assert res[0][0] == 2 and "different run" in line and "lr 0.01 in the checkpoint, 0.02 now" in line
    assert res[1][0] == 2 and "training images differ" in one_error_line(res[1][2])
    assert snapshot(kept) == before
    assert res[2][0] == 0, res[2]
    assert res[3][0] == 0 and "continuing" in res[3][1], res[3]
    assert checkpoint.load_checkpoint(out / "last.pt")["epoch"] == 3


def test_resume_compares_preset_and_data_seed_in_process(tmp_path):
    from test_train import cfg, tiny_data
    data = tiny_data()
    train.train(cfg(epochs=1), tmp_path, data=data, progress=False)
    with pytest.raises(checkpoint.CheckpointError, match="data_seed 0 in the checkpoint, 3 now"):
        train.train(cfg(epochs=2, data_seed=3), tmp_path, data=data, progress=False, resume=True)
    with pytest.raises(checkpoint.CheckpointError, match="preset 'zfnet-mini' in the checkpoint"):
        train.train(cfg(epochs=2, preset="alexnet-mini"), tmp_path, data=data, progress=False, resume=True)


# ------------------------------------------------------------------ 4. exact resume, whatever the workers
def _tree_cfg(tree, workers, epochs=2):
    return train.Config(preset="zfnet-mini", epochs=epochs, batch_size=4, device="cpu", dataset="imagefolder",
                        data_root=str(tree), workers=workers, snapshots=())


def test_resume_is_bit_identical_with_0_2_and_4_workers(tmp_path, tree):
    """Stop mid-epoch 2 (nothing saved since epoch 1), resume: the same weights as a run
    never stopped, and the same whatever the workers (the order is seeded per epoch)."""
    finals = {}
    for w in (0, 2, 4):
        straight, stopped = tmp_path / f"straight{w}", tmp_path / f"stopped{w}"
        train.train(_tree_cfg(tree, w), straight, progress=False)
        train.train(_tree_cfg(tree, w), stopped, progress=False, stop_after_steps=3 + 2)  # 3 steps an epoch
        assert checkpoint.load_checkpoint(stopped / "last.pt")["epoch"] == 1
        train.train(_tree_cfg(tree, w), stopped, progress=False, resume=True)
        a = checkpoint.load_checkpoint(straight / "last.pt")
        b = checkpoint.load_checkpoint(stopped / "last.pt")
        for k in a["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), (w, k)
        assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
        finals[w] = a["model"]
    for k in finals[0]:
        assert torch.equal(finals[0][k], finals[2][k]) and torch.equal(finals[0][k], finals[4][k]), k


KILL_SCRIPT = r"""
import sys, pathlib
from zfbook import train
from zfbook.cli import main

marker = pathlib.Path(sys.argv[1]) / "in-epoch-2"
plain = train.tqdm


class Marked:  # the progress bar, which also marks step 2 of epoch 2 on disk
    def __init__(self, it, *a, **k):
        self.bar, self.desc = plain(it, *a, **k), k.get("desc", "")

    def __iter__(self):
        for i, batch in enumerate(self.bar):
            if self.desc.startswith("epoch 2/") and i == 2:
                marker.touch()
            yield batch

    def __getattr__(self, name):
        return getattr(self.bar, name)


train.tqdm = Marked
sys.exit(main(sys.argv[2:]))
"""


def test_sigkill_with_workers_then_resume_is_bit_identical(tmp_path):
    """A run with 2 DataLoader workers killed (SIGKILL) inside epoch 2 and resumed ends
    identical to an uninterrupted one."""
    tree = make_tree(tmp_path / "tree", per_class=12)   # 6 steps an epoch
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    flags = ["train", "--preset", "zfnet-mini", "--epochs", "3", "--batch-size", "4", "--device", "cpu",
             "--dataset", "imagefolder", "--data-root", str(tree), "--workers", "2", "--no-progress",
             "--snapshots", "3"]
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run([PY, str(script), str(ref), *flags, "--out", str(ref)], check=True)
    proc = subprocess.Popen([PY, str(script), str(run), *flags, "--out", str(run)], start_new_session=True)
    deadline = time.time() + 600
    while not (run / "in-epoch-2").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)   # the run and its workers
    proc.wait()
    assert checkpoint.load_checkpoint(run / "last.pt")["epoch"] == 1, "the kill should land inside epoch 2"
    (run / "in-epoch-2").unlink()
    subprocess.run([PY, str(script), str(run), *flags, "--out", str(run), "--resume"], check=True)
    a = checkpoint.load_checkpoint(ref / "last.pt")
    b = checkpoint.load_checkpoint(run / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


# ------------------------------------------------------------------ 5. one line, the right exit status
def test_ctrl_c_says_where_and_how_to_resume(tmp_path):
    tree = make_tree(tmp_path / "tree", per_class=12)
    out = tmp_path / "run"
    args = ["train", "--preset", "zfnet-mini", "--epochs", "1000", "--batch-size", "4", "--device", "cpu",
            "--dataset", "imagefolder", "--data-root", str(tree), "--workers", "2", "--no-progress",
            "--snapshots", "1", "--out", str(out)]
    proc = subprocess.Popen([*ZF, *args], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 600
    while not (out / "history.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)   # as a terminal's Ctrl-C: the run and its workers
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    line = one_error_line(err)
    m = re.fullmatch(r"interrupted at epoch (\d+) step (\d+); `(.*)` continues from epoch (\d+)", line)
    assert m, line
    epoch, resume_epoch = int(m[1]), int(m[4])
    assert resume_epoch == checkpoint.load_checkpoint(out / "last.pt")["epoch"] + 1
    assert resume_epoch in (epoch, epoch + 1)  # epoch + 1: Ctrl-C came while epoch E's files were written
    command = shlex.split(m[3])
    assert command[:3] == ["python", "-m", "zfbook"] and command[-1] == "--resume"
    assert not list(out.glob(".*tmp*")), "no half-written file"
    # the printed command continues the run (one more epoch, then done)
    more = [a if a != "1000" else str(resume_epoch) for a in command[3:]]
    code, _, err = cli(*more)
    assert code == 0, err
    assert checkpoint.load_checkpoint(out / "last.pt")["epoch"] == resume_epoch


def test_a_loader_worker_is_silent_about_a_main_process_that_has_gone():
    """CI once saw, after Ctrl-C, a worker's fd-sharing thread print a BrokenPipe traceback
    (multiprocessing.resource_sharer reports through sys.excepthook): a worker set up by
    quiet_worker ignores Ctrl-C and drops a connection error, and still reports any other."""
    code = ("import signal, sys\n"
            "from zfbook.loaders import quiet_worker\n"
            "quiet_worker(0)\n"
            "assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
            "for e in (BrokenPipeError(32, 'Broken pipe'), ConnectionResetError(104, 'reset')):\n"
            "    try:\n        raise e\n"
            "    except Exception:\n        sys.excepthook(*sys.exc_info())\n"
            "try:\n    raise ValueError('a real error')\n"
            "except Exception:\n    sys.excepthook(*sys.exc_info())\n")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ValueError: a real error" in r.stderr and "Broken" not in r.stderr and "reset" not in r.stderr, r.stderr


def test_a_corrupt_jpeg_in_a_worker_is_one_line_naming_the_file(tmp_path):
    tree = make_tree(tmp_path / "tree", fmt="jpg")
    bad = tree / "train" / "dog" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:200])   # cut short
    (tree / "train" / "cat" / "2.jpg").write_bytes(b"not a jpeg at all")
    code, _, err = cli("train", *TINY, "--workers", "2", "--data-root", tree, "--out", tmp_path / "run")
    line = one_error_line(err)
    assert code == 2 and "cannot read" in line and re.search(r"(cat/2|dog/3)\.jpg", line), line
    assert not (tmp_path / "run").exists()  # nothing half-done left behind


FULL_DISK = r"""
import builtins, sys
import zfbook.checkpoint as c
real = builtins.open


def full(path, mode="r", *a, **k):   # every checkpoint write lands on a full device
    return real("/dev/full", mode, *a, **k) if "w" in mode else real(path, mode, *a, **k)


c.open = full
from zfbook.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(tmp_path, tree):
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    out = tmp_path / "run"
    r = subprocess.run([PY, str(script), "train", *TINY, "--data-root", str(tree), "--out", str(out)],
                       capture_output=True, text=True)
    line = one_error_line(r.stderr)
    assert r.returncode == 2 and "no space left on the device while writing" in line and "last.pt" in line
    assert not out.exists() or not any(out.rglob("*"))


def test_damaged_checkpoints_are_one_full_sentence(tmp_path, run1):
    good = (run1 / "last.pt").read_bytes()
    cases = {"empty.pt": (b"", "is empty"), "garbage.pt": (b"\x00garbage" * 10, "not a zfbook checkpoint"),
             "cut.pt": (good[:len(good) // 2], "cut short or corrupted"),
             "json.pt": (b'{"format": 1}', "not a zfbook checkpoint")}
    for name, (blob, words) in cases.items():
        (tmp_path / name).write_bytes(blob)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    torch.save({"format": checkpoint.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    cases["evil.pt"] = (None, "holds Python objects other than tensors")
    torch.save({"a": 1}, tmp_path / "other.pt")
    cases["other.pt"] = (None, "not a zfbook checkpoint")
    for name, (_, words) in cases.items():
        with pytest.raises(checkpoint.CheckpointError) as e:
            checkpoint.load_checkpoint(tmp_path / name)
        msg = str(e.value)
        assert words in msg and name in msg and "\n" not in msg and "weights_only" not in msg, msg
    res = cli_batch(tmp_path, *[["evaluate", "--checkpoint", tmp_path / name] for name in cases])
    for (code, out, err), (name, (_, words)) in zip(res, cases.items()):
        assert code == 2 and words in one_error_line(err) and "pwned" not in out + err, (name, err)


def test_weights_that_do_not_fit_name_the_tensors(run1):
    ck = checkpoint.load_checkpoint(run1 / "last.pt")
    ck["model"]["classifier.fc8.weight"] = torch.zeros(7, 1024)
    del ck["model"]["features.conv1.bias"]
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.model_from_checkpoint(ck, "x.pt")
    msg = str(e.value)
    assert "classifier.fc8.weight is 7×1024 in the file but 2×1024 in the model" in msg
    assert "missing features.conv1.bias" in msg


# ------------------------------------------------------------------ 6. library arguments
def test_library_arguments_are_checked_where_they_enter(mini):
    from zfbook import deconv, occlusion, topk
    x = torch.randn(2, 3, 112, 112)
    for bad in (2.7, True, [1.5, 2]):
        with pytest.raises(ValueError, match="feature must be integers"):
            deconv.project(mini, x, "conv2", bad)
    with pytest.raises(ValueError, match="feature must be an integer ≥ 0, got 2.7"):
        deconv.steps(mini, x[0], "conv2", 2.7)
    nan = x.clone()
    nan[0, 0, 5, 5] = float("nan")
    for call in (lambda: deconv.project(mini, nan, "conv2", 1), lambda: deconv.switches(mini, nan, "conv2"),
                 lambda: deconv.gradient(mini, nan, "conv2", 1),
                 lambda: occlusion.occlusion_maps(mini, nan[0], 0, 16, 16),
                 lambda: topk.top_activations(mini, nan, "conv2", progress=False)):
        with pytest.raises(ValueError, match="NaN or inf"):
            call()
    inf = x.clone()
    inf[1, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        deconv.project(mini, inf, "conv2", 1)
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1, got 0"):
        deconv.project(mini, x, "conv2", 1, batch_size=0)
    with pytest.raises(ValueError, match="batch must be an integer ≥ 1, got 0"):
        occlusion.occlusion_maps(mini, x[0], 0, 16, 16, batch=0)
    with pytest.raises(ValueError, match="target True is out of range"):
        occlusion.occlusion_maps(mini, x[0], True, 16, 16)
    with pytest.raises(ValueError, match="batch_size must be an integer ≥ 1, got 0"):
        topk.top_activations(mini, x, "conv2", batch_size=0, progress=False)
    with pytest.raises(ValueError, match="k must be an integer ≥ 1, got 2.5"):
        topk.top_activations(mini, x, "conv2", k=2.5, progress=False)
    with pytest.raises(ValueError, match="layers is empty"):
        topk.top_activations(mini, x, [], progress=False)
    with pytest.raises(ValueError, match="num_classes must be an integer ≥ 1, got 0"):
        zfbook.build("zfnet-mini", 0)
    with pytest.raises(ValueError, match="num_classes must be an integer ≥ 1"):
        zfbook.build("zfnet-mini", 2.5)
    with pytest.raises(ValueError, match="dropout must be a finite number"):
        zfbook.build("zfnet-mini", 3, dropout=1.0)
    with pytest.raises(ValueError, match="location must be integers"):
        deconv.receptive_field(mini, "conv2", (1.5, 2))


# ------------------------------------------------------------------ 7. smaller things
def test_default_workers_fit_the_machine():
    from zfbook.cli import _parser
    args = _parser().parse_args(["train", "--out", "o"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert args.workers == train.Config().workers == max(1, min(4, cores))


def test_a_failed_download_leaves_no_root_behind(tmp_path, monkeypatch):
    from zfbook.data import real

    def offline(name, root, split, size, tf, download):   # as torchvision would: a partial file, then fail
        root.mkdir(parents=True, exist_ok=True)
        (root / "cifar-10-python.tar.gz").write_bytes(b"partial")
        raise OSError("[Errno 101] Network is unreachable")
    monkeypatch.setattr(real, "_open", offline)
    root = tmp_path / "new" / "cifar"
    with pytest.raises(real.DatasetNotFound, match="could not be downloaded"):
        real.load("cifar10", root, "train", download=True)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "have"
    (existing / "mine.txt").parent.mkdir()
    (existing / "mine.txt").write_text("keep")
    with pytest.raises(real.DatasetNotFound):
        real.load("cifar10", existing, "train", download=True)
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]


def test_readme_documents_the_cache_and_the_workers():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "ZFBOOK_CACHE" in text and "~/.cache/zfbook" in text and "--workers" in text


def test_ctrl_c_waits_for_files_that_belong_together():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with checkpoint.deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append("both files written")
    assert done == ["both files written"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_workers_start_leaves_no_half_built_loader(tmp_path, monkeypatch):
    """CI once saw Ctrl-C land inside DataLoader's iterator constructor: the half-built
    iterator then printed a traceback when collected, after our one-line message."""
    import gc
    from torch.utils.data import dataloader
    tree = make_tree(tmp_path / "tree", per_class=2)
    data = train.real_split("imagefolder", tree, "train", "zfnet-mini")
    start = dataloader._MultiProcessingDataLoaderIter.__init__

    def interrupted_start(self, loader):
        os.kill(os.getpid(), signal.SIGINT)   # arrives before the workers are set up
        time.sleep(0.05)
        start(self, loader)

    monkeypatch.setattr(dataloader._MultiProcessingDataLoaderIter, "__init__", interrupted_start)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(KeyboardInterrupt):
        for _ in train._Loader(data, 2, torch.device("cpu"), workers=1):
            pass
    gc.collect()
    assert not unraisable, [str(u.exc_value) for u in unraisable]
