"""Sanity checks of the deconvnet: what its pictures do and do not depend on.

Beyond the paper. Zeiler & Fergus read the deconvnet's projections (Section 2.1, Figs. 1,
2, 4, 7) as pictures of what a feature has learned. Three later papers test that reading:

* Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): re-initialise the
  weights layer by layer from the top (*cascading randomisation*) or one layer at a time
  (*independent randomisation*) and measure how much each explanation changes;
* Nie, Zhang & Patel (ICML 2018): the deconvnet and Guided Backprop largely *reconstruct
  the image*, driven by the switches and ReLUs, not by what the chosen unit learned;
* Mahendran & Vedaldi, "Salient Deconvolutional Networks" (ECCV 2016): with the switches
  fixed, the output depends little on which neuron was chosen.

This module computes those measurements for a zfbook model.

**Methods** (:data:`METHODS`): ``deconvnet`` (:func:`zfbook.deconv.project`, ours),
``gradient`` (plain saliency: Captum ``Saliency`` / ``NeuronGradient``),
``guided_backprop`` (Captum ``GuidedBackprop`` / ``NeuronGuidedBackprop``) and
``occlusion`` (ours: :class:`zfbook.occlusion.IncrementalForward`, the incremental sweep
behind :func:`~zfbook.occlusion.occlusion_maps`; one sweep gives every class's logit and
every conv5 map's total).
Captum is imported when a Captum method is first used (an ``ImportError`` names
``pip install captum`` otherwise); it is a dependency of the package.

**What each map explains** (:func:`explain`), the same quantity for every method:

* ``target="fc8"`` — the **logit** of one class (by default the class the *trained*
  network predicts, kept fixed while the weights are randomised). Gradient and Guided
  Backprop differentiate it (a backward pass seeded with 1). The deconvnet projects it
  from fc8 seeded with **1** rather than with the logit's value: a randomised network's
  logit may be negative, and a negative seed would flip what the deconvnet's
  rectifications keep. It is computed by :func:`zfbook.deconv.project` on a copy whose
  fc8 bias makes the logit exactly 1 (the deconvnet adds no biases on the way down, so
  only the seed changes). Occlusion: per pixel, the mean drop of the logit over the
  squares covering it (:func:`zfbook.occlusion.pixel_average`).
* ``target="conv5"`` — one conv5 feature map (by default the trained network's most
  active one for the image). Deconvnet, gradient and Guided Backprop explain the map's
  **strongest activation** in the network at hand (Fig. 2's choice); occlusion explains
  the map's **total** activation (Fig. 7b, the only conv5 quantity the sweep records).
  Layers above conv5 cannot change these maps.

The deconvnet passes contrast normalisation through (Section 2.1); Captum's methods
differentiate it (a near-uniform rescaling on zfnet-mini, see the deconvnet chapter).

**Randomisation** (:func:`randomize`) always works on a deep copy; the model passed in is
never modified. Each named layer's weight and bias are re-drawn with the model's *own*
init scheme (:func:`zfbook.models._init`: for the mini presets Kaiming-normal weights for
conv1…fc7 and N(0, 0.01²) for fc8; for the paper presets N(0, 0.01²) throughout; biases
0), from a seed derived from ``seed`` and the layer's name, so a layer gets the same
random weights in every step and in both kinds of randomisation, and a second run gives
identical results.

**Similarity** (:func:`similarity`) between the trained network's map and a randomised
one, per image: ``spearman_abs`` (Spearman rank correlation of the absolute maps, summed
over colour channels, SciPy), ``spearman`` (the same without the absolute value, Adebayo
et al.'s second variant) and ``ssim`` (scikit-image's structural similarity of the
absolute maps, each scaled to [0, 1] by its maximum). A map compared with itself gives
exactly 1 on all three (identical maps are recognised before the floating-point
computation, which can round Spearman's 1 to 1 − 2⁻⁵²).

**Neuron selectivity** (:func:`selectivity`): for one image, the mean pairwise Spearman
(absolute maps) among the maps of several conv5 feature maps, or of all fc8 classes.
**Reconstruction** (:func:`edge_correlation`): Spearman between a map and the image's
edge strength (Sobel gradient magnitude), against the same with another image's edges.

Only zfbook ``ConvNet`` models (layers named conv1…fc8) are accepted: randomisation
addresses layers by the paper's names.
"""
from __future__ import annotations

