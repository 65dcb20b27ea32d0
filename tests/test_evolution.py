"""zfbook.evolution (Fig. 4) and the shipped snapshots: one run, no duplicates, measures
against independent references."""
import copy

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


# ---------------------------------------------------------------- the noise ceiling
def test_snapshot_epochs_take_any_set_of_epochs(monkeypatch):
    """The re-made run ships other epochs (denser early): whatever the manifest lists."""
    planned = [1, 2, 3, 4, 6, 9, 13, 18]
    entries = {f"zfnet-mini-epoch{e}.pt": {"epochs": e} for e in planned}
    entries.update({"zfnet-mini.pt": {"epochs": 24}, "zfnet-mini-data1.pt": {"epochs": 24},
                    "alexnet-mini-epoch5.pt": {"epochs": 5}, "results/ablation.json": {}})
    monkeypatch.setattr(evolution, "manifest", lambda: entries)
    assert evolution.snapshot_epochs("zfnet-mini") == planned + [24]
    assert evolution.snapshot_epochs("alexnet-mini") == [5]
    assert checkpoint.shipped_file(entries, "zfnet-mini", 13) == "zfnet-mini-epoch13.pt"
    assert checkpoint.shipped_file(entries, "zfnet-mini", 24) == "zfnet-mini.pt"
    asked = []
    monkeypatch.setattr(evolution, "pretrained", lambda name, epoch: asked.append(epoch) or epoch)
    assert evolution.load_snapshots("zfnet-mini") == {e: e for e in planned + [24]}
    assert asked == planned + [24]


@pytest.fixture(scope="module")
def random_pool():
    g = torch.Generator().manual_seed(0)
    return torch.randn(40, 3, 112, 112, generator=g) * 60, torch.randn(40, 3, 112, 112, generator=g) * 60


def _untrained(seed):
    torch.manual_seed(seed)
    return zfbook.models.build("zfnet-mini", num_classes=12).eval()


def _stable_top(model, x, layer, k):
    """Like _reference_top, with ties (maps at 0) broken by the lower image index."""
    with torch.no_grad():
        best = zfbook.models.activations(model, x, layer)[layer].flatten(2).amax(2)
    return torch.sort(best.t(), dim=1, descending=True, stable=True).indices[:, :k]


def _brute_overlap(model, other, partner, x, layer, k):
    a, b = _stable_top(model, x, layer, k), _stable_top(other, x, layer, k)
    return torch.tensor([len(set(a[m].tolist()) & set(b[int(partner[m])].tolist())) / k
                         for m in range(a.shape[0])])


def test_ceiling_of_a_network_with_itself_is_one(random_pool):
    net = _untrained(0)
    images, match = random_pool
    c = evolution.noise_ceiling(net, net, images, match, ["conv1", "conv5", "fc7"], k=9)
    for layer in c.layers:
        assert torch.all(c.overlap[layer] == 1.0)
        live = c.correlation[layer] > 0                # fc7 units that never fire pair
        assert live.float().mean() > (0.3 if layer == "fc7" else 0.9)   # among themselves
        assert torch.equal(c.partner[layer][live], torch.arange(len(live))[live])
    assert c.mean("conv5") == 1.0 and c.chance == 9 / 40 and (c.n_images, c.n_match) == (40, 40)


