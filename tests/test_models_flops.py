"""Fig. 3 as a table: layer_table / macs / summary, checked against PyTorch's own
FLOP counter and against hand arithmetic."""
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from zfbook import models


def torch_macs_per_module(model, size):
    """MACs per module name as PyTorch counts them (FLOPs / 2 for conv and addmm)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    counts = counter.get_flop_counts()
    prefix = type(model).__name__ + "."
    return {k[len(prefix):].split(".")[-1]: sum(v.values()) // 2
            for k, v in counts.items() if k.startswith(prefix) and k.count(".") == 2}


@pytest.mark.parametrize("name,size", [("zfnet-mini", None), ("alexnet-mini", None), ("zfnet", 224),
                                       ("alexnet", 224)])
def test_macs_agree_with_torch_flop_counter(name, size):
    model = models.build(name, 12)
    rows = models.layer_table(model, size)
    ref = torch_macs_per_module(model, size or model.preset.crop)
    ours = {r.name: r.macs for r in rows if r.macs}
    assert ours == ref
    assert models.macs(model, size) == sum(ref.values())


def test_hand_arithmetic_for_zfnet_conv1_and_fc6():
    rows = {r.name: r for r in models.layer_table(models.zfnet(), 224)}
    # 96 maps of 110×110, each output value sees a 3×7×7 window
    assert rows["conv1"].macs == 96 * 110 * 110 * 3 * 7 * 7
    assert rows["conv1"].params == 96 * 3 * 7 * 7 + 96
    assert rows["fc6"].macs == 256 * 6 * 6 * 4096
    assert rows["relu1"].macs == rows["pool1"].macs == rows["norm1"].macs == 0


def test_grouped_conv_counts_only_its_group():
    m = models.build("zfnet-mini", 12)
    m.features.conv4 = nn.Conv2d(96, 96, 3, padding=1, groups=2)
    row = {r.name: r for r in models.layer_table(m)}["conv4"]
    assert row.macs == 96 * 6 * 6 * 48 * 9
    assert row.op == "conv 3×3/1, pad 1, groups 2"


def test_table_matches_shapes_and_parameter_count():
    model = models.build("zfnet-mini", 12)
    rows = models.layer_table(model)
    assert [(r.name, r.shape) for r in rows] == models.output_shapes(model)
    assert sum(r.params for r in rows) == models.count_parameters(model)
    ops = {r.name: r.op for r in rows}
    assert ops["conv1"] == "conv 7×7/2, pad 1" and ops["pool5"] == "max-pool 3×3/2, pad 0"
    assert ops["norm1"] == "LRN size 5" and ops["drop6"] == "dropout 0.5"
    text = models.summary(model)
    assert text.splitlines()[0] == "zfnet-mini on a 3×112×112 input"
    assert text.splitlines()[-1].split()[1:] == [f"{models.count_parameters(model):,}",
                                                 f"{models.macs(model):,}"]