import copy
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import deconv
from .models import LAYERS, ConvNet
from .occlusion import IncrementalForward, pixel_average, placements

__all__ = ["METHODS", "TARGETS", "MEASURES", "explain", "randomize", "cascading_steps",
           "independent_steps", "step_label", "similarity", "Randomisation", "randomisation",
           "selectivity", "edge_map", "edge_correlation", "top_classes", "top_features"]

#: the explanation methods, by name
METHODS = ("deconvnet", "gradient", "guided_backprop", "occlusion")
#: what a map explains: a class logit at fc8, or one conv5 feature map
TARGETS = ("fc8", "conv5")
#: the similarity measures
MEASURES = ("spearman_abs", "spearman", "ssim")


def _check(kind: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; {kind}s are: {', '.join(choices)}")


def _check_model(model) -> None:
    if not isinstance(model, ConvNet):
        raise TypeError("sanity checks need a zfbook ConvNet (layers conv1…fc8), got "
                        f"{type(model).__name__}")


def _param_module(model: ConvNet, layer: str) -> nn.Module:
    _check("layer", layer, LAYERS)
    part = model.features if layer.startswith("conv") else model.classifier
    return getattr(part, layer)


# ------------------------------------------------------------------ what is explained
@torch.no_grad()
def top_classes(model: nn.Module, images: torch.Tensor) -> list[int]:
    """The class each image is predicted as (the fc8 default)."""
    return model.eval()(images).argmax(1).tolist()


@torch.no_grad()
def top_features(model: nn.Module, images: torch.Tensor, k: int = 1) -> list:
    """Per image, the conv5 map(s) holding the strongest activation (the conv5 default):
    N ints for ``k=1``, else N lists of ``k`` maps, strongest first."""
    from .models import activations
    act = activations(model.eval(), images, "conv5")["conv5"].flatten(2).amax(2)
    idx = act.topk(k, dim=1).indices
    return idx[:, 0].tolist() if k == 1 else idx.tolist()


def _strongest(model, images, features) -> list[tuple[int, int]]:
    """(y, x) of the strongest activation of each image's conv5 map in ``model``."""
    from .models import activations
    with torch.no_grad():
        act = activations(model, images, "conv5")["conv5"]
    w = act.shape[-1]
    return [divmod(int(act[i, f].argmax()), w) for i, f in enumerate(features)]


def _captum(name: str):
    try:
        import captum.attr as attr
    except ImportError as e:  # pragma: no cover - captum is a dependency
        raise ImportError("the gradient and guided_backprop methods use Captum: "
                          "pip install 'captum>=0.7'") from e
    return getattr(attr, name)


def _deconvnet(model, images, target, which):
    if target == "conv5":
        return deconv.project(model, images, "conv5", which, _strongest(model, images, which))
    net = copy.deepcopy(model)
    bias = net.classifier.fc8.bias
    with torch.no_grad():
        logits = net(images)
    out = []
    for i, c in enumerate(which):
        with torch.no_grad():   # the logit becomes 1: the down pass is seeded with 1
            saved = bias[c].clone()
            bias[c] += 1.0 - logits[i, c]
        out.append(deconv.project(net, images[i:i + 1], "fc8", c)[0])
        with torch.no_grad():
            bias[c] = saved
    return torch.stack(out)


def _backprop(model, images, target, which, guided: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # Captum's notes on in-place ReLUs and hooks
        if target == "fc8":
            method = _captum("GuidedBackprop" if guided else "Saliency")(model)
            kw = {} if guided else {"abs": False}
            return method.attribute(images.clone(), target=list(which), **kw).detach()
        cls = _captum("NeuronGuidedBackprop" if guided else "NeuronGradient")
        method = cls(model, model.features.conv5)   # pre-ReLU: same gradient where it fires
        locs = _strongest(model, images, which)
        return torch.cat([method.attribute(images[i:i + 1].clone(),
                                           neuron_selector=(f, *locs[i])).detach()
                          for i, f in enumerate(which)])


def _occlusion_drops(model, image, target, units, patch, stride) -> torch.Tensor:
    """One incremental sweep of ``image``: per pixel, the mean drop of each unit's
    quantity (fc8: the class logit; conv5: the map's total) over the squares covering it.
    Returns (len(units), H, W)."""
    h, w = image.shape[-2:]
    rows, cols = placements(h, patch, stride), placements(w, patch, stride)
    grid = torch.tensor([[(r, c) for c in cols] for r in rows], dtype=torch.long)
    engine = IncrementalForward(model, image, probe="conv5")
    logits, totals = engine.run(grid[..., 0].reshape(-1).numpy(),
                                grid[..., 1].reshape(-1).numpy(), patch)
    after, before = ((logits, engine.logits0) if target == "fc8"
                     else (totals, engine.probe_totals0))
    drop = before[units].double() - after[:, units].double()          # (placements, units)
    return torch.stack([pixel_average(drop[:, j].reshape(grid.shape[:2]), grid, patch)
                        for j in range(len(units))]).float()


def _occlusion(model, images, target, which, patch, stride):
    return torch.stack([_occlusion_drops(model, images[i], target, [f], patch, stride)[0]
                        for i, f in enumerate(which)])


def explain(model: nn.Module, images: torch.Tensor, method: str, target: str = "fc8",
            which=None, *, patch: int = 16, stride: int = 8) -> torch.Tensor:
    """One method's maps of ``images`` (N, C, H, W) for ``model`` (see the module docstring).

    ``target``: ``"fc8"`` (``which`` = N classes, default :func:`top_classes`) or
    ``"conv5"`` (``which`` = N feature maps, default :func:`top_features`). ``patch`` and
    ``stride`` are the occluding square's. Returns (N, C, H, W) for the backward methods
    and (N, H, W) for occlusion. The model runs in eval mode.
    """
    _check_model(model)
    _check("method", method, METHODS)
    _check("target", target, TARGETS)
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    model.eval()
    if which is None:
        which = top_classes(model, images) if target == "fc8" else top_features(model, images)
    which = [int(v) for v in torch.as_tensor(which).reshape(-1).tolist()]
    if len(which) != len(images):
        raise ValueError(f"which has {len(which)} entries for {len(images)} images")
    limit = model.num_classes if target == "fc8" else model.preset.widths[4]
    if any(not 0 <= v < limit for v in which):
        raise ValueError(f"which must be in 0…{limit - 1} for target {target!r}")
    if method == "deconvnet":
        return _deconvnet(model, images, target, which)
    if method == "occlusion":
        return _occlusion(model, images, target, which, patch, stride)
    return _backprop(model, images, target, which, guided=method == "guided_backprop")


# ------------------------------------------------------------------ randomisation
def cascading_steps(layers=LAYERS) -> list[tuple[str, ...]]:
    """Step 0 randomises nothing; step k the top k layers: (), (fc8,), (fc8, fc7), …"""
    top = list(reversed(layers))
    return [tuple(top[:k]) for k in range(len(top) + 1)]


def independent_steps(layers=LAYERS) -> list[tuple[str, ...]]:
    """Step 0 randomises nothing; then one layer at a time, from the top: (fc8,), (fc7,), …"""
    return [()] + [(l,) for l in reversed(layers)]


def step_label(step: tuple[str, ...], mode: str = "cascading") -> str:
    """A short label: ``trained``, ``fc8``, ``fc8…conv3`` (cascading) or the layer."""
    if not step:
        return "trained"
    return step[0] if len(step) == 1 or mode != "cascading" else f"{step[0]}…{step[-1]}"


def _layer_seed(seed: int, layer: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(layer.encode())) % (2 ** 63)


def randomize(model: nn.Module, layers, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with ``layers`` (paper names) re-initialised, seeded.

    Each layer is re-drawn with the model's own scheme (see the module docstring) from
    ``seed`` and its name alone. The copy is in eval mode; ``model`` is untouched.
    """
    _check_model(model)
    layers = [layers] if isinstance(layers, str) else list(layers)
    for l in layers:
        _check("layer", l, LAYERS)
    net = copy.deepcopy(model).eval()
    scheme = model.preset.init
    for l in layers:
        m = _param_module(net, l)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(_layer_seed(seed, l))
            if scheme == "paper" or l == "fc8":   # zfbook.models._init
                nn.init.normal_(m.weight, 0.0, 0.01)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net


# ------------------------------------------------------------------ similarity
def _view(m, absolute: bool) -> np.ndarray:
    """A map as a 2-D float64 array: |m| (or m) summed over colour channels."""
    m = torch.as_tensor(m).detach().double()
    if absolute:
        m = m.abs()
    if m.dim() == 3:
        m = m.sum(0)
    return m.cpu().numpy()


def similarity(a, b, measure: str = "spearman_abs") -> float:
    """Similarity of two maps of one image ((C, H, W) or (H, W)); see :data:`MEASURES`.

    Identical maps give exactly 1.0 on every measure (the rank correlation of a vector
    with itself is 1; its floating-point evaluation may round to 1 − 2⁻⁵²). NaN when
    Spearman is undefined (a constant map, e.g. a unit that does not fire).
    """
    _check("measure", measure, MEASURES)
    if torch.equal(torch.as_tensor(a), torch.as_tensor(b)) and _view(a, True).max() > 0:
        return 1.0
    if measure == "ssim":
        from skimage.metrics import structural_similarity
        x, y = (_view(m, True) for m in (a, b))
        x, y = (v / v.max() if v.max() > 0 else v for v in (x, y))
        return float(structural_similarity(x, y, data_range=1.0))
    from scipy.stats import spearmanr
    x, y = (_view(m, measure == "spearman_abs").ravel() for m in (a, b))
    if x.min() == x.max() or y.min() == y.max():
        return float("nan")
    return float(spearmanr(x, y).statistic)


@dataclass
class Randomisation:
    """Maps and similarities of a randomisation run.

    ``maps[method][k]`` are the method's maps at step ``k`` (``steps[k]`` names the
    randomised layers; step 0 is the trained network); ``scores[method][measure]`` is a
    (steps, images) float64 array of similarities to step 0. ``which`` is what was
    explained (classes or conv5 maps), ``seconds[method]`` the time each method took.
    """
    mode: str
    target: str
    steps: list
    which: list
    maps: dict
    scores: dict
    seconds: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [step_label(s, self.mode) for s in self.steps]

    def mean(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        """Mean over images at every step (NaNs ignored)."""
        return np.nanmean(self.scores[method][measure], axis=1)

    def std(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        return np.nanstd(self.scores[method][measure], axis=1)


def randomisation(model: nn.Module, images: torch.Tensor, *, mode: str = "cascading",
                  target: str = "fc8", methods=METHODS, which=None, seed: int = 0,
                  patch: int = 16, stride: int = 8, measures=MEASURES) -> Randomisation:
    """Cascading or independent randomisation (Adebayo et al.) of ``model`` on ``images``.

    At every step (:func:`cascading_steps` or :func:`independent_steps`) a seeded,
    randomised copy of the model (:func:`randomize`) explains the same ``which`` (by
    default what the *trained* network predicts / finds most active) with every method;
    each map is compared with the trained network's map of the same image.
    """
    import time
    _check("mode", mode, ("cascading", "independent"))
    for m in methods:
        _check("method", m, METHODS)
    for m in measures:
        _check("measure", m, MEASURES)
    _check_model(model)
    model.eval()
    if which is None:
        which = top_classes(model, images) if target == "fc8" else top_features(model, images)
    which = [int(v) for v in which]
    steps = cascading_steps() if mode == "cascading" else independent_steps()
    maps = {m: [] for m in methods}
    seconds = {m: 0.0 for m in methods}
    for step in steps:
        net = randomize(model, step, seed)
        for m in methods:
            t0 = time.perf_counter()
            maps[m].append(explain(net, images, m, target, which, patch=patch, stride=stride))
            seconds[m] += time.perf_counter() - t0
    scores = {m: {s: np.array([[similarity(maps[m][0][i], maps[m][k][i], s)
                                for i in range(len(images))] for k in range(len(steps))])
                  for s in measures} for m in methods}
    return Randomisation(mode, target, steps, which, maps, scores, seconds)


# ------------------------------------------------------------------ neuron selectivity
def _pairwise(maps) -> float:
    """Mean Spearman (absolute maps) over all pairs of distinct maps, NaN pairs skipped.

    Each map is ranked once (``scipy.stats.rankdata``, average ranks for ties) and the
    Pearson correlations of the ranks are Spearman's coefficients (what ``spearmanr``
    computes pair by pair)."""
    from scipy.stats import rankdata
    ranks = np.stack([rankdata(_view(m, True).ravel()) for m in maps])
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(ranks)
    vals = r[np.triu_indices(len(maps), 1)]
    return float(np.nanmean(vals)) if not np.isnan(vals).all() else float("nan")


def selectivity(model: nn.Module, image: torch.Tensor, method: str, target: str = "conv5",
                which=None, *, patch: int = 16, stride: int = 8) -> float:
    """How alike one image's maps of *different* units are (Mahendran & Vedaldi).

    The mean pairwise Spearman (absolute maps) among the maps of the ``which`` conv5
    feature maps (default: the image's 8 most active) or fc8 classes (default: all).
    Near 1: the map hardly depends on which unit was chosen.
    """
    _check_model(model)
    image = image if image.dim() == 4 else image[None]
    if which is None:
        which = (top_features(model, image, k=8)[0] if target == "conv5"
                 else list(range(model.num_classes)))
    which = [int(v) for v in which]
    if len(which) < 2:
        raise ValueError("selectivity needs at least two units to compare")
    _check("method", method, METHODS)
    _check("target", target, TARGETS)
    model.eval()
    if method == "occlusion":   # one sweep serves every unit
        return _pairwise(_occlusion_drops(model, image[0], target, which, patch, stride))
    images = image.expand(len(which), *image.shape[1:])
    return _pairwise(explain(model, images, method, target, which, patch=patch, stride=stride))


# ------------------------------------------------------------------ reconstruction
def edge_map(image: torch.Tensor) -> np.ndarray:
    """Edge strength of a (C, H, W) image: the Sobel gradient magnitude of its channel mean
    (scikit-image), the simplest parameter-free map of where an image has structure."""
    from skimage.filters import sobel
    return sobel(image.detach().double().mean(0).cpu().numpy())


def edge_correlation(maps, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per image, Spearman between |map| and the image's :func:`edge_map` (how much of the
    image the map reconstructs, Nie et al.), and the same with the *next* image's edges
    (image i against i + 1, cyclically): what layout alone gives. Two (N,) arrays."""
    from scipy.stats import spearmanr
    edges = [edge_map(x).ravel() for x in images]
    n = len(images)
    if n < 2:
        raise ValueError("edge_correlation needs at least two images (one is the control)")
    own, other = [], []
    for i in range(n):
        v = _view(maps[i], True).ravel()
        own.append(spearmanr(v, edges[i]).statistic)
        other.append(spearmanr(v, edges[(i + 1) % n]).statistic)
    return np.array(own, dtype=float), np.array(other, dtype=float)
