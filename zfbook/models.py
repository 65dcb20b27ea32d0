"""The networks: ZFNet (Fig. 3), the AlexNet baseline, and small CPU-scale presets.

Every model is a ``features`` / ``classifier`` pair of ``nn.Sequential``s, read top to
bottom like Fig. 3. Its layers are addressed by the paper's names ``conv1``…``conv5``,
``fc6``…``fc8``; each name means the *rectified output* of that layer (``fc8``: the
logits), see :data:`LAYERS` and :func:`activations`.

Choices where the paper is silent (documented in the "Building ZFNet" chapter):

* **Padding.** conv1 pads 1, conv2 pads 0, conv3–5 pad 1; pool1 and pool2 pad 1,
  pool5 pads 0. At 224×224 this gives exactly 110 → 55 → 26 → 13 → 13 → 13 → 13 → 6.
* **Contrast normalisation** after pooling in layers 1–2 (as the paper's text says),
  with AlexNet's constants: ``nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2)``.
* **Init.** Full-size models: weights N(0, 0.01²), biases 0 (Section 3), inputs in the
  paper's pixel units (0…255 minus the mean). The mini presets change two things, both
  measured to matter on a CPU budget: Kaiming-normal weights (fan-in, ReLU gain; biases 0)
  for conv1…fc7 (fc8 keeps the paper's N(0, 0.01²), which shortens the initial plateau),
  and inputs divided by 64 (``Preset.input_scale``), i.e. roughly unit variance. With
  N(0, 0.01²) and the narrow mini layers the signal shrinks ~10⁵× by fc8 and the loss sits
  at ln(12) for hundreds of steps; with Kaiming weights on ±128 inputs, activations reach
  the tens and the ReLUs die. Their fc6/fc7 are 1024 wide: at 256, dropout 0.5 stalled
  learning on the embedded dataset.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, asdict, replace
from typing import Iterable

import torch
from torch import nn

from .checks import integer, number

__all__ = [
    "Preset", "PRESETS", "LAYERS", "DROPOUT", "build", "zfnet", "alexnet", "names",
    "Variant", "VARIANTS", "preset", "variant_names",
    "layer_module", "activations", "renormalize_filters", "output_shapes", "count_parameters",
    "LayerRow", "layer_table", "macs", "summary",
]

#: The dropout probability of fc6 and fc7 (Section 3), every preset's own.
DROPOUT = 0.5

#: The paper's layer names, in the order data flows through them.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")

#: module (inside the model) whose output is the named layer's rectified output
_LAYER_MODULES = {
    "conv1": "features.relu1", "conv2": "features.relu2", "conv3": "features.relu3",
    "conv4": "features.relu4", "conv5": "features.relu5",
    "fc6": "classifier.relu6", "fc7": "classifier.relu7", "fc8": "classifier.fc8",
}


@dataclass(frozen=True)
class Preset:
    """A named configuration: architecture, widths, input resolution.

    ``resize`` is the side the images are resized/centre-cropped to (256 in the paper),
    ``crop`` the network input (224 in the paper); crops are taken from the resized image.
    """
    name: str
    arch: str            # "zfnet" or "alexnet"
    widths: tuple        # conv1..conv5 maps
    fc: int              # fc6 / fc7 width
    resize: int
    crop: int
    init: str            # "paper" or "kaiming"
    input_scale: float = 1.0   # multiplies the mean-subtracted pixels
    drop: tuple = ()     # layers removed (Table 3's ablations), from conv3, conv4, fc6, fc7

    @property
    def base(self) -> str:
        """The preset a variant was made from (its own name for a plain preset)."""
        return self.name.split(":")[0]

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "zfnet": Preset("zfnet", "zfnet", (96, 256, 384, 384, 256), 4096, 256, 224, "paper"),
    "alexnet": Preset("alexnet", "alexnet", (96, 256, 384, 384, 256), 4096, 256, 224, "paper"),
    # Table 2, model (b): conv3-5 widened to 512/1024/512.
    "zfnet-wide": Preset("zfnet-wide", "zfnet", (96, 256, 512, 1024, 512), 4096, 256, 224, "paper"),
    "zfnet-mini": Preset("zfnet-mini", "zfnet", (32, 64, 96, 96, 64), 1024, 128, 112, "kaiming", 1 / 64),
    "alexnet-mini": Preset("alexnet-mini", "alexnet", (32, 64, 96, 96, 64), 1024, 128, 112, "kaiming", 1 / 64),
}


def names() -> list[str]:
    """The preset names :func:`build` accepts (each also as ``name:variant``, see
    :data:`VARIANTS`)."""
    return list(PRESETS)


@dataclass(frozen=True)
class Variant:
    """A Table 3 row as a change to a preset: layers removed, conv3-5 and fc6/fc7 widths
    scaled by the paper's own ratios (its sizes over Fig. 3's 384/384/256 and 4096)."""
    name: str
    row: str                          # Table 3's wording
    drop: tuple = ()
    conv_scale: tuple = (1, 1, 1)     # conv3, conv4, conv5
    fc_scale: float = 1.0


_WIDE = (512 / 384, 1024 / 384, 512 / 256)
#: Table 3's rows, by name. ``baseline`` is the preset itself.
VARIANTS = {v.name: v for v in (
    Variant("baseline", "Ours (Fig. 3)"),
    Variant("no-fc7", "− layer 7", drop=("fc7",)),
    Variant("no-fc6-fc7", "− layers 6,7", drop=("fc6", "fc7")),
    Variant("no-conv3-conv4", "− layers 3,4", drop=("conv3", "conv4")),
    Variant("no-conv3-conv4-fc6-fc7", "− layers 3,4,6,7", drop=("conv3", "conv4", "fc6", "fc7")),
    Variant("fc-narrow", "fc6/7 = 2048", fc_scale=2048 / 4096),
    Variant("fc-wide", "fc6/7 = 8192", fc_scale=8192 / 4096),
    Variant("conv-wide", "conv 512/1024/512", conv_scale=_WIDE),
    Variant("fc-wide-conv-wide", "fc 8192 + conv 512/1024/512", conv_scale=_WIDE, fc_scale=2.0),
)}


def variant_names() -> list[str]:
    """The variant names ``preset:variant`` accepts (:data:`VARIANTS`)."""
    return list(VARIANTS)


def preset(name: str) -> Preset:
    """The :class:`Preset` called ``name``: a preset (:data:`PRESETS`) or ``preset:variant``
    (:data:`VARIANTS`, Table 3), e.g. ``zfnet-mini:no-fc6-fc7``. ``preset:baseline`` is the
    preset itself."""
    if not isinstance(name, str):
        raise ValueError(f"a preset name must be a string, got {name!r}")
    base, sep, var = name.partition(":")
    _check_choice("preset", base, PRESETS)
    if not sep or var == "baseline":
        return PRESETS[base]
    _check_choice("variant", var, VARIANTS)
    v, p = VARIANTS[var], PRESETS[base]
    widths = p.widths[:2] + tuple(max(1, round(w * s)) for w, s in zip(p.widths[2:], v.conv_scale))
    return replace(p, name=f"{base}:{var}", widths=widths, fc=max(1, round(p.fc * v.fc_scale)),
                   drop=v.drop)


def _check_choice(kind: str, value, choices: Iterable) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; valid {kind}s are: {', '.join(map(str, choices))}")


def _lrn() -> nn.LocalResponseNorm:
    # AlexNet's constants; the paper does not give its own (Section 3 / Fig. 3).
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


class ConvNet(nn.Module):
    """Five conv layers and three dense layers (Fig. 3), with ``features``/``classifier``.

    Attributes ``preset`` (a :class:`Preset`) and ``num_classes`` describe the model, so a
    checkpoint can be rebuilt and checked against it.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, preset: Preset,
                 num_classes: int):
        super().__init__()
        self.features = features
        self.flatten = nn.Flatten(1)
        self.classifier = classifier
        self.preset = preset
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _make(preset: Preset, num_classes: int, dropout: float | None) -> ConvNet:
    num_classes = integer("num_classes", num_classes, 1)
    dropout = number("dropout", DROPOUT if dropout is None else dropout, 0, 1, high_open=True)
    w1, w2, w3, w4, w5 = preset.widths
    if preset.arch == "zfnet":
        # Fig. 3: 7x7/2 conv1, 5x5/2 conv2, dense 3x3 conv3-5; norm after pooling.
        c1, c2 = dict(kernel_size=7, stride=2, padding=1), dict(kernel_size=5, stride=2, padding=0)
        p12 = dict(kernel_size=3, stride=2, padding=1)
    else:
        # Krizhevsky et al.: 11x11/4 conv1, 5x5/1 conv2 (torchvision's padding).
        c1, c2 = dict(kernel_size=11, stride=4, padding=2), dict(kernel_size=5, stride=1, padding=2)
        p12 = dict(kernel_size=3, stride=2, padding=0)
    layers = [
        ("conv1", nn.Conv2d(3, w1, **c1)),
        ("relu1", nn.ReLU(inplace=True)),
        ("pool1", nn.MaxPool2d(**p12)),
        ("norm1", _lrn()),
        ("conv2", nn.Conv2d(w1, w2, **c2)),
        ("relu2", nn.ReLU(inplace=True)),
        ("pool2", nn.MaxPool2d(**p12)),
        ("norm2", _lrn()),
    ]
    width = w2
    for i, w in ((3, w3), (4, w4), (5, w5)):  # Table 3 may remove conv3 and conv4
        if f"conv{i}" not in preset.drop:
            layers += [(f"conv{i}", nn.Conv2d(width, w, kernel_size=3, padding=1)),
                       (f"relu{i}", nn.ReLU(inplace=True))]
            width = w
    layers.append(("pool5", nn.MaxPool2d(kernel_size=3, stride=2)))
    features = nn.Sequential(OrderedDict(layers))
    with torch.no_grad():
        width = width * features(torch.zeros(1, 3, preset.crop, preset.crop)).shape[-1] ** 2
    layers = []
    for i in (6, 7):  # and fc6, fc7 (with their dropout: Section 3 puts it in layers 6 and 7)
        if f"fc{i}" not in preset.drop:
            layers += [(f"fc{i}", nn.Linear(width, preset.fc)), (f"relu{i}", nn.ReLU(inplace=True)),
                       (f"drop{i}", nn.Dropout(dropout))]
            width = preset.fc
    classifier = nn.Sequential(OrderedDict(layers + [("fc8", nn.Linear(width, num_classes))]))
    model = ConvNet(features, classifier, preset, num_classes)
    _init(model, preset.init)
    return model


