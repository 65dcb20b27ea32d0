"""zfbook.evolution (Fig. 4) and the shipped snapshots: one run, no duplicates, measures
against independent references."""
import pytest
import torch

import zfbook
from zfbook import checkpoint, evolution
from zfbook.data import embedded


@pytest.fixture(scope="module")
def snaps():
    epochs = evolution.snapshot_epochs("zfnet-mini")
    return evolution.load_snapshots("zfnet-mini", [epochs[0], epochs[len(epochs) // 2], epochs[-1]])


@pytest.fixture(scope="module")
def images(snaps):
    final = snaps[max(snaps)]
    return final.preprocess.center(embedded("test", per_class=5, cache=False).images)


def test_snapshots_come_from_the_final_models_run_without_duplicates():
    entries = checkpoint.manifest()
    epochs = evolution.snapshot_epochs("zfnet-mini")
    assert epochs == sorted(set(epochs)) and len(epochs) >= 5
    final = zfbook.pretrained("zfnet-mini")
    assert epochs[-1] == final.meta["epochs"]
    untimed = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    for e in epochs[:-1]:
        snap = zfbook.pretrained("zfnet-mini", epoch=e)
        assert snap.meta["seed"] == final.meta["seed"] and snap.meta["epochs"] == e
        # the same run: its losses and accuracies are, to the last bit, the start of the
        # final model's history (a re-run of the same command has other timings, same bits)
        assert untimed(snap.history) == untimed(final.history[:e])
    with pytest.raises(ValueError) as err:
        zfbook.pretrained("zfnet-mini", epoch=epochs[-1] + 7)
    assert str(epochs) in str(err.value)


def test_weight_change_against_a_direct_computation(snaps):
    change = evolution.weight_change(snaps, ["conv1", "fc7"])
    epochs = sorted(snaps)
    assert change["conv1"][-1] == 0.0 and change["fc7"][-1] == 0.0
    a, b = snaps[epochs[0]].features.conv1.weight, snaps[epochs[-1]].features.conv1.weight
    ref = ((a.double() - b.double()).norm() / b.double().norm()).item()
    assert change["conv1"][0] == pytest.approx(ref, rel=1e-12)
    assert all(v > 0 for v in change["conv1"][:-1])


def _reference_top(model, x, layer, k):
    acts = zfbook.models.activations(model, x, layer)[layer]  # (N, maps, H, W)
    best = acts.flatten(2).max(2).values                        # (N, maps)
    return best.t().topk(k, dim=1).indices                      # (maps, k) image indices


def test_overlap_against_a_brute_force_top_k(snaps, images):
    ev = evolution.track(snaps, images, ["conv1", "conv3"], k=9)
    first, last = ev.epochs[0], ev.epochs[-1]
    for layer in ("conv1", "conv3"):
        got = ev.overlap(layer)
        assert torch.all(got[-1] == 1.0)
        ref_final = _reference_top(snaps[last], images, layer, 9)
        ref_first = _reference_top(snaps[first], images, layer, 9)
        want = torch.tensor([len(set(ref_first[m].tolist()) & set(ref_final[m].tolist())) / 9
                             for m in range(ref_final.shape[0])])
        # ties between equal activations may be broken differently; allow one map in ten
        assert (got[0] - want).abs().gt(1e-6).float().mean() <= 0.1
    assert ev.strongest("conv1").shape == (3, 32)


def test_projection_tiles(snaps, images):
    ev = evolution.track(snaps, images, "conv2", k=1)
    tiles = ev.project("conv2", [0, 5])
    assert len(tiles) == 3 and len(tiles[0]) == 2
    assert all(t.shape[0] == 3 and t.abs().sum() > 0 for t in tiles[-1])


def test_settled():
    assert evolution.settled([0.1, 0.6, 0.4, 0.7, 0.9], [1, 2, 5, 10, 20], 0.5) == 10
    assert evolution.settled([0.9, 0.8, 0.7], [1, 2, 3], 0.5) == 1
    assert evolution.settled([0.9, 0.8, 0.2], [1, 2, 3], 0.5) is None
    assert evolution.settled([0.9, 0.3, 0.1], [1, 2, 3], 0.3, above=False) == 2


def test_refusals(snaps):
    ax = {1: zfbook.pretrained("alexnet-mini"), 2: snaps[max(snaps)]}
    with pytest.raises(ValueError, match="different presets"):
        evolution.weight_change(ax)
    with pytest.raises(ValueError, match="no snapshots"):
        evolution.weight_change({})
