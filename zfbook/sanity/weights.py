"""The model-parameter randomisation test (Adebayo et al. 2018, Section 3).

Seeded re-initialisation of named layers on a copy (:func:`randomize`), the cascading and
independent steps, and the measurement (:func:`randomisation`, :class:`Randomisation`).
"""
from __future__ import annotations

import copy
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..models import LAYERS, ConvNet
from .methods import METHODS, _check, _check_model, explain, top_classes, top_features
from .similarity import MEASURES, similarities


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


def _intervals(per_image: np.ndarray, level: float) -> list:
    """:func:`zfbook.stats.mean_interval` of each row of a (steps, images) array, its NaNs
    (images whose similarity is undefined) left out: the interval's ``n`` says how many
    images remain."""
    from .. import stats
    return [stats.mean_interval(row[~np.isnan(row)], level) for row in per_image]


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

    def interval(self, method: str, measure: str = "spearman_abs", level: float = 0.95):
        """Per step, the mean over images with its Student-t interval
        (:func:`zfbook.stats.mean_interval`; NaN images left out)."""
        return _intervals(self.scores[method][measure], level)


def _steps(mode: str, steps) -> list[tuple[str, ...]]:
    """The mode's steps, or the chosen ones: ints index the mode's steps, strings and tuples
    name layers; the trained network (step 0, ``()``) always comes first."""
    _check("mode", mode, ("cascading", "independent"))
    every = cascading_steps() if mode == "cascading" else independent_steps()
    if steps is None:
        return every
    out = [()]
    for s in steps:
        if isinstance(s, (int, np.integer)):
            if not 0 <= s < len(every):
                raise ValueError(f"step {s} is out of range; {mode} steps are 0…{len(every) - 1}")
            s = every[s]
        s = (s,) if isinstance(s, str) else tuple(s)
        for layer in s:
            _check("layer", layer, LAYERS)
        if s not in out:
            out.append(s)
    return out


def _explain_all(net, images, methods, target, which, patch, stride, seconds) -> dict:
    """Every method's maps of ``images`` by ``net``; adds each method's time to ``seconds``."""
    out = {}
    for m in methods:
        t0 = time.perf_counter()
        out[m] = explain(net, images, m, target, which, patch=patch, stride=stride)
        seconds[m] += time.perf_counter() - t0
    return out


def _compare(reference: dict, maps: dict, measures) -> dict:
    """``[method][measure]``: (images,) similarity of each image's map to its reference."""
    return {m: {s: similarities(reference[m], maps[m], s) for s in measures} for m in maps}


def _check_run(model, methods, measures) -> None:
    for m in methods:
        _check("method", m, METHODS)
    for m in measures:
        _check("measure", m, MEASURES)
    _check_model(model)


def _default_which(model, images, target, which) -> list[int]:
    if which is None:
        which = top_classes(model, images) if target == "fc8" else top_features(model, images)
    return [int(v) for v in which]


def _run(model, images, steps, seeds, methods, target, which, measures, patch, stride,
         keep_maps: bool):
    """The trained network's maps (step 0, once), then for every seed and later step a
    randomised copy's maps and their similarities to the trained ones. Returns
    (trained maps, maps per step of the first seed or None, scores (steps, seeds, images),
    seconds)."""
    seconds = {m: 0.0 for m in methods}
    run = dict(methods=methods, target=target, which=which, patch=patch, stride=stride,
               seconds=seconds)
    trained = _explain_all(randomize(model, (), seeds[0]), images, **run)
    maps = {m: [] for m in methods} if keep_maps else None
    scores = {m: {s: np.empty((len(steps), len(seeds), len(images))) for s in measures}
              for m in methods}
    for j, seed in enumerate(seeds):
        for k, step in enumerate(steps):
            got = _explain_all(randomize(model, step, seed), images, **run) if step else trained
            for m, by_measure in _compare(trained, got, measures).items():
                for s, v in by_measure.items():
                    scores[m][s][k, j] = v
                if keep_maps and j == 0:
                    maps[m].append(got[m])
    return trained, maps, scores, seconds