def _init(model: ConvNet, scheme: str) -> None:
    """Section 3: weights N(0, 0.01²), biases 0; see the module docstring for ``kaiming``."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "paper" or m is model.classifier.fc8:
                nn.init.normal_(m.weight, 0.0, 0.01)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def zfnet(num_classes: int = 1000, *, preset: str = "zfnet", dropout: float | None = None) -> ConvNet:
    """ZFNet as in Fig. 3 (or a ``zfnet*`` preset of the same topology)."""
    _check_choice("preset", preset, [n for n, p in PRESETS.items() if p.arch == "zfnet"])
    return _make(PRESETS[preset], num_classes, dropout)


def alexnet(num_classes: int = 1000, *, preset: str = "alexnet", dropout: float | None = None) -> ConvNet:
    """The dense single-GPU AlexNet baseline (11×11 stride-4 conv1), same interface as :func:`zfnet`."""
    _check_choice("preset", preset, [n for n, p in PRESETS.items() if p.arch == "alexnet"])
    return _make(PRESETS[preset], num_classes, dropout)


def build(name: str, num_classes: int = 1000, *, dropout: float | None = None) -> ConvNet:
    """Build a model by preset name (:func:`names`), or a Table 3 variant of one as
    ``preset:variant`` (:func:`preset`). ``dropout``: fc6/fc7's probability (None:
    :data:`DROPOUT`, the paper's)."""
    return _make(preset(name), num_classes, dropout)


