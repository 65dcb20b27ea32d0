"""The shipped weights in data/: manifest, sha256, safe loading, and the stated accuracy."""
import pytest
import torch

import zfbook
from zfbook import checkpoint
from zfbook.data import embedded
from zfbook.train import evaluate

ENTRIES = {k: v for k, v in checkpoint.manifest().items() if k.endswith(".pt")}  # data/results/: tests/test_experiments.py
FINALS = [name for name in ENTRIES if "-epoch" not in name]


def test_manifest_lists_the_shipped_models():
    assert {"zfnet-mini.pt", "alexnet-mini.pt"} <= set(ENTRIES)
    snaps = [n for n in ENTRIES if n.startswith("zfnet-mini-epoch")]
    assert len(snaps) >= 4
    for name, e in ENTRIES.items():
        assert e["command"].startswith("python -m zfbook train"), name
        for key in ("seed", "epochs", "test_top1_centre", "test_top1_10crop", "wall_seconds", "sha256"):
            assert key in e, (name, key)


def test_data_folder_within_budget():
    total = sum(p.stat().st_size for p in checkpoint.data_dir().rglob("*") if p.is_file())
    assert total <= 40e6, total


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_sha256_matches_manifest(name):
    assert checkpoint.sha256(checkpoint.data_dir() / name) == ENTRIES[name]["sha256"]


def test_every_shipped_file_is_in_the_manifest_with_its_sha256():
    data = checkpoint.data_dir()
    files = {p.relative_to(data).as_posix() for p in data.rglob("*")
             if p.is_file() and p.name != "MANIFEST.json"}
    listed = checkpoint.manifest()
    assert files == set(listed), files ^ set(listed)
    for name in sorted(files):
        assert checkpoint.sha256(data / name) == listed[name]["sha256"], name


@pytest.mark.parametrize("name", sorted(FINALS))
def test_stated_accuracy_reproduces(name):
    model = zfbook.pretrained(name[:-3])
    test = embedded("test", seed=ENTRIES[name]["seed"])
    centre = evaluate(model, test.images, test.labels, model.preprocess)
    ten = evaluate(model, test.images, test.labels, model.preprocess, ten_crop=True)
    assert centre["top1"] == pytest.approx(ENTRIES[name]["test_top1_centre"], abs=0.05)
    assert ten["top1"] == pytest.approx(ENTRIES[name]["test_top1_10crop"], abs=0.05)


def test_pretrained_errors_and_snapshots():
    with pytest.raises(ValueError, match="zfnet-mini"):
        zfbook.pretrained("resnet")
    with pytest.raises(ValueError, match="snapshots"):
        zfbook.pretrained("zfnet-mini", epoch=999)
    snap = zfbook.pretrained("zfnet-mini", epoch=1)
    final = zfbook.pretrained("zfnet-mini")
    assert not torch.equal(snap.features.conv1.weight, final.features.conv1.weight)
    assert final.preprocess.scale == final.preset.input_scale and not final.training
    assert final.classes == list(embedded("val", per_class=1, cache=False).classes)
