"""torchrun + DistributedDataParallel on the CPU with gloo and 2 processes (zfbook.train,
zfbook.distributed): training steps, checkpoints, a killed rank and resume, the sharded
top-k search. Each test starts real torchrun jobs on tiny data."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from zfbook import distributed, topk
from zfbook.checkpoint import load_checkpoint, model_from_checkpoint
from zfbook.train import Config, evaluate, train

TORCHRUN = Path(sys.executable).with_name("torchrun")

WORKER = r'''
import os, sys, time
from pathlib import Path
from types import SimpleNamespace
import torch
from zfbook import distributed, models, topk, train as T
from zfbook.data.embedded import CLASSES
from zfbook.data.preprocess import Preprocess

mode, out = sys.argv[1], Path(sys.argv[2])


def data(n_train, n_val):
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (n_train + n_val, 3, 128, 128), dtype=torch.uint8, generator=g)
    labels = torch.arange(n_train + n_val) % len(CLASSES)
    part = lambda s: SimpleNamespace(images=imgs[s], labels=labels[s], classes=list(CLASSES))
    return part(slice(0, n_train)), part(slice(n_train, None))


if mode == "step":     # one step, augmentation and dropout off
    Preprocess.random = lambda self, images, generator=None: self.center(images)
    cfg = T.Config(preset="zfnet-mini", epochs=1, batch_size=8, dropout=0.0, device="cpu",
                   snapshots=(), anneal=())
    T.train(cfg, out, data=data(8, 4), progress=False)
elif mode == "run":    # epochs; with "hang", rank 1 stops answering in epoch 2
    epochs, resume, hang = int(sys.argv[3]), "resume" in sys.argv, "hang" in sys.argv
    if hang:
        real = T._evaluate_sharded
        def stall(model, val_set, prep, device, workers, w, calls=[0]):
            calls[0] += 1
            if calls[0] == 2 and w.rank == 1:
                (out.parent / "rank1.pid").write_text(str(os.getpid()))
                time.sleep(600)
            return real(model, val_set, prep, device, workers, w)
        T._evaluate_sharded = stall
    cfg = T.Config(preset="zfnet-mini", epochs=epochs, batch_size=16, device="cpu", snapshots=(),
                   anneal=())
    T.train(cfg, out, resume=resume, data=data(48, 12), progress=False)
elif mode == "topk":
    distributed.init("cpu")
    torch.manual_seed(0)
    model = models.build("zfnet-mini", 12).eval()
    x = torch.randn(37, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    found = distributed.top_activations(model, x, ["conv1", "conv5", "fc7"], 5, batch_size=1,
                                        progress=False)
    if distributed.is_main():
        topk.save(found, out)
'''


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "worker.py"
    path.write_text(WORKER)
    return path


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1")


def _torchrun(worker, *args, nproc=2, **kw):
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(nproc), str(worker), *map(str, args)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600, **kw)


def _python(worker, *args):
    return subprocess.run([sys.executable, str(worker), *map(str, args)], env=_env(), capture_output=True,
                          text=True, timeout=600)


def test_distributed_topk_equals_single_process(worker, tmp_path):
    r = _torchrun(worker, "topk", tmp_path / "topk.pt")
    assert r.returncode == 0, r.stderr[-3000:]
    from zfbook import models
    torch.manual_seed(0)
    model = models.build("zfnet-mini", 12).eval()
    x = torch.randn(37, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    want = topk.top_activations(model, x, ["conv1", "conv5", "fc7"], 5, batch_size=1, progress=False)
    got = topk.load(tmp_path / "topk.pt")
    for n in want:
        for f in ("value", "index", "y", "x"):
            assert torch.equal(getattr(got[n], f), getattr(want[n], f)), (n, f)
    assert set(got["conv1"].index.flatten().tolist()) & set(range(19, 37))  # rank 1's shard is in it


def test_shards_cover_the_data_once():
    for n in (0, 1, 5, 37):
        for size in (1, 2, 3):
            parts = [distributed.shard(n, r, size) for r in range(size)]
            assert [i for p in parts for i in p] == list(range(n))
    with pytest.raises(ValueError):
        distributed.shard(4, 2, 2)


def test_ddp_step_equals_single_process_step(worker, tmp_path):
    r = _torchrun(worker, "step", tmp_path / "ddp")
    assert r.returncode == 0, r.stderr[-3000:]
    r = _python(worker, "step", tmp_path / "one")
    assert r.returncode == 0, r.stderr[-3000:]
    ddp, one = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp["world_size"] == 2 and ddp["global_batch"] == 8 and "world_size" not in one
    init = {k: v for k, v in _initial_state().items()}
    moved = 0
    for k, v in one["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(v, init[k]))
    assert moved > 0  # the step changed the weights (the comparison is not of two untouched inits)
    for a, b in (("train_loss", 1e-5), ("val_loss", 1e-5)):
        assert ddp["history"][0][a] == pytest.approx(one["history"][0][a], rel=b)


def _initial_state():
    from zfbook import models
    torch.manual_seed(0)
    return models.build("zfnet-mini", 12, dropout=0.0).state_dict()


def test_ddp_run_killed_then_resumed(worker, tmp_path):
    out = tmp_path / "run"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(worker), "run", str(out), "3", "hang"]
    job = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_file = tmp_path / "rank1.pid"
    deadline = time.time() + 300
    while not pid_file.exists() and job.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert pid_file.exists(), job.communicate(timeout=60)[1][-3000:]
    time.sleep(0.2)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)           # rank 1 dies ...
    _, err = job.communicate(timeout=120)                         # ... and takes the job down
    assert job.returncode != 0
    # exactly one checkpoint, from epoch 1, that evaluate's loader reads
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["history.json", "last.pt"]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["world_size"] == 2 and ckpt["global_batch"] == 16
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1] and hist[0]["world_size"] == 2 and hist[0]["batch_size"] == 16
    model = model_from_checkpoint(ckpt, "last.pt")
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (60, 3, 128, 128), dtype=torch.uint8, generator=g)[48:]
    res = evaluate(model, images, torch.arange(48, 60) % 12, model.preprocess)
    assert res["top1"] == pytest.approx(hist[0]["val_top1"])     # the validation it recorded
    # another world size is refused, in one line that says so
    r = _python(worker, "run", out, 3, "resume")
    assert r.returncode != 0 and "world size 2 in the checkpoint, 1 now" in r.stderr
    # the same world size continues from epoch 2
    r = _torchrun(worker, "run", out, 3, "resume")
    assert r.returncode == 0, r.stderr[-3000:]
    hist2 = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist2] == [1, 2, 3] and hist2[0] == hist[0]
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


def test_global_batch_must_divide(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = Config(preset="zfnet-mini", epochs=1, batch_size=15, device="cpu")
    with pytest.raises(ValueError, match="not divisible by the 2 processes"):
        train(cfg, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