# ---------------------------------------------------------------- layers by name
def _named(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def layer_module(model: nn.Module, layer: str) -> nn.Module:
    """The module whose output is ``layer``.

    For zfbook models ``layer`` is a paper name (conv1…fc8). For any other model it is a
    module name from ``model.named_modules()``.
    """
    mods = _named(model)
    if isinstance(model, ConvNet):
        _check_choice("layer", layer, LAYERS)
        if layer in model.preset.drop:
            raise ValueError(f"{model.preset.name} has no {layer} (the variant removes it); its layers "
                             f"are: {', '.join(layer_names(model))}")
        return mods[_LAYER_MODULES[layer]]
    if layer not in mods or layer == "":
        raise ValueError(f"unknown layer {layer!r}; layers are: {', '.join(n for n in mods if n)}")
    return mods[layer]


def layer_names(model: nn.Module) -> list[str]:
    """The names :func:`layer_module` accepts for ``model``."""
    if isinstance(model, ConvNet):
        return [n for n in LAYERS if n not in model.preset.drop]
    return [n for n, _ in model.named_modules() if n]


def activations(model: nn.Module, images: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``images`` and return the outputs of ``layers`` (name → tensor).

    Stops as soon as the last requested layer has been computed.
    """
    single = isinstance(layers, str)
    layers = [layers] if single else list(layers)
    out: dict[str, torch.Tensor] = {}
    hooks = []

    class _Done(Exception):
        pass

    def hook_for(name):
        def hook(_m, _i, o):
            out[name] = o.clone()  # in-place ReLUs downstream must not change it
            if len(out) == len(layers):
                raise _Done
        return hook

    for name in layers:
        hooks.append(layer_module(model, name).register_forward_hook(hook_for(name)))
    try:
        model(images)
    except _Done:
        pass
    finally:
        for h in hooks:
            h.remove()
    return out


@torch.no_grad()
def renormalize_filters(model: nn.Module, radius: float = 0.1) -> None:
    """Section 3: scale every conv filter whose RMS exceeds ``radius`` back to ``radius``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight
            rms = w.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            w.mul_(torch.clamp(radius / rms.clamp_min(1e-12), max=1.0))


def output_shapes(model: ConvNet, size: int | None = None) -> list[tuple[str, tuple]]:
    """(module name, output shape) for every module, on one ``size``×``size`` input."""
    size = size or model.preset.crop
    shapes = []
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for name, m in model.features.named_children():
            x = m(x)
            shapes.append((name, tuple(x.shape[1:])))
        x = model.flatten(x)
        for name, m in model.classifier.named_children():
            x = m(x)
            shapes.append((name, tuple(x.shape[1:])))
    return shapes


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- Fig. 3 as a table
@dataclass(frozen=True)
class LayerRow:
    """One module of a :class:`ConvNet` on one input: what it does, its output shape,
    its parameter count and its multiply-adds (MACs) for one image."""
    name: str
    op: str
    shape: tuple
    params: int
    macs: int


def _describe(m: nn.Module) -> str:
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
        k, s, p = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride, m.padding))
        kind = "conv" if isinstance(m, nn.Conv2d) else "max-pool"
        extra = (", groups %d" % m.groups if getattr(m, "groups", 1) > 1 else "") + (
            ", ceil" if getattr(m, "ceil_mode", False) else "")
        return f"{kind} {k}×{k}/{s}, pad {p}{extra}"
    if isinstance(m, nn.LocalResponseNorm):
        return f"LRN size {m.size}"
    if isinstance(m, nn.Dropout):
        return f"dropout {m.p:g}"
    if isinstance(m, nn.Linear):
        return f"dense {m.in_features}→{m.out_features}"
    return type(m).__name__