def test_pairing_undoes_a_permutation_of_the_maps(random_pool):
    """A copy whose conv3 maps are shuffled (conv4 reads them shuffled back) computes the
    same function: the ceiling finds every map's twin and is 1, where pairing map m with
    map m would not be."""
    net, images, match = _untrained(1), *random_pool
    perm = torch.randperm(96, generator=torch.Generator().manual_seed(2))
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.features.conv3.weight.copy_(net.features.conv3.weight[perm])
        twin.features.conv3.bias.copy_(net.features.conv3.bias[perm])
        twin.features.conv4.weight.copy_(net.features.conv4.weight[:, perm])
    # the same sums in another order: equal up to float32 rounding
    torch.testing.assert_close(twin(images[:4]), net(images[:4]), rtol=1e-4, atol=1e-4)
    c = evolution.noise_ceiling(net, twin, images, match, ["conv3", "conv4"], k=5)
    live = c.correlation["conv3"] > 0.99             # maps that never fire pair among themselves
    assert live.float().mean() > 0.9
    assert torch.equal(c.partner["conv3"][live], torch.argsort(perm)[live])
    assert torch.equal(c.partner["conv4"][c.correlation["conv4"] > 0.99],
                       torch.arange(96)[c.correlation["conv4"] > 0.99])
    assert torch.all(c.overlap["conv3"] == 1.0) and torch.all(c.overlap["conv4"] == 1.0)
    same_index = _brute_overlap(net, twin, torch.arange(96), images, "conv3", 5)
    assert same_index.mean() < 0.5


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # scipy: maps at 0
def test_ceiling_against_independent_references(random_pool):
    """Two unrelated networks: the pairing maximises the summed Spearman correlation
    (scipy's own, checked by brute force over swaps), and the overlap is counted on the
    pool, not on the images the pairs were chosen on."""
    from scipy.stats import spearmanr
    a, b, (images, match) = _untrained(3), _untrained(4), random_pool
    c = evolution.noise_ceiling(a, b, images, match, ["conv2"], k=9)
    partner, corr = c.partner["conv2"], c.correlation["conv2"]
    assert sorted(partner.tolist()) == list(range(64))              # one-to-one
    with torch.no_grad():
        sa = zfbook.models.activations(a, match, "conv2")["conv2"].flatten(2).amax(2)
        sb = zfbook.models.activations(b, match, "conv2")["conv2"].flatten(2).amax(2)
    full = torch.tensor(spearmanr(sa.numpy(), sb.numpy()).statistic[:64, 64:]).nan_to_num(0.0)
    torch.testing.assert_close(corr, full[torch.arange(64), partner].double(), rtol=0, atol=1e-9)
    total = float(corr.sum())
    for i in range(0, 64, 7):                       # no swap of two partners does better
        for j in range(i + 1, 64, 5):
            swapped = total - corr[i] - corr[j] + full[i, partner[j]] + full[j, partner[i]]
            assert swapped <= total + 1e-9
    assert total > float(full.diagonal().sum())
    torch.testing.assert_close(c.overlap["conv2"], _brute_overlap(a, b, partner, images, "conv2", 9))
    # pairing on the pool itself would have counted other images
    on_pool = evolution.noise_ceiling(a, b, images, images, ["conv2"], k=9)
    assert not torch.equal(on_pool.partner["conv2"], partner)


def test_evolution_carries_its_ceiling(snaps, images):
    ev = evolution.track(snaps, images, ["conv1", "conv4"], k=9)
    before = ev.overlap("conv4").clone()
    last = snaps[ev.epochs[-1]]
    match = last.preprocess.center(embedded("val", per_class=5, cache=False).images)
    c = ev.noise_ceiling(last, match)
    assert ev.ceiling is c and c.layers == ["conv1", "conv4"] and c.k == 9
    assert c.n_images == len(images) and c.chance == 9 / len(images)
    assert all(torch.all(c.overlap[layer] == 1.0) for layer in c.layers)
    assert torch.equal(ev.overlap("conv4"), before)
    first = ev.noise_ceiling(snaps[ev.epochs[0]], match)
    assert first.mean("conv4") < 1.0


def test_ceiling_refusals(random_pool):
    images, match = random_pool
    torch.manual_seed(0)
    ten = zfbook.models.build("zfnet-mini", num_classes=10).eval()
    with pytest.raises(ValueError, match="fc8 has 12 maps in one network and 10 in the other"):
        evolution.noise_ceiling(_untrained(0), ten, images, match, ["conv5", "fc8"])
    with pytest.raises(ValueError, match="at least 2 images"):
        evolution.pair_maps(_untrained(0), _untrained(0), match[:1], "conv1")
    with pytest.raises(ValueError, match="images is empty"):
        evolution.noise_ceiling(_untrained(0), _untrained(0), images[:0], match, "conv1")