def randomisation(model: nn.Module, images: torch.Tensor, *, mode: str = "cascading",
                  target: str = "fc8", methods=METHODS, which=None, seed: int = 0,
                  patch: int = 16, stride: int = 8, measures=MEASURES) -> Randomisation:
    """Cascading or independent randomisation (Adebayo et al. 2018, Section 3) of ``model``
    on ``images``, with one seed.

    At every step (:func:`cascading_steps` or :func:`independent_steps`) a seeded,
    randomised copy of the model (:func:`randomize`) explains the same ``which`` (by
    default what the *trained* network predicts / finds most active) with every method;
    each map is compared with the trained network's map of the same image.
    """
    steps = _steps(mode, None)
    _check_run(model, methods, measures)
    model.eval()
    which = _default_which(model, images, target, which)
    _, maps, scores, seconds = _run(model, images, steps, (seed,), methods, target, which,
                                    measures, patch, stride, keep_maps=True)
    scores = {m: {s: v[:, 0] for s, v in by.items()} for m, by in scores.items()}
    return Randomisation(mode, target, steps, which, maps, scores, seconds)


@dataclass
class SeededRandomisation:
    """Similarities of a randomisation repeated with several seeds (:func:`seeded_randomisation`).

    ``scores[method][measure]`` is a (steps, seeds, images) float64 array of similarities
    to the trained network's map (step 0, the trained network, is 1 in every seed);
    ``trained[method]`` holds the trained network's maps (images, …), which :func:`null`
    compares across images. The randomised maps are not kept (a single-seed
    :func:`randomisation` keeps them).

    The images are the sample; a seed re-draws the random weights. :meth:`per_image`
    averages each image's seeds: the values an interval over images is computed from
    (images are independent, an image's seeds are not), and :meth:`interval` their
    Student-t interval. :meth:`per_seed` gives each seed's mean over images, whose spread
    says how much one draw of random weights matters.
    """
    mode: str
    target: str
    steps: list
    seeds: tuple
    which: list
    trained: dict
    scores: dict
    seconds: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [step_label(s, self.mode) for s in self.steps]

    def per_image(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        """(steps, images): each image's mean over the seeds (NaNs ignored)."""
        return np.nanmean(self.scores[method][measure], axis=1)

    def per_seed(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        """(steps, seeds): each seed's mean over the images (NaNs ignored)."""
        return np.nanmean(self.scores[method][measure], axis=2)

    def mean(self, method: str, measure: str = "spearman_abs") -> np.ndarray:
        """(steps,): the mean over every image and seed (NaNs ignored)."""
        return np.nanmean(self.scores[method][measure], axis=(1, 2))

    def interval(self, method: str, measure: str = "spearman_abs", level: float = 0.95):
        """Per step, the mean of :meth:`per_image` with its Student-t interval over images
        (:func:`zfbook.stats.mean_interval`; NaN images left out)."""
        return _intervals(self.per_image(method, measure), level)


def seeded_randomisation(model: nn.Module, images: torch.Tensor, *, seeds=(0, 1, 2),
                         mode: str = "cascading", steps=None, target: str = "fc8",
                         methods=METHODS, which=None, patch: int = 16, stride: int = 8,
                         measures=MEASURES) -> SeededRandomisation:
    """:func:`randomisation` repeated for every seed in ``seeds`` (Adebayo et al. 2018,
    Section 3, with the random weights re-drawn), the trained network's maps made once.

    ``steps``: the mode's steps to run (default all; ints index :func:`cascading_steps` or
    :func:`independent_steps`, strings or tuples name layers, e.g. ``(1, 3, 8)`` for fc8,
    fc8…fc6 and the whole network); the trained network is always step 0. Seed ``s``
    gives the same weights, maps and similarities as ``randomisation(..., seed=s)``.
    """
    steps = _steps(mode, steps)
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be one or more different integers, got {seeds}")
    _check_run(model, methods, measures)
    model.eval()
    which = _default_which(model, images, target, which)
    trained, _, scores, seconds = _run(model, images, steps, seeds, methods, target, which,
                                       measures, patch, stride, keep_maps=False)
    return SeededRandomisation(mode, target, steps, seeds, which, trained, scores, seconds)