def _macs(m: nn.Module, shape: tuple) -> int:
    """Multiply-adds of a conv (each output value: one per weight it sees) or a dense layer;
    ReLU, pooling and LRN are counted as 0 (they do no multiply-adds with weights)."""
    if isinstance(m, nn.Conv2d):
        kh, kw = m.kernel_size
        n_out = 1
        for d in shape:
            n_out *= d
        return n_out * (m.in_channels // m.groups) * kh * kw
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features
    return 0


def layer_table(model: ConvNet, size: int | None = None) -> list[LayerRow]:
    """Fig. 3 layer by layer: one :class:`LayerRow` per module on a ``size``×``size`` input
    (default: the preset's crop)."""
    mods = {**dict(model.features.named_children()), **dict(model.classifier.named_children())}
    return [LayerRow(name, _describe(mods[name]), shape, count_parameters(mods[name]),
                     _macs(mods[name], shape))
            for name, shape in output_shapes(model, size)]


def macs(model: ConvNet, size: int | None = None) -> int:
    """Multiply-adds of one forward pass of one image (conv and dense layers)."""
    return sum(r.macs for r in layer_table(model, size))


def summary(model: ConvNet, size: int | None = None) -> str:
    """:func:`layer_table` as aligned text, with the totals."""
    rows = layer_table(model, size)
    size = size or model.preset.crop
    lines = [f"{model.preset.name} on a 3×{size}×{size} input",
             f"{'layer':6}  {'operation':26} {'output':>13} {'parameters':>12} {'MACs':>15}"]
    for r in rows:
        lines.append(f"{r.name:6}  {r.op:26} {'×'.join(map(str, r.shape)):>13} "
                     f"{r.params:>12,} {r.macs:>15,}")
    lines.append(f"{'total':6}  {'':26} {'':>13} {sum(r.params for r in rows):>12,} "
                 f"{sum(r.macs for r in rows):>15,}")
    return "\n".join(lines)
