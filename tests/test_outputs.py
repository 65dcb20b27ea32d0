"""Nothing a user owns is ever deleted (zfbook.outputs and every verb that writes).

For each verb a folder holds unrelated files and the command's own inputs; the verb runs
with and without ``--force``, and every file must still be there, byte for byte. Then the
places an output folder may never be, the lock that refuses a second command, the temporary
files of a killed one, results files that are not ours, and Ctrl-C. The commands run
in-process (``zfbook.cli.main``) on tiny inputs; a subprocess only where signals or a second
process are the point.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zfbook.transfer as T
from zfbook import experiments, outputs, topk
from zfbook.checkpoint import data_dir, save_atomic
from zfbook.cli import main

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def files(folder: Path) -> dict:
    """Every file under ``folder`` (relative path → bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def kept(before: dict, folder: Path) -> None:
    """Every file of ``before`` is still in ``folder``, byte for byte."""
    after = files(folder)
    lost = [k for k in before if after.get(k) != before[k]]
    assert not lost, f"lost or changed: {lost}"


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_folder(root: Path) -> Path:
    """A folder of someone's files, one of them a PNG named as occlude's are."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text("keep me\n")
    (root / "sub").mkdir()
    (root / "sub" / "data.bin").write_bytes(os.urandom(300))
    (root / "results.csv").write_text("a,b\n1,2\n")
    return root


def picture(path: Path, seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.fixture
def live_pid():
    p = subprocess.Popen(["sleep", "60"])
    yield p.pid
    p.kill()
    p.wait()


# ------------------------------------------------------------------ where an output folder may be
def test_an_output_folder_is_never_the_current_folder_the_repository_data_or_an_input(tmp_path, monkeypatch):
    here = user_folder(tmp_path / "here")
    images = user_folder(tmp_path / "a" / "images")
    image = picture(tmp_path / "photos" / "cat.png")
    monkeypatch.chdir(here)
    refused = {
        "": "is the current folder", ".": "is the current folder", str(here): "is the current folder",
        "..": "holds the current folder", str(ROOT): "repository's root",
        # the repository's parent: refused for holding the repository, or, when the clone and
        # the test's folder share a parent (a clone under /tmp), for holding the current folder
        str(ROOT.parent): ("repository's root", "holds the current folder"),
        str(ROOT / "data"): "inside data/", str(ROOT / "data" / "results"): "inside data/",
        str(data_dir()): "inside", str(ROOT / "zfbook"): "the zfbook package",
        str(here / "notes.txt"): "is a file; --out takes a folder",
        str(images): "is --images", str(images / "vis"): "lies inside --images",
        str(tmp_path / "a"): "holds --images", str(image.parent): "is the folder of --image",
    }
    inputs = [("--images", images), ("--image", image), ("--model", "zfnet-mini")]
    for out, says in refused.items():
        with pytest.raises(ValueError) as e:
            outputs.check_place(out, inputs=inputs)
        says = (says,) if isinstance(says, str) else says
        assert any(s in str(e.value) for s in says) and "\n" not in str(e.value), (out, e.value)
    assert outputs.check_place(tmp_path / "new" / "out", inputs=inputs) == tmp_path / "new" / "out"
    assert outputs.check_place(image.parent / "sub", inputs=inputs)  # beside an input file: fine


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "1"], ["compare", "--presets", "zfnet-mini"], ["ablate"],
    ["transfer", "--checkpoint", "zfnet-mini"], ["probe", "--checkpoint", "zfnet-mini"],
    ["visualize", "--model", "zfnet-mini"], ["occlude", "--model", "zfnet-mini", "--image", "x.png"],
])
def test_every_verb_refuses_the_current_folder_data_and_a_file_and_touches_nothing(argv, tmp_path, monkeypatch,
                                                                                   capsys):
    here = user_folder(tmp_path / "here")
    picture(here / "x.png")
    monkeypatch.chdir(here)
    before = files(here)
    for out, says in (("", "current folder"), (".", "current folder"), (ROOT / "data", "inside data/"),
                      (ROOT, "repository's root"), ("notes.txt", "is a file; --out takes a folder")):
        for force in ([], ["--force"]) if argv[0] not in ("compare", "ablate") else ([],):
            code, _, err = run(capsys, *argv, "--out", out, *force)
            assert code == 2 and says in one_line(err), (argv, out, err)
    kept(before, here)
    assert not [p for p in (ROOT / "data").iterdir() if p.name.startswith(".")]  # no lock, no temporary file


# ------------------------------------------------------------------ occlude and visualize: --force removes only their files
def test_occlude_keeps_every_file_it_did_not_write(tmp_path, capsys):
    mine = user_folder(tmp_path / "mine")
    image = picture(mine / "photo.png")
    picture(tmp_path / "other" / "overlay.png", seed=1)  # a user's PNG with one of occlude's names
    cmd = ["occlude", "--model", "zfnet-mini", "--patch", "40", "--stride", "40", "--no-progress"]
    before = files(mine)
    # the image's own folder: refused, with or without --force
    for force in ([], ["--force"]):
        code, _, err = run(capsys, *cmd, "--image", image, "--out", mine, *force)
        assert code == 2 and "folder of --image" in one_line(err)
    kept(before, mine)
    # a folder of other files: refused without --force, which writes beside them
    out = user_folder(tmp_path / "out")
    theirs = files(out)
    code, _, err = run(capsys, *cmd, "--image", image, "--out", out)
    assert code == 2 and "not empty" in one_line(err) and "notes.txt" in err
    code, _, err = run(capsys, *cmd, "--image", image, "--out", out, "--force")
    assert code == 0, err
    kept(theirs, out)
    kept(before, mine)
    ours = {"activity.png", "p_target.png", "top_class.png", "overlay.png", "maps.json"}
    assert ours <= {p.name for p in out.iterdir()} and not (out / outputs.LOCK).exists()
    first = files(out)
    # again: an earlier output is refused without --force; --force replaces only it, and says so
    code, _, err = run(capsys, *cmd, "--image", image, "--out", out)
    assert code == 2 and "earlier occlude output" in one_line(err)
    code, _, err = run(capsys, *cmd, "--image", image, "--out", out, "--force", "--target", "1")
    assert code == 0 and "removed the earlier occlude output" in err and "maps.json" in err
    kept(theirs, out)
    assert json.loads((out / "maps.json").read_text())["target"] == 1 != json.loads(first["maps.json"])["target"]
    # a PNG of occlude's name that occlude did not write: refused, even with --force
    other = tmp_path / "other"
    before_other = files(other)
    code, _, err = run(capsys, *cmd, "--image", image, "--out", other, "--force")
    assert code == 2 and "overlay.png was not written by zfbook occlude" in one_line(err)
    kept(before_other, other)
    assert sorted(p.name for p in other.iterdir()) == ["overlay.png"]  # no lock, no staging left


def test_visualize_keeps_every_file_it_did_not_write(tmp_path, capsys):
    images = user_folder(tmp_path / "images")
    for i in range(3):
        picture(images / f"img{i}.png", seed=i)
    before = files(images)
    cmd = ["visualize", "--model", "zfnet-mini", "--images", images, "--layers", "conv1", "--maps", "0-1",
           "--k", "2", "--no-progress"]
    for out in (images, images / "vis", tmp_path):  # the input, inside it, around it
        for force in ([], ["--force"]):
            code, _, err = run(capsys, *cmd, "--out", out, *force)
            assert code == 2 and "--images" in one_line(err), (out, err)
    kept(before, images)
    assert not (images / "vis").exists()
    out = user_folder(tmp_path / "out")
    theirs = files(out)
    code, _, err = run(capsys, *cmd, "--out", out)
    assert code == 2 and "not empty" in one_line(err)
    code, _, err = run(capsys, *cmd, "--out", out, "--force")
    assert code == 0, err
    kept(theirs, out)
    assert (out / "conv1" / "maps_000-001.png").is_file() and topk.load(out / "topk.pt")["conv1"].value.shape[1] == 2
    # --force again with other layers: the old conv1 PNG goes (it was ours), the user's files stay
    code, _, err = run(capsys, "visualize", "--model", "zfnet-mini", "--images", images, "--layers", "conv2",
                       "--maps", "0", "--k", "2", "--no-progress", "--out", out, "--force")
    assert code == 0 and "removed the earlier visualize output" in err and "conv1/maps_000-001.png" in err
    kept(theirs, out)
    assert not (out / "conv1").exists() and (out / "conv2" / "maps_000-000.png").is_file()
    kept(before, images)


# ------------------------------------------------------------------ train: the place, the lock, a killed run's files
def tree(root: Path) -> Path:
    for split, n in (("train", 4), ("val", 2)):
        for c, seed in (("cat", 0), ("dog", 100)):
            for i in range(n):
                picture(root / split / c / f"{i}.png", seed=seed + i)
    return root


TINY = ["--preset", "zfnet-mini", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
        "--dataset", "imagefolder", "--workers", "0", "--no-progress", "--snapshots", "1"]


def test_train_never_writes_into_its_data_or_the_current_folder(tmp_path, monkeypatch, capsys):
    data = tree(tmp_path / "data")
    (data / "README").write_text("my dataset")
    before = files(data)
    monkeypatch.chdir(data)
    for out in (data, data / "run", "", ".", tmp_path):
        for force in ([], ["--force"]):
            code, _, err = run(capsys, "train", *TINY, "--data-root", data, "--out", out, *force)
            assert code == 2 and ("--data-root" in one_line(err) or "current folder" in err), (out, err)
    kept(before, data)
    assert files(data).keys() == before.keys()


def test_a_second_command_into_a_held_folder_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys, live_pid):
    data = tree(tmp_path / "data")
    out = tmp_path / "run"
    out.mkdir()
    lock = out / outputs.LOCK
    # held by a live process (no flock: the pid alone says so)
    lock.write_text(json.dumps({"pid": live_pid, "host": socket.gethostname(), "started": "now", "verb": "train"}))
    code, _, err = run(capsys, "train", *TINY, "--data-root", data, "--out", out)
    assert code == 2 and f"in use by a zfbook train (pid {live_pid}" in one_line(err)
    assert f"if process {live_pid} is not a zfbook command, remove {lock}" in err  # a pid can be reused
    assert json.loads(lock.read_text())["pid"] == live_pid
    # on another machine: refused too, saying how to free it
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "then", "verb": "train"}))
    code, _, err = run(capsys, "train", *TINY, "--data-root", data, "--out", out)
    assert code == 2 and f"remove {lock}" in one_line(err)
    # its owner is gone: taken over with a note, and released at the end
    gone = dead_pid()
    lock.write_text(json.dumps({"pid": gone, "host": socket.gethostname(), "started": "then", "verb": "train"}))
    code, _, err = run(capsys, "train", *TINY, "--data-root", data, "--out", out)
    assert code == 0, err
    assert f"(pid {gone}, since then) that no longer runs; taking it over" in err
    assert not lock.exists() and (out / "last.pt").is_file()


def test_a_train_process_is_refused_a_folder_this_one_holds(tmp_path):
    """Two processes: this one holds the folder as a running command does (the lock file
    and its flock), and ``python -m zfbook train`` into it is refused."""
    data = tree(tmp_path / "data")
    out = tmp_path / "run"
    out.mkdir()
    with outputs.FolderLock(out, "train", "python -m zfbook train ..."):
        r = subprocess.run([PY, "-m", "zfbook", "train", *TINY, "--data-root", str(data), "--out", str(out)],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 2 and f"in use by a zfbook train (pid {os.getpid()}" in one_line(r.stderr)
        assert sorted(p.name for p in out.iterdir()) == [outputs.LOCK]
    assert list(out.iterdir()) == []


def test_killed_runs_temporary_files_go_also_on_resume_and_nothing_else(tmp_path, capsys, live_pid):
    data = tree(tmp_path / "data")
    out = tmp_path / "run"
    assert run(capsys, "train", *TINY, "--data-root", data, "--out", out)[0] == 0
    gone = dead_pid()
    left = [out / f".last.pt.tmp{gone}", out / f".history.json.tmp{gone}", out / "snapshots" / f".epoch2.pt.tmp{gone}"]
    keep = [out / f".last.pt.tmp{live_pid}", out / f".notes.txt.tmp{gone}", out / "notes.txt"]
    for f in left + keep:
        f.write_bytes(b"half a file")
    code, _, err = run(capsys, "train", *TINY, "--epochs", "2", "--data-root", data, "--out", out, "--resume")
    assert code == 0, err
    assert not any(f.exists() for f in left)
    assert all(f.read_bytes() == b"half a file" for f in keep)


# ------------------------------------------------------------------ results files: ours, atomic, one model
@pytest.mark.parametrize("content", ['[{"foo": 1}]', "[1, 2]", "{}", "not json", '{"format": "zfbook-results/1"}'])
def test_a_results_file_that_is_not_ours_is_refused_before_anything(content, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    out = user_folder(tmp_path / "out")
    (out / "results.json").write_text(content)
    before = files(out)
    caltech = ["--checkpoint", "zfnet-mini", "--dataset", "caltech101", "--data-root", _caltech(tmp_path / "d")]
    for argv in (["compare", "--presets", "zfnet-mini", "--seeds", "0", "--epochs", "1"],
                 ["transfer", *caltech, "--arms", "frozen", "--shots", "1", "--draws", "1"],
                 ["transfer", *caltech, "--arms", "frozen", "--shots", "1", "--draws", "1", "--force"],
                 ["probe", *caltech, "--layers", "fc7", "--shots", "1", "--draws", "1"]):
        code, _, err = run(capsys, *argv, "--out", out, "--no-progress")
        assert code == 2 and "results.json is not a zfbook results file" in one_line(err), (argv, err)
    kept(before, out)
    assert files(out).keys() == before.keys()


def test_experiments_keep_other_files_and_refuse_a_held_folder(tmp_path, live_pid):
    from test_experiments import tiny
    out = user_folder(tmp_path / "out")
    before = files(out)
    spec = experiments.Spec("zfnet-mini", 0, dict(epochs=1, batch_size=16, anneal=()))
    (out / outputs.LOCK).write_text(json.dumps({"pid": live_pid, "host": socket.gethostname(), "verb": "ablate"}))
    with pytest.raises(ValueError, match=f"in use by a zfbook ablate \\(pid {live_pid}"):
        experiments.run_experiments([spec], out, data=tiny(), log=lambda s: None)
    (out / outputs.LOCK).unlink()
    (out / f".results.json.tmp{dead_pid()}").write_text("{half")
    rec = experiments.run_experiments([spec], out, data=tiny(), log=lambda s: None)
    assert len(rec) == 1
    kept(before, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["notes.txt", "sub", "results.csv", "results.json", f"{spec.name}-seed0"])


def _caltech(root: Path) -> Path:
    from test_transfer import _caltech_tree
    return _caltech_tree(root)


def test_transfer_force_starts_the_file_over_and_its_means_never_mix_two_models(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    root = _caltech(tmp_path / "data")
    out = tmp_path / "out"
    common = ["transfer", "--dataset", "caltech101", "--data-root", root, "--arms", "frozen", "--draws", "2",
              "--out", out, "--no-progress"]
    assert run(capsys, *common, "--checkpoint", "zfnet-mini", "--shots", "1")[0] == 0
    before = files(out)
    # another checkpoint, even at other shots (no record in common): refused, the file unchanged
    code, _, err = run(capsys, *common, "--checkpoint", "alexnet-mini", "--shots", "2")
    assert code == 2 and "records of another checkpoint (zfnet-mini" in one_line(err) and "--force" in err
    assert files(out) == before
    # --force: the file starts over; it and the printed means hold the new checkpoint's records only
    code, text, err = run(capsys, *common, "--checkpoint", "alexnet-mini", "--shots", "1", "--force")
    assert code == 0 and "--force: starting" in err and "held 2 records" in err
    recs = json.loads((out / "results.json").read_text())
    assert len(recs) == 2 and {r["checkpoint"] for r in recs} == {"alexnet-mini"}
    mean = sum(r["top1"] for r in recs) / 2
    assert f"1: {mean:.1f}" in text


def test_ctrl_c_in_transfer_says_what_was_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZFBOOK_CACHE", str(tmp_path / "cache"))
    root = _caltech(tmp_path / "data")
    out = tmp_path / "out"
    real, calls = T.frozen_arm, []

    def frozen_then_ctrl_c(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(T, "frozen_arm", frozen_then_ctrl_c)
    argv = ["transfer", "--checkpoint", "zfnet-mini", "--dataset", "caltech101", "--data-root", root,
            "--arms", "frozen", "--shots", "1,2", "--draws", "2", "--out", out, "--no-progress"]
    code, _, err = run(capsys, *argv)
    assert code == 130 and one_line(err) == (f"interrupted; 2 new records written to {out / 'results.json'} "
                                             "(it holds 2); the same command continues with the rest")
    assert len(json.loads((out / "results.json").read_text())) == 2 and not (out / outputs.LOCK).exists()
    calls.clear()
    monkeypatch.setattr(T, "frozen_arm", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run(capsys, *argv)
    assert code == 130 and "nothing was written" in one_line(err)


def test_ctrl_c_in_compare_says_which_runs_were_recorded(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    done = []

    def one_run(spec, out, **k):
        if done:
            raise KeyboardInterrupt
        done.append(spec)
        return {"name": spec.name, "seed": spec.seed, "test_top1_centre": 50.0, "test_top1_10crop": 50.0,
                "train_seconds": 1.0, "config": {}}
    monkeypatch.setattr(experiments, "run_one", one_run)
    code, _, err = run(capsys, "compare", "--presets", "zfnet-mini", "--seeds", "0,1", "--epochs", "1",
                       "--out", out, "--no-progress")
    assert code == 130 and one_line(err).startswith(
        f"interrupted; 1 run finished and recorded in {out / 'results.json'}")
    assert not (out / outputs.LOCK).exists()


# ------------------------------------------------------------------ Ctrl-C while a file is written
class _CtrlCWhileWriting:
    """A file whose writes turn into Ctrl-C after ``after`` bytes: what SIGINT does when it
    arrives while torch.save writes (Python runs its handler inside torch's write callback;
    seen with a real SIGINT from a timer thread during a 40 MB save_atomic, which was then
    reported as "no space left on the device")."""

    def __init__(self, f, after):
        self.f, self.left = f, after

    def write(self, b):
        self.left -= len(b)
        if self.left < 0:
            raise KeyboardInterrupt
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("writer", ["feature cache", "top-k file"])
def test_ctrl_c_while_a_cache_or_topk_file_is_written_is_ctrl_c(writer, tmp_path, monkeypatch):
    real = torch.save

    def save(obj, f, **k):
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as file:
                return real(obj, _CtrlCWhileWriting(file, 5000), **k)
        return real(obj, _CtrlCWhileWriting(f, 5000), **k)
    monkeypatch.setattr(torch, "save", save)
    path = tmp_path / "x.pt"
    with pytest.raises(KeyboardInterrupt):  # not "no space left on the device"
        if writer == "feature cache":
            save_atomic(torch.zeros(10_000), path)
        else:
            z = torch.zeros(512, 9, dtype=torch.long)
            t = topk.TopK("conv1", torch.zeros(512, 9), z, z, z)
            topk.save({"conv1": t}, path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ --jobs: Ctrl-C stops the pool cleanly
POOL = """
import sys, time
from pathlib import Path
from zfbook.parallel import run_parallel

def nap(i):
    Path(sys.argv[1], f"started{i}").touch()
    time.sleep(60)
    return i

if __name__ == "__main__":
    try:
        for item, _ in run_parallel(nap, range(5), 2):
            print("finished", item, flush=True)
    except KeyboardInterrupt:
        sys.exit(130)
"""


def test_ctrl_c_with_jobs_starts_nothing_more_and_leaks_nothing(tmp_path):
    (tmp_path / "pool.py").write_text(POOL)
    p = subprocess.Popen([PY, str(tmp_path / "pool.py"), str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.time()
    while len(list(tmp_path.glob("started*"))) < 2 and time.time() - t0 < 240:
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the parent and its workers
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "finished" not in out
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    assert sorted(f.name for f in tmp_path.glob("started*")) == ["started0", "started1"]


def test_ctrl_c_in_occlude_says_whether_the_output_was_written(tmp_path, capsys, monkeypatch):
    from zfbook.plot import fig7_maps
    image = picture(tmp_path / "photo.png")
    out = user_folder(tmp_path / "out")
    theirs = files(out)
    cmd = ["occlude", "--model", "zfnet-mini", "--image", image, "--patch", "40", "--stride", "40",
           "--no-progress", "--out", out, "--force"]
    real = fig7_maps.overlay
    monkeypatch.setattr(fig7_maps, "overlay", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run(capsys, *cmd)
    assert code == 130 and one_line(err) == f"interrupted; nothing was written to {out}"
    assert files(out) == theirs and sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.csv", "sub"]
    # Ctrl-C while the files are moved into place waits until they all are
    monkeypatch.setattr(fig7_maps, "overlay", real)
    replace = os.replace

    def ctrl_c_then_replace(a, b):
        os.kill(os.getpid(), signal.SIGINT)
        replace(a, b)
    monkeypatch.setattr(outputs.folder.os, "replace", ctrl_c_then_replace)
    code, _, err = run(capsys, *cmd)
    assert code == 130 and one_line(err) == f"interrupted after the output was written in full to {out}"
    kept(theirs, out)
    assert {"maps.json", "overlay.png", "p_target.png"} <= {p.name for p in out.iterdir()}
    assert not (out / outputs.LOCK).exists() and not list(out.glob(".occlude.tmp*"))
