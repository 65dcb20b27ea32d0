"""The model-parameter randomisation test (Adebayo et al. 2018, Section 3).

Seeded re-initialisation of named layers on a copy (:func:`randomize`), the cascading and
independent steps, and the measurement (:func:`randomisation`, :class:`Randomisation`).
"""
from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..models import LAYERS, ConvNet
from .methods import METHODS, _check, _check_model, explain, top_classes, top_features
from .similarity import MEASURES, similarity


def _param_module(model: ConvNet, layer: str) -> nn.Module:
    _check("layer", layer, LAYERS)
    part = model.features if layer.startswith("conv") else model.classifier
    return getattr(part, layer)



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
